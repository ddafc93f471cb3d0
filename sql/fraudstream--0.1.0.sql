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

-- ======================================================================
-- Ring tables and Kafka sources (src/ring.c, src/source.c, src/worker.c)
-- ======================================================================

-- Members of fraudstream_admin manage sources and rings (and later models).
-- Roles are cluster-wide: created once, kept on DROP EXTENSION.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'fraudstream_admin') THEN
        CREATE ROLE fraudstream_admin NOLOGIN;
        COMMENT ON ROLE fraudstream_admin IS
        'members manage fraudstream sources, rings and models';
    END IF;
END
$$;

GRANT USAGE ON SCHEMA fraudstream TO PUBLIC;

CREATE TABLE fraudstream.ring_config (
    ring regclass PRIMARY KEY,
    key_column name NOT NULL,
    time_column name NOT NULL,
    retention interval NOT NULL,
    partitions integer NOT NULL,
    step_us bigint NOT NULL,
    slots regclass[] NOT NULL,
    current_step bigint NOT NULL,
    rotations bigint NOT NULL DEFAULT 0,
    rotated_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE fraudstream.ring_config IS
'ring tables: key and time columns, retention, partitions (slots) and rotation state';

GRANT SELECT ON fraudstream.ring_config TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON fraudstream.ring_config TO fraudstream_admin;

CREATE TABLE fraudstream.source_config (
    id integer GENERATED ALWAYS AS IDENTITY UNIQUE,
    name text PRIMARY KEY,
    target regclass NOT NULL,
    brokers text NOT NULL,
    topic text NOT NULL,
    format text NOT NULL CHECK (format IN ('json', 'csv')),
    options jsonb NOT NULL DEFAULT '{}',
    owner regrole NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE fraudstream.source_config IS
'Kafka sources; options may hold secrets, so only fraudstream_admin reads it (others use fraudstream.sources)';

COMMENT ON SEQUENCE fraudstream.source_config_id_seq IS
'identity of fraudstream.source_config';

REVOKE ALL ON fraudstream.source_config FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON fraudstream.source_config TO fraudstream_admin;

CREATE TABLE fraudstream.offsets (
    source_id integer NOT NULL REFERENCES fraudstream.source_config (id) ON DELETE CASCADE,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, partition)
);

COMMENT ON TABLE fraudstream.offsets IS
'next Kafka offset per source and partition, written in the transaction that writes the rows';

CREATE UNLOGGED TABLE fraudstream.ring_offsets (
    source_id integer NOT NULL REFERENCES fraudstream.source_config (id) ON DELETE CASCADE,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, partition)
);

COMMENT ON TABLE fraudstream.ring_offsets IS
'offsets of sources that write to unlogged targets (rings): emptied by crash recovery together with them';

GRANT SELECT ON fraudstream.offsets, fraudstream.ring_offsets TO fraudstream_admin;

