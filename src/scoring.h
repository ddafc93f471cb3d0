/*-------------------------------------------------------------------------
 *
 * scoring.h
 *		Per-insert scoring of attached tables.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_SCORING_H
#define FRAUDSTREAM_SCORING_H

#include "utils/relcache.h"

extern void FsScoringInit(void);
extern bool FsScoreTriggerFeeds(Relation rel);
extern void FsCheckAttachment(Oid relid);

#endif							/* FRAUDSTREAM_SCORING_H */
