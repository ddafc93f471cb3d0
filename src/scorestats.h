/*-------------------------------------------------------------------------
 *
 * scorestats.h
 *		Scoring statistics per model version (fraudstream.model_stats).
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_SCORESTATS_H
#define FRAUDSTREAM_SCORESTATS_H

#include "datatype/timestamp.h"

extern void FsScoreStatsInit(void);
extern int	FsScoreStatsSlot(const char *model, int32 version);
extern void FsScoreStatsRecord(int slot, uint64 latency_ns, bool alert,
							   TimestampTz now);

#endif							/* FRAUDSTREAM_SCORESTATS_H */
