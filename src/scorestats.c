/*-------------------------------------------------------------------------
 *
 * scorestats.c
 *		Scoring statistics per model version in shared memory: rows
 *		scored, alerts, and a latency histogram for p50/p99, shown by the
 *		view fraudstream.model_stats.
 *
 * The area "scoring" holds FS_SCORE_STAT_SLOTS slots, one per model
 * version (and database) that scored since the server started.  Rows and
 * alerts count the work done, including rows whose transaction later
 * rolled back.  A slot counts rows and
 * alerts and keeps a log-linear histogram of scoring latency in
 * nanoseconds: exact below 32 ns, then 16 buckets per power of two, so a
 * reported percentile is within 1/16 (6.25%) of the true value.  When
 * every slot is taken, the one that scored least recently is reused.
 * Counters start at zero with the server, like pg_stat_statements'.
 *
 * Locking: counters are atomics, added to without a lock on the hot path
 * (three atomic adds per row).  A slot's identity (name, version) is
 * written under the area's LWLock, exclusively, when a slot is assigned;
 * backends look slots up under it in shared mode and cache the index in
 * their compiled model (FsModel.stats_slot).  A reader of the view copies
 * the counters without a lock: each is consistent, the set is not exactly
 * a snapshot.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "port/pg_bitutils.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "fraudstream.h"
#include "scorestats.h"
#include "shmem.h"

#define FS_SCORE_STAT_SLOTS		64
#define HIST_LINEAR				32	/* exact buckets below this many ns */
#define HIST_SUB_BITS			4	/* 16 buckets per power of two */
#define HIST_MAX_EXPONENT		40	/* up to 2^41 ns, about 36 minutes */
#define HIST_BUCKETS			(HIST_LINEAR + (HIST_MAX_EXPONENT - 4) * (1 << HIST_SUB_BITS))

typedef struct ScoreStatSlot
{
	Oid			dbid;			/* models are per database */
	char		model[NAMEDATALEN];
	int32		version;			/* 0: free */
	pg_atomic_uint64 rows;
	pg_atomic_uint64 alerts;
	pg_atomic_uint64 last_used;		/* timestamp of the latest row, for reuse */
	pg_atomic_uint64 histogram[HIST_BUCKETS];
} ScoreStatSlot;

typedef struct ScoreStatsShared
{
	ScoreStatSlot slots[FS_SCORE_STAT_SLOTS];
} ScoreStatsShared;

static ScoreStatsShared *shared = NULL;
static LWLock *slots_lock = NULL;

PG_FUNCTION_INFO_V1(fraudstream_model_stats);

static Size
score_stats_size(void)
{
	return sizeof(ScoreStatsShared);
}

static void
score_stats_init(void *base, bool found, LWLockPadded *locks)
{
	shared = (ScoreStatsShared *) base;
	slots_lock = &locks[0].lock;
	if (found)
		return;
	memset(base, 0, sizeof(ScoreStatsShared));
	for (int i = 0; i < FS_SCORE_STAT_SLOTS; i++)
	{
		ScoreStatSlot *s = &shared->slots[i];

		pg_atomic_init_u64(&s->rows, 0);
		pg_atomic_init_u64(&s->alerts, 0);
		pg_atomic_init_u64(&s->last_used, 0);
		for (int b = 0; b < HIST_BUCKETS; b++)
			pg_atomic_init_u64(&s->histogram[b], 0);
	}
}

static const FsShmemArea score_stats_area = {
	.name = "scoring",
	.size = score_stats_size,
	.init = score_stats_init,
	.nlocks = 1,
};

void
FsScoreStatsInit(void)
{
	FsShmemRegister(&score_stats_area);
}

/* The histogram bucket of a latency in ns. */
static int
bucket_of(uint64 ns)
{
	int			exponent;

	if (ns < HIST_LINEAR)
		return (int) ns;
	exponent = pg_leftmost_one_pos64(ns);
	if (exponent > HIST_MAX_EXPONENT)
		return HIST_BUCKETS - 1;
	return HIST_LINEAR + (exponent - 5) * (1 << HIST_SUB_BITS) +
		(int) ((ns >> (exponent - HIST_SUB_BITS)) & ((1 << HIST_SUB_BITS) - 1));
}

/* The middle of a bucket, in ns. */
static double
bucket_middle(int bucket)
{
	int			exponent;
	int			sub;
	double		low;
	double		width;

	if (bucket < HIST_LINEAR)
		return bucket;
	exponent = (bucket - HIST_LINEAR) / (1 << HIST_SUB_BITS) + 5;
	sub = (bucket - HIST_LINEAR) % (1 << HIST_SUB_BITS);
	width = ldexp(1.0, exponent - HIST_SUB_BITS);
	low = ldexp(1.0, exponent) + sub * width;
	return low + width / 2;
}

