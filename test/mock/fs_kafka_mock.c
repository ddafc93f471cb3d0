/*-------------------------------------------------------------------------
 *
 * fs_kafka_mock.c
 *		Scriptable librdkafka mock Kafka cluster for fault-injection tests.
 *
 * fraudstream's Kafka worker has to survive brokers going away, leaders
 * moving and requests failing.  A real Kafka cluster cannot be told to
 * fail a particular request on demand, so the tests run this helper
 * instead: it starts librdkafka's built-in mock cluster, tells the caller
 * where the brokers listen, and then takes fault-injection commands on
 * stdin while the system under test talks to the brokers.
 *
 * Usage:
 *		fs_kafka_mock [--brokers N] [--verbose]
 *
 *		--brokers N		number of mock brokers, ids 1..N (default 1)
 *		--verbose		pass librdkafka log lines through to stderr
 *
 * Protocol (line based, stdout is flushed after every line):
 *
 *		On start-up exactly one line is printed:
 *			bootstrap=<host:port>[,<host:port>...]
 *
 *		Then one command per line is read from stdin and each command is
 *		answered by exactly one line, either "ok" or "error: <reason>":
 *
 *			topic <name> <partitions>
 *				Create a topic (replication factor 1).
 *			down <broker_id>
 *				Close the broker's connections and refuse new ones.
 *			up <broker_id>
 *				Accept connections again.  Leadership does not move.
 *			error <ApiKey> <error> [count]
 *				Make the next <count> (default 1) requests of type <ApiKey>
 *				fail with <error>, whichever broker receives them.
 *				<ApiKey> is a Kafka protocol ApiKey number or one of the
 *				names listed in api_keys[] below (case-insensitive).
 *				<error> is a Kafka error code number or a librdkafka error
 *				name such as NOT_LEADER_FOR_PARTITION, optionally prefixed
 *				with RD_KAFKA_RESP_ERR_ (case-insensitive).
 *			quit
 *				Destroy the cluster and exit 0.  EOF on stdin does the same.
 *
 *		Empty lines and lines starting with '#' are ignored without reply.
 *		Unknown or malformed commands get an "error: ..." reply and the
 *		helper keeps running.  SIGTERM and SIGINT shut down cleanly, exit 0.
 *
 * Limits:
 *		- The listeners bind to 127.0.0.1 on ephemeral ports; the ports
 *		  change on every run.
 *		- Only what librdkafka's mock cluster implements is available:
 *		  there is no persistence, no SASL/SSL, no replication and no
 *		  automatic leader election when a broker goes down.
 *		- Injected errors are kept on one cluster-wide stack per ApiKey and
 *		  are consumed by whichever client sends the next request of that
 *		  type, including librdkafka's own internal requests.
 *		- Whether an injected error is used at all depends on the mock's
 *		  handler for that request type.  Produce, Fetch and the group
 *		  coordinator requests honour it; librdkafka 2.0's Metadata handler
 *		  ignores it, so "error Metadata ..." is accepted but has no effect
 *		  there (use "down" to make metadata requests fail).
 *		- The mock cluster API is marked experimental by librdkafka; this
 *		  file is written against librdkafka 2.0.
 *		- Command lines longer than LINE_MAX_LEN bytes are rejected.
 *
 * test/mock/fs_kafka_mock.c
 *
 *-------------------------------------------------------------------------
 */
#define _POSIX_C_SOURCE 200112L

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define LINE_MAX_LEN	1024
#define MAX_BROKERS		64
#define MAX_PARTITIONS	10000
#define MAX_ERROR_COUNT	100000
#define MAX_ARGS		8

/* Kafka protocol ApiKey numbers, see the Kafka protocol guide. */
typedef struct ApiKeyName
{
	const char *name;
	int16_t		key;
} ApiKeyName;

static const ApiKeyName api_keys[] = {
	{"Produce", 0},
	{"Fetch", 1},
	{"ListOffsets", 2},
	{"Metadata", 3},
	{"OffsetCommit", 8},
	{"OffsetFetch", 9},
	{"FindCoordinator", 10},
	{"JoinGroup", 11},
	{"Heartbeat", 12},
	{"LeaveGroup", 13},
	{"SyncGroup", 14},
	{"DescribeGroups", 15},
	{"ListGroups", 16},
	{"ApiVersions", 18},
	{"CreateTopics", 19},
	{"InitProducerId", 22},
	{"OffsetForLeaderEpoch", 23},
	{"AddPartitionsToTxn", 24},
	{"AddOffsetsToTxn", 25},
	{"EndTxn", 26},
	{"TxnOffsetCommit", 28},
};

