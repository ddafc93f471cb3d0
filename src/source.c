/*-------------------------------------------------------------------------
 *
 * source.c
 *		SQL functions that manage Kafka sources: create_source,
 *		drop_source, pause_source, resume_source, and
 *		source_kafka_settings, which shows what a source's worker uses.
 *
 * A source is a row of fraudstream.source_config.  The functions run as
 * the calling role (not SECURITY DEFINER): managing sources and rings
 * needs membership in fraudstream_admin, which is granted the catalog
 * privileges they use, and the caller becomes the source's owner, the
 * role its worker writes as.  create_source checks everything it can
 * before storing the row, the librdkafka settings included, so that a
 * source that is accepted can run.  Each function wakes the launcher at
 * commit, so the change takes effect at once.
 *
 * Locking: the catalog rows are locked by the statements that change
 * them; concurrent calls for the same name serialize on its primary key.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "fraudstream.h"
#include "decode.h"
#include "kafka.h"
#include "launcher.h"
#include "source.h"
#include "stats.h"

PG_FUNCTION_INFO_V1(fraudstream_create_source);
PG_FUNCTION_INFO_V1(fraudstream_drop_source);
PG_FUNCTION_INFO_V1(fraudstream_pause_source);
PG_FUNCTION_INFO_V1(fraudstream_resume_source);
PG_FUNCTION_INFO_V1(fraudstream_source_kafka_settings);

static bool wake_registered = false;

/*
 * Error unless the current user is a superuser or has the privileges of
 * fraudstream_admin.  "action" completes "permission denied to ...".
 */
void
FsRequireAdmin(const char *action)
{
	Oid			admin = get_role_oid(FS_ADMIN_ROLE, true);

	if (superuser() || (OidIsValid(admin) && has_privs_of_role(GetUserId(), admin)))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s", action),
			 errdetail("Only members of role \"%s\" manage fraudstream's sources and rings.",
					   FS_ADMIN_ROLE),
			 errhint("Ask an administrator to GRANT %s TO your role.", FS_ADMIN_ROLE)));
}

static void
wake_at_commit(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT)
		FsStatsWakeLauncher();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		UnregisterXactCallback(wake_at_commit, NULL);
		wake_registered = false;
	}
}

/* Set the launcher's latch when the current transaction commits. */
void
FsWakeLauncherAtCommit(void)
{
	if (!FsLoadedAtStartup || wake_registered)
		return;
	RegisterXactCallback(wake_at_commit, NULL);
	wake_registered = true;
}

/* Sources run only in the launcher's database: say so elsewhere. */
static void
warn_if_not_served(const char *name)
{
	char	   *db = get_database_name(MyDatabaseId);

	if (!FsLoadedAtStartup)
		ereport(WARNING,
				(errmsg("source \"%s\" will not run: fraudstream is not preloaded", name),
				 errhint("Add 'fraudstream' to shared_preload_libraries and restart the server.")));
	else if (FsDatabase == NULL || strcmp(db, FsDatabase) != 0)
		ereport(WARNING,
				(errmsg("source \"%s\" will not run in database \"%s\"", name, db),
				 errdetail("fraudstream runs the sources of database \"%s\" (fraudstream.database).",
						   FsDatabase ? FsDatabase : ""),
				 errhint("Create sources in that database, or set fraudstream.database and restart the server.")));
}

static void
check_name(const char *name)
{
	size_t		len = strlen(name);

	if (len == 0 || len >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid source name \"%s\"", name),
				 errdetail("A source name has 1 to %d characters.", NAMEDATALEN - 1)));
	for (const char *p = name; *p; p++)
		if (!(isalnum((unsigned char) *p) || *p == '_' || *p == '-' || *p == '.'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("invalid source name \"%s\"", name),
					 errdetail("A source name consists of letters, digits, '_', '-' and '.'."),
					 errhint("It becomes part of the Kafka consumer group id.")));
}

/*
 * fraudstream.create_source(name, target, brokers, topic, format, options)
 */
