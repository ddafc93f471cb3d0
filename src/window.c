/*-------------------------------------------------------------------------
 *
 * window.c
 *		Sliding-window aggregations over event time: the one place where
 *		fraudstream's feature semantics are defined in code.
 *
 * A feature of an event at time t is computed over the events of the same
 * entity whose time lies in (t - window, t] and that arrived before it,
 * plus the event itself.  The online state (featurestate.c), the batch
 * path over history (batch.c) and the rebuild after a restart all call
 * FsWindowCompute, so the three cannot disagree.
 *
 * Semantics, per aggregation (x is the event's own value, "window" the
 * events in (t - window, t] including the event itself, "others" the
 * window without it; NULL values are skipped as SQL aggregates skip them):
 *
 *	count			events in the window; with a value column, non-NULL values
 *	sum, avg, min,	over the non-NULL values of the window; NULL if none
 *	max
 *	stddev			sample standard deviation of the window; NULL below 2 values
 *	zscore			(x - avg(others)) / stddev(others); NULL if x is NULL, fewer
 *					than 2 others, or their stddev is 0
 *	ratio_to_avg	x / avg(others); NULL if x is NULL, no others, or avg 0
 *	distinct		distinct non-NULL values in the window (compared by their
 *					64-bit hash, so two values collide with odds 2^-64)
 *	since_last		seconds from the latest other event (time <= t) to t; NULL
 *					if there is none in the window
 *	geo_velocity	km/h from the latest other event with a position to this
 *					event's position (haversine, mean Earth radius); the time
 *					between them is counted as at least 1 second; NULL if
 *					either position is missing or no such event is in the window
 *
 * An event later than fraudstream.max_lateness behind its entity's newest
 * event is not counted and gets no features (all NULL): see
 * FsEventIsLate.
 *
 * Ties: among events with the same time, the one that arrived last is the
 * latest.  Sums, averages and deviations use the same Youngs-Cramer
 * accumulation as PostgreSQL's float8 aggregates.
 *
 * XXX: the computation scans the events of the longest window once for all
 * the features of an entity: its cost grows with the number of events in
 * the window.
 *
 * Locking: none; callers hold whatever protects the runs they pass.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "window.h"

#define EARTH_RADIUS_KM		6371.0088
#define USECS_PER_HOUR_F	3600000000.0

static const char *const agg_names[FS_AGG_COUNT_ALL] = {
	[FS_AGG_COUNT] = "count",
	[FS_AGG_SUM] = "sum",
	[FS_AGG_AVG] = "avg",
	[FS_AGG_MIN] = "min",
	[FS_AGG_MAX] = "max",
	[FS_AGG_STDDEV] = "stddev",
	[FS_AGG_ZSCORE] = "zscore",
	[FS_AGG_DISTINCT] = "distinct",
	[FS_AGG_SINCE_LAST] = "since_last",
	[FS_AGG_GEO_VELOCITY] = "geo_velocity",
	[FS_AGG_RATIO_TO_AVG] = "ratio_to_avg",
};

/*
 * Youngs-Cramer accumulator, as float8_accum: N, Sx and Sxx, where Sxx is
 * the sum of squared deviations from the running mean.
 */
typedef struct Moments
{
	double		n;
	double		sx;
	double		sxx;
} Moments;

/* Per-feature scratch state of one FsWindowCompute call. */
typedef struct Accum
{
	int64		count;			/* events, or non-NULL values */
	Moments		m;				/* of the other events' values */
	double		min;
	double		max;
	bool		have_prev;
	TimestampTz prev_time;
	double		prev_lat;
	double		prev_lon;
	/* distinct: open-addressing set of hashes */
	uint64	   *set;
	int			set_size;		/* power of 2 */
	int			set_used;
	bool		set_has_zero;	/* 0 is the empty marker; tracked apart */
} Accum;

const char *
FsAggName(FsAgg agg)
{
	Assert(agg >= 0 && agg < FS_AGG_COUNT_ALL);
	return agg_names[agg];
}

/* Parse an aggregation's SQL name; false if there is no such aggregation. */
bool
FsAggFromName(const char *name, FsAgg *agg)
{
	for (int i = 0; i < FS_AGG_COUNT_ALL; i++)
	{
		if (strcmp(name, agg_names[i]) == 0)
		{
			*agg = (FsAgg) i;
			return true;
		}
	}
	return false;
}