static volatile sig_atomic_t stop_requested = 0;
static int	verbose = 0;

/*
 * Signal handler: only sets a flag; the main loop notices it because
 * pselect() returns EINTR.
 */
static void
handle_stop_signal(int signo)
{
	(void) signo;
	stop_requested = 1;
}

/*
 * Swallow librdkafka log lines unless --verbose, so stderr of the helper
 * only carries the helper's own diagnostics.
 */
static void
log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void) rk;
	if (verbose)
		fprintf(stderr, "fs_kafka_mock: rdkafka %d %s: %s\n", level, fac, buf);
}

/*
 * Every reply is exactly one line and is flushed at once, because the
 * caller reads replies synchronously through a pipe.
 */
static void
reply_ok(void)
{
	fputs("ok\n", stdout);
	fflush(stdout);
}

/*
 * printf-style error reply, kept to one line for the same reason.
 */
static void
reply_error(const char *fmt,...)
{
	va_list		ap;

	fputs("error: ", stdout);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/*
 * Strict integer parsing: the whole word must be a number within
 * [min, max], so that typos are reported instead of silently becoming 0.
 */
static int
parse_long(const char *s, long min, long max, long *out)
{
	char	   *end;
	long		v;

	if (s == NULL || *s == '\0')
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return 0;
	*out = v;
	return 1;
}

/*
 * Resolve an ApiKey given by number or by name; the names are a
 * convenience for test scripts, the numbers are the wire protocol's.
 */
static int
parse_api_key(const char *s, int16_t *out)
{
	long		v;
	size_t		i;

	if (parse_long(s, 0, INT16_MAX, &v))
	{
		*out = (int16_t) v;
		return 1;
	}
	for (i = 0; i < sizeof(api_keys) / sizeof(api_keys[0]); i++)
	{
		if (strcasecmp(s, api_keys[i].name) == 0)
		{
			*out = api_keys[i].key;
			return 1;
		}
	}
	return 0;
}

/*
 * Resolve an error given by number or by librdkafka name.  Names come from
 * rd_kafka_get_err_descs() so that every code librdkafka knows is
 * accepted.  Internal (client-side, negative below -1) errors are refused:
 * a broker cannot send them, and the mock would put them on the wire
 * truncated to int16.
 */
static int
parse_error_code(const char *s, rd_kafka_resp_err_t *out)
{
	const struct rd_kafka_err_desc *descs;
	size_t		cnt;
	size_t		i;
	long		v;
	const char *name = s;
	static const char prefix[] = "RD_KAFKA_RESP_ERR_";

	if (parse_long(s, -1, INT16_MAX, &v))
	{
		*out = (rd_kafka_resp_err_t) v;
		return 1;
	}
	if (strncasecmp(name, prefix, sizeof(prefix) - 1) == 0)
		name += sizeof(prefix) - 1;

	rd_kafka_get_err_descs(&descs, &cnt);
	for (i = 0; i < cnt; i++)
	{
		if (descs[i].name == NULL || descs[i].code < RD_KAFKA_RESP_ERR_UNKNOWN)
			continue;
		if (strcasecmp(name, descs[i].name) == 0)
		{
			*out = descs[i].code;
			return 1;
		}
	}
	return 0;
}

/*
 * topic <name> <partitions>
 */
static void
cmd_topic(rd_kafka_mock_cluster_t *mcluster, int argc, char **argv)
{
	long		partitions;
	rd_kafka_resp_err_t err;

	if (argc != 3)
	{
		reply_error("usage: topic <name> <partitions>");
		return;
	}
	if (!parse_long(argv[2], 1, MAX_PARTITIONS, &partitions))
	{
		reply_error("invalid partition count \"%s\" (1..%d)",
					argv[2], MAX_PARTITIONS);
		return;
	}
	err = rd_kafka_mock_topic_create(mcluster, argv[1], (int) partitions, 1);
	if (err)
		reply_error("topic create failed: %s", rd_kafka_err2name(err));
	else
		reply_ok();
}

/*
 * down <broker_id> / up <broker_id>; both share argument checking.
 */
static void
cmd_updown(rd_kafka_mock_cluster_t *mcluster, int argc, char **argv,
		   int broker_cnt, int up)
{
	long		broker_id;
	rd_kafka_resp_err_t err;

	if (argc != 2)
	{
		reply_error("usage: %s <broker_id>", argv[0]);
		return;
	}
	if (!parse_long(argv[1], 1, broker_cnt, &broker_id))
	{
		reply_error("invalid broker id \"%s\" (1..%d)", argv[1], broker_cnt);
		return;
	}
	if (up)
		err = rd_kafka_mock_broker_set_up(mcluster, (int32_t) broker_id);
	else
		err = rd_kafka_mock_broker_set_down(mcluster, (int32_t) broker_id);
	if (err)
		reply_error("%s failed: %s", argv[0], rd_kafka_err2name(err));
	else
		reply_ok();
}

/*
 * error <ApiKey> <error> [count]
 */
static void
cmd_error(rd_kafka_mock_cluster_t *mcluster, int argc, char **argv)
{
	int16_t		api_key;
	rd_kafka_resp_err_t code;
	long		count = 1;
	rd_kafka_resp_err_t *errors;
	long		i;

	if (argc != 3 && argc != 4)
	{
		reply_error("usage: error <ApiKey> <error> [count]");
		return;
	}
	if (!parse_api_key(argv[1], &api_key))
	{
		reply_error("unknown ApiKey \"%s\"", argv[1]);
		return;
	}
	if (!parse_error_code(argv[2], &code))
	{
		reply_error("unknown error \"%s\"", argv[2]);
		return;
	}
	if (argc == 4 && !parse_long(argv[3], 1, MAX_ERROR_COUNT, &count))
	{
		reply_error("invalid count \"%s\" (1..%d)", argv[3], MAX_ERROR_COUNT);
		return;
	}

	errors = malloc(sizeof(*errors) * (size_t) count);
	if (errors == NULL)
	{
		reply_error("out of memory");
		return;
	}
	for (i = 0; i < count; i++)
		errors[i] = code;
	rd_kafka_mock_push_request_errors_array(mcluster, api_key,
											(size_t) count, errors);
	free(errors);
	reply_ok();
}

/*
 * Split a command line into words and dispatch it.  Returns 0 when the
 * helper should shut down, 1 otherwise.
 */
static int
handle_line(rd_kafka_mock_cluster_t *mcluster, char *line, int broker_cnt)
{
	char	   *argv[MAX_ARGS];
	int			argc = 0;
	char	   *p = line;

	while (*p != '\0')
	{
		while (isspace((unsigned char) *p))
			*p++ = '\0';
		if (*p == '\0')
			break;
		if (argc == MAX_ARGS)
		{
			reply_error("too many arguments");
			return 1;
		}
		argv[argc++] = p;
		while (*p != '\0' && !isspace((unsigned char) *p))
			p++;
	}

	if (argc == 0 || argv[0][0] == '#')
		return 1;

	if (strcmp(argv[0], "quit") == 0)
	{
		reply_ok();
		return 0;
	}
	else if (strcmp(argv[0], "topic") == 0)
		cmd_topic(mcluster, argc, argv);
	else if (strcmp(argv[0], "down") == 0)
		cmd_updown(mcluster, argc, argv, broker_cnt, 0);
	else if (strcmp(argv[0], "up") == 0)
		cmd_updown(mcluster, argc, argv, broker_cnt, 1);
	else if (strcmp(argv[0], "error") == 0)
		cmd_error(mcluster, argc, argv);
	else
		reply_error("unknown command \"%s\"", argv[0]);
	return 1;
}

/*
 * Read stdin with pselect() so that SIGTERM/SIGINT, which stay blocked
 * except while waiting, interrupt the wait without a race.  Returns when
 * quit, EOF, a read error or a stop signal is seen.
 */
static void
command_loop(rd_kafka_mock_cluster_t *mcluster, int broker_cnt,
			 const sigset_t *wait_mask)
{
	char		buf[LINE_MAX_LEN + 1];
	size_t		len = 0;
	int			discarding = 0;

	for (;;)
	{
		fd_set		rfds;
		ssize_t		n;
		char	   *nl;

		if (stop_requested)
			return;

		FD_ZERO(&rfds);
		FD_SET(STDIN_FILENO, &rfds);
		if (pselect(STDIN_FILENO + 1, &rfds, NULL, NULL, NULL, wait_mask) < 0)
		{
			if (errno == EINTR)
				continue;
			perror("fs_kafka_mock: pselect");
			return;
		}

		n = read(STDIN_FILENO, buf + len, LINE_MAX_LEN - len);
		if (n < 0)
		{
			if (errno == EINTR || errno == EAGAIN)
				continue;
			perror("fs_kafka_mock: read");
			return;
		}
		if (n == 0)
		{
			/* EOF: run a final unterminated command, then stop */
			if (len > 0 && !discarding)
			{
				buf[len] = '\0';
				handle_line(mcluster, buf, broker_cnt);
			}
			return;
		}
		len += (size_t) n;

		while ((nl = memchr(buf, '\n', len)) != NULL)
		{
			size_t		linelen = (size_t) (nl - buf);
			int			keep_going = 1;

			*nl = '\0';
			if (discarding)
				discarding = 0;
			else
				keep_going = handle_line(mcluster, buf, broker_cnt);
			len -= linelen + 1;
			memmove(buf, nl + 1, len);
			if (!keep_going)
				return;
		}

		if (len == LINE_MAX_LEN)
		{
			/* overlong line: report once, drop bytes up to its newline */
			if (!discarding)
				reply_error("line too long (max %d bytes)", LINE_MAX_LEN - 1);
			discarding = 1;
			len = 0;
		}
	}
}

/*
 * Command line parsing kept separate from main() so that main() reads as
 * the lifecycle: parse, start cluster, serve, tear down.
 */
static int
parse_options(int argc, char **argv, int *broker_cnt)
{
	int			i;
	long		v;

	for (i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc)
		{
			if (!parse_long(argv[++i], 1, MAX_BROKERS, &v))
			{
				fprintf(stderr, "fs_kafka_mock: invalid --brokers \"%s\" (1..%d)\n",
						argv[i], MAX_BROKERS);
				return 0;
			}
			*broker_cnt = (int) v;
		}
		else if (strcmp(argv[i], "--verbose") == 0)
			verbose = 1;
		else
		{
			fprintf(stderr, "usage: fs_kafka_mock [--brokers N] [--verbose]\n");
			return 0;
		}
	}
	return 1;
}

