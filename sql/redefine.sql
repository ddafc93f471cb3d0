--
-- Feature definitions that change while a transaction inserts rows (a
-- feature created here, or by a commit elsewhere).  The events the
-- transaction fed under the old definitions have other value slots than
-- the new ones: they can be neither read nor merged.  Its later rows see
-- the events it fed since; after commit the group is rebuilt from the
-- table, where every committed row counts.
--
SET client_min_messages = warning;
CREATE TABLE rd (id int, rd_card text, amount float8, qty float8, ts timestamptz);
SELECT fraudstream.create_feature('rd_count', 'rd', 'rd_card', 'count', '1 hour');

CREATE FUNCTION rd_values(at timestamptz) RETURNS TABLE (n text, s_amount text, s_qty text)
LANGUAGE sql AS $$
    SELECT v ->> 'rd_count', v ->> 'rd_sum_amount', v ->> 'rd_sum_qty'
      FROM fraudstream.feature_values('rd_card', 'c1', at) v
$$;

BEGIN;
INSERT INTO rd SELECT i, 'c1', i, 2 * i, timestamptz '2026-01-01 00:00+00' + i * interval '1 second'
  FROM generate_series(1, 3) i;
SELECT * FROM rd_values('2026-01-01 00:01+00');
-- two value columns more: the group's events get two slots
SELECT fraudstream.create_feature('rd_sum_amount', 'rd', 'rd_card', 'sum', '1 hour', 'amount');
SELECT fraudstream.create_feature('rd_sum_qty', 'rd', 'rd_card', 'sum', '1 hour', 'qty');
INSERT INTO rd SELECT i, 'c1', i, 2 * i, timestamptz '2026-01-01 00:00+00' + i * interval '1 second'
  FROM generate_series(4, 40) i;
-- rows 4 to 40 only
SELECT * FROM rd_values('2026-01-01 00:01+00');
COMMIT;

-- rebuilt from the table: rows 1 to 40
SELECT * FROM rd_values('2026-01-01 00:01+00');
SELECT count(*), sum(amount), sum(qty) FROM rd;
-- and the session's next rows build on it
INSERT INTO rd VALUES (41, 'c1', 41, 82, '2026-01-01 00:00:41+00');
SELECT * FROM rd_values('2026-01-01 00:01+00');

-- the same with a feature dropped (one slot fewer), rolled back: nothing
-- of the transaction stays
BEGIN;
INSERT INTO rd VALUES (42, 'c1', 42, 84, '2026-01-01 00:00:42+00');
SELECT fraudstream.drop_feature('rd_sum_qty');
INSERT INTO rd VALUES (43, 'c1', 43, 86, '2026-01-01 00:00:43+00');
ROLLBACK;
SELECT * FROM rd_values('2026-01-01 00:01+00');

DROP FUNCTION rd_values(timestamptz);
DROP TABLE rd;
