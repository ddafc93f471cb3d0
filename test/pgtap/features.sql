-- Feature API contracts: signatures and labels, the catalog, and who may
-- define and read features.
BEGIN;
CREATE EXTENSION IF NOT EXISTS fraudstream;
SELECT plan(29);

SELECT has_function('fraudstream', 'create_feature',
    ARRAY['text', 'regclass', 'text', 'text', 'interval', 'text', 'text', 'text', 'text']);
SELECT has_function('fraudstream', 'drop_feature', ARRAY['text']);
SELECT has_function('fraudstream', 'feature_values', ARRAY['text', 'text', 'timestamp with time zone']);
SELECT has_function('fraudstream', 'row_features', ARRAY['regclass', 'anyelement']);
SELECT has_function('fraudstream', 'feature_history', ARRAY['regclass', 'text', 'text']);
SELECT has_function('fraudstream', 'feature_vectors', ARRAY['regclass', 'text', 'text']);
SELECT has_function('fraudstream', 'feature_names', ARRAY['regclass']);
SELECT volatility_is('fraudstream', 'feature_values', ARRAY['text', 'text', 'timestamp with time zone'], 'stable');
SELECT has_table('fraudstream', 'feature_definitions', 'the feature catalog exists');
SELECT col_is_pk('fraudstream', 'feature_definitions', 'name', 'feature names are unique');
SELECT has_view('fraudstream', 'features', 'the features view exists');
SELECT has_role('fraudstream_admin', 'the extension created fraudstream_admin');

-- Roles for the rest of the test; rolled back with it.
CREATE ROLE fs_test_outsider;
CREATE ROLE fs_test_admin IN ROLE fraudstream_admin;
CREATE ROLE fs_test_reader;
CREATE TABLE public.fs_test_txn (card text, ts timestamptz, amount numeric);
GRANT SELECT ON public.fs_test_txn TO fs_test_reader;
GRANT USAGE ON SCHEMA fraudstream TO fs_test_outsider, fs_test_admin, fs_test_reader;

SET ROLE fs_test_outsider;
SELECT throws_ok(
    $$SELECT fraudstream.create_feature('t_count', 'public.fs_test_txn', 'card', 'count', '1 hour')$$,
    '42501', NULL, 'a role outside fraudstream_admin cannot define features');
RESET ROLE;

SET ROLE fs_test_admin;
SELECT throws_ok(
    $$SELECT fraudstream.create_feature('t_count', 'public.fs_test_txn', 'card', 'count', '1 hour')$$,
    '42501', 'permission denied for table fs_test_txn',
    'fraudstream_admin still needs the TRIGGER privilege on the source');
RESET ROLE;

GRANT TRIGGER ON public.fs_test_txn TO fs_test_admin;
SET ROLE fs_test_admin;
SELECT lives_ok(
    $$SELECT fraudstream.create_feature('t_count', 'public.fs_test_txn', 'card', 'count', '1 hour')$$,
    'fraudstream_admin with TRIGGER on the source defines a feature');
RESET ROLE;

SELECT is((SELECT count(*)::int FROM pg_trigger
            WHERE tgrelid = 'public.fs_test_txn'::regclass AND tgname LIKE 'zz_fraudstream_%'),
          2, 'the source got its feed and truncate triggers');

INSERT INTO public.fs_test_txn VALUES ('c1', '2026-03-01 10:00+00', 1);

SET ROLE fs_test_outsider;
SELECT throws_ok(
    $$SELECT fraudstream.feature_values('card', 'c1', '2026-03-01 10:30+00')$$,
    '42501', 'permission denied for table fs_test_txn',
    'reading features needs SELECT on the source');
SELECT throws_ok(
    $$SELECT fraudstream.drop_feature('t_count')$$,
    '42501', NULL, 'a role outside fraudstream_admin cannot drop features');
SELECT throws_ok(
    $$SELECT * FROM fraudstream.feature_vectors('public.fs_test_txn', 'card')$$,
    '42501', 'permission denied for table fs_test_txn',
    'replaying history needs SELECT on the source');
SELECT is(fraudstream.feature_names('public.fs_test_txn'), ARRAY['t_count'],
          'feature names are readable by everyone, like the definitions');
RESET ROLE;

-- SELECT on some columns is not enough: the replay reads whole rows, as
-- "SELECT t FROM source t" would; SELECT on every column is.
GRANT SELECT (card, ts) ON public.fs_test_txn TO fs_test_outsider;
SET ROLE fs_test_outsider;
SELECT throws_ok(
    $$SELECT * FROM fraudstream.feature_history('public.fs_test_txn', 'card')$$,
    '42501', 'permission denied for table fs_test_txn',
    'SELECT on some columns does not let a role replay the source');
RESET ROLE;
GRANT SELECT (amount) ON public.fs_test_txn TO fs_test_outsider;
SET ROLE fs_test_outsider;
SELECT is((SELECT features FROM fraudstream.feature_vectors('public.fs_test_txn', 'card')),
          ARRAY[1]::float8[], 'SELECT on every column lets a role replay the source');
RESET ROLE;

SET ROLE fs_test_reader;
SELECT is(fraudstream.feature_values('card', 'c1', '2026-03-01 10:30+00'),
          '{"t_count": 1}'::jsonb, 'a reader of the source reads its features');
SELECT is((SELECT features FROM fraudstream.feature_history('public.fs_test_txn', 'card')),
          '{"t_count": 1}'::jsonb, 'a reader of the source replays its history');
SELECT is((SELECT count(*)::int FROM fraudstream.features), 1,
          'anyone can list the defined features');
RESET ROLE;

SELECT is((SELECT count(*)::int FROM pg_proc p
            JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
            JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'fraudstream'
           WHERE p.prosecdef),
          1, 'only the event trigger that drops orphan features runs as SECURITY DEFINER');

-- ALTER TABLE of a source: checked by an event trigger that runs with the
-- rights of the user who alters
SELECT is((SELECT evtevent || ' ' || array_to_string(evttags, ',') FROM pg_event_trigger
            WHERE evtname = 'fraudstream_check_altered_sources'),
          'ddl_command_end ALTER TABLE', 'an event trigger checks every ALTER TABLE at its end');
SELECT is((SELECT prosecdef FROM pg_proc WHERE oid = 'fraudstream.check_altered_sources()'::regprocedure),
          false, 'the ALTER TABLE check runs with the rights of the user who alters');
SELECT throws_ok($$ ALTER TABLE public.fs_test_txn RENAME COLUMN card TO card_no $$, '2BP01', NULL,
                 'a column a feature reads cannot be renamed');

SELECT * FROM finish();
ROLLBACK;
