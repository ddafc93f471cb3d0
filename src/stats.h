/*-------------------------------------------------------------------------
 *
 * stats.h
 *		Per-source state and counters of the Kafka workers, in shared
 *		memory.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_STATS_H
#define FRAUDSTREAM_STATS_H

#include "datatype/timestamp.h"
#include "storage/spin.h"

/* Partitions whose lag a source reports; more are summed, not listed. */
#define FS_STATS_MAX_PARTITIONS	64
#define FS_STATS_ERROR_LEN		256

typedef enum FsSourceState
{
	FS_SOURCE_STOPPED = 0,		/* no worker */
	FS_SOURCE_STARTING,			/* worker connecting, joining the group */
	FS_SOURCE_RUNNING,			/* consuming */
	FS_SOURCE_BROKER_DOWN,		/* all brokers unreachable, retrying */
	FS_SOURCE_FAILED			/* worker died; launcher will restart it */
} FsSourceState;

typedef struct FsPartitionStat
{
	int32		partition;
	int64		next_offset;	/* next offset to consume, -1 unknown */
	int64		high_watermark; /* end of the partition, -1 unknown */
} FsPartitionStat;

/*
 * One slot per source of fraudstream.database.  The launcher assigns slots
 * (in_use, dbid, source_id) and the source's worker updates the rest.
 */
typedef struct FsSourceSlot
{
	slock_t		mutex;			/* protects every field below */
	bool		in_use;
	Oid			dbid;
	int32		source_id;
	pid_t		pid;			/* worker process, 0 if none */
	FsSourceState state;
	uint64		messages;
	uint64		bytes;
	uint64		rejects;
	uint64		batches;
	TimestampTz last_batch_at;
	TimestampTz last_error_at;
	char		last_error[FS_STATS_ERROR_LEN];
	int			nparts;
	FsPartitionStat parts[FS_STATS_MAX_PARTITIONS];
} FsSourceSlot;

extern int	FsMaxSources;

extern void FsStatsInit(void);
extern FsSourceSlot *FsStatsSlot(int index);
extern void FsStatsSetLauncher(int pgprocno);
extern void FsStatsWakeLauncher(void);
extern void FsStatsSetError(FsSourceSlot *slot, int32 source_id,
							const char *message);
extern void FsStatsSetState(FsSourceSlot *slot, int32 source_id,
							FsSourceState state);

#endif							/* FRAUDSTREAM_STATS_H */
