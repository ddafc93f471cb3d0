/*-------------------------------------------------------------------------
 *
 * output.c
 *		Formatting of fs_gen's events as JSON or CSV, and the sinks that
 *		ship them: files (stdout included) or Apache Kafka.
 *
 * One field writer serves both formats, so the JSON and CSV schemas
 * cannot drift apart: each field is written once, by name, and the
 * writer decides whether the name is printed (JSON) or stands in the
 * header line (CSV).  Numbers are formatted by hand from integers
 * (cents, 1e-5 degrees, microseconds): it is several times faster than
 * printf and exact, so the output never depends on floating point.
 *
 * The Kafka sink is a librdkafka producer tuned for throughput without
 * spoiling latency measurements: batches with a 5 ms linger, no
 * compression (on a small machine the CPU, shared with the broker and the
 * consumer, is scarcer than loopback bandwidth); messages are copied into
 * librdkafka's queue and
 * keyed by card_id (transactions) or account_id (clickstream), so that
 * one entity's events stay in one partition and keys spread over all of
 * them.  Delivery reports are served from the caller's thread, by polls
 * while producing and while idle; failures are counted, the first error
 * kept.  Closing flushes, then purges and counts whatever could not be
 * delivered in time.  produced_at_us is stamped just before the event is
 * handed over, when the sink was opened with stamping on.
 *
 * bench/gen/output.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "fs_gen.h"

#define FLUSH_TIMEOUT_MS	60000
#define POLL_EVERY			1000	/* messages between delivery polls */

struct FsSink
{
	FsFormat	format;
	bool		stamp;
	FILE	   *file[2];		/* per FsStream; NULL: not delivered */
	rd_kafka_t *rk;
	rd_kafka_topic_t *topic[2];
	uint64_t	delivered;
	uint64_t	unpolled;
	FsSinkStats stats;
	char		buf[FS_MAX_LINE];
};

/* Wall-clock time, for pacing and produced_at_us. */
FsTime
FsWallClock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (FsTime) ts.tv_sec * FS_USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* ----------------------------------------------------------------
 * Formatting
 * ----------------------------------------------------------------
 */
typedef struct Writer
{
	char	   *p;
	FsFormat	format;
	bool		first;
} Writer;