Datum
fraudstream_create_source(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			target = PG_GETARG_OID(1);
	char	   *brokers = text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *topic = text_to_cstring(PG_GETARG_TEXT_PP(3));
	char	   *format = text_to_cstring(PG_GETARG_TEXT_PP(4));
	Jsonb	   *options = PG_GETARG_JSONB_P(5);
	FsSourceOptions opts;
	FsFormat	fmt;
	Relation	rel;
	char	   *group_id;
	Datum		args[7];
	Oid			argtypes[7] = {TEXTOID, OIDOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, OIDOID};
	Datum		namearg;
	Oid			nametype = TEXTOID;

	FsRequireAdmin("create a source");
	check_name(name);

	if (strcmp(format, "json") == 0)
		fmt = FS_FORMAT_JSON;
	else if (strcmp(format, "csv") == 0)
		fmt = FS_FORMAT_CSV;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown source format \"%s\"", format),
				 errhint("The format is 'json' or 'csv'.")));

	if (brokers[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("brokers must not be empty"),
				 errhint("Give a comma-separated list of host:port, e.g. 'kafka1:9092,kafka2:9092'.")));
	if (topic[0] == '\0' || strlen(topic) > 249 ||
		strspn(topic, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(topic))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid Kafka topic name \"%s\"", topic),
				 errdetail("Topic names have 1 to 249 characters among letters, digits, '.', '_' and '-'.")));

	/* the target: a table the caller may insert into */
	rel = table_open(target, AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("target \"%s\" of a source must be a table", RelationGetRelationName(rel)),
				 errhint("Use a ring (fraudstream.create_ring) or an ordinary table.")));
	if (pg_class_aclcheck(target, GetUserId(), ACL_INSERT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", RelationGetRelationName(rel)),
				 errdetail("The source's worker inserts as the role that creates the source."),
				 errhint("Grant INSERT on the table to that role.")));

	/* options: shape, columns they name, librdkafka settings */
	FsParseSourceOptions(options, &opts);
	if (opts.columns != NIL && fmt != FS_FORMAT_CSV)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source option \"columns\" applies to format csv only"),
				 errhint("JSON fields map to columns by name.")));
	(void) FsDecoderCreate(rel, fmt, &opts);
	table_close(rel, AccessShareLock);

	group_id = FsSourceGroupId(name);
	FsKafkaValidate(brokers, group_id, &opts);

	SPI_connect();
	namearg = CStringGetTextDatum(name);
	if (SPI_execute_with_args("SELECT 1 FROM fraudstream.source_config WHERE name = $1",
							  1, &nametype, &namearg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read fraudstream.source_config");
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("source \"%s\" already exists", name),
				 errhint("Drop it first with fraudstream.drop_source(), or choose another name.")));

	args[0] = namearg;
	args[1] = ObjectIdGetDatum(target);
	args[2] = CStringGetTextDatum(brokers);
	args[3] = CStringGetTextDatum(topic);
	args[4] = CStringGetTextDatum(format);
	args[5] = JsonbPGetDatum(options);
	args[6] = ObjectIdGetDatum(GetUserId());
	if (SPI_execute_with_args("INSERT INTO fraudstream.source_config "
							  "(name, target, brokers, topic, format, options, owner) "
							  "VALUES ($1, $2, $3, $4, $5, $6, $7)",
							  7, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into fraudstream.source_config");
	SPI_finish();

	warn_if_not_served(name);
	FsWakeLauncherAtCommit();
	PG_RETURN_VOID();
}

/* The Kafka consumer group of a source's worker. */
char *
FsSourceGroupId(const char *name)
{
	return psprintf("fraudstream-%s-%s", get_database_name(MyDatabaseId), name);
}

/*
 * The librdkafka configuration of a source's consumer, as its worker
 * creates it (FsKafkaConsumerConf with the source's client id and its
 * group, FsSourceGroupId, which the caller computes: that reads the
 * catalog); an ERROR names the setting librdkafka refused.
 */
rd_kafka_conf_t *
FsSourceConsumerConf(const char *name, const char *group_id, const char *brokers,
					 FsSourceOptions *opts)
{
	char		errstr[512];
	char	   *bad_name = NULL;
	rd_kafka_conf_t *conf;

	errstr[0] = '\0';
	conf = FsKafkaConsumerConf(brokers, group_id, psprintf("fraudstream-%s", name),
							   opts, errstr, sizeof(errstr), &bad_name);
	if (conf == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid Kafka setting \"%s\" for source \"%s\"",
						bad_name ? bad_name : "?", name),
				 errdetail("librdkafka: %s", errstr)));
	return conf;
}

