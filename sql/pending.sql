--
-- A transaction that inserts many events of one entity (a bulk insert of
-- a busy card): from 32 pending events of an entity on, its features come
-- from a replay of its stored and pending events.  They must equal the
-- fold's values, which the batch path gives, bit for bit: in time order,
-- with equal times, out of time order within the lateness, NULL values,
-- a rolled-back savepoint, and on top of committed events.
--
SET client_min_messages = warning;
CREATE TABLE pd (id int PRIMARY KEY, card text, ts timestamptz, amount float8, device text);
SELECT fraudstream.create_feature('pd_count', 'pd', 'card', 'count', '1 hour');
SELECT fraudstream.create_feature('pd_sum', 'pd', 'card', 'sum', '1 hour', 'amount');
SELECT fraudstream.create_feature('pd_avg', 'pd', 'card', 'avg', '1 hour', 'amount');
SELECT fraudstream.create_feature('pd_min', 'pd', 'card', 'min', '1 hour', 'amount');
SELECT fraudstream.create_feature('pd_max', 'pd', 'card', 'max', '30 minutes', 'amount');
SELECT fraudstream.create_feature('pd_sd', 'pd', 'card', 'stddev', '1 hour', 'amount');
SELECT fraudstream.create_feature('pd_z', 'pd', 'card', 'zscore', '1 day', 'amount');
SELECT fraudstream.create_feature('pd_ratio', 'pd', 'card', 'ratio_to_avg', '1 day', 'amount');
SELECT fraudstream.create_feature('pd_devices', 'pd', 'card', 'distinct', '1 day', 'device');
SELECT fraudstream.create_feature('pd_since', 'pd', 'card', 'since_last', '1 day');
SELECT fraudstream.create_feature('pd_dev_count', 'pd', 'device', 'count', '1 hour');
-- a model that reads every feature and never alerts: the scores keep
-- every row's online features
SELECT fraudstream.deploy_model('pd_m', '{"type": "logistic", "threshold": 1, "bias": -2,
  "weights": {"pd_count": 0.01, "pd_sum": 0.0001, "pd_avg": 0.001, "pd_min": 0.002, "pd_max": 0.0005,
              "pd_sd": 0.003, "pd_z": 0.1, "pd_ratio": 0.2, "pd_devices": 0.05, "pd_since": -0.01,
              "pd_dev_count": 0.02}}');
SELECT fraudstream.activate_model('pd_m', 1);
SELECT fraudstream.attach('pd', 'id', model => 'pd_m');
RESET client_min_messages;

-- Rows: card a pays every 20 s from 3 devices; card b every 20 s from 10
-- devices (more than a distinct summary tracks); unless in_order, every
-- 7th row repeats the time before it, every 11th is 30 s late, every 13th
-- has no amount.
CREATE FUNCTION pd_rows(lo int, hi int, in_order bool DEFAULT false)
RETURNS SETOF pd LANGUAGE sql AS $$
    SELECT i, CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END,
           timestamptz '2026-02-01 00:00+00'
             + (i - CASE WHEN NOT in_order AND i % 7 = 0 THEN 1 ELSE 0 END) * interval '10 seconds'
             - CASE WHEN NOT in_order AND i % 11 = 0 THEN interval '30 seconds' ELSE interval '0' END,
           CASE WHEN NOT in_order AND i % 13 = 0 THEN NULL ELSE ((i * 7919) % 1000) / 10.0 END,
           'd' || CASE WHEN i % 2 = 0 THEN i % 3 ELSE i % 10 END
      FROM generate_series(lo, hi) i
$$;

-- committed history, itself one transaction
INSERT INTO pd SELECT * FROM pd_rows(1, 400) ORDER BY id;
-- a bulk transaction on top, with a savepoint rolled back in the middle
BEGIN;
INSERT INTO pd SELECT * FROM pd_rows(401, 700) ORDER BY id;
SAVEPOINT s;
INSERT INTO pd SELECT * FROM pd_rows(701, 760) ORDER BY id;
ROLLBACK TO SAVEPOINT s;
INSERT INTO pd SELECT * FROM pd_rows(761, 1200) ORDER BY id;
COMMIT;

