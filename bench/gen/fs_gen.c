/*-------------------------------------------------------------------------
 *
 * fs_gen.c
 *		fs_gen, fraudstream's synthetic fraud stream generator: command
 *		line, pacing of the run, and the summary.
 *
 * fs_gen produces realistic card transactions of a simulated population,
 * with labelled injected fraud, and a second stream of clickstream and
 * login events; to Kafka (JSON), or to stdout and files (JSON lines or
 * CSV).  See bench/gen/README.md for the schemas and the patterns, and
 * usage() below for the options.
 *
 * Time: in simulated event time (the default) events are stamped by the
 * simulation from --start on, so the output depends only on the seed and
 * the options; --rate then only throttles how fast they are written.
 * With --event-time now the simulation runs on the wall clock: the run
 * starts now and events are stamped with the real time at sending.  There
 * --rate also sets the simulated population's own transaction rate, and
 * without it events go out when their simulated time comes.
 *
 * --rate paces by count: the n-th transaction goes out n / rate seconds
 * after the first event (clickstream events in between go out as they
 * come), so the rate holds exactly even while the simulated population
 * settles.  Pacing sleeps only when more than PACE_SLACK_US ahead, so a
 * paced run sends in small bursts of about a millisecond rather than
 * calling the kernel per event.  Building the world and the simulation's
 * preroll happen before the first event and are reported apart.
 *
 * Exit status: 0 on success, 1 if any event could not be delivered or
 * written, 2 on bad usage.
 *
 * bench/gen/fs_gen.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs_gen.h"

#define PACE_SLACK_US		1000
#define MAX_KAFKA_OPTS		64
#define DEFAULT_START		INT64_C(1767225600)	/* 2026-01-01T00:00:00Z */

typedef struct Options
{
	uint64_t	seed;
	uint64_t	count;			/* transactions; 0: unlimited */
	double		duration;		/* wall-clock seconds; 0: unlimited */
	double		rate;			/* transactions/s; 0: unthrottled */
	bool		now;			/* --event-time now */
	FsTime		start;
	FsWorldConfig world;
	double		fraud_rate;
	bool		patterns[FS_NPATTERNS];
	double		out_of_order;
	double		max_lateness;
	const char *output;
	const char *txn_file;
	const char *event_file;
	const char *brokers;
	const char *txn_topic;
	const char *event_topic;
	bool		no_events;
	char	   *kafka_opts[MAX_KAFKA_OPTS];
	int			nkafka_opts;
	int			stamp;			/* -1: by output */
} Options;

static volatile sig_atomic_t interrupted = 0;

/* The first SIGINT or SIGTERM stops the run cleanly; a second one kills. */
static void
on_signal(int sig)
{
	interrupted = 1;
	signal(sig, SIG_DFL);
}