/* Whether the aggregation reads a value column (count and since_last don't). */
bool
FsAggNeedsValue(FsAgg agg)
{
	return agg != FS_AGG_COUNT && agg != FS_AGG_SINCE_LAST;
}

/* Great-circle distance in km between two points given in degrees. */
double
FsHaversineKm(double lat1, double lon1, double lat2, double lon2)
{
	double		rad = M_PI / 180.0;
	double		dlat = (lat2 - lat1) * rad;
	double		dlon = (lon2 - lon1) * rad;
	double		a;

	a = sin(dlat / 2) * sin(dlat / 2) +
		cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
	return 2.0 * EARTH_RADIUS_KM * asin(Min(1.0, sqrt(a)));
}

/* Add one value, as float8_accum does. */
static inline void
moments_add(Moments *m, double x)
{
	double		n = m->n + 1.0;
	double		sx = m->sx + x;

	if (m->n > 0.0)
	{
		double		tmp = x * n - sx;

		m->sxx += tmp * tmp / (m->n * n);
	}
	else
		m->sxx = 0.0;
	m->n = n;
	m->sx = sx;
}

/* Sample standard deviation, as float8_stddev_samp; false below 2 values. */
static inline bool
moments_stddev(const Moments *m, double *result)
{
	if (m->n < 2.0)
		return false;
	*result = sqrt(m->sxx / (m->n - 1.0));
	return true;
}

/* Insert a hash into a distinct set, growing it at half load. */
static void
set_add(Accum *acc, uint64 h)
{
	int			mask;
	int			i;

	if (h == 0)
	{
		acc->set_has_zero = true;
		return;
	}
	if (acc->set_used * 2 >= acc->set_size)
	{
		uint64	   *old = acc->set;
		int			old_size = acc->set_size;

		acc->set_size = old_size ? old_size * 2 : 16;
		acc->set = palloc0(sizeof(uint64) * acc->set_size);
		acc->set_used = 0;
		for (i = 0; i < old_size; i++)
			if (old[i] != 0)
				set_add(acc, old[i]);
		if (old)
			pfree(old);
	}
	mask = acc->set_size - 1;
	for (i = (int) (h & mask);; i = (i + 1) & mask)
	{
		if (acc->set[i] == h)
			return;
		if (acc->set[i] == 0)
		{
			acc->set[i] = h;
			acc->set_used++;
			return;
		}
	}
}

static inline uint64
slot_hash(const FsEvent *ev, int slot)
{
	uint64		h;

	memcpy(&h, &ev->values[slot], sizeof(h));
	return h;
}

/*
 * Whether a feature reads the plain statistics of one value column (count
 * of values, moments, minimum, maximum): features of the same window and
 * column can then share one accumulator.
 */
static inline bool
reads_value_stats(const FsWindowSpec *spec)
{
	switch (spec->agg)
	{
		case FS_AGG_COUNT:
		case FS_AGG_SUM:
		case FS_AGG_AVG:
		case FS_AGG_MIN:
		case FS_AGG_MAX:
		case FS_AGG_STDDEV:
		case FS_AGG_ZSCORE:
		case FS_AGG_RATIO_TO_AVG:
			return true;
		default:
			return false;
	}
}

/*
 * Link each feature to the first earlier one with the same window and
 * value column whose accumulator it can read (count, sum, avg, min, max,
 * stddev, zscore and ratio_to_avg of one column all read the same
 * statistics), so that FsWindowCompute folds each event once per window
 * and column instead of once per feature.  Call once per definition set.
 */
void
FsWindowSpecsLink(FsWindowSpec *specs, int nspecs)
{
	for (int f = 0; f < nspecs; f++)
	{
		specs[f].shares = 0;
		if (!reads_value_stats(&specs[f]))
			continue;
		for (int g = 0; g < f; g++)
		{
			if (specs[g].shares == 0 && reads_value_stats(&specs[g]) &&
				specs[g].window == specs[f].window && specs[g].slot == specs[f].slot)
			{
				specs[f].shares = g + 1;
				break;
			}
		}
	}
}

