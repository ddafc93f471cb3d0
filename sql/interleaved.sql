--
-- Busy entities whose events arrive a little out of time order, as a
-- Kafka source's partitions interleave them: each partition in time
-- order, the partitions one after the other in chunks, commits cutting
-- chunks.  Late events are put in their place in time order, so that
-- running summaries survive them; rows older than an entity's newest
-- stored event read the summaries too (late reads), when every feature
-- of the group is a count, sum, avg, min, max, stddev, zscore or
-- ratio_to_avg.  Online values (the scores keep each row's features) =
-- batch values (feature_history), bit for bit.
--
SET client_min_messages = warning;
CREATE TABLE il (id int PRIMARY KEY, acct text, card text, ts timestamptz, amount float8,
                 device text);
-- accounts: stats only (late reads from summaries)
SELECT fraudstream.create_feature('il_a_count_10m', 'il', 'acct', 'count', '10 minutes');
-- (windows shorter than the disorder, too)
SELECT fraudstream.create_feature('il_a_count_1m', 'il', 'acct', 'count', '1 minute');
SELECT fraudstream.create_feature('il_a_sum_2m', 'il', 'acct', 'sum', '2 minutes', 'amount');
SELECT fraudstream.create_feature('il_a_sum_1h', 'il', 'acct', 'sum', '1 hour', 'amount');
SELECT fraudstream.create_feature('il_a_avg_1h', 'il', 'acct', 'avg', '1 hour', 'amount');
SELECT fraudstream.create_feature('il_a_min_1h', 'il', 'acct', 'min', '1 hour', 'amount');
SELECT fraudstream.create_feature('il_a_max_30m', 'il', 'acct', 'max', '30 minutes', 'amount');
SELECT fraudstream.create_feature('il_a_sd_1h', 'il', 'acct', 'stddev', '1 hour', 'amount');
SELECT fraudstream.create_feature('il_a_z_1d', 'il', 'acct', 'zscore', '1 day', 'amount');
SELECT fraudstream.create_feature('il_a_ratio_1d', 'il', 'acct', 'ratio_to_avg', '1 day', 'amount');
-- cards: stats, distinct and since_last (late reads scan)
SELECT fraudstream.create_feature('il_c_count_1h', 'il', 'card', 'count', '1 hour');
SELECT fraudstream.create_feature('il_c_max_1h', 'il', 'card', 'max', '1 hour', 'amount');
SELECT fraudstream.create_feature('il_c_devices_1h', 'il', 'card', 'distinct', '1 hour', 'device');
SELECT fraudstream.create_feature('il_c_since_1h', 'il', 'card', 'since_last', '1 hour');
-- a model that reads every feature and never alerts
SELECT fraudstream.activate_model('il_m', fraudstream.deploy_model('il_m',
  '{"type": "logistic", "threshold": 1, "bias": -2,
    "weights": {"il_a_count_10m": 0.01, "il_a_count_1m": 0.02, "il_a_sum_2m": 0.0002,
                "il_a_sum_1h": 0.0001, "il_a_avg_1h": 0.001,
                "il_a_min_1h": 0.002, "il_a_max_30m": 0.0005, "il_a_sd_1h": 0.003,
                "il_a_z_1d": 0.1, "il_a_ratio_1d": 0.2, "il_c_count_1h": 0.01,
                "il_c_max_1h": 0.001, "il_c_devices_1h": 0.05, "il_c_since_1h": -0.01}}'));
SELECT fraudstream.attach('il', 'id', model => 'il_m');
RESET client_min_messages;

-- Event n happens at 10 s * n (every 9th at the time before it); it is in
-- partition n % 4; delivery takes chunks of 16 events, partition by
-- partition, so an event arrives up to 150 s after newer ones.  3
-- accounts, 5 cards; every 13th event has no amount.
CREATE FUNCTION il_rows(lo int, hi int) RETURNS SETOF il LANGUAGE sql AS $$
    SELECT d, 'a' || n % 3, 'c' || n % 5,
           timestamptz '2026-02-01 00:00+00' + (n - CASE WHEN n % 9 = 0 THEN 1 ELSE 0 END) * interval '10 seconds',
           CASE WHEN n % 13 = 0 THEN NULL ELSE ((n * 7919) % 1000) / 10.0 + 1 END,
           'd' || n % 7
      FROM (SELECT (c * 16 + p * 4 + k) AS d, c * 16 + k * 4 + p AS n
              FROM generate_series(0, 199) c, generate_series(0, 3) p, generate_series(0, 3) k) s
     WHERE d BETWEEN lo AND hi
$$;

-- 3,200 rows in transactions of 40 (which cut the chunks of 16)
CREATE PROCEDURE il_feed() LANGUAGE plpgsql AS $$
BEGIN
    FOR t IN 0 .. 79 LOOP
        INSERT INTO il SELECT * FROM il_rows(t * 40, t * 40 + 39) ORDER BY id;
        COMMIT;
    END LOOP;
END $$;
CALL il_feed();

-- the accounts kept their summaries through the disorder
SELECT name, entities, late_events, summarised_entities
  FROM fraudstream.features WHERE name IN ('il_a_sum_1h', 'il_c_count_1h') ORDER BY name;

-- online (what each row got as it was inserted) = batch, bit for bit
SELECT count(DISTINCT s.id) AS rows_compared,
       count(*) FILTER (WHERE o.value IS DISTINCT FROM b.value) AS differences,
       count(DISTINCT s.id) FILTER (WHERE i.ts < i.acct_newest) AS rows_older_than_their_account_newest
  FROM fraudstream.scores s
  JOIN (SELECT id, ts, max(ts) OVER (PARTITION BY acct ORDER BY id
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS acct_newest
          FROM il) i ON i.id::text = s.row_key
  JOIN fraudstream.feature_history('il', 'id', 'id') h ON h.key = s.row_key,
       LATERAL jsonb_each_text(h.features) b
  LEFT JOIN LATERAL jsonb_each_text(s.features) o ON o.key = b.key
 WHERE s.relation = 'il'::regclass;

-- One busy account, 2,000 events 0.1 s apart, then late events whose
-- places are 8, 100 and 300 events back (found from the near shift mark,
-- from the far one), and one 600 back, more than an event may move (512):
-- it is stored out of order and the account loses its summaries.  Probes
-- at the newest event and between the late ones (late reads, from the
-- summaries while the account has them) see what the table holds.
SET client_min_messages = warning;
CREATE TABLE il_busy (id int PRIMARY KEY, acct text, ts timestamptz, amount float8);
SELECT fraudstream.create_feature('il_b_count_10m', 'il_busy', 'acct', 'count', '10 minutes');
SELECT fraudstream.create_feature('il_b_sum_10m', 'il_busy', 'acct', 'sum', '10 minutes', 'amount');
CREATE FUNCTION il_busy_at(n float8) RETURNS timestamptz LANGUAGE sql AS
    $$ SELECT timestamptz '2026-02-01 00:00+00' + n * interval '100 ms' $$;
-- state values compared with the table's at four probes, and those that differ
CREATE FUNCTION il_busy_differences(OUT compared bigint, OUT differences bigint) LANGUAGE sql AS $$
    SELECT count(*),
           count(*) FILTER (WHERE f.value::float8 IS DISTINCT FROM
                                  CASE f.key WHEN 'il_b_count_10m' THEN b.count_10m ELSE b.sum_10m END)
      FROM (VALUES (2000), (1950), (1800), (1500)) t(n),
           LATERAL jsonb_each_text(fraudstream.feature_values('acct', 'busy', il_busy_at(t.n))) f,
           LATERAL (SELECT count(*) AS count_10m, sum(amount) AS sum_10m FROM il_busy
                     WHERE ts > il_busy_at(t.n) - interval '10 minutes' AND ts <= il_busy_at(t.n)) b
     WHERE f.key LIKE 'il_b_%'
$$;
RESET client_min_messages;
INSERT INTO il_busy SELECT n, 'busy', il_busy_at(n), n % 97 FROM generate_series(1, 2000) n;
INSERT INTO il_busy VALUES (2001, 'busy', il_busy_at(1992.5), 1000);
INSERT INTO il_busy VALUES (2002, 'busy', il_busy_at(1900.5), 2000);
INSERT INTO il_busy VALUES (2003, 'busy', il_busy_at(1700.5), 3000);
SELECT *, (SELECT summarised_entities FROM fraudstream.features WHERE name = 'il_b_sum_10m')
  FROM il_busy_differences();
INSERT INTO il_busy VALUES (2004, 'busy', il_busy_at(1400.5), 4000);
SELECT *, (SELECT summarised_entities FROM fraudstream.features WHERE name = 'il_b_sum_10m')
  FROM il_busy_differences();

-- leave nothing behind for the other tests (the model first: dropping
-- the features it reads would warn)
SET client_min_messages = warning;
DELETE FROM fraudstream.models WHERE name = 'il_m';
DROP FUNCTION il_busy_differences;
DROP FUNCTION il_busy_at;
DROP TABLE il_busy;
DROP PROCEDURE il_feed;
DROP FUNCTION il_rows;
DROP TABLE il;
DELETE FROM fraudstream.scores WHERE model = 'il_m';
RESET client_min_messages;
SELECT count(*) AS attachments_left FROM fraudstream.attachments;
