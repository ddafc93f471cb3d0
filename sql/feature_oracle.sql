--
-- The online path (row_features before each insert, committing every 500
-- rows), the batch path (feature_history, and feature_vectors by the
-- positions of feature_names) and a plain-SQL computation of
-- each feature's definition agree on 20,000 generated events of 500
-- entities, with bursts, equal timestamps, events out of order within
-- max_lateness, events later than it, and NULL values.
--
-- Tolerance: |a - b| <= 1e-9 * max(1, |b|); NULL only where NULL.
--
SET client_min_messages = warning;
SELECT setseed(0.17);

CREATE TABLE ev (
    id      bigint PRIMARY KEY,
    card    text,
    ts      timestamptz,
    amount  numeric(12,2),
    device  text,
    lat     float8,
    lon     float8
);

-- Cities to travel between.
CREATE TEMP TABLE city (n int, lat float8, lon float8);
INSERT INTO city VALUES (0, 48.8566, 2.3522), (1, 51.5074, -0.1278),
    (2, 40.7128, -74.0060), (3, 35.6762, 139.6503), (4, 52.5200, 13.4050);

CREATE TEMP TABLE gen AS
SELECT i AS id,
       'card' || CASE WHEN r1 < 0.2 THEN floor(r2 * 20)::int
                      ELSE floor(r2 * 500)::int END AS card,
       CASE WHEN r3 < 0.005 THEN base - interval '2 hours'          -- late
            WHEN r3 < 0.105 THEN base - r4 * interval '240 seconds'  -- out of order
            WHEN r3 < 0.205 THEN date_trunc('minute', base)          -- equal times
            ELSE base END AS ts,
       CASE WHEN r5 < 0.05 THEN NULL
            ELSE round((exp(r6 * 6) + CASE WHEN r6 > 0.98 THEN 5000 ELSE 0 END)::numeric, 2)
       END AS amount,
       CASE WHEN r7 < 0.05 THEN NULL ELSE 'dev' || floor(r8 * 4)::int END AS device,
       floor(r9 * 5)::int AS city_n,
       r10 < 0.03 AS no_position
  FROM (SELECT i,
               timestamptz '2026-01-01 00:00:00+00' + i * interval '6 seconds' AS base,
               random() AS r1, random() AS r2, random() AS r3, random() AS r4,
               random() AS r5, random() AS r6, random() AS r7, random() AS r8,
               random() AS r9, random() AS r10
          FROM generate_series(1, 20000) i) s;

SELECT fraudstream.create_feature('o_cnt_10m', 'ev', 'card', 'count', '10 minutes');
SELECT fraudstream.create_feature('o_cnt_1h', 'ev', 'card', 'count', '1 hour');
SELECT fraudstream.create_feature('o_cntv_1h', 'ev', 'card', 'count', '1 hour', 'amount');
SELECT fraudstream.create_feature('o_sum_1h', 'ev', 'card', 'sum', '1 hour', 'amount');
SELECT fraudstream.create_feature('o_avg_1h', 'ev', 'card', 'avg', '1 hour', 'amount');
SELECT fraudstream.create_feature('o_min_1h', 'ev', 'card', 'min', '1 hour', 'amount');
SELECT fraudstream.create_feature('o_max_1h', 'ev', 'card', 'max', '1 hour', 'amount');
SELECT fraudstream.create_feature('o_sd_1h', 'ev', 'card', 'stddev', '1 hour', 'amount');
SELECT fraudstream.create_feature('o_z_1d', 'ev', 'card', 'zscore', '1 day', 'amount');
SELECT fraudstream.create_feature('o_ratio_1d', 'ev', 'card', 'ratio_to_avg', '1 day', 'amount');
SELECT fraudstream.create_feature('o_dev_1h', 'ev', 'card', 'distinct', '1 hour', 'device');
SELECT fraudstream.create_feature('o_since_1d', 'ev', 'card', 'since_last', '1 day');
SELECT fraudstream.create_feature('o_geo_1d', 'ev', 'card', 'geo_velocity', '1 day');
SELECT fraudstream.create_feature('o_devcnt_1h', 'ev', 'device', 'count', '1 hour');

