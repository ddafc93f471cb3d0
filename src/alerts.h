/*-------------------------------------------------------------------------
 *
 * alerts.h
 *		Writing scores and alerts: fraudstream.scores, fraudstream.alerts
 *		and NOTIFY fraudstream_alerts.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_ALERTS_H
#define FRAUDSTREAM_ALERTS_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "model.h"

/* One scored row, as the score trigger hands it over. */
typedef struct FsScoreRecord
{
	Oid			relid;			/* the attached table */
	const char *row_key;		/* key_column as text, NULL if NULL */
	double		score;
	const FsModel *model;
	const char *reasons;		/* JSON (FsModelReasonsJson) */
	Jsonb	   *features;		/* the row's features: store in scores, or NULL */
	const char *entities;		/* JSON object of entity columns: alert, or NULL */
} FsScoreRecord;

extern void FsWriteScore(const FsScoreRecord *rec);
extern void FsJsonAppendClipped(StringInfo buf, const char *s);

#endif							/* FRAUDSTREAM_ALERTS_H */
