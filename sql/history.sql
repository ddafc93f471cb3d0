--
-- The batch path: feature_history (jsonb), feature_vectors (float8[]) and
-- feature_names; arrival order, late and out-of-order events, the sliding
-- windows against plain SQL, partitioned and inherited sources, row-level
-- security, keys as text, errors.
--
SET client_min_messages = warning;

CREATE TABLE pay (
    id      int PRIMARY KEY,
    card    text,
    ts      timestamptz,
    amount  numeric,
    seq     int,
    device  text
);
SELECT fraudstream.create_feature('p_count', 'pay', 'card', 'count', '1 hour');
SELECT fraudstream.create_feature('p_sum', 'pay', 'card', 'sum', '1 hour', 'amount');
SELECT fraudstream.create_feature('p_max', 'pay', 'card', 'max', '30 minutes', 'amount');
SELECT fraudstream.create_feature('p_min', 'pay', 'card', 'min', '1 hour', 'amount');
SELECT fraudstream.create_feature('p_sd', 'pay', 'card', 'stddev', '1 hour', 'amount');
SELECT fraudstream.create_feature('p_since', 'pay', 'card', 'since_last', '1 hour');
SELECT fraudstream.create_feature('d_count', 'pay', 'device', 'count', '1 hour');

-- the order of the vectors: by name
SELECT fraudstream.feature_names('pay');

-- seq is the arrival order: row 5 arrives 2 minutes behind c1's newest
-- event (out of order, counted), row 6 an hour behind (late: no
-- features), row 7 has no card, row 8 no arrival position (last)
INSERT INTO pay VALUES
    (1, 'c1', '2026-03-01 10:00+00', 10,   1, 'd1'),
    (2, 'c1', '2026-03-01 10:10+00', 20,   2, 'd1'),
    (3, 'c2', '2026-03-01 10:15+00', 500,  3, 'd2'),
    (4, 'c1', '2026-03-01 10:40+00', 30,   4, NULL),
    (5, 'c1', '2026-03-01 10:38+00', NULL, 5, 'd1'),
    (6, 'c1', '2026-03-01 09:40+00', 99,   6, 'd2'),
    (7, NULL, '2026-03-01 10:50+00', 5,    7, 'd1'),
    (8, 'c1', '2026-03-01 11:20+00', 40,   NULL, 'd1');

SELECT key, features FROM fraudstream.feature_history('pay', 'id', 'seq') ORDER BY key::int;
SELECT key, features FROM fraudstream.feature_vectors('pay', 'id', 'seq') ORDER BY key::int;

-- by default, the arrival order is the event time: nothing is late
SELECT key, features FROM fraudstream.feature_vectors('pay', 'id') ORDER BY key::int;

-- the two forms hold the same values
SELECT count(*) AS compared,
       count(*) FILTER (WHERE ((h.features -> n.name) = 'null') <> (v.features[n.i] IS NULL)
                           OR (h.features ->> n.name)::float8 <> v.features[n.i]) AS mismatches
  FROM fraudstream.feature_history('pay', 'id', 'seq') h
  JOIN fraudstream.feature_vectors('pay', 'id', 'seq') v USING (key)
 CROSS JOIN unnest(fraudstream.feature_names('pay')) WITH ORDINALITY n(name, i);

-- an order column of any ordered type: text sorts by its collation
ALTER TABLE pay ADD COLUMN seq_text text COLLATE "C";
UPDATE pay SET seq_text = to_char(seq, 'FM000');
SELECT count(*) AS differing FROM (
    (SELECT * FROM fraudstream.feature_vectors('pay', 'id', 'seq_text')
     EXCEPT SELECT * FROM fraudstream.feature_vectors('pay', 'id', 'seq'))
    UNION ALL
    (SELECT * FROM fraudstream.feature_vectors('pay', 'id', 'seq')
     EXCEPT SELECT * FROM fraudstream.feature_vectors('pay', 'id', 'seq_text'))) d;

-- keys come out as key_column::text does it
ALTER TABLE pay ADD COLUMN flag boolean, ADD COLUMN code char(4);
UPDATE pay SET flag = id % 2 = 0, code = 'k' || id;
SELECT DISTINCT key FROM fraudstream.feature_vectors('pay', 'flag', 'seq') ORDER BY 1;
SELECT key, length(key) FROM fraudstream.feature_vectors('pay', 'code', 'seq') ORDER BY 1 LIMIT 2;

