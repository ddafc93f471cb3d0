/*-------------------------------------------------------------------------
 *
 * launcher.c
 *		The launcher: a background worker, registered when fraudstream is
 *		preloaded, that runs one worker per enabled Kafka source of
 *		fraudstream.database and rotates that database's rings.
 *
 * The launcher connects to fraudstream.database as the bootstrap
 * superuser.  Each cycle it
 *	- checks that the extension exists there (quietly idles if not: a
 *	  database without fraudstream costs one catalog lookup a second and
 *	  writes nothing to the log),
 *	- reads fraudstream.source_config and makes the set of running workers
 *	  match it: starts a worker for each enabled source without one,
 *	  terminates the workers of paused and dropped sources, and restarts
 *	  workers that died, with a backoff that doubles up to a minute while
 *	  a worker keeps dying within a minute of its start,
 *	- rotates the rings that are due (ring.c).
 * It sleeps on its latch between cycles, for a second at most, or less
 * when a ring rotates sooner.  Backends that change a source set the
 * latch at commit, and the postmaster sets it when a worker stops
 * (bgw_notify_pid), so changes take effect at once.
 *
 * fraudstream.database is PGC_POSTMASTER: a background worker connects to
 * one database for life, and a launcher that followed a reload would have
 * to stop every worker of the old database and restart itself.
 *
 * Locking: worker bookkeeping is local to the launcher; stats slots are
 * assigned under their spinlocks (stats.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "fraudstream.h"
#include "launcher.h"
#include "ring.h"
#include "stats.h"
#include "worker.h"

#define FS_RESTART_MIN_MS	1000
#define FS_RESTART_MAX_MS	60000

char	   *FsDatabase = NULL;

/* A source the launcher runs a worker for. */
typedef struct LauncherWorker
{
	int32		source_id;
	int			slot;
	bool		seen;			/* still in source_config this cycle */
	bool		enabled;
	BackgroundWorkerHandle *handle;
	TimestampTz started_at;
	TimestampTz restart_at;		/* when a dead worker may be restarted */
	int			backoff_ms;
	bool		warned;			/* "could not start" was logged */
} LauncherWorker;

static LauncherWorker *workers;
static int	nworkers;
static bool warned_no_slot = false;

/*
 * Define fraudstream.database and register the launcher.  Only when
 * preloaded: otherwise there is no postmaster to start it.
 */
void
FsLauncherInit(void)
{
	BackgroundWorker bgw;

	/* PGC_POSTMASTER variables can only be defined at server start */
	if (!FsLoadedAtStartup)
		return;
	DefineCustomStringVariable("fraudstream.database",
							   "Database whose Kafka sources and rings fraudstream runs.",
							   "The launcher connects to it at server start.",
							   &FsDatabase,
							   "postgres",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 10;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "fraudstream");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "fraudstream_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "fraudstream launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "fraudstream launcher");
	RegisterBackgroundWorker(&bgw);
}

/* The launcher's entry for a source, or NULL. */
static LauncherWorker *
find_worker(int32 source_id)
{
	for (int i = 0; i < nworkers; i++)
		if (workers[i].source_id == source_id)
			return &workers[i];
	return NULL;
}

/* The stats slot of a source, assigned now if it has none. */
static int
slot_for(int32 source_id)
{
	int			free_slot = -1;

	for (int i = 0; i < FsMaxSources; i++)
	{
		FsSourceSlot *s = FsStatsSlot(i);
		bool		mine;

		SpinLockAcquire(&s->mutex);
		mine = s->in_use && s->dbid == MyDatabaseId && s->source_id == source_id;
		if (!s->in_use && free_slot < 0)
			free_slot = i;
		SpinLockRelease(&s->mutex);
		if (mine)
			return i;
	}
	if (free_slot >= 0)
	{
		FsSourceSlot *s = FsStatsSlot(free_slot);

		SpinLockAcquire(&s->mutex);
		memset((char *) s + offsetof(FsSourceSlot, in_use), 0,
			   sizeof(FsSourceSlot) - offsetof(FsSourceSlot, in_use));
		s->in_use = true;
		s->dbid = MyDatabaseId;
		s->source_id = source_id;
		SpinLockRelease(&s->mutex);
	}
	return free_slot;
}

static void
free_slot(int index)
{
	FsSourceSlot *s = FsStatsSlot(index);

	SpinLockAcquire(&s->mutex);
	s->in_use = false;
	s->source_id = 0;
	SpinLockRelease(&s->mutex);
}

