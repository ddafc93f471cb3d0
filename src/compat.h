/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Every PostgreSQL version difference fraudstream cares about.
 *
 * fraudstream is built and tested on PostgreSQL 15 and kept portable to
 * 16 and 17.  Code elsewhere never tests PG_VERSION_NUM itself: shims for
 * version differences go here, so that supporting a new major version
 * means reading one file.  The APIs used by the foundation
 * (shmem_request_hook, MarkGUCPrefixReserved, InitMaterializedSRF) are
 * the same from 15 on; the executor calls of the Kafka insert path are
 * shimmed below.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_COMPAT_H
#define FRAUDSTREAM_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#error "fraudstream requires PostgreSQL 15 or later"
#endif

/*
 * Executor entry points used by the Kafka worker's insert path (sink.c)
 * whose signatures changed in PostgreSQL 16: the range table gained
 * RTEPermissionInfos, index insertion an "only summarizing" flag, and
 * tuple routing a getter for the root-to-partition map.
 */
#if PG_VERSION_NUM >= 160000
#define FsExecInitRangeTable(estate, rtable) \
	ExecInitRangeTable((estate), (rtable), NIL)
#define FsExecInsertIndexTuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL, false)
#define FsRootToPartitionMap(rri, estate) ExecGetRootToChildMap((rri), (estate))
#else
#define FsExecInitRangeTable(estate, rtable) \
	ExecInitRangeTable((estate), (rtable))
#define FsExecInsertIndexTuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL)
#define FsRootToPartitionMap(rri, estate) ((rri)->ri_RootToPartitionMap)
#endif

#endif							/* FRAUDSTREAM_COMPAT_H */
