/*-------------------------------------------------------------------------
 *
 * online.h
 *		The online path: events fed by inserts, the session's pending
 *		events, and features computed from both.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_ONLINE_H
#define FRAUDSTREAM_ONLINE_H

#include "featuredefs.h"
#include "lib/stringinfo.h"

extern void FsOnlineInit(void);
extern bool FsOnlineCompute(const FsGroupDef *gd, const FsEntityKey *key,
							const FsEvent *event, bool probe,
							double *result, bool *isnull);
extern void FsOnlineComputeAndFeed(const FsGroupDef *gd, Oid relid,
								   const FsEntityKey *key, const FsEvent *event,
								   double *result, bool *isnull);
extern void FsEnsureGroupLoaded(const FsGroupDef *gd, Oid relid);

#endif							/* FRAUDSTREAM_ONLINE_H */