-- Online: the features each row gets as it arrives.
CREATE TABLE online_values (id bigint PRIMARY KEY, f jsonb);
DO $$
DECLARE
    g record;
    r ev;
    n int := 0;
BEGIN
    FOR g IN SELECT gen.*, city.lat AS clat, city.lon AS clon
               FROM gen JOIN city ON city.n = gen.city_n ORDER BY id LOOP
        r := ROW(g.id, g.card, g.ts, g.amount, g.device,
                 CASE WHEN g.no_position THEN NULL ELSE g.clat END,
                 CASE WHEN g.no_position THEN NULL ELSE g.clon END)::ev;
        INSERT INTO online_values VALUES (r.id, fraudstream.row_features('ev', r));
        INSERT INTO ev VALUES (r.*);
        n := n + 1;
        IF n % 500 = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
END
$$;

SELECT count(*) AS events, count(DISTINCT card) AS cards,
       count(*) FILTER (WHERE amount IS NULL) > 0 AS has_null_amounts,
       count(*) - count(DISTINCT (card, ts)) > 0 AS has_equal_times
  FROM ev;

-- Batch.
CREATE TABLE batch_values AS
    SELECT key::bigint AS id, features AS f
      FROM fraudstream.feature_history('ev', 'id', 'id');
CREATE TABLE vector_values AS
    SELECT key::bigint AS id, jsonb_object_agg(n.name, v.features[n.i]) AS f
      FROM fraudstream.feature_vectors('ev', 'id', 'id') v
     CROSS JOIN unnest(fraudstream.feature_names('ev')) WITH ORDINALITY n(name, i)
     GROUP BY key;

