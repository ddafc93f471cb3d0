/*-------------------------------------------------------------------------
 *
 * shmem.h
 *		Shared memory areas of fraudstream.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_SHMEM_H
#define FRAUDSTREAM_SHMEM_H

#include "storage/lwlock.h"

/*
 * A module that keeps state in shared memory describes it with an area and
 * registers it from _PG_init.  size() is called once, from the postmaster's
 * shmem_request_hook, after the GUCs that size it are known; init() is
 * called once per area when the segment is created (found == false), or on
 * attach in EXEC_BACKEND builds (found == true).  An area that asks for
 * nlocks LWLocks gets a named tranche "fraudstream <name>" of its own,
 * passed to init().
 */
typedef struct FsShmemArea
{
	const char *name;			/* shown in fraudstream.memory */
	Size		(*size) (void);
	void		(*init) (void *base, bool found, LWLockPadded *locks);
	int			nlocks;			/* LWLocks of its own named tranche, or 0 */
} FsShmemArea;

extern void FsShmemInit(void);
extern void FsShmemRegister(const FsShmemArea *area);
extern LWLock *FsShmemTrancheLock(int index);

#endif							/* FRAUDSTREAM_SHMEM_H */