/* --help, and the reference for every option. */
static void
usage(FILE *f)
{
	fprintf(f,
			"fs_gen: synthetic card transactions with labelled fraud, and clickstream events\n"
			"\n"
			"Usage: fs_gen [OPTION]...\n"
			"\n"
			"What and how much:\n"
			"  --seed N              PRNG seed (default 1)\n"
			"  --count N             stop after N transactions, clickstream events not counted\n"
			"                        (default: no limit)\n"
			"  --duration S          stop after S seconds of sending (start-up not counted)\n"
			"  --customers N         customers (default 10000; at least 100)\n"
			"  --merchants N         merchants (default 2000; at least 100)\n"
			"  --txn-per-day X       mean legitimate transactions per customer per day (default 4)\n"
			"  --fraud-rate F        share of transactions that are fraud, 0 to 0.5 (default 0.005)\n"
			"  --patterns LIST       comma-separated fraud patterns to inject (default all):\n"
			"                        card_testing, account_takeover, impossible_travel,\n"
			"                        amount_spike, merchant_collusion\n"
			"  --out-of-order F      share of events delivered late, 0 to 1 (default 0)\n"
			"  --max-lateness S      how late at most, seconds (default 60)\n"
			"\n"
			"Time:\n"
			"  --event-time sim|now  simulated event time (default), or the wall clock\n"
			"  --start TIME          simulated start, YYYY-MM-DD[THH:MM:SS[Z]] or epoch seconds\n"
			"                        (default 2026-01-01T00:00:00Z)\n"
			"  --rate N              transactions per second of wall-clock time (default: as fast\n"
			"                        as possible); with --event-time now, the population's rate\n"
			"\n"
			"Output:\n"
			"  --output json|csv|kafka   (default json)\n"
			"  --txn-file PATH       json/csv: transactions to PATH (default -, stdout)\n"
			"  --event-file PATH     json/csv: clickstream events to PATH (default: not written)\n"
			"  --brokers HOST:PORT   kafka: bootstrap servers\n"
			"  --txn-topic NAME      kafka: transactions topic (default fs_transactions)\n"
			"  --event-topic NAME    kafka: clickstream topic (default fs_clickstream)\n"
			"  --no-events           kafka: do not send clickstream events\n"
			"  --kafka-opt K=V       kafka: extra librdkafka producer setting (repeatable)\n"
			"  --produced-at yes|no  stamp produced_at_us (default: yes for kafka, else no)\n"
			"\n"
			"A summary goes to stderr at the end.  Exit status 1 if any event failed.\n");
}

/* Report bad usage, point at --help and exit 2. */
static void
die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "fs_gen: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry \"fs_gen --help\".\n");
	exit(2);
}

/* A number within [lo, hi], or exit with a usage error. */
static double
parse_number(const char *opt, const char *arg, double lo, double hi)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno != 0 || end == arg || *end != '\0' || !(v >= lo && v <= hi))
	{
		char		msg[160];

		snprintf(msg, sizeof(msg), "%s wants a number from %g to %g, not \"%%s\"", opt, lo, hi);
		die_usage(msg, arg);
	}
	return v;
}

/* A whole number within [lo, hi], or exit with a usage error. */
static uint64_t
parse_count(const char *opt, const char *arg, uint64_t lo, uint64_t hi)
{
	char	   *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' || v < lo || v > hi)
	{
		char		msg[160];

		snprintf(msg, sizeof(msg), "%s wants a whole number from %llu to %llu, not \"%%s\"",
				 opt, (unsigned long long) lo, (unsigned long long) hi);
		die_usage(msg, arg);
	}
	return (uint64_t) v;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t		era;
	unsigned	yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned) (y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t) doe - 719468;
}

/* --start: a date, a date and time (UTC), or epoch seconds. */
static FsTime
parse_start(const char *arg)
{
	int			y,
				mo,
				d,
				h = 0,
				mi = 0,
				s = 0,
				used = 0;
	char	   *end;
	long long	epoch;

	if (sscanf(arg, "%4d-%2d-%2d%n", &y, &mo, &d, &used) == 3)
	{
		const char *rest = arg + used;
		int			more = 0;

		if (*rest == 'T' && sscanf(rest, "T%2d:%2d:%2d%n", &h, &mi, &s, &more) == 3)
			rest += more;
		if (*rest == 'Z')
			rest++;
		if (*rest == '\0' && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 &&
			h < 24 && mi < 60 && s < 60)
			return ((days_from_civil(y, (unsigned) mo, (unsigned) d) * 86400) +
					h * 3600 + mi * 60 + s) * FS_USEC_PER_SEC;
	}
	errno = 0;
	epoch = strtoll(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0')
		die_usage("--start wants YYYY-MM-DD[THH:MM:SS[Z]] or epoch seconds, not \"%s\"", arg);
	return (FsTime) epoch * FS_USEC_PER_SEC;
}

/* --patterns: names separated by commas, or "all". */
static void
parse_patterns(Options *o, const char *arg)
{
	char	   *copy = strdup(arg);
	char	   *save = NULL;

	memset(o->patterns, 0, sizeof(o->patterns));
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		int			p;

		for (p = 1; p < FS_NPATTERNS; p++)
			if (strcmp(tok, FsPatternNames[p]) == 0 || strcmp(tok, "all") == 0)
				o->patterns[p] = true;
		if (strcmp(tok, "all") != 0)
		{
			for (p = 1; p < FS_NPATTERNS && strcmp(tok, FsPatternNames[p]) != 0; p++)
				;
			if (p == FS_NPATTERNS)
				die_usage("unknown fraud pattern \"%s\"", tok);
		}
	}
	free(copy);
}