/* Fold one other event (not the scored one) into a feature's accumulator. */
static inline void
accum_event(const FsWindowSpec *spec, Accum *acc, const FsEvent *ev,
			const FsEvent *current)
{
	if (reads_value_stats(spec))
	{
		if (spec->slot == FS_NO_SLOT)
			acc->count++;
		else if (!FS_EVENT_ISNULL(ev, spec->slot))
		{
			double		x = ev->values[spec->slot];

			moments_add(&acc->m, x);
			if (acc->m.n == 1.0 || x < acc->min)
				acc->min = x;
			if (acc->m.n == 1.0 || x > acc->max)
				acc->max = x;
		}
		return;
	}
	switch (spec->agg)
	{
		case FS_AGG_DISTINCT:
			if (!FS_EVENT_ISNULL(ev, spec->slot))
				set_add(acc, slot_hash(ev, spec->slot));
			break;
		case FS_AGG_SINCE_LAST:
		case FS_AGG_GEO_VELOCITY:
			if (spec->agg == FS_AGG_GEO_VELOCITY &&
				(FS_EVENT_ISNULL(ev, spec->slot) || FS_EVENT_ISNULL(ev, spec->slot2)))
				break;
			/* ">=": of equal times the later arrival wins */
			if (!acc->have_prev || ev->time >= acc->prev_time)
			{
				acc->have_prev = true;
				acc->prev_time = ev->time;
				if (spec->agg == FS_AGG_GEO_VELOCITY)
				{
					acc->prev_lat = ev->values[spec->slot];
					acc->prev_lon = ev->values[spec->slot2];
				}
			}
			break;
		default:
			break;
	}
}

/*
 * Turn a feature's accumulator and the scored event into its value.  A
 * probe is a point in time, not an event: it counts for nothing and has
 * no values (its slots are all NULL).
 */
static bool
finish_feature(const FsWindowSpec *spec, Accum *acc, const FsEvent *cur,
			   bool probe, double *result)
{
	bool		has_slot = spec->slot != FS_NO_SLOT;
	bool		cur_null = has_slot && FS_EVENT_ISNULL(cur, spec->slot);
	double		x = (has_slot && !cur_null) ? cur->values[spec->slot] : 0.0;
	Moments		all = acc->m;
	double		sd;

	if (has_slot && !cur_null)
		moments_add(&all, x);

	switch (spec->agg)
	{
		case FS_AGG_COUNT:
			if (has_slot)
				*result = all.n;
			else
				*result = (double) (acc->count + (probe ? 0 : 1));
			return true;
		case FS_AGG_SUM:
			*result = all.sx;
			return all.n > 0.0;
		case FS_AGG_AVG:
			*result = all.sx / all.n;
			return all.n > 0.0;
		case FS_AGG_MIN:
			if (all.n == 0.0)
				return false;
			*result = acc->m.n == 0.0 ? x : (cur_null ? acc->min : Min(acc->min, x));
			return true;
		case FS_AGG_MAX:
			if (all.n == 0.0)
				return false;
			*result = acc->m.n == 0.0 ? x : (cur_null ? acc->max : Max(acc->max, x));
			return true;
		case FS_AGG_STDDEV:
			return moments_stddev(&all, result);
		case FS_AGG_ZSCORE:
			if (cur_null || !moments_stddev(&acc->m, &sd) || sd == 0.0)
				return false;
			*result = (x - acc->m.sx / acc->m.n) / sd;
			return true;
		case FS_AGG_RATIO_TO_AVG:
			if (cur_null || acc->m.n == 0.0 || acc->m.sx == 0.0)
				return false;
			*result = x / (acc->m.sx / acc->m.n);
			return true;
		case FS_AGG_DISTINCT:
			if (!cur_null)
				set_add(acc, slot_hash(cur, spec->slot));
			*result = (double) (acc->set_used + (acc->set_has_zero ? 1 : 0));
			return true;
		case FS_AGG_SINCE_LAST:
			if (!acc->have_prev)
				return false;
			*result = (double) (cur->time - acc->prev_time) / USECS_PER_SEC;
			return true;
		case FS_AGG_GEO_VELOCITY:
			{
				double		hours;

				if (!acc->have_prev || FS_EVENT_ISNULL(cur, spec->slot) ||
					FS_EVENT_ISNULL(cur, spec->slot2))
					return false;
				hours = Max((double) (cur->time - acc->prev_time), (double) USECS_PER_SEC) /
					USECS_PER_HOUR_F;
				*result = FsHaversineKm(acc->prev_lat, acc->prev_lon,
										cur->values[spec->slot],
										cur->values[spec->slot2]) / hours;
				return true;
			}
	}
	return false;
}