-- online (what each row got as it was inserted) = batch, bit for bit
SELECT count(*) AS rows_compared,
       count(*) FILTER (WHERE s.features IS DISTINCT FROM h.features) AS differences,
       count(*) FILTER (WHERE (s.features ->> 'pd_count')::int >= 32) AS busy_rows
  FROM fraudstream.scores s
  JOIN fraudstream.feature_history('pd', 'id', 'id') h ON h.key = s.row_key
 WHERE s.relation = 'pd'::regclass;
SELECT count(*) AS rolled_back_rows FROM pd WHERE id BETWEEN 701 AND 760;

-- every one of the 11 weights counts
SELECT count(*) AS scores_off FROM (
SELECT s.id
  FROM fraudstream.scores s,
       LATERAL (SELECT coalesce((s.features->>k)::float8, 0) AS x, w
                  FROM (VALUES ('pd_count', 0.01), ('pd_sum', 0.0001), ('pd_avg', 0.001),
                               ('pd_min', 0.002), ('pd_max', 0.0005), ('pd_sd', 0.003),
                               ('pd_z', 0.1), ('pd_ratio', 0.2), ('pd_devices', 0.05),
                               ('pd_since', -0.01), ('pd_dev_count', 0.02)) v(k, w)) f
 WHERE s.relation = 'pd'::regclass
 GROUP BY s.id, s.score
HAVING abs(s.score - 1 / (1 + exp(-(-2 + sum(f.w * f.x))))) > 1e-12) off;

-- In time order, one session, three transactions of 500 rows (83 minutes,
-- longer than every window but the day's): the session's summaries take
-- its pending events in (no replay), their fronts pass some of them, a
-- savepoint rolls some back, and the next transaction goes on from what
-- the merge stored.
INSERT INTO pd SELECT * FROM pd_rows(1201, 1700, in_order => true) ORDER BY id;
BEGIN;
INSERT INTO pd SELECT * FROM pd_rows(1701, 1900, in_order => true) ORDER BY id;
SAVEPOINT s;
INSERT INTO pd SELECT * FROM pd_rows(1901, 1950, in_order => true) ORDER BY id;
ROLLBACK TO SAVEPOINT s;
INSERT INTO pd SELECT * FROM pd_rows(1951, 2200, in_order => true) ORDER BY id;
COMMIT;
INSERT INTO pd SELECT * FROM pd_rows(2201, 2700, in_order => true) ORDER BY id;
-- a probe two hours past the newest row walks the session's summaries past
-- the hour windows of every pending event: the merge must not store them
BEGIN;
INSERT INTO pd SELECT * FROM pd_rows(2701, 2800, in_order => true) ORDER BY id;
SELECT (fraudstream.feature_values('card', 'a', timestamptz '2026-02-01 10:00+00')
        ->> 'pd_count')::int AS probed_count;
COMMIT;
INSERT INTO pd SELECT * FROM pd_rows(2801, 3000, in_order => true) ORDER BY id;
SELECT count(*) AS rows_compared,
       count(*) FILTER (WHERE s.features IS DISTINCT FROM h.features) AS differences
  FROM fraudstream.scores s
  JOIN fraudstream.feature_history('pd', 'id', 'id') h ON h.key = s.row_key
 WHERE s.relation = 'pd'::regclass AND s.row_key::int > 1200;

-- leave nothing behind for the other tests (the model first: dropping
-- the features it reads would warn)
SET client_min_messages = warning;
DELETE FROM fraudstream.models WHERE name = 'pd_m';
DROP FUNCTION pd_rows;
DROP TABLE pd;
DELETE FROM fraudstream.scores WHERE model = 'pd_m';
RESET client_min_messages;
SELECT count(*) AS attachments_left FROM fraudstream.attachments;