-- Sliding windows against plain SQL, on events in time order: 40 cards,
-- random amounts, one card with a constant amount (stddev 0: computed
-- exactly), one with an outlier leaving its windows, NULL amounts.
SELECT setseed(0.42);
CREATE TABLE slide (id int PRIMARY KEY, card text, ts timestamptz, amount float8);
SELECT fraudstream.create_feature('s_count', 'slide', 'card', 'count', '1 hour');
SELECT fraudstream.create_feature('s_countv', 'slide', 'card', 'count', '1 hour', 'amount');
SELECT fraudstream.create_feature('s_sum', 'slide', 'card', 'sum', '1 hour', 'amount');
SELECT fraudstream.create_feature('s_avg', 'slide', 'card', 'avg', '1 hour', 'amount');
SELECT fraudstream.create_feature('s_sd', 'slide', 'card', 'stddev', '1 hour', 'amount');
SELECT fraudstream.create_feature('s_min', 'slide', 'card', 'min', '20 minutes', 'amount');
SELECT fraudstream.create_feature('s_max', 'slide', 'card', 'max', '20 minutes', 'amount');
SELECT fraudstream.create_feature('s_since', 'slide', 'card', 'since_last', '10 minutes');
INSERT INTO slide
SELECT i, 'card' || (i % 40),
       timestamptz '2026-03-01 00:00+00' + i * interval '7 seconds',
       CASE WHEN i % 40 = 0 THEN 25.5
            WHEN i % 40 = 1 AND i = 4001 THEN 1e9
            WHEN random() < 0.05 THEN NULL
            ELSE round((random() * 1000)::numeric, 2)::float8 END
  FROM generate_series(1, 12000) i;

WITH sql AS (
    SELECT id,
           count(*) OVER h AS c, count(amount) OVER h AS cv, sum(amount) OVER h AS s,
           avg(amount) OVER h AS a, stddev_samp(amount) OVER h AS sd,
           min(amount) OVER m AS mn, max(amount) OVER m AS mx,
           extract(epoch FROM ts - lag(ts) OVER (PARTITION BY card ORDER BY ts)) AS gap
      FROM slide
    WINDOW h AS (PARTITION BY card ORDER BY ts RANGE BETWEEN '1 hour' PRECEDING AND CURRENT ROW),
           m AS (PARTITION BY card ORDER BY ts RANGE BETWEEN '20 minutes' PRECEDING AND CURRENT ROW)),
names AS (SELECT fraudstream.feature_names('slide') AS n),
batch AS (
    SELECT key::int AS id,
           features[array_position(n, 's_count')] AS c, features[array_position(n, 's_countv')] AS cv,
           features[array_position(n, 's_sum')] AS s, features[array_position(n, 's_avg')] AS a,
           features[array_position(n, 's_sd')] AS sd, features[array_position(n, 's_min')] AS mn,
           features[array_position(n, 's_max')] AS mx, features[array_position(n, 's_since')] AS since
      FROM fraudstream.feature_vectors('slide', 'id'), names)
SELECT count(*) AS compared,
       count(*) FILTER (WHERE b.c <> q.c OR b.cv <> q.cv) AS count_mismatches,
       count(*) FILTER (WHERE NOT coalesce(abs(b.s - q.s) <= 1e-9 * greatest(1, abs(q.s)), b.s IS NULL AND q.s IS NULL)
                           OR NOT coalesce(abs(b.a - q.a) <= 1e-9 * greatest(1, abs(q.a)), b.a IS NULL AND q.a IS NULL)
                           OR NOT coalesce(abs(b.sd - q.sd) <= 1e-9 * greatest(1, abs(q.sd)), b.sd IS NULL AND q.sd IS NULL))
           AS moment_mismatches,
       count(*) FILTER (WHERE b.mn IS DISTINCT FROM q.mn OR b.mx IS DISTINCT FROM q.mx) AS minmax_mismatches,
       count(*) FILTER (WHERE b.since IS DISTINCT FROM (CASE WHEN q.gap < 600 THEN q.gap END)) AS since_mismatches,
       count(*) FILTER (WHERE q.sd = 0) > 0 AS has_zero_stddev
  FROM sql q JOIN batch b USING (id);

-- Two groups with the same features on the same events, out of time
-- order, late and at equal times: group "card" also has a distinct
-- feature, so its running summaries have another layout, and they must
-- agree bit for bit (double-double sums do not depend on the order of
-- additions and removals, nor on summaries against scans).
CREATE TABLE mix (id int PRIMARY KEY, card text, card2 text, ts timestamptz, amount float8, device text);
SELECT count(fraudstream.create_feature(g || '_' || a || '_' || tag, 'mix', g, a, len,
                                        CASE WHEN a IN ('count', 'since_last') THEN NULL ELSE 'amount' END))
  FROM unnest(ARRAY['card', 'card2']) g,
       unnest(ARRAY['count', 'sum', 'avg', 'min', 'max', 'stddev', 'zscore', 'ratio_to_avg', 'since_last']) a,
       unnest(ARRAY[interval '10 minutes', interval '1 hour'], ARRAY['10m', '1h']) w(len, tag);
SELECT fraudstream.create_feature('card_distinct', 'mix', 'card', 'distinct', '1 hour', 'device');
INSERT INTO mix
SELECT i, card, card, ts, amount, 'dev' || (i % 3)
  FROM (SELECT i, 'card' || (i % 30) AS card,
               CASE WHEN r < 0.005 THEN base - interval '2 hours'
                    WHEN r < 0.015 THEN base - random() * interval '240 seconds'
                    WHEN r < 0.115 THEN date_trunc('minute', base)
                    ELSE base END AS ts,
               CASE WHEN i % 30 = 0 THEN 25.5
                    WHEN i = 3001 THEN 1e9
                    WHEN random() < 0.05 THEN NULL
                    ELSE round((random() * 1000)::numeric, 2)::float8 END AS amount
          FROM (SELECT i, random() AS r,
                       timestamptz '2026-03-01 00:00+00' + i * interval '5 seconds' AS base
                  FROM generate_series(1, 6000) i) s) t;