/*
 * Start the mock cluster on a throw-away producer handle, print the
 * bootstrap line, serve commands, and tear everything down on the way out.
 */
int
main(int argc, char **argv)
{
	int			broker_cnt = 1;
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mcluster;
	char		errstr[512];
	sigset_t	stop_set;
	sigset_t	wait_mask;
	struct sigaction sa;

	if (!parse_options(argc, argv, &broker_cnt))
		return 2;

	/*
	 * Block the stop signals before librdkafka starts its threads, so they
	 * inherit the mask and the signals are only ever delivered to the main
	 * thread, inside pselect().  A write to a closed stdout must not kill
	 * the helper either.
	 */
	sigemptyset(&stop_set);
	sigaddset(&stop_set, SIGTERM);
	sigaddset(&stop_set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &stop_set, &wait_mask) != 0)
	{
		perror("fs_kafka_mock: sigprocmask");
		return 1;
	}
	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGINT);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handle_stop_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/*
	 * The mock cluster needs an rd_kafka_t for bookkeeping only; a producer
	 * without bootstrap servers never connects anywhere by itself.
	 */
	conf = rd_kafka_conf_new();
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		fprintf(stderr, "fs_kafka_mock: rd_kafka_new failed: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		return 1;
	}

	mcluster = rd_kafka_mock_cluster_new(rk, broker_cnt);
	if (mcluster == NULL)
	{
		fprintf(stderr, "fs_kafka_mock: rd_kafka_mock_cluster_new failed\n");
		rd_kafka_destroy(rk);
		return 1;
	}

	printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
	fflush(stdout);

	command_loop(mcluster, broker_cnt, &wait_mask);

	rd_kafka_mock_cluster_destroy(mcluster);
	rd_kafka_destroy(rk);
	return 0;
}