/*
 * Compute nspecs features of "current" from the events of "runs" (all of
 * the same entity, all arrived before it, in any time order).  With probe,
 * "current" is only a point in time (see finish_feature).  Results go to
 * result[i] / isnull[i].  Scratch memory comes from the current memory
 * context.
 */
void
FsWindowCompute(const FsWindowSpec *specs, int nspecs, Size event_size,
				const FsEventRun *runs, int nruns, const FsEvent *current,
				bool probe, double *result, bool *isnull)
{
	Accum	   *acc = palloc0(sizeof(Accum) * nspecs);
	int64		longest = 0;

	for (int f = 0; f < nspecs; f++)
		longest = Max(longest, specs[f].window);

	for (int r = 0; r < nruns; r++)
	{
		for (int i = 0; i < runs[r].count; i++)
		{
			const FsEvent *ev = FS_EVENT_AT(runs[r].events, i, event_size);
			int64		age = current->time - ev->time;

			/* in (t - window, t] for some feature? */
			if (age < 0 || age >= longest)
				continue;
			for (int f = 0; f < nspecs; f++)
				if (specs[f].shares == 0 && age < specs[f].window)
					accum_event(&specs[f], &acc[f], ev, current);
		}
	}

	for (int f = 0; f < nspecs; f++)
	{
		Accum	   *own = &acc[specs[f].shares == 0 ? f : specs[f].shares - 1];

		isnull[f] = !finish_feature(&specs[f], own, current, probe, &result[f]);
		if (isnull[f])
			result[f] = 0.0;
		if (acc[f].set)
			pfree(acc[f].set);
	}
	pfree(acc);
}

/* ======================================================================
 * Sliding windows for replays
 *
 * FsWindowCompute folds every event of the longest window each time it
 * scores an event: O(events in the window) per event.  A replay of
 * history (batch.c) scores all the events of an entity one after the
 * other in arrival order, so it can instead keep each window's statistics
 * and update them as events enter and leave it: amortised O(1) per event
 * while the entity's events arrive in time order, when every window is a
 * suffix of the history that only moves forward.
 *
 * An FsSlide is one entity's history, as the online state keeps it (its
 * non-late events in arrival order, pruned to the group's retention), and
 * for each accumulator of the specs (see FsWindowSpecsLink) a cursor on
 * the first event inside its window plus the statistics of the events
 * from the cursor on:
 *	count			number of events: exact
 *	min, max		monotonic deques of (event, value): exact
 *	moments			n, S = sum(x - K) and Q = sum((x - K)^2) for a shift K
 *					taken from the window, updated as values enter and
 *					leave with compensated summation, and a bound of
 *					their rounding error that does not grow with the
 *					number of values or of updates
 *	since_last,		read from the newest events of the history: exact
 *	geo_velocity
 * FsSlideCompute turns these into FsWindowCompute's scratch accumulator
 * (count, and n, sum and sum of squared deviations of the other events)
 * and finishes each feature with the same code, finish_feature, which
 * folds in the scored event exactly as the online path does.
 *
 * Exactness.  Sums and deviations are the only values that can differ
 * from the online Youngs-Cramer accumulation, and only by rounding.  The
 * sliding moments are used only when
 *	(1) the error bounds of sum(x) and of sum((x - mean)^2) are below
 *		2^-44 (5.7e-14) of their values (they fail when the shift K is
 *		far from the window's values, e.g. an outlier that has left); if
 *		not, the moments are recomputed from the window's events, shifted
 *		by their mean, and if the bounds still fail the event takes the
 *		exact path;
 *	(2) the window is well conditioned, so that the online accumulation
 *		is accurate too: sum(|x|) <= 2 |sum(x)| and n mean^2 <= 10^4
 *		sum((x - mean)^2), i.e. the values' coefficient of variation is
 *		at least 1%.
 * Under (1) and (2) the sliding and online values of sum, avg, stddev,
 * zscore and ratio_to_avg differ by far less than 1e-9 relative (absolute
 * for values below 1) for windows of up to 10^4 values; in practice by a
 * few ulps.  The exact path is FsWindowCompute over the history, bit for
 * bit the online value: it serves events failing (1) or (2), events that
 * arrive earlier in time than the entity's newest event, every event of
 * an entity while an event that arrived out of time order is still in
 * its history, entities with non-finite values, and groups with a
 * "distinct" feature (XXX: no sliding form yet).
 * ======================================================================
 */

