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

GRANT SELECT ON fraudstream.memory TO PUBLIC;

--
-- Sliding-window features
--

-- fraudstream_admin manages features (and, later, sources and models).
-- Roles are cluster-wide: create it once, keep it when the extension goes.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'fraudstream_admin') THEN
        CREATE ROLE fraudstream_admin NOLOGIN;
    END IF;
END
$$;

CREATE TABLE fraudstream.feature_definitions (
    name            text PRIMARY KEY,
    source          regclass NOT NULL,
    entity_column   name NOT NULL,
    time_column     name NOT NULL,
    agg             text NOT NULL,
    window_length   interval NOT NULL,
    value_column    name,
    lat_column      name,
    lon_column      name,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE fraudstream.feature_definitions IS
'sliding-window features; change only through create_feature and drop_feature';

SELECT pg_catalog.pg_extension_config_dump('fraudstream.feature_definitions', '');

GRANT SELECT ON fraudstream.feature_definitions TO PUBLIC;
GRANT INSERT, DELETE ON fraudstream.feature_definitions TO fraudstream_admin;

CREATE FUNCTION fraudstream.create_feature(
    name text,
    source regclass,
    entity_column text,
    agg text,
    "window" interval,
    value_column text DEFAULT NULL,
    time_column text DEFAULT NULL,
    lat_column text DEFAULT NULL,
    lon_column text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'fraudstream_create_feature'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION fraudstream.create_feature(text, regclass, text, text, interval, text, text, text, text) IS
'define a sliding-window feature over the events of a source table';

CREATE FUNCTION fraudstream.drop_feature(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'fraudstream_drop_feature'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION fraudstream.drop_feature(text) IS
'remove a feature definition';

REVOKE EXECUTE ON FUNCTION fraudstream.create_feature(text, regclass, text, text, interval, text, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION fraudstream.drop_feature(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fraudstream.create_feature(text, regclass, text, text, interval, text, text, text, text) TO fraudstream_admin;
GRANT EXECUTE ON FUNCTION fraudstream.drop_feature(text) TO fraudstream_admin;

CREATE FUNCTION fraudstream.feed_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'fraudstream_feed_trigger'
LANGUAGE C;

COMMENT ON FUNCTION fraudstream.feed_trigger() IS
'BEFORE INSERT row trigger that feeds a source''s events to the feature state';

CREATE FUNCTION fraudstream.truncate_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'fraudstream_truncate_trigger'
LANGUAGE C;

COMMENT ON FUNCTION fraudstream.truncate_trigger() IS
'AFTER TRUNCATE trigger that clears a source''s feature state';

CREATE FUNCTION fraudstream.feature_values(
    entity_column text,
    key text,
    "at" timestamptz DEFAULT pg_catalog.now())
RETURNS jsonb
AS 'MODULE_PATHNAME', 'fraudstream_feature_values'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;

COMMENT ON FUNCTION fraudstream.feature_values(text, text, timestamptz) IS
'every feature of one entity for the window ending at a point in time';

CREATE FUNCTION fraudstream.feature_group_stats(
    OUT source regclass,
    OUT entity_column text,
    OUT status text,
    OUT entities bigint,
    OUT events bigint,
    OUT late_events bigint,
    OUT expired_entities bigint,
    OUT evicted_entities bigint,
    OUT truncated_events bigint,
    OUT rebuilds bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'fraudstream_feature_group_stats'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

COMMENT ON FUNCTION fraudstream.feature_group_stats() IS
'state and counters of each feature group (source table and entity column)';

CREATE VIEW fraudstream.features AS
    SELECT d.name, d.source, d.entity_column, d.time_column, d.agg,
           d.window_length, d.value_column, d.lat_column, d.lon_column,
           s.status, s.entities, s.events, s.late_events,
           s.expired_entities, s.evicted_entities, s.truncated_events,
           s.rebuilds
      FROM fraudstream.feature_definitions d
      LEFT JOIN fraudstream.feature_group_stats() s
        ON s.source = d.source AND s.entity_column = d.entity_column::text;

COMMENT ON VIEW fraudstream.features IS
'every feature with the state and counters of its group';

GRANT SELECT ON fraudstream.features TO PUBLIC;

CREATE FUNCTION fraudstream.row_features(source regclass, "row" anyelement)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'fraudstream_row_features'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;

COMMENT ON FUNCTION fraudstream.row_features(regclass, anyelement) IS
'the features a row of the source would get if inserted now';

CREATE FUNCTION fraudstream.feature_history(
    source regclass,
    key_column text,
    order_column text DEFAULT NULL)
RETURNS TABLE (key text, features jsonb)
AS 'MODULE_PATHNAME', 'fraudstream_feature_history'
LANGUAGE C STABLE PARALLEL RESTRICTED;

COMMENT ON FUNCTION fraudstream.feature_history(regclass, text, text) IS
'point-in-time features of every row of a source, replayed in arrival order';

-- Features of a dropped table go with it.
CREATE FUNCTION fraudstream.drop_orphan_features()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    orphan text;
BEGIN
    FOR orphan IN
        SELECT d.name
          FROM fraudstream.feature_definitions d
          JOIN pg_catalog.pg_event_trigger_dropped_objects() o
            ON o.objid = d.source::pg_catalog.oid
         WHERE o.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
           AND o.objsubid = 0
    LOOP
        PERFORM fraudstream.drop_feature(orphan);
    END LOOP;
END
$$;

COMMENT ON FUNCTION fraudstream.drop_orphan_features() IS
'event trigger function: drops the features of dropped source tables';

CREATE EVENT TRIGGER fraudstream_drop_orphan_features ON sql_drop
    EXECUTE FUNCTION fraudstream.drop_orphan_features();
