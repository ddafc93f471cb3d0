--
-- Scoring: models, attach/detach, the score trigger, scores, alerts.
--
\set VERBOSITY default
SET client_min_messages = warning;
CREATE TABLE sc_txn (id bigint PRIMARY KEY, card text, device text,
                     amount float8, ts timestamptz, score float8);
SELECT fraudstream.create_feature('sc_card_count', 'sc_txn', 'card', 'count', '1 hour');
SELECT fraudstream.create_feature('sc_card_sum', 'sc_txn', 'card', 'sum', '1 hour', 'amount');
SELECT fraudstream.create_feature('sc_card_devices', 'sc_txn', 'card', 'distinct', '1 day', 'device');
SELECT fraudstream.create_feature('sc_card_z', 'sc_txn', 'card', 'zscore', '1 day', 'amount');
RESET client_min_messages;

-- Specs are validated at deploy time, each error with a clear message.
SELECT fraudstream.deploy_model('m', '[1, 2]');
SELECT fraudstream.deploy_model('m', '{"threshold": 0.5, "rules": []}');
SELECT fraudstream.deploy_model('m', '{"type": "tree", "threshold": 0.5}');
SELECT fraudstream.deploy_model('m', '{"type": "rules", "rules": [{"name": "r", "feature": "sc_card_count", "op": ">", "value": 1, "points": 1}]}');
SELECT fraudstream.deploy_model('m', '{"type": "rules", "threshold": 1.5, "rules": [{"name": "r", "feature": "sc_card_count", "op": ">", "value": 1, "points": 1}]}');
SELECT fraudstream.deploy_model('m', '{"type": "rules", "treshold": 0.5, "threshold": 0.5, "rules": []}');
SELECT fraudstream.deploy_model('m', '{"type": "rules", "threshold": 0.5, "rules": [{"name": "r", "feature": "sc_card_count", "op": "=>", "value": 1, "points": 1}]}');
SELECT fraudstream.deploy_model('m', '{"type": "rules", "threshold": 0.5, "rules": [{"name": "r", "feature": "nope", "op": ">", "value": 1, "points": 1}]}');
SELECT fraudstream.deploy_model('m', '{"type": "rules", "threshold": 0.5, "rules": [{"name": "r", "feature": "sc_card_count", "op": ">", "value": 1e400, "points": 1}]}');
SELECT fraudstream.deploy_model('m', '{"type": "rules", "threshold": 0.5, "rules": [{"name": "r", "feature": "sc_card_count", "op": ">", "value": "NaN", "points": 1}]}');
SELECT fraudstream.deploy_model('m', '{"type": "rules", "threshold": 0.5, "rules": [{"name": "r", "feature": "sc_card_count", "op": ">", "value": 1}]}');
SELECT fraudstream.deploy_model('m', '{"type": "rules", "threshold": 0.5, "rules": [{"name": "r", "feature": "sc_card_count", "op": ">", "value": 1, "points": 1}, {"name": "r", "feature": "sc_card_sum", "op": ">", "value": 1, "points": 1}]}');
SELECT fraudstream.deploy_model('m', '{"type": "rules", "threshold": 0.5, "rules": []}');
SELECT fraudstream.deploy_model('m', '{"type": "logistic", "threshold": 0.5, "bias": 0}');
SELECT fraudstream.deploy_model('m', '{"type": "logistic", "threshold": 0.5, "weights": {"sc_card_count": "x"}}');
SELECT fraudstream.deploy_model('', '{"type": "rules", "threshold": 0.5, "rules": []}');
SELECT count(*) AS no_model_stored FROM fraudstream.models;

-- A rules model and a logistic model; versions count from 1 per name.
SELECT fraudstream.deploy_model('rules_m', '{"type": "rules", "threshold": 0.8, "rules": [
  {"name": "burst", "feature": "sc_card_count", "op": ">=", "value": 3, "points": 0.5},
  {"name": "big", "feature": "sc_card_sum", "op": ">", "value": 1000, "points": 0.4},
  {"name": "new_device", "feature": "sc_card_devices", "op": ">", "value": 1, "points": 0.3}]}');
SELECT fraudstream.deploy_model('logit_m', '{"type": "logistic", "threshold": 0.9, "bias": -4,
  "weights": {"sc_card_count": 0.5, "sc_card_sum": 0.002, "sc_card_z": 1},
  "rules": [{"name": "many_devices", "feature": "sc_card_devices", "op": ">", "value": 2, "points": 3}]}');