/*
 * The slot of a model version, assigned on first use.  Returns -1 when
 * fraudstream is not preloaded (no statistics are kept then).
 */
int
FsScoreStatsSlot(const char *model, int32 version)
{
	int			victim = 0;
	uint64		oldest = PG_UINT64_MAX;

	if (shared == NULL)
		return -1;
	LWLockAcquire(slots_lock, LW_SHARED);
	for (int i = 0; i < FS_SCORE_STAT_SLOTS; i++)
		if (shared->slots[i].version == version && shared->slots[i].dbid == MyDatabaseId &&
			strcmp(shared->slots[i].model, model) == 0)
		{
			LWLockRelease(slots_lock);
			return i;
		}
	LWLockRelease(slots_lock);

	LWLockAcquire(slots_lock, LW_EXCLUSIVE);
	for (int i = 0; i < FS_SCORE_STAT_SLOTS; i++)
	{
		ScoreStatSlot *s = &shared->slots[i];
		uint64		used = pg_atomic_read_u64(&s->last_used);

		if (s->version == version && s->dbid == MyDatabaseId &&
			strcmp(s->model, model) == 0)
		{
			LWLockRelease(slots_lock);
			return i;
		}
		if (s->version == 0)
			used = 0;
		if (used < oldest)
		{
			oldest = used;
			victim = i;
		}
	}
	{
		ScoreStatSlot *s = &shared->slots[victim];

		strlcpy(s->model, model, NAMEDATALEN);
		s->dbid = MyDatabaseId;
		s->version = version;
		pg_atomic_write_u64(&s->rows, 0);
		pg_atomic_write_u64(&s->alerts, 0);
		pg_atomic_write_u64(&s->last_used, (uint64) GetCurrentTimestamp());
		for (int b = 0; b < HIST_BUCKETS; b++)
			pg_atomic_write_u64(&s->histogram[b], 0);
	}
	LWLockRelease(slots_lock);
	return victim;
}

/* Count one scored row of the slot's model version. */
void
FsScoreStatsRecord(int slot, uint64 latency_ns, bool alert, TimestampTz now)
{
	ScoreStatSlot *s;

	if (slot < 0 || shared == NULL)
		return;
	s = &shared->slots[slot];
	pg_atomic_fetch_add_u64(&s->rows, 1);
	pg_atomic_fetch_add_u64(&s->histogram[bucket_of(latency_ns)], 1);
	if (alert)
		pg_atomic_fetch_add_u64(&s->alerts, 1);
	if (pg_atomic_read_u64(&s->last_used) < (uint64) now)
		pg_atomic_write_u64(&s->last_used, (uint64) now);
}

/* The latency at quantile q of a copied histogram, in microseconds. */
static double
quantile_us(const uint64 *histogram, uint64 total, double q)
{
	uint64		rank = (uint64) ceil(q * (double) total);
	uint64		seen = 0;

	for (int b = 0; b < HIST_BUCKETS; b++)
	{
		seen += histogram[b];
		if (seen >= Max(rank, 1))
			return bucket_middle(b) / 1000.0;
	}
	return bucket_middle(HIST_BUCKETS - 1) / 1000.0;
}

/*
 * fraudstream.model_stats() returns (model, version, rows_scored, alerts,
 * latency_p50_us, latency_p99_us) for every model version of the current
 * database that scored.
 */
Datum
fraudstream_model_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	uint64	   *histogram = palloc(sizeof(uint64) * HIST_BUCKETS);

	FsRequirePreload("fraudstream.model_stats");
	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < FS_SCORE_STAT_SLOTS; i++)
	{
		ScoreStatSlot *s = &shared->slots[i];
		char		model[NAMEDATALEN];
		int32		version;
		uint64		rows;
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		LWLockAcquire(slots_lock, LW_SHARED);
		version = s->dbid == MyDatabaseId ? s->version : 0;
		strlcpy(model, s->model, NAMEDATALEN);
		LWLockRelease(slots_lock);
		if (version == 0)
			continue;
		rows = 0;
		for (int b = 0; b < HIST_BUCKETS; b++)
		{
			histogram[b] = pg_atomic_read_u64(&s->histogram[b]);
			rows += histogram[b];
		}
		values[0] = CStringGetTextDatum(model);
		values[1] = Int32GetDatum(version);
		values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&s->rows));
		values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&s->alerts));
		if (rows > 0)
		{
			values[4] = Float8GetDatum(quantile_us(histogram, rows, 0.50));
			values[5] = Float8GetDatum(quantile_us(histogram, rows, 0.99));
		}
		else
			nulls[4] = nulls[5] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
