/* fraudstream--0.1.0.sql: first release of the fraudstream SQL surface */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION fraudstream" to load this file. \quit

CREATE FUNCTION fraudstream.version()
RETURNS text
AS 'MODULE_PATHNAME', 'fraudstream_version'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION fraudstream.version() IS
'version of the loaded fraudstream library';

CREATE FUNCTION fraudstream.memory_usage(OUT area text, OUT bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'fraudstream_memory_usage'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION fraudstream.memory_usage() IS
'shared memory reserved by fraudstream, per area; needs shared_preload_libraries';

CREATE VIEW fraudstream.memory AS
    SELECT area, bytes FROM fraudstream.memory_usage();

COMMENT ON VIEW fraudstream.memory IS
'shared memory reserved by fraudstream at server start, per area';