SELECT fraudstream.deploy_model('logit_m', '{"type": "logistic", "threshold": 0.5, "bias": 10, "weights": {"sc_card_count": 0}}');
SELECT name, version, kind, threshold, active FROM fraudstream.models ORDER BY name, version;
SELECT fraudstream.activate_model('rules_m', 7);

-- attach errors
SELECT fraudstream.attach('sc_txn', 'id', 'score');
CREATE VIEW sc_view AS SELECT * FROM sc_txn;
SELECT fraudstream.attach('sc_view', 'id', 'score', 'rules_m');
SELECT fraudstream.attach('sc_txn', 'nope', 'score', 'rules_m');
SELECT fraudstream.attach('sc_txn', 'id', 'card', 'rules_m');
SELECT fraudstream.attach('sc_txn', 'id', 'id', 'rules_m');
SELECT fraudstream.attach('sc_txn', 'id', NULL, 'rules_m', false);
SELECT fraudstream.attach('sc_txn', 'id', 'score', 'no_such_model');
CREATE TABLE sc_unrelated (id int, account text);
SELECT fraudstream.attach('sc_unrelated', 'id', NULL, 'rules_m');
SELECT fraudstream.detach('sc_unrelated');

-- Attached with no active version: rows are not scored.
SELECT fraudstream.attach('sc_txn', 'id', 'score', 'rules_m');
SELECT fraudstream.attach('sc_txn', 'id', 'score', 'rules_m');
SELECT tgname FROM pg_trigger WHERE tgrelid = 'sc_txn'::regclass ORDER BY tgname;
INSERT INTO sc_txn VALUES (0, 'c0', 'd0', 1, '2026-01-01 09:00');
SELECT id, score FROM sc_txn;
SELECT count(*) AS scores FROM fraudstream.scores;
-- ... but still feed the features (the score trigger feeds for the feed
-- trigger of a table it scores), also with the score trigger disabled.
SELECT fraudstream.feature_values('card', 'c0', '2026-01-01 09:30')->'sc_card_count' AS c0_events;
ALTER TABLE sc_txn DISABLE TRIGGER zz_fraudstream_1_score;
INSERT INTO sc_txn VALUES (-1, 'c0', 'd0', 1, '2026-01-01 09:01');
ALTER TABLE sc_txn ENABLE TRIGGER zz_fraudstream_1_score;
SELECT fraudstream.feature_values('card', 'c0', '2026-01-01 09:30')->'sc_card_count' AS c0_events;

-- Rules: score = min(1, sum of fired points); a row sees its own event and
-- the earlier rows of its statement.
SELECT fraudstream.activate_model('rules_m', 1);
INSERT INTO sc_txn VALUES
  (1, 'c1', 'd1', 100, '2026-01-01 10:00'),
  (2, 'c1', 'd1', 500, '2026-01-01 10:10'),
  (3, 'c1', 'd2', 600, '2026-01-01 10:20'),
  (4, 'c2', 'd9', 50, '2026-01-01 10:20');
SELECT id, score FROM sc_txn ORDER BY id;
SELECT row_key, score, model, version, features, reasons
  FROM fraudstream.scores ORDER BY id;
SELECT row_key, entities, score, reasons FROM fraudstream.alerts ORDER BY id;

-- COPY is scored like INSERT.
COPY sc_txn (id, card, device, amount, ts) FROM STDIN;
5	c1	d3	10	2026-01-01 10:30
6	c3	d1	10	2026-01-01 10:30
\.
SELECT id, score FROM sc_txn WHERE id IN (5, 6) ORDER BY id;

-- A rolled-back insert leaves no score and no alert; a rolled-back
-- savepoint neither.
BEGIN;
INSERT INTO sc_txn VALUES (7, 'c1', 'd4', 5000, '2026-01-01 10:31');
SELECT count(*) AS alerts_inside FROM fraudstream.alerts WHERE row_key = '7';
ROLLBACK;
BEGIN;
SAVEPOINT s;
INSERT INTO sc_txn VALUES (8, 'c1', 'd4', 5000, '2026-01-01 10:32');
ROLLBACK TO SAVEPOINT s;
INSERT INTO sc_txn VALUES (9, 'c5', 'd5', 1, '2026-01-01 10:32');
COMMIT;
SELECT row_key FROM fraudstream.scores WHERE row_key IN ('7', '8', '9') ORDER BY 1;
SELECT count(*) AS alerts_after FROM fraudstream.alerts WHERE row_key IN ('7', '8');

