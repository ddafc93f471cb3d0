--
-- Ring tables: creation, layout, rotation bookkeeping and errors.
-- (Rotation by the launcher and rings fed by Kafka: test/t/105_ring.pl.)
--
SELECT fraudstream.create_ring('r1', 'k text, v int, ts timestamptz', 'k', 'ts', '1 hour', 4);
-- a ring of unlogged partitions, one per slot, with an index on (key, time)
SELECT c.relname, c.relkind, c.relpersistence, pg_get_expr(c.relpartbound, c.oid) AS bound
  FROM pg_class c WHERE c.relname ~ '^r1' AND c.relkind IN ('p', 'r') ORDER BY 1;
SELECT pg_get_partkeydef('r1'::regclass);
SELECT indexdef FROM pg_indexes WHERE tablename = 'r1';
SELECT ring, key_column, time_column, retention, partitions, step_us,
       array_length(slots, 1) AS slots, rotations
  FROM fraudstream.ring_config;
-- the slot of an event: floor(time / step) mod partitions
SELECT fraudstream.ring_slot('2000-01-01 00:00:10+00'::timestamptz, 10000000, 4) AS ten_seconds,
       fraudstream.ring_slot('1999-12-31 23:59:59+00'::timestamptz, 10000000, 4) AS before_2000,
       fraudstream.ring_slot('2000-01-01 00:00:45'::timestamp, 10000000, 4) AS timestamp_too;
-- an ordinary table to SQL: insert, select, row triggers on the ring fire
-- for rows routed to its partitions
CREATE TABLE r1_seen (v int);
CREATE FUNCTION r1_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO r1_seen VALUES (NEW.v); RETURN NULL; END $$;
CREATE TRIGGER seen AFTER INSERT ON r1 FOR EACH ROW EXECUTE FUNCTION r1_seen();
INSERT INTO r1 SELECT 'k' || i % 3, i, now() - i * interval '1 second' FROM generate_series(1, 100) i;
SELECT count(*) FROM r1_seen;
SELECT k, count(*) FROM r1 GROUP BY k ORDER BY k;
SELECT ring, retention, partitions, step, rows, oldest < newest AS ordered, rotations
  FROM fraudstream.rings;
-- an event without time belongs to no slot
INSERT INTO r1 VALUES ('k', 1, NULL);
-- errors
SELECT fraudstream.create_ring('r2', 'k text, ts timestamptz', 'k', 'ts', '1 month');
SELECT fraudstream.create_ring('r2', 'k text, ts timestamptz', 'k', 'ts', '0 seconds');
SELECT fraudstream.create_ring('r2', 'k text, ts timestamptz', 'k', 'ts', '1 hour', 2);
SELECT fraudstream.create_ring('r2', 'k text, ts timestamptz', 'k', 'ts', '1 hour', 65);
SELECT fraudstream.create_ring('r2', 'k text, ts timestamptz', 'k', 'ts', '100 milliseconds');
SELECT fraudstream.create_ring('r2', 'k text, ts bigint', 'k', 'ts', '1 hour');
SELECT fraudstream.create_ring('r2', 'k text, ts timestamptz', 'nope', 'ts', '1 hour');
SELECT fraudstream.create_ring('r2', 'k text, ts timestamptz); DROP TABLE r1; --', 'k', 'ts', '1 hour');
SELECT fraudstream.create_ring('r1', 'k text, ts timestamptz', 'k', 'ts', '1 hour');
SELECT count(*) FROM fraudstream.ring_config;
-- drop_ring: only rings, and not while a source writes to one
SELECT fraudstream.drop_ring('r1_seen');
SELECT fraudstream.create_source('rs', 'r1', '127.0.0.1:1', 'ring_topic');
SELECT fraudstream.drop_ring('r1');
SELECT fraudstream.drop_source('rs');
SELECT fraudstream.drop_ring('r1');
SELECT count(*) FROM fraudstream.ring_config;
SELECT count(*) FROM pg_class WHERE relname ~ '^r1_p';
-- only fraudstream_admin manages rings
CREATE ROLE regress_fs_ring_user;
SET ROLE regress_fs_ring_user;
SELECT fraudstream.create_ring('r3', 'k text, ts timestamptz', 'k', 'ts', '1 hour');
SELECT fraudstream.rotate_rings();
RESET ROLE;
DROP ROLE regress_fs_ring_user;
DROP TABLE r1_seen;
DROP FUNCTION r1_seen();
