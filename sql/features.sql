--
-- Feature definitions: the SQL surface, its errors, and what feeds the
-- state (INSERT, multi-row INSERT, COPY, savepoints, TRUNCATE).
--
CREATE TABLE txn (
    id      bigserial PRIMARY KEY,
    card    text,
    account bigint,
    ts      timestamptz,
    amount  numeric(12,2),
    device  text,
    lat     float8,
    lon     float8,
    pos     point
);

SELECT fraudstream.create_feature('card_count_1h', 'txn', 'card', 'count', '1 hour');
SELECT fraudstream.create_feature('card_amount_1h', 'txn', 'card', 'sum', '1 hour',
                                  value_column => 'amount');
SELECT fraudstream.create_feature('card_devices_1d', 'txn', 'card', 'distinct', '1 day', 'device');
SELECT fraudstream.create_feature('card_speed_1d', 'txn', 'card', 'geo_velocity', '1 day');
SELECT fraudstream.create_feature('card_since_1d', 'txn', 'card', 'since_last', '1 day');
SELECT fraudstream.create_feature('account_max_1d', 'txn', 'account', 'max', '1 day', 'amount');

SELECT name, source, entity_column, time_column, agg, window_length, value_column,
       lat_column, lon_column, status
  FROM fraudstream.features ORDER BY name;

-- errors
SELECT fraudstream.create_feature('card_count_1h', 'txn', 'card', 'count', '1 hour');
SELECT fraudstream.create_feature('Bad-Name', 'txn', 'card', 'count', '1 hour');
SELECT fraudstream.create_feature('f', 'txn', 'card', 'median', '1 hour');
SELECT fraudstream.create_feature('f', 'txn', 'no_such', 'count', '1 hour');
SELECT fraudstream.create_feature('f', 'txn', 'amount', 'count', '1 hour');
SELECT fraudstream.create_feature('f', 'txn', 'card', 'sum', '1 hour');
SELECT fraudstream.create_feature('f', 'txn', 'card', 'sum', '1 hour', 'device');
SELECT fraudstream.create_feature('f', 'txn', 'card', 'distinct', '1 hour', 'pos');
SELECT fraudstream.create_feature('f', 'txn', 'card', 'sum', '1 hour', 'no_such');
SELECT fraudstream.create_feature('f', 'txn', 'card', 'count', '0 seconds');
SELECT fraudstream.create_feature('f', 'txn', 'card', 'count', '-1 hour');
SELECT fraudstream.create_feature('f', 'txn', 'card', 'count', '1 month');
SELECT fraudstream.create_feature('f', 'txn', 'card', 'since_last', '1 hour', 'amount');
SELECT fraudstream.create_feature('f', 'txn', 'card', 'geo_velocity', '1 hour', 'amount');
SELECT fraudstream.create_feature('f', 'txn', 'card', 'avg', '1 hour', 'amount', lat_column => 'lat');
SELECT fraudstream.create_feature('f', 'txn', 'card', 'count', '1 hour', time_column => 'card');
SELECT fraudstream.create_feature('f', 'txn', 'card', 'count', NULL);
CREATE VIEW txn_view AS SELECT * FROM txn;
SELECT fraudstream.create_feature('f', 'txn_view', 'card', 'count', '1 hour');
CREATE TABLE two_times (k text, a timestamptz, b timestamptz);
SELECT fraudstream.create_feature('f', 'two_times', 'k', 'count', '1 hour');
SELECT fraudstream.create_feature('f', 'two_times', 'k', 'count', '1 hour', time_column => 'b');
CREATE TABLE with_generated (k text, ts timestamptz, kind text,
    failed int GENERATED ALWAYS AS (CASE WHEN kind = 'failed' THEN 1 END) STORED);
SELECT fraudstream.create_feature('f', 'with_generated', 'k', 'count', '1 hour', 'failed');
DROP TABLE with_generated;
SELECT fraudstream.drop_feature('f');
SELECT fraudstream.drop_feature('no_such_feature');

-- every way of inserting feeds the state
INSERT INTO txn (card, account, ts, amount, device, lat, lon) VALUES
    ('c1', 1, '2026-03-01 10:00:00+00', 10.00, 'd1', 48.8566, 2.3522);
INSERT INTO txn (card, account, ts, amount, device, lat, lon) VALUES
    ('c1', 1, '2026-03-01 10:10:00+00', 20.00, 'd2', 48.8566, 2.3522),
    ('c2', 1, '2026-03-01 10:15:00+00', 500.00, 'd9', 40.7128, -74.0060);