#define SLIDE_ULP			0x1p-53
#define SLIDE_MAX_ERROR		0x1p-44
#define SLIDE_MAX_CV2		1.0e4
#define SLIDE_MAX_SPECS		64

/* A ring buffer of (event sequence number, value), kept monotonic. */
typedef struct SlideDeque
{
	int64	   *seq;
	double	   *val;
	int			head;
	int			count;
	int			capacity;		/* a power of 2 */
} SlideDeque;

/*
 * A sum under Neumaier's compensated summation, terms added and subtracted:
 * hi + lo is within 2u |hi + lo| + 4u^2 work of the exact sum of the terms
 * (u = 2^-53), work being the sum of |partial sum| + |term| over every
 * step.  Unlike a plain sum, its error does not grow with the number of
 * terms or of steps to first order.
 */
typedef struct SlideSum
{
	double		hi;
	double		lo;
	double		work;
} SlideSum;

/* The sliding statistics of one accumulator (a spec with shares == 0). */
typedef struct SlideAcc
{
	const FsWindowSpec *spec;
	int			index;			/* of spec in the specs */
	int64		cursor;			/* sequence number of the first event inside */
	bool		moments;		/* reads a value column's statistics */
	bool		want_min;		/* ... including their minimum */
	bool		want_max;		/* ... or maximum */
	double		n;				/* non-NULL values from the cursor on */
	double		K;				/* shift */
	SlideSum	S;				/* sum(x - K) */
	SlideSum	Q;				/* sum((x - K)^2) */
	SlideSum	D;				/* sum(|x - K|) */
	double		A;				/* sum(|x|), for the conditioning only */
	SlideDeque	min;
	SlideDeque	max;
} SlideAcc;

struct FsSlide
{
	MemoryContext cxt;
	const FsWindowSpec *specs;
	int			nspecs;
	Size		event_size;
	int64		retain;
	bool		fast;			/* the sliding path may serve this entity */
	int			nacc;
	/* the history: events[start .. count), event i has number base + i */
	char	   *events;
	int			start;
	int			count;
	int			capacity;
	int64		base;
	TimestampTz latest;
	int64		disorder;		/* number of the last out-of-order arrival, or -1 */
	bool		valid;			/* the accumulators hold their windows */
	SlideAcc	acc[FLEXIBLE_ARRAY_MEMBER];
};

#define SLIDE_EVENT(s, seq) FS_EVENT_AT((s)->events, (seq) - (s)->base, (s)->event_size)

static void moments_reset(SlideAcc *a);

/*
 * A replay's state, in cxt, for one entity at a time (see FsSlideReset).
 * specs must stay valid as long as the slide; retain is the group's
 * (longest window + max_lateness).
 */
FsSlide *
FsSlideCreate(MemoryContext cxt, const FsWindowSpec *specs, int nspecs,
			  Size event_size, int64 retain)
{
	FsSlide    *s;
	int			nacc = 0;

	for (int f = 0; f < nspecs; f++)
		if (specs[f].shares == 0)
			nacc++;
	s = MemoryContextAllocZero(cxt, offsetof(FsSlide, acc) + sizeof(SlideAcc) * nacc);
	s->cxt = cxt;
	s->specs = specs;
	s->nspecs = nspecs;
	s->event_size = event_size;
	s->retain = retain;
	for (int f = 0; f < nspecs; f++)
	{
		SlideAcc   *a;

		if (specs[f].shares != 0)
		{
			/* the owner's accumulator keeps what this spec reads */
			for (int i = 0; i < s->nacc; i++)
				if (s->acc[i].index == specs[f].shares - 1)
				{
					s->acc[i].want_min |= specs[f].agg == FS_AGG_MIN;
					s->acc[i].want_max |= specs[f].agg == FS_AGG_MAX;
				}
			continue;
		}
		a = &s->acc[s->nacc++];
		a->spec = &specs[f];
		a->index = f;
		a->moments = reads_value_stats(&specs[f]) && specs[f].slot != FS_NO_SLOT;
		a->want_min = specs[f].agg == FS_AGG_MIN;
		a->want_max = specs[f].agg == FS_AGG_MAX;
	}
	FsSlideReset(s);
	return s;
}

/*
 * Forget the history, to replay another entity with the same specs; the
 * memory already allocated is kept for it.
 */
