/*-------------------------------------------------------------------------
 *
 * kafka.c
 *		librdkafka configuration of fraudstream's sources: the options
 *		jsonb of create_source, the consumer settings fraudstream imposes,
 *		and their validation with librdkafka's own messages.
 *
 * A source's options mix two kinds of keys.  Those without a dot that
 * fraudstream knows (start, columns, delimiter, *_column) configure the
 * decoding and the start position; every other key is a librdkafka
 * configuration property and is passed through verbatim, SASL and SSL
 * settings included.  A few properties are owned by fraudstream because
 * exactly-once delivery depends on them (offsets are stored in PostgreSQL,
 * never committed automatically) and are refused.  Validation creates the
 * same configuration the worker will use and a consumer handle from it,
 * so an invalid setting fails create_source with the message librdkafka
 * would give the worker.
 *
 * Locking: none; everything here is process-local.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "fraudstream.h"
#include "kafka.h"

int			FsQueueMaxKbytes = 16384;

/*
 * How a worker fetches.  With librdkafka's defaults (fetch.min.bytes 1,
 * fetch.wait.max.ms 500) the broker answers a fetch as soon as one message
 * is there, so a busy topic is fetched in many small requests, each one
 * work for the broker, which on a small machine shares the cores with
 * PostgreSQL.  Waiting for 100 KB (a few hundred messages) or at most
 * 10 ms makes the requests few and large when busy, for at most 10 ms more
 * latency when quiet.  A source's options may set either.
 */
#define FS_FETCH_MIN_BYTES		"100000"
#define FS_FETCH_WAIT_MAX_MS	"10"

/*
 * fraudstream's values for librdkafka properties, set only when the
 * source's options do not set them.
 */
static const char *const unless_set[][2] = {
	{"topic.metadata.refresh.interval.ms", "10000"},
	{"reconnect.backoff.max.ms", "2000"},
	/* fetches of a busy topic: see FS_FETCH_MIN_BYTES */
	{"fetch.min.bytes", FS_FETCH_MIN_BYTES},
	{"fetch.wait.max.ms", FS_FETCH_WAIT_MAX_MS},
};

/* Properties fraudstream sets itself; a source may not override them. */
static const char *const owned_settings[] = {
	"bootstrap.servers",
	"metadata.broker.list",
	"enable.auto.commit",
	"enable.auto.offset.store",
	"enable.partition.eof",
	"log.queue",
	NULL
};

/*
 * Define the librdkafka-related GUCs.  The queue cap applies when a worker
 * starts, so a reload takes effect at the next worker restart.
 *
 * The cap is the only bound on the queue (queued.min.messages is set to
 * librdkafka's maximum), and its default holds more than a second of a
 * busy worker's messages.  That matters: once the queue reaches its bound,
 * librdkafka (before 2.1) fetches again only when its broker thread next
 * wakes up, which can be a second later.  A queue that a worker drains in
 * less than that leaves the worker idle until then; a 16MB queue cost a
 * third of the ingest rate.
 */
void
FsKafkaInit(void)
{
	DefineCustomIntVariable("fraudstream.queue_max_kbytes",
							"Maximum kilobytes of fetched Kafka messages a worker queues ahead of PostgreSQL.",
							"Bounds each worker's memory (librdkafka's queued.max.messages.kbytes). Applies when a worker starts.",
							&FsQueueMaxKbytes,
							65536, 1024, 2097151,
							PGC_SIGHUP, GUC_UNIT_KB,
							NULL, NULL, NULL);
}

/* Text of a jsonb scalar, or NULL for JSON null and containers. */
static char *
scalar_text(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return NULL;
	}
}

static void
bad_option(const char *key, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid source option \"%s\"", key),
			 errdetail("%s", detail),
			 errhint("Options are a JSON object of librdkafka settings and the keys start, columns, delimiter, partition_column, offset_column, timestamp_column and key_column.")));
}

