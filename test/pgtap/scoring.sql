-- Scoring contracts: signatures, the model and alert catalogs, and who may
-- deploy models, attach tables, insert scored rows and read scores.
BEGIN;
CREATE EXTENSION IF NOT EXISTS fraudstream;
SELECT plan(34);

SELECT has_function('fraudstream', 'deploy_model', ARRAY['text', 'jsonb']);
SELECT has_function('fraudstream', 'activate_model', ARRAY['text', 'integer']);
SELECT has_function('fraudstream', 'attach', ARRAY['regclass', 'text', 'text', 'text', 'boolean']);
SELECT has_function('fraudstream', 'detach', ARRAY['regclass']);
SELECT function_returns('fraudstream', 'deploy_model', ARRAY['text', 'jsonb'], 'integer',
    'deploy_model returns the new version');
SELECT has_table('fraudstream', 'models', 'the model catalog exists');
SELECT col_is_pk('fraudstream', 'models', ARRAY['name', 'version'], 'a model version is unique');
SELECT has_index('fraudstream', 'models', 'models_one_active', 'at most one active version per model');
SELECT has_table('fraudstream', 'attachments', 'the attachment catalog exists');
SELECT has_table('fraudstream', 'scores', 'the scores table exists');
SELECT has_table('fraudstream', 'alerts', 'the alerts table exists');
SELECT columns_are('fraudstream', 'alerts',
    ARRAY['id', 'relation', 'row_key', 'entities', 'score', 'model', 'version', 'reasons', 'alerted_at'],
    'alerts carry id, table, row key, entities, score, model, version, reasons, time');
SELECT has_view('fraudstream', 'model_stats', 'the model statistics view exists');
SELECT has_role('fraudstream_reader', 'the extension created fraudstream_reader');

-- Roles for the rest of the test; rolled back with it.
CREATE ROLE fs_sc_outsider;
CREATE ROLE fs_sc_admin IN ROLE fraudstream_admin;
CREATE ROLE fs_sc_reader IN ROLE fraudstream_reader;
CREATE ROLE fs_sc_writer;
CREATE TABLE public.fs_sc_txn (id int, card text, ts timestamptz, score float8);
GRANT INSERT, SELECT ON public.fs_sc_txn TO fs_sc_writer;
GRANT TRIGGER ON public.fs_sc_txn TO fs_sc_admin;
GRANT USAGE ON SCHEMA fraudstream TO fs_sc_outsider, fs_sc_admin, fs_sc_reader, fs_sc_writer;
SELECT fraudstream.create_feature('fs_sc_count', 'public.fs_sc_txn', 'card', 'count', '1 hour');

SET ROLE fs_sc_outsider;
SELECT throws_ok(
    $$SELECT fraudstream.deploy_model('fs_sc', '{"type": "rules", "threshold": 0.5, "rules": [{"name": "r", "feature": "fs_sc_count", "op": ">=", "value": 2, "points": 1}]}')$$,
    '42501', NULL, 'a role outside fraudstream_admin cannot deploy models');
SELECT throws_ok($$SELECT fraudstream.attach('public.fs_sc_txn', 'id', 'score', 'fs_sc')$$,
    '42501', NULL, 'a role outside fraudstream_admin cannot attach tables');
SELECT throws_ok($$SELECT * FROM fraudstream.models$$, '42501', NULL,
    'model specs are not readable by PUBLIC');
RESET ROLE;

SET ROLE fs_sc_admin;
SELECT is(fraudstream.deploy_model('fs_sc', '{"type": "rules", "threshold": 0.5, "rules": [{"name": "r", "feature": "fs_sc_count", "op": ">=", "value": 2, "points": 1}]}'),
    1, 'fraudstream_admin deploys a model');
SELECT lives_ok($$SELECT fraudstream.activate_model('fs_sc', 1)$$,
    'fraudstream_admin activates it');
SELECT lives_ok($$SELECT fraudstream.attach('public.fs_sc_txn', 'id', 'score', 'fs_sc')$$,
    'fraudstream_admin with TRIGGER on the table attaches it');
RESET ROLE;

CREATE TABLE public.fs_sc_other (id int, card text, ts timestamptz);
SET ROLE fs_sc_admin;
SELECT throws_ok($$SELECT fraudstream.attach('public.fs_sc_other', 'id', NULL, 'fs_sc')$$,
    '42501', 'permission denied for table fs_sc_other',
    'attach still needs the TRIGGER privilege on the table');
RESET ROLE;

-- A role with INSERT on the table alone gets its rows scored, and the
-- scores and alerts written, without any privilege on fraudstream's tables.
SET ROLE fs_sc_writer;
SELECT lives_ok($$INSERT INTO public.fs_sc_txn VALUES (1, 'c1', '2026-03-01 10:00+00'),
                                                       (2, 'c1', '2026-03-01 10:01+00')$$,
    'a writer without fraudstream privileges inserts into the attached table');
SELECT results_eq($$SELECT score FROM public.fs_sc_txn ORDER BY id$$,
    ARRAY[0, 1]::float8[], 'its rows are scored');
SELECT throws_ok($$SELECT * FROM fraudstream.scores$$, '42501', NULL,
    'the writer cannot read scores');
SELECT throws_ok($$SELECT * FROM fraudstream.alerts$$, '42501', NULL,
    'the writer cannot read alerts');
RESET ROLE;

SET ROLE fs_sc_reader;
SELECT is((SELECT count(*)::int FROM fraudstream.scores WHERE relation = 'public.fs_sc_txn'::regclass),
    2, 'fraudstream_reader reads scores');
SELECT is((SELECT row_key FROM fraudstream.alerts WHERE relation = 'public.fs_sc_txn'::regclass),
    '2', 'fraudstream_reader reads alerts');
SELECT is((SELECT rows_scored FROM fraudstream.model_stats WHERE model = 'fs_sc'),
    2::bigint, 'fraudstream_reader reads model statistics');
SELECT throws_ok($$SELECT fraudstream.activate_model('fs_sc', 1)$$, '42501', NULL,
    'fraudstream_reader cannot activate models');
SELECT throws_ok($$DELETE FROM fraudstream.alerts$$, '42501', NULL,
    'fraudstream_reader cannot delete alerts');
RESET ROLE;

-- Reading can be granted on its own, without the reader role.
GRANT SELECT ON fraudstream.alerts TO fs_sc_outsider;
SET ROLE fs_sc_outsider;
SELECT is((SELECT count(*)::int FROM fraudstream.alerts WHERE relation = 'public.fs_sc_txn'::regclass),
    1, 'SELECT on alerts can be granted to any role');
SELECT throws_ok($$SELECT * FROM fraudstream.scores$$, '42501', NULL,
    'which still cannot read scores');
RESET ROLE;

SET ROLE fs_sc_admin;
SELECT lives_ok($$SELECT fraudstream.detach('public.fs_sc_txn')$$,
    'fraudstream_admin detaches the table');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'public.fs_sc_txn'::regclass
            AND tgname = 'zz_fraudstream_1_score'), 0, 'detach removed the score trigger');

SELECT * FROM finish();
ROLLBACK;
