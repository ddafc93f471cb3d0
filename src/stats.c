/*-------------------------------------------------------------------------
 *
 * stats.c
 *		Shared state of the Kafka sources: one slot per source with its
 *		worker's state and counters, shown by fraudstream.source_stats.
 *
 * The area "sources" holds fraudstream.max_sources slots and the launcher's
 * process number.  The launcher owns slot assignment: it gives a source a
 * free slot when it first starts its worker, passes the slot index to the
 * worker, and frees the slot when the source is dropped.  Counters survive
 * worker restarts, so a crash-looping worker still shows its last error.
 * Backends that change sources set the launcher's latch at commit
 * (FsStatsWakeLauncher), so changes take effect at once.
 *
 * Locking: each slot has a spinlock, held only to copy a few fields in or
 * out (never across a call that can fail).  A worker writes to its slot
 * only while the slot still belongs to its source (source_id matches), so
 * a worker that is still exiting cannot scribble on a slot that the
 * launcher has already given to another source.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "lib/stringinfo.h"

#include "fraudstream.h"
#include "shmem.h"
#include "stats.h"

typedef struct FsSourcesShared
{
	int			launcher_pgprocno;	/* -1 when no launcher runs */
	FsSourceSlot slots[FLEXIBLE_ARRAY_MEMBER];
} FsSourcesShared;

int			FsMaxSources = 16;

static FsSourcesShared *shared = NULL;

PG_FUNCTION_INFO_V1(fraudstream_source_stats);

static Size
stats_size(void)
{
	return add_size(offsetof(FsSourcesShared, slots),
					mul_size(FsMaxSources, sizeof(FsSourceSlot)));
}

static void
stats_init(void *base, bool found, LWLockPadded *locks)
{
	shared = (FsSourcesShared *) base;
	if (found)
		return;
	memset(base, 0, stats_size());
	shared->launcher_pgprocno = -1;
	for (int i = 0; i < FsMaxSources; i++)
		SpinLockInit(&shared->slots[i].mutex);
}

static const FsShmemArea stats_area = {
	.name = "sources",
	.size = stats_size,
	.init = stats_init,
};

/*
 * Define fraudstream.max_sources and register the area.  The slot count
 * sizes shared memory, hence PGC_POSTMASTER.
 */
void
FsStatsInit(void)
{
	/* PGC_POSTMASTER variables can only be defined at server start */
	if (!FsLoadedAtStartup)
		return;
	DefineCustomIntVariable("fraudstream.max_sources",
							"Maximum number of Kafka sources that can run at once.",
							"Each source uses one background worker; max_worker_processes must leave room for them.",
							&FsMaxSources,
							16, 1, 1024,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);
	FsShmemRegister(&stats_area);
}

/* Slot "index", or an error if the area does not exist (no preload). */
FsSourceSlot *
FsStatsSlot(int index)
{
	FsRequirePreload("Kafka sources");
	if (shared == NULL || index < 0 || index >= FsMaxSources)
		elog(ERROR, "fraudstream source slot %d does not exist", index);
	return &shared->slots[index];
}

/* The launcher announces itself (pgprocno) or its exit (-1). */
void
FsStatsSetLauncher(int pgprocno)
{
	if (shared)
		shared->launcher_pgprocno = pgprocno;
}

/*
 * Wake the launcher so that it rereads fraudstream.source_config now.
 * Harmless when no launcher runs.
 */
void
FsStatsWakeLauncher(void)
{
	int			procno;

	if (shared == NULL)
		return;
	procno = shared->launcher_pgprocno;
	if (procno >= 0 && procno < (int) ProcGlobal->allProcCount)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

/* Record the last error of a source, truncated to the slot's buffer. */
void
FsStatsSetError(FsSourceSlot *slot, int32 source_id, const char *message)
{
	SpinLockAcquire(&slot->mutex);
	if (slot->in_use && slot->source_id == source_id)
	{
		strlcpy(slot->last_error, message, sizeof(slot->last_error));
		slot->last_error_at = GetCurrentTimestamp();
	}
	SpinLockRelease(&slot->mutex);
}

void
FsStatsSetState(FsSourceSlot *slot, int32 source_id, FsSourceState state)
{
	SpinLockAcquire(&slot->mutex);
	if (slot->in_use && slot->source_id == source_id)
		slot->state = state;
	SpinLockRelease(&slot->mutex);
}

static const char *
state_name(FsSourceState state)
{
	switch (state)
	{
		case FS_SOURCE_STOPPED:
			return "stopped";
		case FS_SOURCE_STARTING:
			return "starting";
		case FS_SOURCE_RUNNING:
			return "running";
		case FS_SOURCE_BROKER_DOWN:
			return "broker down";
		case FS_SOURCE_FAILED:
			return "failed";
	}
	return "unknown";
}

/*
 * fraudstream.source_stats_internal() returns one row per slot of the
 * current database; the view fraudstream.source_stats joins it with the
 * source catalog.  Per-partition lag comes as a JSON array.
 */
Datum
fraudstream_source_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	FsRequirePreload("fraudstream.source_stats");
	InitMaterializedSRF(fcinfo, 0);

	for (int i = 0; i < FsMaxSources; i++)
	{
		FsSourceSlot *slot = &shared->slots[i];
		FsSourceSlot copy;
		Datum		values[12];
		bool		nulls[12] = {0};
		StringInfoData parts;
		int64		lag = 0;
		bool		lag_known = false;

		SpinLockAcquire(&slot->mutex);
		memcpy(&copy, slot, sizeof(copy));
		SpinLockRelease(&slot->mutex);

		if (!copy.in_use || copy.dbid != MyDatabaseId)
			continue;

		initStringInfo(&parts);
		appendStringInfoChar(&parts, '[');
		for (int p = 0; p < copy.nparts; p++)
		{
			FsPartitionStat *ps = &copy.parts[p];
			bool		known = ps->next_offset >= 0 && ps->high_watermark >= 0;
			int64		plag = known ? Max(ps->high_watermark - ps->next_offset, 0) : -1;

			if (known)
			{
				lag += plag;
				lag_known = true;
			}
			appendStringInfo(&parts, "%s{\"partition\": %d, \"offset\": " INT64_FORMAT
							 ", \"high_watermark\": " INT64_FORMAT ", \"lag\": %s}",
							 p > 0 ? ", " : "", ps->partition,
							 ps->next_offset, ps->high_watermark,
							 known ? psprintf(INT64_FORMAT, plag) : "null");
		}
		appendStringInfoChar(&parts, ']');

		values[0] = Int32GetDatum(copy.source_id);
		values[1] = CStringGetTextDatum(state_name(copy.state));
		values[2] = Int32GetDatum((int32) copy.pid);
		nulls[2] = copy.pid == 0;
		values[3] = Int64GetDatum((int64) copy.messages);
		values[4] = Int64GetDatum((int64) copy.bytes);
		values[5] = Int64GetDatum((int64) copy.rejects);
		values[6] = Int64GetDatum((int64) copy.batches);
		values[7] = TimestampTzGetDatum(copy.last_batch_at);
		nulls[7] = copy.last_batch_at == 0;
		values[8] = Int64GetDatum(lag);
		nulls[8] = !lag_known;
		values[9] = DirectFunctionCall1(jsonb_in, CStringGetDatum(parts.data));
		values[10] = CStringGetTextDatum(copy.last_error);
		nulls[10] = copy.last_error[0] == '\0';
		values[11] = TimestampTzGetDatum(copy.last_error_at);
		nulls[11] = copy.last_error_at == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
