--
-- Kafka sources: the SQL surface and its errors.  This database is not
-- fraudstream.database, so no worker runs here (workers: test/t/1*.pl).
--
CREATE TABLE src_target (id int, v text, amount numeric);
SELECT fraudstream.create_source('s1', 'src_target', '127.0.0.1:1', 'topic1');
SELECT fraudstream.create_source('s2', 'src_target', '127.0.0.1:1', 'topic2', 'csv',
    '{"columns": ["v", "id"], "delimiter": ";", "start": "latest",
      "offset_column": "amount", "fetch.wait.max.ms": 100}');
SELECT name, target, brokers, topic, format, options, owner, enabled FROM fraudstream.sources ORDER BY name;
SELECT source, state, messages, rejects, batches, lag FROM fraudstream.source_stats ORDER BY source;
-- secrets are masked in fraudstream.sources
SELECT fraudstream.create_source('s3', 'src_target', '127.0.0.1:1', 'topic3', 'json',
    '{"security.protocol": "sasl_plaintext", "sasl.mechanisms": "PLAIN",
      "sasl.username": "svc", "sasl.password": "hunter2"}');
SELECT options FROM fraudstream.sources WHERE name = 's3';
-- the consumer settings each worker uses: fraudstream's defaults (fetches
-- of 100 KB or 10 ms), the source's own options over them, the settings
-- exactly-once depends on, secrets masked
SELECT s.name, k.property, k.value
  FROM fraudstream.sources s, fraudstream.source_kafka_settings(s.name) k
 WHERE k.property IN ('fetch.min.bytes', 'fetch.wait.max.ms', 'group.id', 'client.id',
                      'enable.auto.commit', 'enable.auto.offset.store', 'metadata.broker.list',
                      'auto.offset.reset', 'sasl.username', 'sasl.password')
 ORDER BY 1, 2;
SELECT count(*) > 100 AS every_property FROM fraudstream.source_kafka_settings('s1');
SELECT * FROM fraudstream.source_kafka_settings('nope');
-- pause, resume, drop
SELECT fraudstream.pause_source('s1');
SELECT source, state FROM fraudstream.source_stats ORDER BY source;
SELECT fraudstream.resume_source('s1');
SELECT name, enabled FROM fraudstream.sources ORDER BY name;
SELECT fraudstream.drop_source('s2');
SELECT fraudstream.drop_source('s3');
SELECT name FROM fraudstream.sources ORDER BY name;
-- errors
SELECT fraudstream.create_source('s1', 'src_target', '127.0.0.1:1', 'topic1');
SELECT fraudstream.create_source('bad name', 'src_target', '127.0.0.1:1', 'topic1');
SELECT fraudstream.create_source('s4', 'src_target', '127.0.0.1:1', 'topic1', 'xml');
SELECT fraudstream.create_source('s4', 'src_target', '', 'topic1');
SELECT fraudstream.create_source('s4', 'src_target', '127.0.0.1:1', 'bad topic');
SELECT fraudstream.create_source('s4', 'no_such_table', '127.0.0.1:1', 'topic1');
CREATE VIEW src_view AS SELECT 1 AS id;
SELECT fraudstream.create_source('s4', 'src_view', '127.0.0.1:1', 'topic1');
SELECT fraudstream.create_source('s4', 'src_target', '127.0.0.1:1', 't', 'json', '[1, 2]');
SELECT fraudstream.create_source('s4', 'src_target', '127.0.0.1:1', 't', 'json', '{"fetch.wait.max.ms": "soon"}');
SELECT fraudstream.create_source('s4', 'src_target', '127.0.0.1:1', 't', 'json', '{"no.such.setting": 1}');
SELECT fraudstream.create_source('s4', 'src_target', '127.0.0.1:1', 't', 'json', '{"security.protocol": "sasl_plaintext", "sasl.mechanisms": "NOPE"}');
SELECT fraudstream.create_source('s4', 'src_target', '127.0.0.1:1', 't', 'json', '{"enable.auto.commit": true}');
SELECT fraudstream.create_source('s4', 'src_target', '127.0.0.1:1', 't', 'json', '{"start": "someday"}');
SELECT fraudstream.create_source('s4', 'src_target', '127.0.0.1:1', 't', 'json', '{"start": {"at": 1}}');
SELECT fraudstream.create_source('s4', 'src_target', '127.0.0.1:1', 't', 'json', '{"columns": ["id"]}');
SELECT fraudstream.create_source('s4', 'src_target', '127.0.0.1:1', 't', 'csv', '{"columns": ["id", "nope"]}');
SELECT fraudstream.create_source('s4', 'src_target', '127.0.0.1:1', 't', 'csv', '{"columns": "id"}');
SELECT fraudstream.create_source('s4', 'src_target', '127.0.0.1:1', 't', 'csv', '{"delimiter": "ab"}');
SELECT fraudstream.create_source('s4', 'src_target', '127.0.0.1:1', 't', 'json', '{"key_column": "nope"}');
SELECT fraudstream.pause_source('nope');
SELECT fraudstream.resume_source('nope');
SELECT fraudstream.drop_source('nope');
-- only fraudstream_admin manages sources; only it reads their secrets
CREATE ROLE regress_fs_source_user;
GRANT INSERT ON src_target TO regress_fs_source_user;
SET ROLE regress_fs_source_user;
SELECT fraudstream.create_source('s5', 'src_target', '127.0.0.1:1', 'topic1');
SELECT fraudstream.drop_source('s1');
SELECT count(*) FROM fraudstream.source_config;
SELECT count(*) FROM fraudstream.rejects;
SELECT name FROM fraudstream.sources;
SELECT * FROM fraudstream.source_kafka_settings('s1');
RESET ROLE;
-- an admin needs INSERT on the target: the worker writes as the owner
CREATE TABLE src_private (id int);
GRANT fraudstream_admin TO regress_fs_source_user;
SET ROLE regress_fs_source_user;
SELECT fraudstream.create_source('s5', 'src_private', '127.0.0.1:1', 'topic1');
SELECT fraudstream.create_source('s5', 'src_target', '127.0.0.1:1', 'topic1');
SELECT name, owner FROM fraudstream.sources ORDER BY name;
SELECT fraudstream.drop_source('s5');
RESET ROLE;
SELECT fraudstream.drop_source('s1');
DROP VIEW src_view;
DROP TABLE src_target, src_private;
DROP ROLE regress_fs_source_user;