/* The array of column names of the "columns" option. */
static List *
parse_columns(JsonbValue *v)
{
	List	   *result = NIL;
	JsonbIterator *it;
	JsonbValue	elem;
	JsonbIteratorToken r;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		bad_option("columns", "The value must be an array of column names.");
	it = JsonbIteratorInit(v->val.binary.data);
	while ((r = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		if (r != WJB_ELEM)
			continue;
		if (elem.type != jbvString)
			bad_option("columns", "Every element must be a column name (a string).");
		result = lappend(result, pnstrdup(elem.val.string.val, elem.val.string.len));
	}
	if (result == NIL)
		bad_option("columns", "The array must name at least one column.");
	return result;
}

/*
 * Split a source's options into fraudstream's keys and librdkafka
 * settings.  Only the shape is checked here; FsKafkaValidate checks the
 * librdkafka settings and the caller checks column names.
 */
void
FsParseSourceOptions(Jsonb *options, FsSourceOptions *out)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	char	   *key = NULL;

	memset(out, 0, sizeof(*out));
	out->delimiter = ',';
	if (options == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source options must be a JSON object"),
				 errhint("Pass for example '{\"start\": \"earliest\", \"fetch.wait.max.ms\": 100}'.")));

	it = JsonbIteratorInit(&options->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *text;

		if (r == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (r != WJB_VALUE)
			continue;

		if (strcmp(key, "columns") == 0)
		{
			out->columns = parse_columns(&v);
			continue;
		}
		text = scalar_text(&v);
		if (text == NULL)
			bad_option(key, "The value must be a string, a number or a boolean.");

		if (strcmp(key, "start") == 0)
		{
			int64		ms;

			(void) FsParseStart(text, &ms);
			out->start = text;
		}
		else if (strcmp(key, "delimiter") == 0)
		{
			if (strlen(text) != 1 || text[0] == '"' || text[0] == '\n' || text[0] == '\r')
				bad_option(key, "The delimiter must be one character other than a quote or a line break.");
			out->delimiter = text[0];
		}
		else if (strcmp(key, "partition_column") == 0)
			out->partition_column = text;
		else if (strcmp(key, "offset_column") == 0)
			out->offset_column = text;
		else if (strcmp(key, "timestamp_column") == 0)
			out->timestamp_column = text;
		else if (strcmp(key, "key_column") == 0)
			out->key_column = text;
		else
		{
			for (int i = 0; owned_settings[i]; i++)
				if (strcmp(key, owned_settings[i]) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("Kafka setting \"%s\" cannot be set for a source", key),
							 errdetail("fraudstream sets it itself: brokers come from the brokers argument, and offsets are stored in PostgreSQL in the transaction that writes the rows."),
							 errhint("Remove \"%s\" from the options.", key)));
			out->kafka_names = lappend(out->kafka_names, key);
			out->kafka_values = lappend(out->kafka_values, text);
		}
	}
}

/*
 * Parse the "start" option: earliest, latest, or a timestamptz literal
 * (returned as milliseconds since the Unix epoch, as Kafka counts).
 */
FsStartKind
FsParseStart(const char *start, int64 *time_ms)
{
	Datum		ts;

	*time_ms = 0;
	if (start == NULL || pg_strcasecmp(start, "earliest") == 0)
		return FS_START_EARLIEST;
	if (pg_strcasecmp(start, "latest") == 0)
		return FS_START_LATEST;

	PG_TRY();
	{
		ts = DirectFunctionCall3(timestamptz_in, CStringGetDatum(start),
								 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	}
	PG_CATCH();
	{
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid source option \"start\": \"%s\"", start),
				 errdetail("start is \"earliest\", \"latest\" or a timestamp."),
				 errhint("For example '{\"start\": \"2024-01-31 12:00:00+00\"}'.")));
	}
	PG_END_TRY();
	*time_ms = (DatumGetTimestampTz(ts) / 1000) +
		((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000);
	return FS_START_TIME;
}

/*
 * Settings whose values are secrets: hidden by the fraudstream.sources
 * view and never logged.  Keep in step with that view's definition.
 */
bool
FsIsSecretSetting(const char *name)
{
	return strstr(name, "password") != NULL ||
		strstr(name, "secret") != NULL ||
		strcmp(name, "ssl.key.pem") == 0 ||
		strcmp(name, "ssl_key") == 0 ||
		strcmp(name, "sasl.oauthbearer.config") == 0;
}

