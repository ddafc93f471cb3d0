/*-------------------------------------------------------------------------
 *
 * window.h
 *		The sliding-window math shared by the online state, the batch path
 *		and the rebuild after restart.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_WINDOW_H
#define FRAUDSTREAM_WINDOW_H

#include "datatype/timestamp.h"

/* Aggregations a feature can use; FsAggName() gives the SQL spelling. */
typedef enum FsAgg
{
	FS_AGG_COUNT,
	FS_AGG_SUM,
	FS_AGG_AVG,
	FS_AGG_MIN,
	FS_AGG_MAX,
	FS_AGG_STDDEV,
	FS_AGG_ZSCORE,
	FS_AGG_DISTINCT,
	FS_AGG_SINCE_LAST,
	FS_AGG_GEO_VELOCITY,
	FS_AGG_RATIO_TO_AVG
} FsAgg;

#define FS_AGG_COUNT_ALL	(FS_AGG_RATIO_TO_AVG + 1)

/* No value slot: the feature reads only event times. */
#define FS_NO_SLOT			(-1)

/* Most value slots one event can carry (bits of FsEvent.nullmask). */
#define FS_MAX_SLOTS		32

/*
 * One event as the window math sees it: its event time and its values,
 * one float8 per slot.  A slot holds a numeric value converted to float8,
 * or, for "distinct", the 64-bit hash of the value stored bit for bit.
 * Events are stored in arrays of records of FS_EVENT_SIZE(nslots) bytes.
 */
typedef struct FsEvent
{
	TimestampTz time;
	uint32		nullmask;		/* bit i set: slot i is NULL */
	uint32		padding;
	double		values[FLEXIBLE_ARRAY_MEMBER];
} FsEvent;

#define FS_EVENT_SIZE(nslots) \
	(offsetof(FsEvent, values) + (nslots) * sizeof(double))
#define FS_EVENT_AT(base, i, size) \
	((FsEvent *) ((char *) (base) + (Size) (i) * (size)))
#define FS_EVENT_ISNULL(ev, slot) \
	(((ev)->nullmask & ((uint32) 1 << (slot))) != 0)

/* What the window math needs to know about one feature. */
typedef struct FsWindowSpec
{
	FsAgg		agg;
	int64		window;			/* microseconds, > 0 */
	int			slot;			/* value slot, or FS_NO_SLOT */
	int			slot2;			/* geo_velocity: longitude slot */
	int			shares;			/* 0, or 1 + an earlier spec whose
								 * accumulator this one reads: see
								 * FsWindowSpecsLink */
} FsWindowSpec;

/*
 * A run of events, all earlier in arrival order than the event being
 * scored: a block of the online state, or the backend's own pending events.
 */
typedef struct FsEventRun
{
	const FsEvent *events;
	int			count;
} FsEventRun;

extern const char *FsAggName(FsAgg agg);
extern bool FsAggFromName(const char *name, FsAgg *agg);
extern bool FsAggNeedsValue(FsAgg agg);

extern void FsWindowSpecsLink(FsWindowSpec *specs, int nspecs);
extern void FsWindowCompute(const FsWindowSpec *specs, int nspecs,
							Size event_size,
							const FsEventRun *runs, int nruns,
							const FsEvent *current, bool probe,
							double *result, bool *isnull);

extern double FsHaversineKm(double lat1, double lon1, double lat2, double lon2);

#endif							/* FRAUDSTREAM_WINDOW_H */

/* ======================================================================
 * Sliding windows for replays (batch path).  See the section of the same
 * name at the end of window.c.
 * ======================================================================
 */
#ifndef FRAUDSTREAM_WINDOW_SLIDE_H
#define FRAUDSTREAM_WINDOW_SLIDE_H

#include "utils/palloc.h"

typedef struct FsSlide FsSlide;

extern FsSlide *FsSlideCreate(MemoryContext cxt, const FsWindowSpec *specs,
							  int nspecs, Size event_size, int64 retain);
extern TimestampTz FsSlideLatest(const FsSlide *slide);
extern void FsSlideReset(FsSlide *slide);
extern bool FsSlideCompute(FsSlide *slide, const FsEvent *current,
						   double *result, bool *isnull);
extern void FsSlideAppend(FsSlide *slide, const FsEvent *event);

#endif							/* FRAUDSTREAM_WINDOW_SLIDE_H */