/* Error that names a source nobody has. */
static void
no_such_source(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("source \"%s\" does not exist", name),
			 errhint("fraudstream.sources lists the existing sources.")));
}

/* Run "sql" with the source name as $1; error if no source has it. */
static void
change_source(const char *name, const char *sql, int expected)
{
	Datum		arg = CStringGetTextDatum(name);
	Oid			argtype = TEXTOID;
	int			rc;

	SPI_connect();
	rc = SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, false, 0);
	if (rc != expected)
		elog(ERROR, "could not change fraudstream.source_config (%d)", rc);
	if (SPI_processed == 0)
		no_such_source(name);
	SPI_finish();
	FsWakeLauncherAtCommit();
}

/* fraudstream.drop_source(name): stop its worker, forget its offsets. */
Datum
fraudstream_drop_source(PG_FUNCTION_ARGS)
{
	FsRequireAdmin("drop a source");
	change_source(text_to_cstring(PG_GETARG_TEXT_PP(0)),
				  "DELETE FROM fraudstream.source_config WHERE name = $1", SPI_OK_DELETE);
	PG_RETURN_VOID();
}

/* fraudstream.pause_source(name): stop its worker, keep its offsets. */
Datum
fraudstream_pause_source(PG_FUNCTION_ARGS)
{
	FsRequireAdmin("pause a source");
	change_source(text_to_cstring(PG_GETARG_TEXT_PP(0)),
				  "UPDATE fraudstream.source_config SET enabled = false WHERE name = $1",
				  SPI_OK_UPDATE);
	PG_RETURN_VOID();
}

/* fraudstream.resume_source(name): run it again from its offsets. */
Datum
fraudstream_resume_source(PG_FUNCTION_ARGS)
{
	FsRequireAdmin("resume a source");
	change_source(text_to_cstring(PG_GETARG_TEXT_PP(0)),
				  "UPDATE fraudstream.source_config SET enabled = true WHERE name = $1",
				  SPI_OK_UPDATE);
	PG_RETURN_VOID();
}

/* Add librdkafka's "name", "value" pairs to a result, secrets masked. */
static void
put_settings(ReturnSetInfo *rsinfo, const char **pairs, size_t count)
{
	for (size_t i = 0; i + 1 < count; i += 2)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(pairs[i]);
		values[1] = CStringGetTextDatum(FsIsSecretSetting(pairs[i]) ? "********" : pairs[i + 1]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * fraudstream.source_kafka_settings(name): every librdkafka property of
 * the consumer the source's worker creates, with its value: librdkafka's
 * defaults, fraudstream's, the source's options and the settings
 * fraudstream owns, as the worker will apply them (global properties, then
 * topic properties); secret values are masked.
 */
Datum
fraudstream_source_kafka_settings(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		arg = CStringGetTextDatum(name);
	Oid			argtype = TEXTOID;
	FsSourceOptions opts;
	char	   *brokers;
	bool		isnull;
	rd_kafka_conf_t *conf;
	rd_kafka_topic_conf_t *topic_conf;
	const char **pairs;
	size_t		count;

	FsRequireAdmin("read the Kafka settings of a source");
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	if (SPI_execute_with_args("SELECT brokers, options FROM fraudstream.source_config WHERE name = $1",
							  1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read fraudstream.source_config");
	if (SPI_processed == 0)
		no_such_source(name);
	brokers = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	FsParseSourceOptions(DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 2, &isnull)),
						 &opts);
	conf = FsSourceConsumerConf(name, FsSourceGroupId(name), brokers, &opts);
	pairs = rd_kafka_conf_dump(conf, &count);
	put_settings(rsinfo, pairs, count);
	rd_kafka_conf_dump_free(pairs, count);
	topic_conf = rd_kafka_conf_get_default_topic_conf(conf);
	if (topic_conf != NULL)
	{
		pairs = rd_kafka_topic_conf_dump(topic_conf, &count);
		put_settings(rsinfo, pairs, count);
		rd_kafka_conf_dump_free(pairs, count);
	}
	rd_kafka_conf_destroy(conf);
	SPI_finish();
	return (Datum) 0;
}
