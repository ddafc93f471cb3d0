-- Contracts of the ring and Kafka source surface: functions and their
-- labels, catalog tables other modules read, the admin role and who may
-- read what (secrets included).
BEGIN;
CREATE EXTENSION fraudstream;
SELECT plan(35);

SELECT has_role('fraudstream_admin');
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = 'fraudstream_admin'), false,
    'fraudstream_admin cannot log in');

SELECT has_function('fraudstream', 'create_ring', ARRAY['text', 'text', 'name', 'name', 'interval', 'integer']);
SELECT function_returns('fraudstream', 'create_ring', ARRAY['text', 'text', 'name', 'name', 'interval', 'integer'], 'regclass');
SELECT has_function('fraudstream', 'drop_ring', ARRAY['regclass']);
SELECT has_function('fraudstream', 'create_source', ARRAY['text', 'regclass', 'text', 'text', 'text', 'jsonb']);
SELECT has_function('fraudstream', 'drop_source', ARRAY['text']);
SELECT has_function('fraudstream', 'pause_source', ARRAY['text']);
SELECT has_function('fraudstream', 'resume_source', ARRAY['text']);
SELECT has_function('fraudstream', 'source_kafka_settings', ARRAY['text']);
SELECT volatility_is('fraudstream', 'ring_slot', ARRAY['timestamp with time zone', 'bigint', 'integer'], 'immutable');
SELECT volatility_is('fraudstream', 'create_source', ARRAY['text', 'regclass', 'text', 'text', 'text', 'jsonb'], 'volatile');
SELECT is_empty(
    $$ SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = 'fraudstream'::regnamespace AND p.prosecdef
          AND p.proname <> 'drop_orphan_features' $$,
    'no source or ring function is SECURITY DEFINER: management runs as the caller');

-- the feature engine reads ring_config
SELECT has_table('fraudstream', 'ring_config', 'ring_config exists');
SELECT col_is_pk('fraudstream', 'ring_config', 'ring', 'ring_config.ring is the primary key');
SELECT col_type_is('fraudstream', 'ring_config', 'ring', 'regclass', 'ring_config.ring is regclass');
SELECT col_type_is('fraudstream', 'ring_config', 'key_column', 'name', 'ring_config.key_column is name');
SELECT col_type_is('fraudstream', 'ring_config', 'time_column', 'name', 'ring_config.time_column is name');
SELECT col_type_is('fraudstream', 'ring_config', 'retention', 'interval', 'ring_config.retention is interval');

SELECT columns_are('fraudstream', 'source_stats',
    ARRAY['source', 'state', 'pid', 'messages', 'bytes', 'rejects', 'batches',
          'last_batch_at', 'lag', 'partitions', 'last_error', 'last_error_at']);
SELECT columns_are('fraudstream', 'rings',
    ARRAY['ring', 'retention', 'partitions', 'step', 'rows', 'oldest', 'newest', 'rotations', 'rotated_at']);
SELECT columns_are('fraudstream', 'rejects',
    ARRAY['id', 'source', 'topic', 'partition', 'offset', 'key', 'payload', 'error', 'sqlstate', 'rejected_at']);

-- who may read and change what
CREATE ROLE fs_tap_user;
CREATE ROLE fs_tap_admin IN ROLE fraudstream_admin;
SELECT ok(NOT has_table_privilege('fs_tap_user', 'fraudstream.source_config', 'SELECT'),
    'a non-admin role cannot read source_config (secrets)');
SELECT ok(NOT has_table_privilege('fs_tap_user', 'fraudstream.rejects', 'SELECT'),
    'a non-admin role cannot read rejected payloads');
SELECT ok(has_table_privilege('fs_tap_user', 'fraudstream.sources', 'SELECT'),
    'anyone can read the masked fraudstream.sources');
SELECT ok(has_table_privilege('fs_tap_user', 'fraudstream.source_stats', 'SELECT'),
    'anyone can read fraudstream.source_stats');
SELECT ok(has_table_privilege('fs_tap_admin', 'fraudstream.source_config', 'SELECT, INSERT, UPDATE, DELETE'),
    'fraudstream_admin members manage source_config');
SELECT ok(has_table_privilege('fs_tap_admin', 'fraudstream.rejects', 'SELECT, DELETE'),
    'fraudstream_admin members read and clear rejects');

CREATE TABLE tap_target (id int);
GRANT INSERT ON tap_target TO fs_tap_admin, fs_tap_user;
SET ROLE fs_tap_user;
SELECT throws_ok(
    $$ SELECT fraudstream.create_source('tap', 'tap_target', '127.0.0.1:1', 't') $$,
    '42501', 'permission denied to create a source',
    'a non-admin role cannot create a source');
RESET ROLE;
SET ROLE fs_tap_admin;
SET client_min_messages = error;
SELECT lives_ok(
    $$ SELECT fraudstream.create_source('tap', 'tap_target', '127.0.0.1:1', 't', 'json',
                                        '{"sasl.username": "u", "sasl.password": "s3cret"}') $$,
    'a member of fraudstream_admin creates a source');
RESET ROLE;
SET ROLE fs_tap_user;
SELECT is((SELECT options->>'sasl.password' FROM fraudstream.sources WHERE name = 'tap'), '********',
    'a non-admin role sees the password masked');
SELECT ok(NOT has_function_privilege('fs_tap_user', 'fraudstream.source_kafka_settings(text)', 'EXECUTE'),
    'a non-admin role cannot read a source''s Kafka settings');
RESET ROLE;
SET ROLE fs_tap_admin;
SELECT is((SELECT value FROM fraudstream.source_kafka_settings('tap') WHERE property = 'sasl.password'),
    '********', 'an admin reads the Kafka settings with the password masked');
SELECT is((SELECT value FROM fraudstream.source_kafka_settings('tap') WHERE property = 'sasl.username'),
    'u', 'an admin reads the other Kafka settings as set');
RESET ROLE;
SELECT is((SELECT owner::text FROM fraudstream.source_config WHERE name = 'tap'), 'fs_tap_admin',
    'the creator owns the source');

SELECT * FROM finish();
ROLLBACK;