-- Logistic: 1 / (1 + exp(-(bias + sum w x + fired points))).  Swapping the
-- model scores the next row with the new version.
SELECT fraudstream.detach('sc_txn');
SELECT fraudstream.attach('sc_txn', 'id', 'score', 'logit_m');
SELECT fraudstream.activate_model('logit_m', 1);
INSERT INTO sc_txn VALUES (10, 'c6', 'd1', 100, '2026-01-01 11:00'),
                          (11, 'c6', 'd2', 100, '2026-01-01 11:01');
SELECT id, round(score::numeric, 12) AS score,
       round((1 / (1 + exp(-(-4 + 0.5 * f.c + 0.002 * f.s + coalesce(f.z, 0)))))::numeric, 12) AS expected
  FROM sc_txn
  JOIN (SELECT row_key::bigint AS id, (features->>'sc_card_count')::float8 AS c,
               (features->>'sc_card_sum')::float8 AS s, (features->>'sc_card_z')::float8 AS z
          FROM fraudstream.scores WHERE model = 'logit_m') f USING (id)
 ORDER BY id;
SELECT fraudstream.activate_model('logit_m', 2);
INSERT INTO sc_txn VALUES (12, 'c6', 'd3', 100, '2026-01-01 11:02');
SELECT row_key, version, round(score::numeric, 6) AS score FROM fraudstream.scores
 WHERE model = 'logit_m' ORDER BY id;
SELECT name, version, active FROM fraudstream.models WHERE name = 'logit_m' ORDER BY version;

-- A model feature the table cannot compute is NULL: it fires no rule and
-- weighs 0.  Features of another source apply through a column of the
-- same name, as feature_values() gives them at the row's time.
CREATE TABLE sc_logins (card text, ts timestamptz);
SELECT fraudstream.create_feature('sc_card_logins', 'sc_logins', 'card', 'count', '1 hour');
INSERT INTO sc_logins VALUES ('c7', '2026-01-01 11:50'), ('c7', '2026-01-01 11:55');
SELECT fraudstream.deploy_model('cross_m', '{"type": "rules", "threshold": 0.5, "rules": [
  {"name": "logged_in", "feature": "sc_card_logins", "op": ">=", "value": 2, "points": 0.6}]}');
SELECT fraudstream.activate_model('cross_m', 1);
CREATE TABLE sc_payments (pid int, card text, ts timestamptz, score numeric);
SELECT fraudstream.attach('sc_payments', 'pid', 'score', 'cross_m', false);
INSERT INTO sc_payments VALUES (1, 'c7', '2026-01-01 12:00'), (2, 'c7', '2026-01-01 13:00'),
                               (3, 'c8', '2026-01-01 12:00'), (4, NULL, '2026-01-01 12:00');
SELECT pid, score FROM sc_payments ORDER BY pid;
SELECT count(*) AS stored FROM fraudstream.scores WHERE relation = 'sc_payments'::regclass;

-- Partitioned tables: rows of every partition are scored.
CREATE TABLE sc_parted (id int, card text, ts timestamptz, score float8) PARTITION BY RANGE (id);
CREATE TABLE sc_parted_1 PARTITION OF sc_parted FOR VALUES FROM (0) TO (100);
CREATE TABLE sc_parted_2 (score float8, ts timestamptz, card text, id int);
ALTER TABLE sc_parted ATTACH PARTITION sc_parted_2 FOR VALUES FROM (100) TO (200);
SELECT fraudstream.attach('sc_parted', 'id', 'score', 'cross_m');
INSERT INTO sc_parted VALUES (1, 'c7', '2026-01-01 12:00'), (150, 'c7', '2026-01-01 12:00');
SELECT id, score FROM sc_parted ORDER BY id;
SELECT relation, row_key FROM fraudstream.scores WHERE model = 'cross_m' ORDER BY id;

-- Statistics per model version.
SELECT model, version, rows_scored, alerts, latency_p50_us > 0 AS p50,
       latency_p99_us >= latency_p50_us AS p99
  FROM fraudstream.model_stats WHERE model IN ('cross_m', 'logit_m', 'rules_m')
 ORDER BY model, version;

-- detach stops scoring; dropping a table removes its attachment.
SELECT fraudstream.detach('sc_payments');
INSERT INTO sc_payments VALUES (5, 'c7', '2026-01-01 12:00');
SELECT pid, score FROM sc_payments WHERE pid = 5;
SELECT fraudstream.detach('sc_payments');
DROP TABLE sc_parted;
SELECT relation FROM fraudstream.attachments ORDER BY 1;