void
FsSlideReset(FsSlide *s)
{
	s->start = s->count = 0;
	s->base = 0;
	s->latest = DT_NOBEGIN;
	s->disorder = -1;
	s->valid = false;
	s->fast = s->nspecs <= SLIDE_MAX_SPECS;
	for (int f = 0; f < s->nspecs; f++)
		if (s->specs[f].agg == FS_AGG_DISTINCT)
			s->fast = false;
	for (int i = 0; i < s->nacc; i++)
	{
		s->acc[i].cursor = 0;
		s->acc[i].min.count = s->acc[i].max.count = 0;
		moments_reset(&s->acc[i]);
	}
}

/* The entity's newest event time, for FsEventIsLate; DT_NOBEGIN if none. */
TimestampTz
FsSlideLatest(const FsSlide *slide)
{
	return slide->latest;
}

static void
deque_push(FsSlide *s, SlideDeque *d, int64 seq, double x, bool keep_min)
{
	int			mask;

	/* drop the values the new one makes useless */
	while (d->count > 0)
	{
		int			back = (d->head + d->count - 1) & (d->capacity - 1);

		if (keep_min ? d->val[back] < x : d->val[back] > x)
			break;
		d->count--;
	}
	if (d->count == d->capacity)
	{
		int			capacity = d->capacity ? d->capacity * 2 : 8;
		int64	   *seqs = MemoryContextAlloc(s->cxt, sizeof(int64) * capacity);
		double	   *vals = MemoryContextAlloc(s->cxt, sizeof(double) * capacity);

		for (int i = 0; i < d->count; i++)
		{
			seqs[i] = d->seq[(d->head + i) & (d->capacity - 1)];
			vals[i] = d->val[(d->head + i) & (d->capacity - 1)];
		}
		if (d->seq)
		{
			pfree(d->seq);
			pfree(d->val);
		}
		d->seq = seqs;
		d->val = vals;
		d->head = 0;
		d->capacity = capacity;
	}
	mask = d->capacity - 1;
	d->seq[(d->head + d->count) & mask] = seq;
	d->val[(d->head + d->count) & mask] = x;
	d->count++;
}

/* The extreme value of the events from the cursor on. */
static double
deque_front(SlideDeque *d, int64 cursor)
{
	while (d->seq[d->head] < cursor)
	{
		d->head = (d->head + 1) & (d->capacity - 1);
		d->count--;
	}
	return d->val[d->head];
}

static void
moments_reset(SlideAcc *a)
{
	a->n = a->K = a->A = 0.0;
	memset(&a->S, 0, sizeof(SlideSum));
	memset(&a->Q, 0, sizeof(SlideSum));
	memset(&a->D, 0, sizeof(SlideSum));
}

static inline void
sum_add(SlideSum *sum, double x)
{
	double		t = sum->hi + x;

	if (fabs(sum->hi) >= fabs(x))
		sum->lo += (sum->hi - t) + x;
	else
		sum->lo += (x - t) + sum->hi;
	sum->hi = t;
	sum->work += fabs(t) + fabs(x);
}

static inline double
sum_value(const SlideSum *sum)
{
	return sum->hi + sum->lo;
}

/* Bound of the distance between sum_value and the exact sum of the terms. */
static inline double
sum_error(const SlideSum *sum)
{
	return 2.0 * SLIDE_ULP * fabs(sum_value(sum)) + 4.0 * SLIDE_ULP * SLIDE_ULP * sum->work;
}

/*
 * A value enters (sign 1) or leaves (sign -1) the moments.  x - K and its
 * square are computed the same way both times, so their rounding cancels
 * when the value leaves; while it is in, it is bounded by u |x - K| and
 * 3u (x - K)^2 (see slide_moments).
 */
static inline void
moments_step(SlideAcc *a, double x, double sign)
{
	double		d = x - a->K;

	a->n += sign;
	sum_add(&a->S, sign * d);
	sum_add(&a->Q, sign * (d * d));
	sum_add(&a->D, sign * fabs(d));
	a->A += sign * fabs(x);
}

/* A value enters the deques of the extremes the accumulator keeps. */
static inline void
push_extremes(FsSlide *s, SlideAcc *a, int64 seq, double x)
{
	if (a->want_min)
		deque_push(s, &a->min, seq, x, true);
	if (a->want_max)
		deque_push(s, &a->max, seq, x, false);
}