/* yes or no, or exit with a usage error. */
static bool
parse_yes_no(const char *opt, const char *arg)
{
	if (strcmp(arg, "yes") == 0)
		return true;
	if (strcmp(arg, "no") != 0)
	{
		char		msg[80];

		snprintf(msg, sizeof(msg), "%s wants yes or no, not \"%%s\"", opt);
		die_usage(msg, arg);
	}
	return false;
}

/* The command line into o, with the defaults of usage(); exits on errors. */
static void
parse_options(Options *o, int argc, char **argv)
{
	enum
	{
		OPT_SEED = 256, OPT_COUNT, OPT_DURATION, OPT_RATE, OPT_EVENT_TIME,
		OPT_START, OPT_CUSTOMERS, OPT_MERCHANTS, OPT_TXN_PER_DAY,
		OPT_FRAUD_RATE, OPT_PATTERNS, OPT_OUT_OF_ORDER, OPT_MAX_LATENESS,
		OPT_OUTPUT, OPT_TXN_FILE, OPT_EVENT_FILE, OPT_BROKERS,
		OPT_TXN_TOPIC, OPT_EVENT_TOPIC, OPT_NO_EVENTS, OPT_KAFKA_OPT,
		OPT_PRODUCED_AT, OPT_HELP
	};
	static const struct option longopts[] = {
		{"seed", required_argument, NULL, OPT_SEED},
		{"count", required_argument, NULL, OPT_COUNT},
		{"duration", required_argument, NULL, OPT_DURATION},
		{"rate", required_argument, NULL, OPT_RATE},
		{"event-time", required_argument, NULL, OPT_EVENT_TIME},
		{"start", required_argument, NULL, OPT_START},
		{"customers", required_argument, NULL, OPT_CUSTOMERS},
		{"merchants", required_argument, NULL, OPT_MERCHANTS},
		{"txn-per-day", required_argument, NULL, OPT_TXN_PER_DAY},
		{"fraud-rate", required_argument, NULL, OPT_FRAUD_RATE},
		{"patterns", required_argument, NULL, OPT_PATTERNS},
		{"out-of-order", required_argument, NULL, OPT_OUT_OF_ORDER},
		{"max-lateness", required_argument, NULL, OPT_MAX_LATENESS},
		{"output", required_argument, NULL, OPT_OUTPUT},
		{"txn-file", required_argument, NULL, OPT_TXN_FILE},
		{"event-file", required_argument, NULL, OPT_EVENT_FILE},
		{"brokers", required_argument, NULL, OPT_BROKERS},
		{"txn-topic", required_argument, NULL, OPT_TXN_TOPIC},
		{"event-topic", required_argument, NULL, OPT_EVENT_TOPIC},
		{"no-events", no_argument, NULL, OPT_NO_EVENTS},
		{"kafka-opt", required_argument, NULL, OPT_KAFKA_OPT},
		{"produced-at", required_argument, NULL, OPT_PRODUCED_AT},
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0}
	};
	int			c;

	memset(o, 0, sizeof(*o));
	o->seed = 1;
	o->start = DEFAULT_START * FS_USEC_PER_SEC;
	o->world.ncustomers = 10000;
	o->world.nmerchants = 2000;
	o->world.txn_per_day = 4;
	o->fraud_rate = 0.005;
	parse_patterns(o, "all");
	o->max_lateness = 60;
	o->output = "json";
	o->txn_file = "-";
	o->txn_topic = "fs_transactions";
	o->event_topic = "fs_clickstream";
	o->stamp = -1;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case OPT_SEED:
				o->seed = parse_count("--seed", optarg, 0, UINT64_MAX);
				break;
			case OPT_COUNT:
				o->count = parse_count("--count", optarg, 1, UINT64_MAX);
				break;
			case OPT_DURATION:
				o->duration = parse_number("--duration", optarg, 0.001, 1e9);
				break;
			case OPT_RATE:
				o->rate = parse_number("--rate", optarg, 0.001, 1e8);
				break;
			case OPT_EVENT_TIME:
				if (strcmp(optarg, "now") != 0 && strcmp(optarg, "sim") != 0)
					die_usage("--event-time wants sim or now, not \"%s\"", optarg);
				o->now = strcmp(optarg, "now") == 0;
				break;
			case OPT_START:
				o->start = parse_start(optarg);
				break;
			case OPT_CUSTOMERS:
				o->world.ncustomers = (uint32_t) parse_count("--customers", optarg, 100, 100000000);
				break;
			case OPT_MERCHANTS:
				o->world.nmerchants = (uint32_t) parse_count("--merchants", optarg, 100, 10000000);
				break;
			case OPT_TXN_PER_DAY:
				o->world.txn_per_day = parse_number("--txn-per-day", optarg, 0.01, 1000);
				break;
			case OPT_FRAUD_RATE:
				o->fraud_rate = parse_number("--fraud-rate", optarg, 0, 0.5);
				break;
			case OPT_PATTERNS:
				parse_patterns(o, optarg);
				break;
			case OPT_OUT_OF_ORDER:
				o->out_of_order = parse_number("--out-of-order", optarg, 0, 1);
				break;
			case OPT_MAX_LATENESS:
				o->max_lateness = parse_number("--max-lateness", optarg, 0.001, 86400);
				break;
			case OPT_OUTPUT:
				if (strcmp(optarg, "json") != 0 && strcmp(optarg, "csv") != 0 &&
					strcmp(optarg, "kafka") != 0)
					die_usage("--output wants json, csv or kafka, not \"%s\"", optarg);
				o->output = optarg;
				break;
			case OPT_TXN_FILE:
				o->txn_file = optarg;
				break;
			case OPT_EVENT_FILE:
				o->event_file = optarg;
				break;
			case OPT_BROKERS:
				o->brokers = optarg;
				break;
			case OPT_TXN_TOPIC:
				o->txn_topic = optarg;
				break;
			case OPT_EVENT_TOPIC:
				o->event_topic = optarg;
				break;
			case OPT_NO_EVENTS:
				o->no_events = true;
				break;
			case OPT_KAFKA_OPT:
				if (o->nkafka_opts == MAX_KAFKA_OPTS)
					die_usage("too many --kafka-opt settings%s", "");
				o->kafka_opts[o->nkafka_opts++] = optarg;
				break;
			case OPT_PRODUCED_AT:
				o->stamp = parse_yes_no("--produced-at", optarg);
				break;
			case OPT_HELP:
				usage(stdout);
				exit(0);
			default:
				fprintf(stderr, "Try \"fs_gen --help\".\n");
				exit(2);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument \"%s\"", argv[optind]);
	if (strcmp(o->output, "kafka") == 0 && !o->brokers)
		die_usage("--output kafka needs --brokers%s", "");
	if (strcmp(o->output, "csv") == 0 && o->event_file &&
		strcmp(o->event_file, o->txn_file) == 0)
		die_usage("--output csv cannot write both streams to \"%s\": their columns differ",
				  o->txn_file);
	if (o->stamp < 0)
		o->stamp = strcmp(o->output, "kafka") == 0;
}