-- Plain SQL: "others" are the entity's earlier arrivals that were not late,
-- within the window; late = more than 5 minutes (max_lateness) behind the
-- newest earlier arrival; a late event has no features.
CREATE TABLE ev_late AS
    SELECT ev.*,
           coalesce(ts < max(ts) OVER (PARTITION BY card ORDER BY id
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                         - interval '5 minutes', false) AS late,
           coalesce(ts < max(ts) OVER (PARTITION BY device ORDER BY id
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                         - interval '5 minutes', false) AS device_late
      FROM ev;
CREATE INDEX ON ev_late (card, id);
CREATE INDEX ON ev_late (device, id);
ANALYZE ev_late;

CREATE FUNCTION haversine_km(lat1 float8, lon1 float8, lat2 float8, lon2 float8)
RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
    SELECT 2 * 6371.0088 * asin(least(1.0, sqrt(
        sin(radians(lat2 - lat1) / 2) ^ 2 +
        cos(radians(lat1)) * cos(radians(lat2)) * sin(radians(lon2 - lon1) / 2) ^ 2)))
$$;

CREATE TABLE sql_values AS
SELECT e.id, jsonb_build_object(
    'o_cnt_10m', 1 + (SELECT count(*) FROM ev_late o WHERE o.card = e.card AND o.id < e.id
                        AND NOT o.late AND o.ts > e.ts - interval '10 minutes' AND o.ts <= e.ts),
    'o_cnt_1h', 1 + w1.n,
    'o_cntv_1h', w1.nv + (e.amount IS NOT NULL)::int,
    'o_sum_1h', a1.s, 'o_avg_1h', a1.a, 'o_min_1h', a1.mn, 'o_max_1h', a1.mx, 'o_sd_1h', a1.sd,
    'o_z_1d', CASE WHEN e.amount IS NOT NULL AND d1.n >= 2 AND d1.sd > 0
                   THEN (e.amount - d1.a) / d1.sd END,
    'o_ratio_1d', CASE WHEN e.amount IS NOT NULL AND d1.a <> 0 THEN e.amount / d1.a END,
    'o_dev_1h', (SELECT count(DISTINCT v) FROM (
                    SELECT o.device AS v FROM ev_late o WHERE o.card = e.card AND o.id < e.id
                       AND NOT o.late AND o.ts > e.ts - interval '1 hour' AND o.ts <= e.ts
                    UNION ALL SELECT e.device) x),
    'o_since_1d', (SELECT extract(epoch FROM e.ts - max(o.ts))::float8 FROM ev_late o
                    WHERE o.card = e.card AND o.id < e.id AND NOT o.late
                      AND o.ts > e.ts - interval '1 day' AND o.ts <= e.ts),
    'o_geo_1d', (SELECT haversine_km(p.lat, p.lon, e.lat, e.lon)
                        / (greatest(extract(epoch FROM e.ts - p.ts)::float8, 1) / 3600)
                   FROM (SELECT o.lat, o.lon, o.ts FROM ev_late o
                          WHERE o.card = e.card AND o.id < e.id AND NOT o.late
                            AND o.ts > e.ts - interval '1 day' AND o.ts <= e.ts
                            AND o.lat IS NOT NULL AND o.lon IS NOT NULL
                          ORDER BY o.ts DESC, o.id DESC LIMIT 1) p
                  WHERE e.lat IS NOT NULL AND e.lon IS NOT NULL),
    'o_devcnt_1h', CASE WHEN e.device IS NOT NULL AND NOT e.device_late THEN
                    1 + (SELECT count(*) FROM ev_late o WHERE o.device = e.device AND o.id < e.id
                        AND NOT o.device_late AND o.ts > e.ts - interval '1 hour' AND o.ts <= e.ts)
                   END)
    || CASE WHEN e.late THEN (SELECT jsonb_object_agg(name, NULL)
                                FROM fraudstream.feature_definitions
                               WHERE entity_column = 'card')
            ELSE '{}' END AS f
  FROM ev_late e
  CROSS JOIN LATERAL (SELECT count(*) AS n, count(o.amount) AS nv FROM ev_late o
                       WHERE o.card = e.card AND o.id < e.id AND NOT o.late
                         AND o.ts > e.ts - interval '1 hour' AND o.ts <= e.ts) w1
  CROSS JOIN LATERAL (SELECT sum(v) AS s, avg(v) AS a, min(v) AS mn, max(v) AS mx,
                             stddev_samp(v::float8) AS sd FROM (
                        SELECT o.amount AS v FROM ev_late o WHERE o.card = e.card AND o.id < e.id
                           AND NOT o.late AND o.ts > e.ts - interval '1 hour' AND o.ts <= e.ts
                        UNION ALL SELECT e.amount) x) a1
  CROSS JOIN LATERAL (SELECT count(o.amount) AS n, avg(o.amount) AS a,
                             stddev_samp(o.amount::float8) AS sd FROM ev_late o
                       WHERE o.card = e.card AND o.id < e.id AND NOT o.late
                         AND o.ts > e.ts - interval '1 day' AND o.ts <= e.ts) d1;

-- Compare, feature by feature.
CREATE FUNCTION same(a jsonb, b jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN a IS NULL OR a = 'null' THEN b IS NULL OR b = 'null'
                WHEN b IS NULL OR b = 'null' THEN false
                ELSE abs(a::text::float8 - b::text::float8)
                     <= 1e-9 * greatest(1, abs(b::text::float8)) END
$$;

SELECT k AS feature,
       count(*) AS compared,
       count(*) FILTER (WHERE NOT same(o.f -> k, s.f -> k)) AS online_mismatches,
       count(*) FILTER (WHERE NOT same(b.f -> k, s.f -> k)) AS batch_mismatches,
       count(*) FILTER (WHERE NOT same(v.f -> k, s.f -> k)) AS vector_mismatches,
       count(*) FILTER (WHERE s.f -> k <> 'null') AS non_null
  FROM sql_values s
  JOIN online_values o USING (id)
  JOIN batch_values b USING (id)
  JOIN vector_values v USING (id)
  CROSS JOIN LATERAL jsonb_object_keys(s.f) k
 GROUP BY k ORDER BY k;

-- the batch path gives the online values bit for bit
SELECT count(*) AS rows_compared,
       count(*) FILTER (WHERE o.f IS DISTINCT FROM b.f) AS online_batch_differences
  FROM online_values o JOIN batch_values b USING (id);

-- late events were counted, not stored
SELECT sum(late_events) > 0 AS late_counted FROM fraudstream.features
 WHERE name = 'o_cnt_1h';

-- busy cards were served by running summaries, not only by scans
SELECT summarised_entities > 0 AS summaries_used FROM fraudstream.features
 WHERE name = 'o_cnt_1h';