/* Decimal digits of v at p; returns the end. */
static char *
put_uint(char *p, uint64_t v)
{
	char		tmp[20];
	int			n = 0;

	do
	{
		tmp[n++] = (char) ('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* v / 10^decimals with exactly `decimals` digits after the point. */
static char *
put_fixed(char *p, int64_t v, int decimals)
{
	uint64_t	scale = 1,
				a;

	for (int i = 0; i < decimals; i++)
		scale *= 10;
	if (v < 0)
		*p++ = '-';
	a = v < 0 ? (uint64_t) -v : (uint64_t) v;
	p = put_uint(p, a / scale);
	*p++ = '.';
	for (uint64_t f = a % scale, d = scale / 10; d > 0; d /= 10)
		*p++ = (char) ('0' + f / d % 10);
	return p;
}

/* v in exactly width digits, zero-padded. */
static char *
put_digits(char *p, unsigned v, int width)
{
	for (int i = width - 1; i >= 0; i--, v /= 10)
		p[i] = (char) ('0' + v % 10);
	return p + width;
}

/*
 * ISO 8601 UTC with microseconds, 27 characters.  Days to civil date by
 * Howard Hinnant's algorithm, the date cached since it rarely changes.
 */
size_t
FsFormatTime(char *buf, FsTime t)
{
	static int64_t cached_day = INT64_MIN;
	static char date[11];
	int64_t		secs = t >= 0 ? t / FS_USEC_PER_SEC : (t + 1) / FS_USEC_PER_SEC - 1;
	int64_t		day = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
	int64_t		sod = secs - day * 86400;
	char	   *p = buf;

	if (day != cached_day)
	{
		int64_t		z = day + 719468;
		int64_t		era = (z >= 0 ? z : z - 146096) / 146097;
		unsigned	doe = (unsigned) (z - era * 146097);
		unsigned	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
		unsigned	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
		unsigned	mp = (5 * doy + 2) / 153;
		unsigned	d = doy - (153 * mp + 2) / 5 + 1;
		unsigned	m = mp < 10 ? mp + 3 : mp - 9;
		int64_t		y = (int64_t) yoe + era * 400 + (m <= 2);

		put_digits(date, (unsigned) y, 4);
		date[4] = '-';
		put_digits(date + 5, m, 2);
		date[7] = '-';
		put_digits(date + 8, d, 2);
		date[10] = 'T';
		cached_day = day;
	}
	memcpy(p, date, 11);
	p = put_digits(p + 11, (unsigned) (sod / 3600), 2);
	*p++ = ':';
	p = put_digits(p, (unsigned) (sod / 60 % 60), 2);
	*p++ = ':';
	p = put_digits(p, (unsigned) (sod % 60), 2);
	*p++ = '.';
	p = put_digits(p, (unsigned) (t - secs * FS_USEC_PER_SEC), 6);
	*p++ = 'Z';
	return (size_t) (p - buf);
}

/* Start a field: separator, and in JSON its quoted name. */
static void
field(Writer *w, const char *name, size_t len)
{
	if (!w->first)
		*w->p++ = ',';
	w->first = false;
	if (w->format == FS_FORMAT_JSON)
	{
		*w->p++ = '"';
		memcpy(w->p, name, len);
		w->p += len;
		*w->p++ = '"';
		*w->p++ = ':';
	}
}

#define FIELD(w, name)	field((w), name, sizeof(name) - 1)

/* Strings: quoted in JSON, bare in CSV (none of ours needs quoting). */
static void
quote(Writer *w)
{
	if (w->format == FS_FORMAT_JSON)
		*w->p++ = '"';
}

/* A literal such as true, false, or a string's contents. */
static void
put_word(Writer *w, const char *s)
{
	size_t		len = strlen(s);

	memcpy(w->p, s, len);
	w->p += len;
}

/* JSON null; an empty field in CSV. */
static void
put_null(Writer *w)
{
	if (w->format == FS_FORMAT_JSON)
		put_word(w, "null");
}

/* A string value; ours never need escaping. */
static void
put_string(Writer *w, const char *s)
{
	quote(w);
	put_word(w, s);
	quote(w);
}

/* An IPv4 address in dotted quads, or null for 0. */
static void
put_ip(Writer *w, uint32_t ip)
{
	if (ip == 0)
	{
		put_null(w);
		return;
	}
	quote(w);
	for (int shift = 24; shift >= 0; shift -= 8)
	{
		w->p = put_uint(w->p, (ip >> shift) & 0xff);
		if (shift)
			*w->p++ = '.';
	}
	quote(w);
}

/* A number that may be absent (null). */
static void
put_optional(Writer *w, uint64_t v, bool present)
{
	if (present)
		w->p = put_uint(w->p, v);
	else
		put_null(w);
}

/* The fields both streams end with: place, label, production time. */
static void
put_tail(Writer *w, const FsEvent *ev, FsTime produced_at, const char *kind_field,
		 size_t kind_len, const char *kind)
{
	FIELD(w, "lat");
	w->p = put_fixed(w->p, ev->where.lat, 5);
	FIELD(w, "lon");
	w->p = put_fixed(w->p, ev->where.lon, 5);
	field(w, kind_field, kind_len);
	put_string(w, kind);
	FIELD(w, "is_fraud");
	put_word(w, ev->pattern != FS_LEGIT ? "true" : "false");
	FIELD(w, "fraud_pattern");
	if (ev->pattern != FS_LEGIT)
		put_string(w, FsPatternNames[ev->pattern]);
	else
		put_null(w);
	FIELD(w, "produced_at_us");
	put_optional(w, (uint64_t) produced_at, produced_at > 0);
}

/* Fields both streams share: the id and event time lead... */
static void
put_head(Writer *w, const FsEvent *ev)
{
	if (ev->stream == FS_STREAM_TXN)
		FIELD(w, "txn_id");
	else
		FIELD(w, "event_id");
	w->p = put_uint(w->p, ev->id);
	FIELD(w, "ts");
	quote(w);
	w->p += FsFormatTime(w->p, ev->ts);
	quote(w);
}

/* ... the account and its owner ... */
static void
put_owner(Writer *w, const FsEvent *ev)
{
	FIELD(w, "account_id");
	w->p = put_uint(w->p, ev->customer + 1);
	FIELD(w, "customer_id");
	w->p = put_uint(w->p, ev->customer + 1);
}

/* ... and the device and network, if any. */
static void
put_device(Writer *w, const FsEvent *ev)
{
	FIELD(w, "device_id");
	put_optional(w, ev->device, ev->device != 0);
	FIELD(w, "ip");
	put_ip(w, ev->ip);
}

/*
 * Format one event as a line (with its newline) in buf, which holds
 * FS_MAX_LINE bytes; returns its length.  produced_at <= 0 is null.
 */
size_t
FsFormatEvent(char *buf, FsFormat format, const FsEvent *ev, FsTime produced_at)
{
	Writer		w = {buf, format, true};

	if (format == FS_FORMAT_JSON)
		*w.p++ = '{';
	put_head(&w, ev);
	if (ev->stream == FS_STREAM_TXN)
	{
		char		mcc[5] = {0};

		FIELD(&w, "card_id");
		w.p = put_uint(w.p, ev->card);
		put_owner(&w, ev);
		FIELD(&w, "merchant_id");
		w.p = put_uint(w.p, ev->merchant + 1);
		FIELD(&w, "mcc");
		put_digits(mcc, ev->mcc, 4);
		put_string(&w, mcc);
		FIELD(&w, "amount");
		w.p = put_fixed(w.p, ev->cents, 2);
		FIELD(&w, "currency");
		put_string(&w, "USD");
		put_device(&w, ev);
		put_tail(&w, ev, produced_at, "channel", 7, ev->kind == FS_POS ? "pos" : "ecom");
	}
	else
	{
		put_owner(&w, ev);
		put_device(&w, ev);
		put_tail(&w, ev, produced_at, "type", 4, FsClickTypeNames[ev->kind]);
	}
	if (format == FS_FORMAT_JSON)
		*w.p++ = '}';
	*w.p++ = '\n';
	return (size_t) (w.p - buf);
}

/* The CSV header of a stream: the field names, in the order written. */
const char *
FsCsvHeader(FsStream stream)
{
	if (stream == FS_STREAM_TXN)
		return "txn_id,ts,card_id,account_id,customer_id,merchant_id,mcc,"
			"amount,currency,device_id,ip,lat,lon,channel,is_fraud,"
			"fraud_pattern,produced_at_us\n";
	return "event_id,ts,account_id,customer_id,device_id,ip,lat,lon,type,"
		"is_fraud,fraud_pattern,produced_at_us\n";
}

/* ----------------------------------------------------------------
 * Sinks
 * ----------------------------------------------------------------
 */
static FsSink *
sink_new(FsFormat format, bool stamp)
{
	FsSink	   *sink = calloc(1, sizeof(FsSink));

	if (sink)
	{
		sink->format = format;
		sink->stamp = stamp;
	}
	return sink;
}

/* Open a stream's file ("-": stdout) with a big buffer; CSV gets its header. */
static FILE *
open_output(const char *path, FsFormat format, FsStream stream, char *err, size_t errlen)
{
	FILE	   *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");

	if (!f)
	{
		snprintf(err, errlen, "could not open \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	if (format == FS_FORMAT_CSV)
		fputs(FsCsvHeader(stream), f);
	return f;
}

/*
 * Files: transactions to txn_path, clickstream events to event_path
 * (NULL: not delivered); "-" is stdout.
 */
FsSink *
FsSinkOpenFiles(FsFormat format, const char *txn_path, const char *event_path,
				bool stamp, char *err, size_t errlen)
{
	FsSink	   *sink = sink_new(format, stamp);

	if (!sink)
	{
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (!(sink->file[FS_STREAM_TXN] = open_output(txn_path, format, FS_STREAM_TXN, err, errlen)))
		return NULL;
	if (event_path &&
		!(sink->file[FS_STREAM_CLICK] = open_output(event_path, format, FS_STREAM_CLICK, err, errlen)))
		return NULL;
	return sink;
}

/* Delivery report, served by rd_kafka_poll on our thread. */
static void
delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	FsSink	   *sink = opaque;

	(void) rk;
	if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
		sink->delivered++;
	else if (sink->stats.first_error[0] == '\0')
		snprintf(sink->stats.first_error, sizeof(sink->stats.first_error),
				 "%s", rd_kafka_err2str(msg->err));
}

/* Set one librdkafka property, with librdkafka's own message on error. */
static bool
set_conf(rd_kafka_conf_t *conf, const char *name, const char *value,
		 char *err, size_t errlen)
{
	char		why[256];

	if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK)
	{
		snprintf(err, errlen, "Kafka setting %s=%s: %s", name, value, why);
		return false;
	}
	return true;
}

/*
 * A producer to brokers; props are extra "name=value" librdkafka
 * settings, applied after ours.  event_topic NULL: clickstream not sent.
 */
FsSink *
FsSinkOpenKafka(const char *brokers, const char *txn_topic, const char *event_topic,
				char *const *props, int nprops, bool stamp, char *err, size_t errlen)
{
	static const char *const defaults[][2] = {
		{"client.id", "fs_gen"},
		/* Batches fill within milliseconds at benchmark rates. */
		{"linger.ms", "5"},
		{"batch.num.messages", "10000"},
		{"queue.buffering.max.messages", "1000000"},
		/* Same key, same partition as Java producers. */
		{"partitioner", "murmur2_random"},
	};
	FsSink	   *sink = sink_new(FS_FORMAT_JSON, stamp);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		why[512];

	if (!sink || !conf)
	{
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (!set_conf(conf, "bootstrap.servers", brokers, err, errlen))
		return NULL;
	for (size_t i = 0; i < lengthof(defaults); i++)
		if (!set_conf(conf, defaults[i][0], defaults[i][1], err, errlen))
			return NULL;
	for (int i = 0; i < nprops; i++)
	{
		char		name[256];
		const char *eq = strchr(props[i], '=');

		if (!eq || eq == props[i] || (size_t) (eq - props[i]) >= sizeof(name))
		{
			snprintf(err, errlen, "--kafka-opt wants NAME=VALUE, not \"%s\"", props[i]);
			return NULL;
		}
		memcpy(name, props[i], (size_t) (eq - props[i]));
		name[eq - props[i]] = '\0';
		if (!set_conf(conf, name, eq + 1, err, errlen))
			return NULL;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, delivery_report);
	rd_kafka_conf_set_opaque(conf, sink);
	sink->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
	if (!sink->rk)
	{
		snprintf(err, errlen, "could not create the Kafka producer: %s", why);
		return NULL;
	}
	sink->topic[FS_STREAM_TXN] = rd_kafka_topic_new(sink->rk, txn_topic, NULL);
	if (event_topic)
		sink->topic[FS_STREAM_CLICK] = rd_kafka_topic_new(sink->rk, event_topic, NULL);
	if (!sink->topic[FS_STREAM_TXN] || (event_topic && !sink->topic[FS_STREAM_CLICK]))
	{
		snprintf(err, errlen, "could not create the Kafka topic handles: %s",
				 rd_kafka_err2str(rd_kafka_last_error()));
		return NULL;
	}
	return sink;
}

/* Hand one message to librdkafka, waiting while its queue is full. */
static bool
kafka_produce(FsSink *sink, rd_kafka_topic_t *topic, const char *key,
			  size_t keylen, size_t len)
{
	while (rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
							sink->buf, len, key, keylen, NULL) != 0)
	{
		rd_kafka_resp_err_t err = rd_kafka_last_error();

		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
		{
			sink->stats.failed++;
			if (sink->stats.first_error[0] == '\0')
				snprintf(sink->stats.first_error, sizeof(sink->stats.first_error),
						 "%s", rd_kafka_err2str(err));
			return false;
		}
		rd_kafka_poll(sink->rk, 10);
	}
	if (++sink->unpolled >= POLL_EVERY)
	{
		rd_kafka_poll(sink->rk, 0);
		sink->unpolled = 0;
	}
	return true;
}

/*
 * Deliver one event to its stream's destination, if it has one.  False
 * if it could not be handed over (counted as failed).
 */
bool
FsSinkEmit(FsSink *sink, const FsEvent *ev)
{
	size_t		len;

	if (!sink->file[ev->stream] && !sink->topic[ev->stream])
		return true;
	len = FsFormatEvent(sink->buf, sink->format, ev,
						sink->stamp ? FsWallClock() : 0);
	if (sink->rk)
	{
		char		key[20];
		char	   *end = put_uint(key, ev->stream == FS_STREAM_TXN ?
								   ev->card : ev->customer + 1);

		/* A message is the JSON object alone, without the line's newline. */
		if (!kafka_produce(sink, sink->topic[ev->stream], key, (size_t) (end - key), len - 1))
			return false;
	}
	else
		fwrite(sink->buf, 1, len, sink->file[ev->stream]);
	sink->stats.sent[ev->stream]++;
	return true;
}

/*
 * Nothing to send for usec: serve delivery reports meanwhile, or make
 * what was written visible to a reader downstream.
 */
void
FsSinkIdle(FsSink *sink, FsTime usec)
{
	if (sink->rk && usec >= 1000)
		rd_kafka_poll(sink->rk, (int) (usec / 1000));
	else
	{
		struct timespec ts = {(time_t) (usec / FS_USEC_PER_SEC),
		(long) (usec % FS_USEC_PER_SEC) * 1000};

		for (int s = 0; s < 2; s++)
			if (sink->file[s])
				fflush(sink->file[s]);
		nanosleep(&ts, NULL);
	}
}

/*
 * Flush and close; stats gets what was sent and how much failed: write
 * errors, or messages not delivered within FLUSH_TIMEOUT_MS.
 */
void
FsSinkClose(FsSink *sink, FsSinkStats *stats)
{
	if (sink->rk)
	{
		uint64_t	handed = sink->stats.sent[0] + sink->stats.sent[1];

		rd_kafka_flush(sink->rk, FLUSH_TIMEOUT_MS);
		rd_kafka_purge(sink->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(sink->rk, 0);
		sink->stats.failed += handed - sink->delivered;
		for (int s = 0; s < 2; s++)
			if (sink->topic[s])
				rd_kafka_topic_destroy(sink->topic[s]);
		rd_kafka_destroy(sink->rk);
	}
	for (int s = 0; s < 2; s++)
	{
		FILE	   *f = sink->file[s];

		if (!f || (s == 1 && f == sink->file[0]))
			continue;
		if (fflush(f) != 0 || ferror(f))
		{
			sink->stats.failed++;
			snprintf(sink->stats.first_error, sizeof(sink->stats.first_error),
					 "write error: %s", strerror(errno));
		}
		if (f != stdout)
			fclose(f);
	}
	*stats = sink->stats;
	free(sink);
}