/* The sink the options ask for; exits if it cannot be opened. */
static FsSink *
open_sink(const Options *o)
{
	char		err[512];
	FsSink	   *sink;

	if (strcmp(o->output, "kafka") == 0)
		sink = FsSinkOpenKafka(o->brokers, o->txn_topic,
							   o->no_events ? NULL : o->event_topic,
							   o->kafka_opts, o->nkafka_opts, o->stamp != 0,
							   err, sizeof(err));
	else
		sink = FsSinkOpenFiles(strcmp(o->output, "csv") == 0 ? FS_FORMAT_CSV : FS_FORMAT_JSON,
							   o->txn_file, o->event_file, o->stamp != 0,
							   err, sizeof(err));
	if (!sink)
	{
		fprintf(stderr, "fs_gen: %s\n", err);
		exit(1);
	}
	return sink;
}

/* Wait until wall-clock time target, unless it is at most the slack away. */
static void
pace(FsSink *sink, FsTime target)
{
	FsTime		now;

	while (!interrupted && (now = FsWallClock()) < target - PACE_SLACK_US)
		FsSinkIdle(sink, target - now);
}

/* What the run did, for the summary. */
typedef struct Tally
{
	uint64_t	events[2];		/* per FsStream */
	uint64_t	fraud_txns[FS_NPATTERNS];
	uint64_t	fraud_clicks;
	FsTime		first_ts;
	FsTime		last_ts;
} Tally;

