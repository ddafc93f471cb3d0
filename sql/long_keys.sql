--
-- Entity keys longer than the 24 bytes the state keeps verbatim are kept
-- as a 128-bit hash of their bytes; they must find their entity like any
-- other key: UUIDs as text (36 characters), tokens, long account ids.
--
SET client_min_messages = warning;
CREATE TABLE lk (id int, lk_key text, lk_raw bytea, amount numeric,
                 ts timestamptz DEFAULT '2026-01-01 00:00+00');
SELECT fraudstream.create_feature('lk_count', 'lk', 'lk_key', 'count', '1 hour');
SELECT fraudstream.create_feature('lk_sum', 'lk', 'lk_key', 'sum', '1 hour', 'amount');
SELECT fraudstream.create_feature('lk_raw_count', 'lk', 'lk_raw', 'count', '1 hour');

CREATE TEMP TABLE lengths AS SELECT unnest(ARRAY[10, 24, 25, 36, 100, 3000]) AS n;
-- two rows per key, in two transactions: the second finds the first's state
INSERT INTO lk (id, lk_key, lk_raw, amount) SELECT n, repeat('k', n), convert_to(repeat('r', n), 'UTF8'), n FROM lengths;
INSERT INTO lk (id, lk_key, lk_raw, amount) SELECT n + 10000, repeat('k', n), convert_to(repeat('r', n), 'UTF8'), 1 FROM lengths;
SELECT n,
       fraudstream.feature_values('lk_key', repeat('k', n), '2026-01-01 00:30+00') AS by_text,
       fraudstream.feature_values('lk_raw', '\x' || encode(convert_to(repeat('r', n), 'UTF8'), 'hex'),
                                  '2026-01-01 00:30+00') AS by_bytea
  FROM lengths ORDER BY n;
-- a third row of each, as the trigger sees it: the two stored and itself
SELECT n, fraudstream.row_features('lk', ROW(0, repeat('k', n), NULL, 5, '2026-01-01 00:10+00')::lk) AS row_features
  FROM lengths ORDER BY n;
-- the batch path agrees
SELECT count(*) AS rows_differing
  FROM lk JOIN fraudstream.feature_history('lk', 'id') h ON h.key = lk.id::text
 WHERE (h.features ->> 'lk_count')::int <> (SELECT count(*) FROM lk o WHERE o.lk_key = lk.lk_key AND o.id <= lk.id);
SELECT name, entities FROM fraudstream.features WHERE name LIKE 'lk\_%' ORDER BY name;

SELECT fraudstream.drop_feature(name) FROM fraudstream.feature_definitions WHERE name LIKE 'lk\_%';
DROP TABLE lk;