/* An event enters an accumulator's window. */
static void
slide_enter(FsSlide *s, SlideAcc *a, const FsEvent *ev, int64 seq)
{
	int			slot = a->spec->slot;
	double		x;

	if (!a->moments || FS_EVENT_ISNULL(ev, slot))
		return;
	x = ev->values[slot];
	if (a->n == 0.0)
	{
		moments_reset(a);
		a->K = x;
	}
	moments_step(a, x, 1.0);
	push_extremes(s, a, seq, x);
}

/* The event at an accumulator's cursor leaves its window. */
static void
slide_leave(FsSlide *s, SlideAcc *a)
{
	const FsEvent *ev = SLIDE_EVENT(s, a->cursor);
	int			slot = a->spec->slot;

	a->cursor++;
	if (!a->moments || FS_EVENT_ISNULL(ev, slot))
		return;
	if (a->n == 1.0)
		moments_reset(a);
	else
		moments_step(a, ev->values[slot], -1.0);
}

/*
 * Recompute an accumulator from the events from its cursor on, shifted by
 * their mean, which keeps S small and Q - S^2/n free of cancellation.
 */
static void
slide_refill(FsSlide *s, SlideAcc *a, bool deques)
{
	int64		end = s->base + s->count;
	int			slot = a->spec->slot;
	double		sum = 0.0;
	double		n = 0.0;

	for (int64 seq = a->cursor; seq < end; seq++)
	{
		const FsEvent *ev = SLIDE_EVENT(s, seq);

		if (a->moments && !FS_EVENT_ISNULL(ev, slot))
		{
			sum += ev->values[slot];
			n += 1.0;
		}
	}
	moments_reset(a);
	a->K = n > 0.0 ? sum / n : 0.0;
	if (deques)
		a->min.count = a->max.count = 0;
	for (int64 seq = a->cursor; seq < end; seq++)
	{
		const FsEvent *ev = SLIDE_EVENT(s, seq);

		if (!a->moments || FS_EVENT_ISNULL(ev, slot))
			continue;
		moments_step(a, ev->values[slot], 1.0);
		if (deques)				/* otherwise they are exact: kept */
			push_extremes(s, a, seq, ev->values[slot]);
	}
}

/* Outcome of reading sliding moments. */
typedef enum SlideMoments
{
	SLIDE_OK,
	SLIDE_INEXACT,				/* error bound too large: recompute */
	SLIDE_ILL_CONDITIONED		/* take the exact path */
} SlideMoments;

/* The others' moments as Youngs-Cramer keeps them: n, sum, sum of squared deviations. */
static SlideMoments
slide_moments(const SlideAcc *a, Moments *m)
{
	double		n = a->n;
	double		S = sum_value(&a->S);
	double		Q = sum_value(&a->Q);
	double		err_S = sum_error(&a->S) + SLIDE_ULP * (sum_value(&a->D) + sum_error(&a->D));
	double		err_Q = sum_error(&a->Q) + 3.0 * SLIDE_ULP * Q;
	double		sx;
	double		sxx = 0.0;
	double		err_sx;
	double		err_sxx = 0.0;

	m->n = m->sx = m->sxx = 0.0;
	if (n == 0.0)
		return SLIDE_OK;
	sx = n * a->K + S;
	err_sx = err_S + SLIDE_ULP * (fabs(n * a->K) + fabs(sx));
	if (n >= 2.0)
	{
		double		c = S * S / n;

		sxx = Q - c;
		err_sxx = err_Q + (2.0 * fabs(S) * err_S + err_S * err_S) / n +
			2.0 * SLIDE_ULP * c + SLIDE_ULP * fabs(sxx);
	}
	if (!(err_sx <= SLIDE_MAX_ERROR * fabs(sx)) || !(err_sxx <= SLIDE_MAX_ERROR * sxx))
		return SLIDE_INEXACT;
	if (!(a->A <= 2.0 * fabs(sx)) ||
		(n >= 2.0 && !((sx / n) * sx <= SLIDE_MAX_CV2 * sxx)))
		return SLIDE_ILL_CONDITIONED;
	m->n = n;
	m->sx = sx;
	m->sxx = sxx;
	return SLIDE_OK;
}

/* (Re)start every accumulator from the whole history. */
static void
slide_rebuild(FsSlide *s)
{
	for (int i = 0; i < s->nacc; i++)
	{
		SlideAcc   *a = &s->acc[i];

		a->cursor = s->base + s->start;
		slide_refill(s, a, true);
	}
	s->valid = true;
}

/*
 * Compute the features of "current" against the history, as
 * FsWindowCompute would (see the section's comment for exactness).
 * Returns true when the sliding path served it, false for the exact path.
 */