/*
 * The end-of-run summary on stderr: key=value pairs that people can read
 * and scripts (the tests, the benchmarks) can parse.
 */
static void
summary(const Options *o, const FsSim *sim, const Tally *t, const FsSinkStats *st,
		double startup, double seconds)
{
	uint64_t	fraud = 0;
	char		first[32] = "-",
				last[32] = "-";

	for (int p = 1; p < FS_NPATTERNS; p++)
		fraud += t->fraud_txns[p];
	if (t->events[0] + t->events[1] > 0)
	{
		first[FsFormatTime(first, t->first_ts)] = '\0';
		last[FsFormatTime(last, t->last_ts)] = '\0';
	}
	fprintf(stderr, "fs_gen: seed=%llu transactions=%llu events=%llu startup_seconds=%.3f "
			"seconds=%.3f txn_per_s=%.0f sent_per_s=%.0f\n",
			(unsigned long long) o->seed,
			(unsigned long long) t->events[FS_STREAM_TXN],
			(unsigned long long) t->events[FS_STREAM_CLICK], startup, seconds,
			t->events[FS_STREAM_TXN] / fmax(seconds, 1e-9),
			(st->sent[0] + st->sent[1]) / fmax(seconds, 1e-9));
	fprintf(stderr, "fs_gen: event_time=%s..%s\n", first, last);
	fprintf(stderr, "fs_gen: fraud=%llu fraud_share=%.5f",
			(unsigned long long) fraud,
			(double) fraud / fmax(1.0, (double) t->events[FS_STREAM_TXN]));
	for (int p = 1; p < FS_NPATTERNS; p++)
		fprintf(stderr, " %s=%llu", FsPatternNames[p], (unsigned long long) t->fraud_txns[p]);
	fprintf(stderr, " fraud_events=%llu\n", (unsigned long long) t->fraud_clicks);
	fprintf(stderr, "fs_gen: instances");
	for (int p = 1; p < FS_NPATTERNS; p++)
		fprintf(stderr, " %s=%llu", FsPatternNames[p], (unsigned long long) sim->instances[p]);
	fprintf(stderr, "\n");
	fprintf(stderr, "fs_gen: output=%s sent_transactions=%llu sent_events=%llu failed=%llu\n",
			o->output, (unsigned long long) st->sent[FS_STREAM_TXN],
			(unsigned long long) st->sent[FS_STREAM_CLICK],
			(unsigned long long) st->failed);
	if (st->failed > 0)
		fprintf(stderr, "fs_gen: error: %llu events were not delivered: %s\n",
				(unsigned long long) st->failed, st->first_error);
}

