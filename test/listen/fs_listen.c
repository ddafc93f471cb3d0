/*
 * fs_listen: a LISTEN client that prints every notification it receives.
 *
 *   fs_listen [--count N] [--idle SECONDS] [--ready FILE] CONNINFO CHANNEL
 *
 * Connects with libpq, runs LISTEN CHANNEL, then waits on the connection's
 * socket (poll, no busy loop) and prints one line per notification:
 *
 *   <receive time, microseconds since the epoch> TAB <payload>
 *
 * flushed at once, so a reader sees alerts as they arrive.  It stops after
 * N notifications (--count), after SECONDS without one (--idle, default
 * 10), on SIGINT/SIGTERM, or when the connection is lost (exit status 1).
 * --ready FILE is created once LISTEN is in effect, so a script can start
 * producing only then.  Tests count notifications with it, the demo prints
 * alerts, and the latency benchmark compares receive times with the time
 * each transaction was produced.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libpq-fe.h"

static volatile sig_atomic_t stopping = 0;

static void
on_signal(int signo)
{
	(void) signo;
	stopping = 1;
}

static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
usage(void)
{
	fprintf(stderr, "usage: fs_listen [--count N] [--idle SECONDS] [--ready FILE] CONNINFO CHANNEL\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	long		count = -1;
	double		idle = 10;
	const char *ready = NULL;
	const char *conninfo;
	const char *channel;
	PGconn	   *conn;
	PGresult   *res;
	char	   *quoted;
	char	   *sql;
	long		received = 0;
	long long	last = now_us();
	int			i;

	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2)
	{
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--count") == 0)
			count = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--idle") == 0)
			idle = atof(argv[i + 1]);
		else if (strcmp(argv[i], "--ready") == 0)
			ready = argv[i + 1];
		else
			usage();
	}
	if (argc - i != 2)
		usage();
	conninfo = argv[i];
	channel = argv[i + 1];

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "fs_listen: %s", PQerrorMessage(conn));
		return 1;
	}
	quoted = PQescapeIdentifier(conn, channel, strlen(channel));
	sql = malloc(strlen(quoted) + 8);
	sprintf(sql, "LISTEN %s", quoted);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "fs_listen: %s", PQerrorMessage(conn));
		return 1;
	}
	PQclear(res);
	if (ready != NULL)
	{
		FILE	   *f = fopen(ready, "w");

		if (f == NULL || fclose(f) != 0)
		{
			perror("fs_listen: --ready");
			return 1;
		}
	}

	while (!stopping && (count < 0 || received < count))
	{
		struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
		PGnotify   *n;
		int			rc = poll(&pfd, 1, 100);

		if (rc < 0 && errno != EINTR)
		{
			perror("fs_listen: poll");
			return 1;
		}
		if (rc > 0 && !PQconsumeInput(conn))
		{
			fprintf(stderr, "fs_listen: %s", PQerrorMessage(conn));
			return 1;
		}
		while ((n = PQnotifies(conn)) != NULL)
		{
			last = now_us();
			printf("%lld\t%s\n", last, n->extra);
			fflush(stdout);
			received++;
			PQfreemem(n);
		}
		if (now_us() - last > (long long) (idle * 1e6))
			break;
	}
	PQfinish(conn);
	return 0;
}