COPY txn (card, account, ts, amount, device, lat, lon) FROM stdin;
c1	1	2026-03-01 10:20:00+00	30.00	d1	51.5074	-0.1278
c1	2	2026-03-01 10:25:00+00	\N	\N	\N	\N
\.
SELECT fraudstream.feature_values('card', 'c1', '2026-03-01 10:30:00+00');
SELECT fraudstream.feature_values('account', '1', '2026-03-01 10:30:00+00');
-- the window is (at - 1 hour, at]
SELECT fraudstream.feature_values('card', 'c1', '2026-03-01 11:10:00+00') -> 'card_count_1h';
SELECT fraudstream.feature_values('card', 'c1', '2026-03-01 11:09:59+00') -> 'card_count_1h';
-- a card without events
SELECT fraudstream.feature_values('card', 'nobody', '2026-03-01 10:30:00+00');

-- what a new row would get, without inserting it
SELECT fraudstream.row_features('txn',
    ROW(0, 'c1', 1, '2026-03-01 10:26:00+00', 70.00, 'd3', 48.8566, 2.3522, NULL)::txn);

-- a rolled-back savepoint takes its events with it; the transaction sees its own
BEGIN;
INSERT INTO txn (card, ts, amount) VALUES ('c1', '2026-03-01 10:27:00+00', 1.00);
SAVEPOINT s;
INSERT INTO txn (card, ts, amount) VALUES ('c1', '2026-03-01 10:28:00+00', 1000.00);
SELECT fraudstream.feature_values('card', 'c1', '2026-03-01 10:30:00+00') -> 'card_amount_1h';
ROLLBACK TO SAVEPOINT s;
SELECT fraudstream.feature_values('card', 'c1', '2026-03-01 10:30:00+00') -> 'card_amount_1h';
ROLLBACK;
SELECT fraudstream.feature_values('card', 'c1', '2026-03-01 10:30:00+00') -> 'card_amount_1h';

-- savepoints nest: a released savepoint's events go with its parent's,
-- rolled back with them, and a later savepoint's rollback leaves them
-- (ids given: the serial of the rows after does not move)
BEGIN;
SAVEPOINT a;
INSERT INTO txn (id, card, ts, amount) VALUES (1001, 'c1', '2026-03-01 10:27:00+00', 1.00);
SAVEPOINT b;
INSERT INTO txn (id, card, ts, amount) VALUES (1002, 'c1', '2026-03-01 10:28:00+00', 2.00);
RELEASE SAVEPOINT b;
SELECT fraudstream.feature_values('card', 'c1', '2026-03-01 10:30:00+00') -> 'card_count_1h';
ROLLBACK TO SAVEPOINT a;
SELECT fraudstream.feature_values('card', 'c1', '2026-03-01 10:30:00+00') -> 'card_count_1h';
INSERT INTO txn (id, card, ts, amount) VALUES (1003, 'c1', '2026-03-01 10:27:00+00', 3.00);
RELEASE SAVEPOINT a;
SAVEPOINT c;
INSERT INTO txn (id, card, ts, amount) VALUES (1004, 'c1', '2026-03-01 10:28:00+00', 4.00);
SAVEPOINT d;
INSERT INTO txn (id, card, ts, amount) VALUES (1005, 'c1', '2026-03-01 10:29:00+00', 5.00);
ROLLBACK TO SAVEPOINT c;
SELECT fraudstream.feature_values('card', 'c1', '2026-03-01 10:30:00+00') -> 'card_count_1h';
ROLLBACK;

-- rows without an entity or a time are no events
INSERT INTO txn (card, ts, amount) VALUES (NULL, '2026-03-01 10:29:00+00', 5.00),
                                          ('c1', NULL, 5.00);
SELECT name, entities, events, late_events FROM fraudstream.features
 WHERE name IN ('card_count_1h', 'account_max_1d') ORDER BY name;

-- a late event (beyond fraudstream.max_lateness, 5 minutes) is counted and ignored
SHOW fraudstream.max_lateness;
INSERT INTO txn (card, ts, amount) VALUES ('c1', '2026-03-01 09:00:00+00', 99.00);
SELECT late_events FROM fraudstream.features WHERE name = 'card_count_1h';
SELECT fraudstream.feature_values('card', 'c1', '2026-03-01 10:30:00+00') -> 'card_count_1h';

-- errors of the query functions
SELECT fraudstream.feature_values('no_such_column', 'c1');
SELECT fraudstream.feature_values('account', 'not a number');
SELECT fraudstream.row_features('two_times', ROW('k', now(), now())::two_times);
SELECT fraudstream.row_features('txn', ROW('k', now(), now())::two_times);
SELECT * FROM fraudstream.feature_history('txn', NULL);
SELECT * FROM fraudstream.feature_history('txn', 'no_such');