/*
 * Build the world, run the simulation and hand its events to the sink,
 * paced as asked, until the count, the duration or a signal ends it.
 */
int
main(int argc, char **argv)
{
	Options		o;
	FsWorld		world;
	FsSim		sim;
	FsSimConfig sc;
	FsSink	   *sink;
	FsSinkStats stats;
	Tally		tally;
	FsTime		wall0,
				anchor = -1,
				last_stamp = 0;
	char		err[256];

	parse_options(&o, argc, argv);
	wall0 = FsWallClock();
	o.world.seed = o.seed;
	if (!FsWorldBuild(&world, &o.world, err, sizeof(err)))
	{
		fprintf(stderr, "fs_gen: %s\n", err);
		return 1;
	}
	if (o.now && o.rate > 0 && o.rate * 3600.0 / o.world.ncustomers > 20.0)
		fprintf(stderr, "fs_gen: warning: %.0f transactions per customer-hour; "
				"use --customers %.0f or more for realistic per-card rates\n",
				o.rate * 3600.0 / o.world.ncustomers, o.rate * 360.0);

	sink = open_sink(&o);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	memset(&sc, 0, sizeof(sc));
	sc.seed = o.seed;
	sc.start = o.now ? FsWallClock() : o.start;
	sc.fraud_rate = o.fraud_rate;
	memcpy(sc.patterns, o.patterns, sizeof(sc.patterns));
	sc.out_of_order = o.out_of_order;
	sc.max_lateness = (FsTime) (o.max_lateness * FS_USEC_PER_SEC);
	sc.paced_rate = o.now ? o.rate : 0;
	FsSimInit(&sim, &world, &sc);

	memset(&tally, 0, sizeof(tally));
	while (!interrupted)
	{
		FsEvent		ev;
		FsTime		due;
		bool		late;

		/* The duration counts from the first event: start-up is not sending. */
		if ((o.count && sim.next_txn_id >= o.count) ||
			(o.duration > 0 && anchor >= 0 &&
			 FsWallClock() - anchor >= o.duration * FS_USEC_PER_SEC))
			sim.draining = true;
		if (!FsSimNext(&sim, &ev, &due, &late))
			break;
		/* Sending starts with the first event, after the preroll. */
		if (anchor < 0)
			anchor = FsWallClock();
		if (o.rate > 0 && ev.stream == FS_STREAM_TXN)
			pace(sink, anchor + (FsTime) (tally.events[FS_STREAM_TXN] * FS_USEC_PER_SEC / o.rate));
		else if (o.now && o.rate == 0)
			pace(sink, anchor + due - sc.start);
		if (interrupted)
			break;
		if (o.now)
		{
			/* Stamp with the real time at sending, never going back. */
			FsTime		now = FsWallClock();

			if (late)
				ev.ts = now - (due - ev.ts);
			else
			{
				if (now > last_stamp)
					last_stamp = now;
				ev.ts = last_stamp;
			}
		}
		FsSinkEmit(sink, &ev);
		tally.events[ev.stream]++;
		if (ev.stream == FS_STREAM_TXN)
			tally.fraud_txns[ev.pattern]++;
		else if (ev.pattern != FS_LEGIT)
			tally.fraud_clicks++;
		if (tally.first_ts == 0 || ev.ts < tally.first_ts)
			tally.first_ts = ev.ts;
		if (ev.ts > tally.last_ts)
			tally.last_ts = ev.ts;
	}
	FsSinkClose(sink, &stats);
	if (anchor < 0)
		anchor = FsWallClock();
	summary(&o, &sim, &tally, &stats, (anchor - wall0) / 1e6,
			(FsWallClock() - anchor) / 1e6);
	return stats.failed > 0 ? 1 : 0;
}