CREATE TABLE fraudstream.rejects (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    key bytea,
    payload bytea,
    error text NOT NULL,
    sqlstate text,
    rejected_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX ON fraudstream.rejects (source, rejected_at);

COMMENT ON TABLE fraudstream.rejects IS
'Kafka messages that could not be decoded or inserted, with their raw payload and the error';

COMMENT ON SEQUENCE fraudstream.rejects_id_seq IS
'identity of fraudstream.rejects';

REVOKE ALL ON fraudstream.rejects FROM PUBLIC;
GRANT SELECT, DELETE ON fraudstream.rejects TO fraudstream_admin;

SELECT pg_catalog.pg_extension_config_dump('fraudstream.ring_config', '');
SELECT pg_catalog.pg_extension_config_dump('fraudstream.source_config', '');
SELECT pg_catalog.pg_extension_config_dump('fraudstream.offsets', '');
SELECT pg_catalog.pg_extension_config_dump('fraudstream.rejects', '');

-- Rings

CREATE FUNCTION fraudstream.ring_slot(timestamptz, bigint, integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'fraudstream_ring_slot'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION fraudstream.ring_slot(timestamptz, bigint, integer) IS
'partition of a ring event: floor(time / step_us) mod partitions';

CREATE FUNCTION fraudstream.ring_slot(timestamp, bigint, integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'fraudstream_ring_slot'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION fraudstream.ring_slot(timestamp, bigint, integer) IS
'partition of a ring event: floor(time / step_us) mod partitions';

CREATE FUNCTION fraudstream.create_ring(name text, columns text, key_column name,
                                        time_column name, retention interval,
                                        partitions integer DEFAULT 6)
RETURNS regclass
AS 'MODULE_PATHNAME', 'fraudstream_create_ring'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION fraudstream.create_ring(text, text, name, name, interval, integer) IS
'create a ring: an unlogged table of partitions rotated so that it holds retention (plus one step) of events';

CREATE FUNCTION fraudstream.drop_ring(ring regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'fraudstream_drop_ring'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION fraudstream.drop_ring(regclass) IS
'drop a ring that no source writes to';

CREATE FUNCTION fraudstream.rotate_rings()
RETURNS integer
AS 'MODULE_PATHNAME', 'fraudstream_rotate_rings'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION fraudstream.rotate_rings() IS
'rotate the rings that are due now (the launcher does this every second); returns partitions emptied';

CREATE FUNCTION fraudstream.ring_stats(
    OUT ring regclass, OUT retention interval, OUT partitions integer,
    OUT step interval, OUT rows bigint, OUT oldest timestamptz,
    OUT newest timestamptz, OUT rotations bigint, OUT rotated_at timestamptz)
RETURNS SETOF record
LANGUAGE plpgsql STABLE STRICT PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.* FROM fraudstream.ring_config c
              WHERE pg_catalog.to_regclass(c.ring::pg_catalog.text) IS NOT NULL
              ORDER BY c.ring::pg_catalog.text
    LOOP
        ring := r.ring;
        retention := r.retention;
        partitions := r.partitions;
        step := pg_catalog.make_interval(secs => r.step_us / 1000000.0);
        rotations := r.rotations;
        rotated_at := r.rotated_at;
        rows := NULL;
        oldest := NULL;
        newest := NULL;
        IF pg_catalog.has_table_privilege(r.ring, 'SELECT') THEN
            EXECUTE pg_catalog.format('SELECT count(*), min(%1$I)::timestamptz, max(%1$I)::timestamptz FROM %2$s',
                                      r.time_column, r.ring)
               INTO rows, oldest, newest;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

COMMENT ON FUNCTION fraudstream.ring_stats() IS
'rings with their rows and event time span (NULL where the caller may not read the ring)';

CREATE VIEW fraudstream.rings AS
    SELECT ring, retention, partitions, step, rows, oldest, newest, rotations, rotated_at
      FROM fraudstream.ring_stats();

COMMENT ON VIEW fraudstream.rings IS
'rings: retention, rotation step, rows, oldest and newest event time, rotations';

-- Sources

CREATE FUNCTION fraudstream.create_source(name text, target regclass, brokers text,
                                          topic text, format text DEFAULT 'json',
                                          options jsonb DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'fraudstream_create_source'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION fraudstream.create_source(text, regclass, text, text, text, jsonb) IS
'create a Kafka source: a background worker consumes the topic into the target table';

CREATE FUNCTION fraudstream.drop_source(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'fraudstream_drop_source'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION fraudstream.drop_source(text) IS
'drop a Kafka source: its worker stops and its stored offsets are forgotten';

CREATE FUNCTION fraudstream.pause_source(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'fraudstream_pause_source'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION fraudstream.pause_source(text) IS
'stop a source''s worker, keeping its offsets';

CREATE FUNCTION fraudstream.resume_source(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'fraudstream_resume_source'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION fraudstream.resume_source(text) IS
'restart a paused source from its stored offsets';

CREATE VIEW fraudstream.sources AS
    SELECT c.name, c.target, c.brokers, c.topic, c.format,
           (SELECT coalesce(pg_catalog.jsonb_object_agg(o.key,
                       CASE WHEN o.key ~ '(password|secret)' OR o.key IN ('ssl.key.pem', 'ssl_key', 'sasl.oauthbearer.config')
                            THEN '"********"'::jsonb ELSE o.value END), '{}'::jsonb)
              FROM pg_catalog.jsonb_each(c.options) AS o) AS options,
           c.owner, c.enabled, c.created_at
      FROM fraudstream.source_config c;

COMMENT ON VIEW fraudstream.sources IS
'Kafka sources, with secret settings (passwords, keys) masked';

GRANT SELECT ON fraudstream.sources TO PUBLIC;

CREATE FUNCTION fraudstream.source_kafka_settings(name text, OUT property text, OUT value text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'fraudstream_source_kafka_settings'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;

COMMENT ON FUNCTION fraudstream.source_kafka_settings(text) IS
'the librdkafka consumer settings a source''s worker uses (librdkafka''s defaults, fraudstream''s, the source''s options), secret values masked';

REVOKE ALL ON FUNCTION fraudstream.source_kafka_settings(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fraudstream.source_kafka_settings(text) TO fraudstream_admin;

CREATE FUNCTION fraudstream.source_stats_internal(
    OUT source_id integer, OUT state text, OUT pid integer, OUT messages bigint,
    OUT bytes bigint, OUT rejects bigint, OUT batches bigint,
    OUT last_batch_at timestamptz, OUT lag bigint, OUT partitions jsonb,
    OUT last_error text, OUT last_error_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'fraudstream_source_stats'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

COMMENT ON FUNCTION fraudstream.source_stats_internal() IS
'state and counters of the Kafka workers of this database, from shared memory';

CREATE VIEW fraudstream.source_stats AS
    SELECT c.name AS source,
           CASE WHEN NOT c.enabled THEN 'paused' ELSE coalesce(s.state, 'stopped') END AS state,
           s.pid,
           coalesce(s.messages, 0) AS messages,
           coalesce(s.bytes, 0) AS bytes,
           coalesce(s.rejects, 0) AS rejects,
           coalesce(s.batches, 0) AS batches,
           s.last_batch_at, s.lag, s.partitions, s.last_error, s.last_error_at
      FROM fraudstream.source_config c
      LEFT JOIN fraudstream.source_stats_internal() s ON s.source_id = c.id;

COMMENT ON VIEW fraudstream.source_stats IS
'per source: worker state, messages, bytes, rejects, batches, last batch time, lag per partition, last error';

GRANT SELECT ON fraudstream.source_stats TO PUBLIC;

--
-- Sliding-window features
--


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
    OUT rebuilds bigint,
    OUT summarised_entities bigint,
    OUT memory_bytes bigint)
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
           s.rebuilds, s.summarised_entities, s.memory_bytes
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

CREATE FUNCTION fraudstream.feature_vectors(
    source regclass,
    key_column text,
    order_column text DEFAULT NULL)
RETURNS TABLE (key text, features float8[])
AS 'MODULE_PATHNAME', 'fraudstream_feature_vectors'
LANGUAGE C STABLE PARALLEL RESTRICTED;

COMMENT ON FUNCTION fraudstream.feature_vectors(regclass, text, text) IS
'feature_history as float8 arrays, in the order of fraudstream.feature_names(source)';

CREATE FUNCTION fraudstream.feature_names(source regclass)
RETURNS text[]
AS 'MODULE_PATHNAME', 'fraudstream_feature_names'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;

COMMENT ON FUNCTION fraudstream.feature_names(regclass) IS
'names of the features of a source, in the order of feature_vectors arrays (by name, bytewise)';

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
    DELETE FROM fraudstream.attachments a
     USING pg_catalog.pg_event_trigger_dropped_objects() o
     WHERE o.objid = a.relation::pg_catalog.oid
       AND o.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND o.objsubid = 0;
END
$$;

COMMENT ON FUNCTION fraudstream.drop_orphan_features() IS
'event trigger function: drops the features and attachments of dropped tables';

-- A source altered: its features must still read their columns.
CREATE FUNCTION fraudstream.check_altered_sources()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'fraudstream_check_altered_sources'
LANGUAGE C;

COMMENT ON FUNCTION fraudstream.check_altered_sources() IS
'event trigger function: refuses an ALTER TABLE that leaves a feature or an attachment unable to read or write a column, and reloads the features of an altered source everywhere';

-- ======================================================================
-- Scoring, models and alerts (src/scoring.c, src/model.c,
-- src/modelcatalog.c, src/scorestats.c)
-- ======================================================================

-- Members of fraudstream_reader read scores, alerts, models and their
-- statistics; grant it to the people and services that consume alerts.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'fraudstream_reader') THEN
        CREATE ROLE fraudstream_reader NOLOGIN;
        COMMENT ON ROLE fraudstream_reader IS
        'members read fraudstream scores, alerts and models';
    END IF;
END
$$;

CREATE TABLE fraudstream.models (
    name            text NOT NULL,
    version         integer NOT NULL,
    kind            text NOT NULL,
    threshold       float8 NOT NULL,
    spec            jsonb NOT NULL,
    active          boolean NOT NULL DEFAULT false,
    deployed_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    deployed_by     name NOT NULL DEFAULT CURRENT_USER,
    activated_at    timestamptz,
    PRIMARY KEY (name, version)
);

CREATE UNIQUE INDEX models_one_active ON fraudstream.models (name) WHERE active;

COMMENT ON TABLE fraudstream.models IS
'versioned scoring models; change only through deploy_model and activate_model';

SELECT pg_catalog.pg_extension_config_dump('fraudstream.models', '');

REVOKE ALL ON fraudstream.models FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON fraudstream.models TO fraudstream_admin;
GRANT SELECT ON fraudstream.models TO fraudstream_reader;

CREATE FUNCTION fraudstream.deploy_model(name text, spec jsonb)
RETURNS integer
AS 'MODULE_PATHNAME', 'fraudstream_deploy_model'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION fraudstream.deploy_model(text, jsonb) IS
'validate a model spec and store it as the model''s next version';

CREATE FUNCTION fraudstream.activate_model(name text, version integer)
RETURNS void
AS 'MODULE_PATHNAME', 'fraudstream_activate_model'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION fraudstream.activate_model(text, integer) IS
'make a deployed version the one that scores, from the next row on';

CREATE TABLE fraudstream.attachments (
    relation        regclass PRIMARY KEY,
    key_column      name NOT NULL,
    score_column    name,
    model           text NOT NULL,
    store_scores    boolean NOT NULL,
    attached_at     timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE fraudstream.attachments IS
'tables whose inserted rows are scored; change only through attach and detach';

SELECT pg_catalog.pg_extension_config_dump('fraudstream.attachments', '');

GRANT SELECT ON fraudstream.attachments TO PUBLIC;
GRANT INSERT, DELETE ON fraudstream.attachments TO fraudstream_admin;

CREATE FUNCTION fraudstream.score_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'fraudstream_score_trigger'
LANGUAGE C;

COMMENT ON FUNCTION fraudstream.score_trigger() IS
'BEFORE INSERT row trigger that scores the rows of an attached table';

CREATE FUNCTION fraudstream.attach(
    "table" regclass,
    key_column text,
    score_column text DEFAULT NULL,
    model text DEFAULT NULL,
    store_scores boolean DEFAULT true)
RETURNS void
AS 'MODULE_PATHNAME', 'fraudstream_attach'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION fraudstream.attach(regclass, text, text, text, boolean) IS
'score every row inserted into a table with the active version of a model';

CREATE FUNCTION fraudstream.detach("table" regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'fraudstream_detach'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION fraudstream.detach(regclass) IS
'stop scoring the rows of a table';

CREATE TABLE fraudstream.scores (
    id              bigint GENERATED ALWAYS AS IDENTITY,
    relation        regclass NOT NULL,
    row_key         text,
    score           float8 NOT NULL,
    model           text NOT NULL,
    version         integer NOT NULL,
    features        jsonb NOT NULL,
    reasons         jsonb NOT NULL,
    scored_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);

CREATE INDEX scores_row ON fraudstream.scores (relation, row_key);

COMMENT ON TABLE fraudstream.scores IS
'the score of every row of attached tables with store_scores, with its features and reasons';

CREATE TABLE fraudstream.alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    relation        regclass NOT NULL,
    row_key         text,
    entities        jsonb NOT NULL,
    score           float8 NOT NULL,
    model           text NOT NULL,
    version         integer NOT NULL,
    reasons         jsonb NOT NULL,
    alerted_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);

CREATE INDEX alerts_time ON fraudstream.alerts (alerted_at);

COMMENT ON TABLE fraudstream.alerts IS
'rows that scored at or above their model''s threshold; each was also sent as NOTIFY fraudstream_alerts';

COMMENT ON SEQUENCE fraudstream.scores_id_seq IS 'numbers fraudstream.scores rows';
COMMENT ON SEQUENCE fraudstream.alerts_id_seq IS 'numbers alerts: the alert_id of notifications';

REVOKE ALL ON fraudstream.scores, fraudstream.alerts FROM PUBLIC;
GRANT SELECT ON fraudstream.scores, fraudstream.alerts TO fraudstream_reader;
GRANT SELECT, DELETE ON fraudstream.scores, fraudstream.alerts TO fraudstream_admin;

CREATE FUNCTION fraudstream.model_stats_internal(
    OUT model text,
    OUT version integer,
    OUT rows_scored bigint,
    OUT alerts bigint,
    OUT latency_p50_us float8,
    OUT latency_p99_us float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'fraudstream_model_stats'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

COMMENT ON FUNCTION fraudstream.model_stats_internal() IS
'rows scored, alerts and scoring latency per model version (see the view fraudstream.model_stats)';

REVOKE EXECUTE ON FUNCTION fraudstream.model_stats_internal() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fraudstream.model_stats_internal() TO fraudstream_admin, fraudstream_reader;

CREATE VIEW fraudstream.model_stats AS
    SELECT * FROM fraudstream.model_stats_internal();

COMMENT ON VIEW fraudstream.model_stats IS
'rows scored, alerts and scoring latency per model version since the server started';

REVOKE ALL ON fraudstream.model_stats FROM PUBLIC;
GRANT SELECT ON fraudstream.model_stats TO fraudstream_admin, fraudstream_reader;

REVOKE EXECUTE ON FUNCTION fraudstream.deploy_model(text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION fraudstream.activate_model(text, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION fraudstream.attach(regclass, text, text, text, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION fraudstream.detach(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fraudstream.deploy_model(text, jsonb) TO fraudstream_admin;
GRANT EXECUTE ON FUNCTION fraudstream.activate_model(text, integer) TO fraudstream_admin;
GRANT EXECUTE ON FUNCTION fraudstream.attach(regclass, text, text, text, boolean) TO fraudstream_admin;
GRANT EXECUTE ON FUNCTION fraudstream.detach(regclass) TO fraudstream_admin;

CREATE EVENT TRIGGER fraudstream_drop_orphan_features ON sql_drop
    EXECUTE FUNCTION fraudstream.drop_orphan_features();

CREATE EVENT TRIGGER fraudstream_check_altered_sources ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION fraudstream.check_altered_sources();
