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

/* Most features one computation takes: the features of one group. */
#define FS_MAX_SPECS		64

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
	uint32		subxact;		/* the SubTransactionId that inserted a
								 * session's pending event (online.c);
								 * read nowhere else */
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
	bool		extremes;		/* an accumulator whose minimum or maximum
								 * some feature reads (FsWindowSpecsLink) */
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

/*
 * The features of a group as the window math takes them: their specs
 * (linked by FsWindowSpecsLink), their accumulators (the specs that share
 * no other's, in order: running summaries go one per accumulator), where
 * each accumulator's summary lies in a packed set of them (each cut to
 * FsSlideStoredSize, the distinct ones last, whose used slots come first:
 * a set's bytes in use then lie together), the longest window, and a
 * signature that changes whenever any spec does (it tells whether stored
 * running summaries were made for these specs).
 */
typedef struct FsWindowSet
{
	const FsWindowSpec *specs;
	int			nspecs;
	int			nslides;		/* accumulators */
	int			slide_spec[FS_MAX_SPECS];	/* each accumulator's spec */
	uint16		slide_offset[FS_MAX_SPECS]; /* each accumulator's summary in
											 * a packed set of them */
	uint32		summary_size;	/* bytes of a packed set of summaries */
	int64		longest;
	uint32		signature;
} FsWindowSet;

/*
 * Distinct values a running summary tracks before it overflows.  Stored
 * summaries are packed (FsSlideStoredSize), so this costs memory only in
 * distinct summaries.
 */
#define FS_SLIDE_DISTINCT	32

/* FsSlide.flags */
#define FS_SLIDE_HAVE		0x01	/* last: an event is held */
#define FS_SLIDE_STALE		0x02	/* min/max left the window, or a value is
									 * not finite: refold */
#define FS_SLIDE_OVERFLOW	0x04	/* distinct: more values than tracked */

/*
 * Running summary of one accumulator (a spec with shares == 0) over an
 * entity's committed events in the window ending at its newest event, for
 * entities whose events arrive in time order.  "front" is the position of
 * the oldest event in the window, kept by the caller (featurestate.c).
 *	stats		count, moments, min and max of the window's values (min
 *				and max exact only when a feature reads them: extremes)
 *	distinct	up to FS_SLIDE_DISTINCT values, each with its latest time,
 *				in the first "used" slots
 *	last		the newest event (with a position, for geo_velocity)
 * Summaries may lie packed, each cut to FsSlideStoredSize (FsWindowSet):
 * an operation on one reads and writes only the bytes of its kind.
 */
typedef struct FsSlide
{
	int32		front_block;
	uint8		front_index;
	uint8		flags;
	uint16		changes;		/* appends since a distinct summary
								 * overflowed */
	union
	{
		struct
		{
			double		n;
			double		sum[2];		/* sum of values, double-double */
			double		sumsq[2];	/* sum of squares, double-double */
			double		min;
			double		max;
			uint32		nmin;		/* values equal to min */
			uint32		nmax;		/* values equal to max */
		}			stats;
		struct
		{
			uint32		used;		/* slots below this hold a value */
			uint32		padding;
			struct
			{
				uint64		hash;
				TimestampTz seen;	/* latest time of the value */
			}			values[FS_SLIDE_DISTINCT];	/* side by side: a
													 * summary reads its
													 * used slots only */
		}			distinct;
		struct
		{
			TimestampTz time;
			double		lat;
			double		lon;
		}			last;
	}			u;
} FsSlide;

extern const char *FsAggName(FsAgg agg);
extern bool FsAggFromName(const char *name, FsAgg *agg);
extern bool FsAggNeedsValue(FsAgg agg);
extern bool FsAggIsInteger(FsAgg agg);

extern void FsWindowSpecsLink(FsWindowSpec *specs, int nspecs);
extern void FsWindowCompute(const FsWindowSpec *specs, int nspecs,
							Size event_size,
							const FsEventRun *runs, int nruns,
							const FsEvent *current, bool probe,
							double *result, bool *isnull);

extern void FsWindowSetInit(FsWindowSet *set, const FsWindowSpec *specs,
							int nspecs);
extern bool FsSlideIsStats(const FsWindowSpec *spec);
extern Size FsSlideStoredSize(const FsWindowSpec *spec);
extern void FsSlideReset(const FsWindowSpec *spec, FsSlide *slide);
extern void FsSlideAdd(const FsWindowSpec *spec, FsSlide *slide,
					   const FsEvent *event);
extern void FsSlideRemove(const FsWindowSpec *spec, FsSlide *slide,
						  const FsEvent *event);
extern bool FsSlideNeedsRefold(const FsWindowSpec *spec, const FsSlide *slide);
extern bool FsSlideTakeLate(const FsWindowSpec *spec, FsSlide *slide,
							const FsEvent *event, TimestampTz anchor);
extern void FsWindowComputeSlid(const FsWindowSet *set, Size event_size,
								const FsSlide *const *slides,
								const FsEventRun *stored, int nstored,
								const FsEventRun *pending,
								const FsEvent *current, bool probe,
								double *result, bool *isnull);

/* A replay of one entity's history at a time (the batch path). */
typedef struct FsReplay FsReplay;

extern FsReplay *FsReplayCreate(MemoryContext cxt, const FsWindowSpec *specs,
								int nspecs, Size event_size, int64 retain);
extern void FsReplayReset(FsReplay *replay);
extern TimestampTz FsReplayLatest(const FsReplay *replay);
extern void FsReplayCompute(FsReplay *replay, const FsEvent *current,
							double *result, bool *isnull);
extern void FsReplayAppend(FsReplay *replay, const FsEvent *event);
extern void FsReplayAppendStored(FsReplay *replay, const FsEvent *events, int count);
extern void FsReplaySeed(FsReplay *replay, const char *summaries, const int64 *fronts);
extern const FsWindowSet *FsReplaySet(const FsReplay *replay);

extern double FsHaversineKm(double lat1, double lon1, double lat2, double lon2);

#endif							/* FRAUDSTREAM_WINDOW_H */
