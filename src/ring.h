/*-------------------------------------------------------------------------
 *
 * ring.h
 *		Ring tables: unlogged, bounded, self-rotating.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_RING_H
#define FRAUDSTREAM_RING_H

#include "postgres.h"

extern int	FsRotationLockTimeout;

extern void FsRingInit(void);
extern long FsRingRotateDue(void);

#endif							/* FRAUDSTREAM_RING_H */