-- the batch path replays history: a row sees only the rows before it
SELECT key, features -> 'card_count_1h' AS card_count_1h,
       features -> 'card_amount_1h' AS card_amount_1h
  FROM fraudstream.feature_history('txn', 'id', 'id') ORDER BY key::int;

-- TRUNCATE clears the state, at commit
BEGIN;
TRUNCATE txn;
SELECT fraudstream.feature_values('card', 'c1', '2026-03-01 10:30:00+00') -> 'card_count_1h';
ROLLBACK;
SELECT fraudstream.feature_values('card', 'c1', '2026-03-01 10:30:00+00') -> 'card_count_1h';
TRUNCATE txn;
SELECT fraudstream.feature_values('card', 'c1', '2026-03-01 10:30:00+00') -> 'card_count_1h';
SELECT entities FROM fraudstream.features WHERE name = 'card_count_1h';

-- memory: an entity with a few events holds its entry and one block
-- (PRODUCT.md: at most 256 bytes per active entity and group in the
-- common case); a busy one only the blocks its windows can reach; all of
-- it goes back when the state is cleared
CREATE TABLE mem (k text, ts timestamptz, v float8);
SELECT fraudstream.create_feature('mem_sum_1h', 'mem', 'k', 'sum', '1 hour', 'v');
SELECT memory_bytes FROM fraudstream.features WHERE name = 'mem_sum_1h';
INSERT INTO mem SELECT 'k' || i % 1000, '2026-03-01 10:00+00'::timestamptz + i * interval '1 s', i
  FROM generate_series(1, 2000) i;
SELECT entities, memory_bytes > 0 AS uses_memory, memory_bytes / entities <= 256 AS at_most_256_per_entity
  FROM fraudstream.features WHERE name = 'mem_sum_1h';
SELECT memory_bytes AS before_busy FROM fraudstream.features WHERE name = 'mem_sum_1h' \gset
INSERT INTO mem SELECT 'busy', '2026-03-01 10:00+00'::timestamptz + i * interval '1 minute', i
  FROM generate_series(1, 600) i;
SELECT summarised_entities, memory_bytes - :before_busy BETWEEN 1000 AND 8000 AS busy_bounded_by_window
  FROM fraudstream.features WHERE name = 'mem_sum_1h';
TRUNCATE mem;
SELECT entities, memory_bytes FROM fraudstream.features WHERE name = 'mem_sum_1h';
DROP TABLE mem;

-- the last feature of a table takes its triggers with it
SELECT tgname FROM pg_trigger WHERE tgrelid = 'txn'::regclass ORDER BY tgname;
SELECT fraudstream.drop_feature(name) FROM fraudstream.feature_definitions ORDER BY name;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'txn'::regclass ORDER BY tgname;
SELECT count(*) FROM fraudstream.features;

-- dropping a source drops its features (and frees their state)
CREATE TABLE doomed (k text, ts timestamptz);
SELECT fraudstream.create_feature('doomed_count', 'doomed', 'k', 'count', '1 hour');
INSERT INTO doomed VALUES ('k1', '2026-03-01 10:00+00');
SELECT count(*) FROM fraudstream.features WHERE name = 'doomed_count';
DROP TABLE doomed;
SELECT count(*) FROM fraudstream.feature_definitions WHERE name = 'doomed_count';
SELECT fraudstream.create_feature('doomed_count', 'txn', 'card', 'count', '1 hour');
SELECT fraudstream.drop_feature('doomed_count');

-- features over a ring: the time column comes from the ring, the window
-- may not outgrow its retention, rows routed to its partitions feed them
SELECT fraudstream.create_ring('feat_clicks', 'card text, ts timestamptz, amount numeric',
                               'card', 'ts', '1 hour') IS NOT NULL AS ring_created;
SELECT fraudstream.create_feature('click_count_2h', 'feat_clicks', 'card', 'count', '2 hours');
SELECT fraudstream.create_feature('click_count_1h', 'feat_clicks', 'card', 'count', '1 hour');
SELECT time_column FROM fraudstream.feature_definitions WHERE name = 'click_count_1h';
INSERT INTO feat_clicks VALUES ('c9', now() - interval '10 minutes', 1),
                               ('c9', now() - interval '5 minutes', 2);
SELECT fraudstream.feature_values('card', 'c9') -> 'click_count_1h';
SELECT fraudstream.drop_feature('click_count_1h');
SELECT fraudstream.drop_ring('feat_clicks');
