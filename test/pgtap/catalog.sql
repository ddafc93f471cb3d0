-- Catalog contract of the extension: its schema, functions and views,
-- their labels, and the rules every SQL object follows (comments,
-- volatility, search_path on SECURITY DEFINER functions).
BEGIN;
CREATE EXTENSION fraudstream;
SELECT plan(11);

SELECT has_schema('fraudstream');
SELECT is(
    (SELECT extrelocatable FROM pg_extension WHERE extname = 'fraudstream'),
    false, 'the extension is not relocatable');

SELECT has_function('fraudstream', 'version', '{}'::name[]);
SELECT function_returns('fraudstream', 'version', '{}'::name[], 'text');
SELECT volatility_is('fraudstream', 'version', '{}'::name[], 'immutable');
SELECT is(fraudstream.version(),
    (SELECT default_version FROM pg_available_extensions WHERE name = 'fraudstream'),
    'version() is the version of fraudstream.control');

SELECT has_view('fraudstream', 'memory', 'view fraudstream.memory exists');
SELECT columns_are('fraudstream', 'memory', ARRAY['area', 'bytes']);

-- Members of the extension, for the rules below.
CREATE TEMP VIEW member_functions AS
    SELECT p.oid, p.oid::regprocedure AS signature, p.prosecdef, p.proconfig
      FROM pg_proc p
      JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                      AND d.deptype = 'e'
      JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'fraudstream';

SELECT is_empty(
    $$ SELECT signature FROM member_functions
        WHERE obj_description(oid, 'pg_proc') IS NULL $$,
    'every function has a comment');

SELECT is_empty(
    $$ SELECT signature FROM member_functions
        WHERE prosecdef
          AND NOT coalesce(proconfig::text[] && ARRAY['search_path=pg_catalog, pg_temp'], false) $$,
    'every SECURITY DEFINER function pins search_path');

SELECT is_empty(
    $$ SELECT c.oid::regclass FROM pg_class c
        JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.deptype = 'e'
        JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'fraudstream'
       WHERE obj_description(c.oid, 'pg_class') IS NULL $$,
    'every table and view has a comment');

SELECT * FROM finish();
ROLLBACK;