/* Set one property; on failure report which one. */
static bool
conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
		 char *errstr, size_t errstr_size, char **bad_name)
{
	if (rd_kafka_conf_set(conf, name, value, errstr, errstr_size) != RD_KAFKA_CONF_OK)
	{
		if (bad_name)
			*bad_name = pstrdup(name);
		return false;
	}
	return true;
}

/* Whether the source's options set a property themselves. */
static bool
user_sets(FsSourceOptions *opts, const char *name)
{
	ListCell   *lc;

	foreach(lc, opts->kafka_names)
		if (strcmp((char *) lfirst(lc), name) == 0)
			return true;
	return false;
}

/*
 * The consumer configuration of a source: fraudstream's defaults, then the
 * source's own settings, then the settings exactly-once depends on.
 * Returns NULL with librdkafka's message in errstr (and the property in
 * *bad_name) when a setting is refused.
 */
rd_kafka_conf_t *
FsKafkaConsumerConf(const char *brokers, const char *group_id,
					const char *client_id, FsSourceOptions *opts,
					char *errstr, size_t errstr_size, char **bad_name)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		kbytes[32];
	ListCell   *ln,
			   *lv;

	snprintf(kbytes, sizeof(kbytes), "%d", FsQueueMaxKbytes);
	if (bad_name)
		*bad_name = NULL;

	/* defaults a source may override */
	if (!conf_set(conf, "group.id", group_id, errstr, errstr_size, bad_name) ||
		!conf_set(conf, "client.id", client_id, errstr, errstr_size, bad_name) ||
		!conf_set(conf, "queued.max.messages.kbytes", kbytes, errstr, errstr_size, bad_name) ||
		!conf_set(conf, "queued.min.messages", "10000000", errstr, errstr_size, bad_name) ||
		!conf_set(conf, "auto.offset.reset", "earliest", errstr, errstr_size, bad_name) ||
		!conf_set(conf, "session.timeout.ms", "10000", errstr, errstr_size, bad_name) ||
		!conf_set(conf, "statistics.interval.ms", "1000", errstr, errstr_size, bad_name))
		goto fail;
	for (size_t i = 0; i < lengthof(unless_set); i++)
		if (!user_sets(opts, unless_set[i][0]) &&
			!conf_set(conf, unless_set[i][0], unless_set[i][1], errstr, errstr_size, bad_name))
			goto fail;

	forboth(ln, opts->kafka_names, lv, opts->kafka_values)
	{
		if (!conf_set(conf, lfirst(ln), lfirst(lv), errstr, errstr_size, bad_name))
			goto fail;
	}

	/* what exactly-once delivery depends on */
	if (!conf_set(conf, "bootstrap.servers", brokers, errstr, errstr_size, bad_name) ||
		!conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size, bad_name) ||
		!conf_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size, bad_name) ||
		!conf_set(conf, "enable.partition.eof", "false", errstr, errstr_size, bad_name) ||
		!conf_set(conf, "log.queue", "true", errstr, errstr_size, bad_name))
		goto fail;
	return conf;

fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/*
 * Check a source's librdkafka settings as the worker will use them: each
 * property, then the whole configuration by creating (and at once
 * destroying) a consumer, which catches e.g. unsupported SASL mechanisms
 * and unreadable SSL files.  Errors carry librdkafka's message.
 */
void
FsKafkaValidate(const char *brokers, const char *group_id, FsSourceOptions *opts)
{
	char		errstr[512];
	char	   *bad_name = NULL;
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;

	errstr[0] = '\0';
	conf = FsKafkaConsumerConf(brokers, group_id, "fraudstream-validate", opts,
							   errstr, sizeof(errstr), &bad_name);
	if (conf == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid Kafka setting \"%s\"", bad_name ? bad_name : "?"),
				 errdetail("librdkafka: %s", errstr),
				 errhint("See librdkafka's CONFIGURATION.md for the consumer properties and their values.")));

	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid Kafka configuration for a source"),
				 errdetail("librdkafka: %s", errstr),
				 errhint("See librdkafka's CONFIGURATION.md for the consumer properties and their values.")));
	}
	rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}
