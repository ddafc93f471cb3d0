/*-------------------------------------------------------------------------
 *
 * worker.h
 *		The Kafka source worker: one background worker per source.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_WORKER_H
#define FRAUDSTREAM_WORKER_H

#include "postgres.h"

/* What the launcher passes in bgw_extra. */
typedef struct FsWorkerArgs
{
	Oid			dbid;
	int32		source_id;
} FsWorkerArgs;

extern int	FsBatchSize;
extern int	FsBatchMaxAge;

extern void FsWorkerInit(void);
extern PGDLLEXPORT void fraudstream_worker_main(Datum main_arg);

#endif							/* FRAUDSTREAM_WORKER_H */
