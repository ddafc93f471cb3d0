--
-- ALTER TABLE of a source with features.  A change the features can
-- follow (a column given another type they read, a column added) goes
-- through, and their state is rebuilt from the table.  One they cannot
-- follow (a feature's column dropped, renamed, or given a type it cannot
-- read) is refused, naming the feature, and the table stays as it was.
--
SET client_min_messages = warning;
CREATE TABLE alt (id int, alt_card text, amount numeric, dev text, ts timestamptz);
SELECT fraudstream.create_feature('alt_sum', 'alt', 'alt_card', 'sum', '1 hour', 'amount');
SELECT fraudstream.create_feature('alt_dev', 'alt', 'alt_card', 'distinct', '1 hour', 'dev');
INSERT INTO alt VALUES (1, 'c1', 5, 'd1', '2026-01-01 00:00:01+00'),
                       (2, 'c1', 7, 'd2', '2026-01-01 00:00:02+00');
SELECT fraudstream.feature_values('alt_card', 'c1', '2026-01-01 00:01+00');

-- refused
ALTER TABLE alt ALTER COLUMN amount TYPE text;
ALTER TABLE alt DROP COLUMN dev;
ALTER TABLE alt RENAME COLUMN alt_card TO card_no;
ALTER TABLE alt ALTER COLUMN alt_card TYPE float8 USING 1;
ALTER TABLE alt ALTER COLUMN ts TYPE timestamp;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'alt'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
INSERT INTO alt VALUES (3, 'c1', 11, 'd1', '2026-01-01 00:00:03+00');
SELECT fraudstream.feature_values('alt_card', 'c1', '2026-01-01 00:01+00');

-- followed: the value column to float8, a column added
ALTER TABLE alt ALTER COLUMN amount TYPE float8;
ALTER TABLE alt ADD COLUMN note text;
INSERT INTO alt VALUES (4, 'c1', 0.5, 'd3', '2026-01-01 00:00:04+00', 'x');
SELECT fraudstream.feature_values('alt_card', 'c1', '2026-01-01 00:01+00');
-- the entity column to integer: the keys are the new values
ALTER TABLE alt ALTER COLUMN alt_card TYPE int USING 7;
INSERT INTO alt VALUES (5, 7, 1, 'd1', '2026-01-01 00:00:05+00', NULL);
SELECT fraudstream.feature_values('alt_card', '7', '2026-01-01 00:01+00');
SELECT name, status FROM fraudstream.features WHERE name LIKE 'alt\_%' ORDER BY name;

-- with the feature dropped first, its column may go
SELECT fraudstream.drop_feature('alt_dev');
ALTER TABLE alt DROP COLUMN dev;
INSERT INTO alt VALUES (6, 7, 2, '2026-01-01 00:00:06+00', NULL);
SELECT fraudstream.feature_values('alt_card', '7', '2026-01-01 00:01+00');

DROP TABLE alt;

-- an attached table: its key and score columns too
CREATE TABLE alts (id bigint, alts_card text, ts timestamptz, score float8);
SELECT fraudstream.create_feature('alts_count', 'alts', 'alts_card', 'count', '1 hour');
SELECT fraudstream.activate_model('alts_model', fraudstream.deploy_model('alts_model',
    '{"type": "rules", "threshold": 1, "rules": [{"name": "busy", "feature": "alts_count", "op": ">", "value": 1, "points": 0.5}]}'));
SELECT fraudstream.attach('alts', 'id', score_column => 'score', model => 'alts_model',
                          store_scores => false);
INSERT INTO alts VALUES (1, 'c1', '2026-01-01 00:00:01+00');
ALTER TABLE alts ALTER COLUMN score TYPE text;
ALTER TABLE alts ALTER COLUMN score TYPE int USING 0;
ALTER TABLE alts DROP COLUMN score;
ALTER TABLE alts RENAME COLUMN id TO txn_id;
-- followed: the score to numeric, the key to text
ALTER TABLE alts ALTER COLUMN score TYPE numeric;
ALTER TABLE alts ALTER COLUMN id TYPE text;
INSERT INTO alts VALUES ('t2', 'c1', '2026-01-01 00:00:02+00');
SELECT id, score, pg_typeof(score) FROM alts ORDER BY ts;
-- detached, the columns are the table's own again
SELECT fraudstream.detach('alts');
SELECT fraudstream.drop_feature('alts_count');
ALTER TABLE alts DROP COLUMN score;
DROP TABLE alts;
DELETE FROM fraudstream.models WHERE name = 'alts_model';
