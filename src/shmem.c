/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		Reserves and initializes fraudstream's shared memory, and reports
 *		its use in the fraudstream.memory view.
 *
 * Each module that needs shared state registers an FsShmemArea from
 * _PG_init.  This file chains shmem_request_hook and shmem_startup_hook
 * (keeping any previous hooks), reserves one ShmemInitStruct per area,
 * named "fraudstream <area>", and a named LWLock tranche "fraudstream"
 * whose locks modules take by index through FsShmemTrancheLock().  Areas
 * are sized once, at server start, from PGC_POSTMASTER GUCs: nothing here
 * grows later, so memory use is bounded by configuration.
 *
 * Locking: area creation runs under AddinShmemInitLock, as PostgreSQL
 * requires.  The registry of areas is process-local and written only in
 * _PG_init, before any backend exists, so reading it needs no lock.  Each
 * module documents the locking of its own area.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "fraudstream.h"
#include "shmem.h"

#define FS_MAX_AREAS			16
#define FS_LWLOCK_TRANCHE		"fraudstream"
#define FS_LWLOCKS				64

/* Registered areas and the bytes each reserved; see FsShmemRegister. */
static const FsShmemArea *areas[FS_MAX_AREAS];
static Size area_sizes[FS_MAX_AREAS];
static int	n_areas = 0;

/* The named tranche, looked up once per process. */
static LWLockPadded *tranche_locks = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

PG_FUNCTION_INFO_V1(fraudstream_memory_usage);

/* "fraudstream <area>": the name of an area's struct and of its tranche. */
static const char *
area_name(int i)
{
	static char names[FS_MAX_AREAS][SHMEM_INDEX_KEYSIZE];

	if (names[i][0] == '\0')
		snprintf(names[i], SHMEM_INDEX_KEYSIZE, "fraudstream %s", areas[i]->name);
	return names[i];
}

/*
 * Size every area and request the space and the LWLock tranche.  Runs in
 * the postmaster after all preloaded libraries' _PG_init, so GUCs have
 * their final values.
 */
static void
fs_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	for (int i = 0; i < n_areas; i++)
	{
		area_sizes[i] = MAXALIGN(areas[i]->size());
		RequestAddinShmemSpace(area_sizes[i]);
		if (areas[i]->nlocks > 0)
			RequestNamedLWLockTranche(area_name(i), areas[i]->nlocks);
	}
	RequestNamedLWLockTranche(FS_LWLOCK_TRANCHE, FS_LWLOCKS);
}

/*
 * Create (or, in EXEC_BACKEND builds, attach to) every area and let its
 * module initialize it.
 */
static void
fs_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	for (int i = 0; i < n_areas; i++)
	{
		bool		found;
		void	   *base;
		LWLockPadded *locks = NULL;

		base = ShmemInitStruct(area_name(i), area_sizes[i], &found);
		if (areas[i]->nlocks > 0)
			locks = GetNamedLWLockTranche(area_name(i));
		areas[i]->init(base, found, locks);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Install the hooks.  Called from _PG_init only when the library is
 * preloaded; modules register their areas before or after, either works.
 */
void
FsShmemInit(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = fs_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = fs_shmem_startup;
}

/*
 * Add an area.  Only valid from _PG_init while shared_preload_libraries are
 * being processed: later, the segment has already been sized.
 */
void
FsShmemRegister(const FsShmemArea *area)
{
	if (!process_shared_preload_libraries_in_progress)
		elog(ERROR, "fraudstream shared memory area \"%s\" registered after startup",
			 area->name);
	if (n_areas >= FS_MAX_AREAS)
		elog(ERROR, "too many fraudstream shared memory areas");
	areas[n_areas++] = area;
}

/*
 * Return lock "index" of the fraudstream tranche.  Modules partition their
 * state over these locks (e.g. by hash of an entity key) so that no single
 * lock serializes the hot path.
 */
LWLock *
FsShmemTrancheLock(int index)
{
	Assert(index >= 0 && index < FS_LWLOCKS);
	if (tranche_locks == NULL)
	{
		FsRequirePreload("fraudstream's shared state");
		tranche_locks = GetNamedLWLockTranche(FS_LWLOCK_TRANCHE);
	}
	return &tranche_locks[index].lock;
}

/* Append one (area, bytes) row to the result of memory_usage(). */
static void
put_usage_row(ReturnSetInfo *rsinfo, const char *area, Size bytes)
{
	Datum		values[2];
	bool		nulls[2] = {false, false};

	values[0] = CStringGetTextDatum(area);
	values[1] = Int64GetDatum((int64) bytes);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * fraudstream.memory_usage() lists the shared memory reserved by each area.
 * Errors out, with a hint, when the library was not preloaded: without
 * preload nothing is reserved and nothing that needs it can work.
 */
Datum
fraudstream_memory_usage(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	FsRequirePreload("fraudstream.memory_usage()");

	InitMaterializedSRF(fcinfo, 0);

	for (int i = 0; i < n_areas; i++)
		put_usage_row(rsinfo, areas[i]->name,
					  area_sizes[i] + areas[i]->nlocks * sizeof(LWLockPadded));
	put_usage_row(rsinfo, "lwlocks", FS_LWLOCKS * sizeof(LWLockPadded));

	return (Datum) 0;
}