WITH v AS (SELECT key, features, fraudstream.feature_names('mix') AS n
             FROM fraudstream.feature_vectors('mix', 'id', 'id'))
SELECT count(*) AS compared,
       count(*) FILTER (WHERE card_value IS DISTINCT FROM card2_value) AS mismatches,
       count(*) FILTER (WHERE card_value IS NOT NULL) AS non_null
  FROM (SELECT features[i] AS card_value, features[array_position(n, 'card2' || substr(name, 5))] AS card2_value
          FROM v CROSS JOIN unnest(n) WITH ORDINALITY u(name, i)
         WHERE name LIKE 'card\_%' AND name <> 'card_distinct') c;

-- The same on one busy entity whose windows grow to 5,000 values, with an
-- outlier among them: sums slide without error.
TRUNCATE mix;
INSERT INTO mix
SELECT i, 'hot', 'hot', timestamptz '2026-03-01 00:00+00' + i * interval '10 ms',
       CASE WHEN i = 2000 THEN 1e9 ELSE 1000 + round((random() * 100)::numeric, 2)::float8 END,
       'dev' || (i % 3)
  FROM generate_series(1, 5000) i;
WITH v AS (SELECT key, features, fraudstream.feature_names('mix') AS n
             FROM fraudstream.feature_vectors('mix', 'id', 'id'))
SELECT count(*) AS compared,
       count(*) FILTER (WHERE card_value IS DISTINCT FROM card2_value) AS mismatches
  FROM (SELECT features[i] AS card_value, features[array_position(n, 'card2' || substr(name, 5))] AS card2_value
          FROM v CROSS JOIN unnest(n) WITH ORDINALITY u(name, i)
         WHERE name LIKE 'card\_%' AND name <> 'card_distinct') c;

-- A partitioned source (partitions numbering their columns differently)
-- and an inherited one give the rows of every leaf.
CREATE TABLE ppay (card text, ts timestamptz, amount numeric, id int) PARTITION BY RANGE (ts);
CREATE TABLE ppay_1 PARTITION OF ppay FOR VALUES FROM ('2026-03-01') TO ('2026-03-01 10:30+00');
CREATE TABLE ppay_2 (dropped int, id int, amount numeric, ts timestamptz, card text);
ALTER TABLE ppay_2 DROP COLUMN dropped;
ALTER TABLE ppay ATTACH PARTITION ppay_2 FOR VALUES FROM ('2026-03-01 10:30+00') TO ('2026-03-02');
SELECT fraudstream.create_feature('pp_sum', 'ppay', 'card', 'sum', '1 hour', 'amount');
INSERT INTO ppay SELECT card, ts, amount, id FROM pay WHERE card IS NOT NULL;
SELECT key, features FROM fraudstream.feature_vectors('ppay', 'id') ORDER BY key::int;

CREATE TABLE pay_archive () INHERITS (pay);
INSERT INTO pay_archive (id, card, ts, amount, seq, device) VALUES (9, 'c1', '2026-03-01 10:45+00', 1000, 9, 'd9');
SELECT key, features FROM fraudstream.feature_history('pay', 'id', 'seq') WHERE key::int >= 8 ORDER BY key::int;

-- Row-level security applies: a reader sees the features of its rows,
-- computed from its rows only.
CREATE ROLE fs_batch_reader;
GRANT USAGE ON SCHEMA fraudstream TO fs_batch_reader;
GRANT SELECT ON pay TO fs_batch_reader;
ALTER TABLE pay ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_c1 ON pay FOR SELECT TO fs_batch_reader USING (card = 'c1' AND id < 4);
SET ROLE fs_batch_reader;
SELECT key, features FROM fraudstream.feature_vectors('pay', 'id', 'seq') ORDER BY key::int;
RESET ROLE;
ALTER TABLE pay DISABLE ROW LEVEL SECURITY;

-- errors
SELECT * FROM fraudstream.feature_vectors('pay', NULL);
SELECT * FROM fraudstream.feature_vectors(NULL, 'id');
SELECT * FROM fraudstream.feature_vectors('pay', 'no_such');
SELECT * FROM fraudstream.feature_vectors('pay', 'id', 'no_such');
SELECT * FROM fraudstream.feature_vectors('pay', 'ctid');
ALTER TABLE pay ADD COLUMN doc json;
SELECT * FROM fraudstream.feature_vectors('pay', 'id', 'doc');
CREATE TABLE plain (id int);
SELECT * FROM fraudstream.feature_vectors('plain', 'id');
SELECT fraudstream.feature_names('plain');

DROP TABLE pay, ppay, slide, mix, plain CASCADE;
REVOKE USAGE ON SCHEMA fraudstream FROM fs_batch_reader;
DROP ROLE fs_batch_reader;