bool
FsSlideCompute(FsSlide *s, const FsEvent *current, double *result, bool *isnull)
{
	static const Accum empty;
	Accum		acc[SLIDE_MAX_SPECS];
	TimestampTz t = current->time;
	int64		end = s->base + s->count;

	if (!s->fast || s->disorder >= s->base + s->start ||
		(s->count > s->start && t < SLIDE_EVENT(s, end - 1)->time))
		goto exact;
	if (!s->valid)
		slide_rebuild(s);

	for (int i = 0; i < s->nacc; i++)
	{
		SlideAcc   *a = &s->acc[i];
		const FsWindowSpec *spec = a->spec;
		Accum	   *out = &acc[a->index];

		*out = empty;
		while (a->cursor < end && SLIDE_EVENT(s, a->cursor)->time <= t - spec->window)
			slide_leave(s, a);
		if (spec->agg == FS_AGG_SINCE_LAST || spec->agg == FS_AGG_GEO_VELOCITY)
		{
			/* the newest event inside the window (with a position) */
			for (int64 seq = end - 1; seq >= a->cursor && !out->have_prev; seq--)
				accum_event(spec, out, SLIDE_EVENT(s, seq), current);
		}
		else if (!a->moments)
			out->count = end - a->cursor;
		else
		{
			SlideMoments state = slide_moments(a, &out->m);

			if (state == SLIDE_INEXACT)
			{
				slide_refill(s, a, false);
				state = slide_moments(a, &out->m);
			}
			if (state != SLIDE_OK)
				goto exact;
			if (a->want_min && out->m.n > 0.0)
				out->min = deque_front(&a->min, a->cursor);
			if (a->want_max && out->m.n > 0.0)
				out->max = deque_front(&a->max, a->cursor);
		}
	}

	for (int f = 0; f < s->nspecs; f++)
	{
		Accum	   *own = &acc[s->specs[f].shares == 0 ? f : s->specs[f].shares - 1];

		isnull[f] = !finish_feature(&s->specs[f], own, current, false, &result[f]);
		if (isnull[f])
			result[f] = 0.0;
	}
	return true;

exact:
	{
		FsEventRun	run;

		run.events = FS_EVENT_AT(s->events, s->start, s->event_size);
		run.count = s->count - s->start;
		FsWindowCompute(s->specs, s->nspecs, s->event_size, &run, 1, current, false,
						result, isnull);
	}
	return false;
}

/*
 * Add an event (not late: see FsEventIsLate) to the history, after
 * computing its features; drop the events no window can reach any more.
 */
void
FsSlideAppend(FsSlide *s, const FsEvent *event)
{
	Size		size = s->event_size;
	int64		seq;

	if (s->count > s->start && event->time < SLIDE_EVENT(s, s->base + s->count - 1)->time)
	{
		s->disorder = s->base + s->count;
		s->valid = false;
	}
	for (int i = 0; i < s->nacc && s->fast; i++)
	{
		int			slot = s->acc[i].spec->slot;

		if (s->acc[i].moments && !FS_EVENT_ISNULL(event, slot) &&
			!isfinite(event->values[slot]))
			s->fast = false;
	}
	s->latest = Max(s->latest, event->time);

	/* prune, as the online state does */
	while (s->start < s->count &&
		   FS_EVENT_AT(s->events, s->start, size)->time <= s->latest - s->retain)
	{
		for (int i = 0; i < s->nacc && s->valid; i++)
			if (s->acc[i].cursor == s->base + s->start)
				slide_leave(s, &s->acc[i]);
		s->start++;
	}
	if (s->count == s->capacity)
	{
		int			live = s->count - s->start;

		if (s->start > 0 && live < s->capacity / 2)
		{
			memmove(s->events, s->events + s->start * size, live * size);
			s->base += s->start;
			s->count = live;
			s->start = 0;
		}
		else
		{
			s->capacity = s->capacity ? s->capacity * 2 : 8;
			s->events = s->events
				? repalloc_huge(s->events, s->capacity * size)
				: MemoryContextAlloc(s->cxt, s->capacity * size);
		}
	}
	memcpy(s->events + s->count * size, event, size);
	seq = s->base + s->count;
	s->count++;
	for (int i = 0; i < s->nacc && s->valid; i++)
		slide_enter(s, &s->acc[i], event, seq);
}