/* Start the worker of w's source. */
static void
start_worker(LauncherWorker *w, TimestampTz now)
{
	BackgroundWorker bgw;
	FsWorkerArgs args = {MyDatabaseId, w->source_id};
	MemoryContext old;
	bool		registered;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "fraudstream");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "fraudstream_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "fraudstream source %d", w->source_id);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "fraudstream source");
	bgw.bgw_main_arg = Int32GetDatum(w->slot);
	memcpy(bgw.bgw_extra, &args, sizeof(args));
	bgw.bgw_notify_pid = MyProcPid;

	/* the handle must outlive this cycle's transaction */
	old = MemoryContextSwitchTo(TopMemoryContext);
	registered = RegisterDynamicBackgroundWorker(&bgw, &w->handle);
	MemoryContextSwitchTo(old);
	if (!registered)
	{
		w->handle = NULL;
		w->restart_at = TimestampTzPlusMilliseconds(now, FS_RESTART_MAX_MS / 6);
		if (!w->warned)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("fraudstream could not start the worker of source %d", w->source_id),
					 errdetail("No background worker slot is free."),
					 errhint("Raise max_worker_processes.")));
		w->warned = true;
		return;
	}
	w->warned = false;
	w->started_at = now;
}

/* Stop w's worker if it runs; it leaves its consumer group cleanly. */
static void
stop_worker(LauncherWorker *w)
{
	if (w->handle)
	{
		TerminateBackgroundWorker(w->handle);
		pfree(w->handle);
		w->handle = NULL;
	}
}

/*
 * Make the running workers match fraudstream.source_config.  Runs in a
 * transaction with SPI connected.
 */
static void
supervise(bool extension_exists, TimestampTz now)
{
	if (extension_exists)
	{
		if (SPI_execute("SELECT id, enabled FROM fraudstream.source_config ORDER BY id",
						true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read fraudstream.source_config");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			int32		id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
														 SPI_tuptable->tupdesc, 1, &isnull));
			bool		enabled = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i],
															 SPI_tuptable->tupdesc, 2, &isnull));
			LauncherWorker *w = find_worker(id);

			if (w == NULL)
			{
				int			slot = slot_for(id);

				if (slot < 0)
				{
					if (!warned_no_slot)
						ereport(WARNING,
								(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
								 errmsg("fraudstream cannot run more than %d sources", FsMaxSources),
								 errhint("Raise fraudstream.max_sources and restart the server.")));
					warned_no_slot = true;
					continue;
				}
				w = &workers[nworkers++];
				memset(w, 0, sizeof(*w));
				w->source_id = id;
				w->slot = slot;
				w->backoff_ms = FS_RESTART_MIN_MS;
			}
			w->seen = true;
			w->enabled = enabled;
		}
	}

	for (int i = 0; i < nworkers; i++)
	{
		LauncherWorker *w = &workers[i];
		pid_t		pid;

		if (!w->seen)
		{
			/* dropped, or the extension is gone */
			stop_worker(w);
			free_slot(w->slot);
			workers[i--] = workers[--nworkers];
			warned_no_slot = false;
			continue;
		}
		w->seen = false;
		if (!w->enabled)
		{
			stop_worker(w);
			continue;
		}
		if (w->handle && GetBackgroundWorkerPid(w->handle, &pid) == BGWH_STOPPED)
		{
			/* died: restart after a backoff that grows while it keeps dying */
			pfree(w->handle);
			w->handle = NULL;
			if (TimestampDifferenceExceeds(w->started_at, now, FS_RESTART_MAX_MS))
				w->backoff_ms = FS_RESTART_MIN_MS;
			w->restart_at = TimestampTzPlusMilliseconds(now, w->backoff_ms);
			w->backoff_ms = Min(w->backoff_ms * 2, FS_RESTART_MAX_MS);
		}
		if (w->handle == NULL && now >= w->restart_at)
			start_worker(w, now);
	}
}

/*
 * Terminate workers left by an earlier launcher of this database (the
 * launcher restarts after an error, its workers do not die with it).
 */
static void
reset_slots(void)
{
	for (int i = 0; i < FsMaxSources; i++)
	{
		FsSourceSlot *s = FsStatsSlot(i);
		pid_t		pid = 0;

		SpinLockAcquire(&s->mutex);
		if (s->in_use && s->dbid == MyDatabaseId)
		{
			pid = s->pid;
			s->in_use = false;
		}
		SpinLockRelease(&s->mutex);
		if (pid != 0)
			kill(pid, SIGTERM);
	}
}

static void
launcher_exit(int code, Datum arg)
{
	FsStatsSetLauncher(-1);
}

/* One cycle; returns how long to sleep (ms). */
static long
launcher_cycle(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		exists;
	long		sleep_ms = 1000;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "fraudstream: supervising sources");
	exists = OidIsValid(get_extension_oid("fraudstream", true));
	supervise(exists, now);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();

	if (exists)
		sleep_ms = Min(sleep_ms, FsRingRotateDue());
	pgstat_report_activity(STATE_IDLE, NULL);
	return Max(sleep_ms, 10);
}

void
fraudstream_launcher_main(Datum main_arg)
{
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(FsDatabase, NULL, 0);
	pgstat_report_appname("fraudstream launcher");

	workers = MemoryContextAllocZero(TopMemoryContext,
									 FsMaxSources * sizeof(LauncherWorker));
	reset_slots();
	FsStatsSetLauncher(MyProc->pgprocno);
	before_shmem_exit(launcher_exit, (Datum) 0);

	while (!ShutdownRequestPending)
	{
		long		sleep_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		sleep_ms = launcher_cycle();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	/* workers go on until the postmaster stops them; nothing to clean */
	proc_exit(0);
}
