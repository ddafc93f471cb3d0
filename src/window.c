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
 * latest.  Sums, averages and deviations are accumulated in double-double
 * arithmetic (see Moments), so a value does not depend on the order in
 * which events were added to or removed from a window; they agree with
 * PostgreSQL's float8 aggregates to the last bits of a float8.
 *
 * Two ways to compute, with the same results: FsWindowCompute folds the
 * events of the window (the batch path, small entities, events out of
 * order), and FsWindowComputeSlid starts from running summaries (FsSlide)
 * that the online state keeps for busy entities, so that the cost of a
 * feature does not grow with the number of events in its window.
 *
 * Locking: none; callers hold whatever protects the runs they pass.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "utils/float.h"

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
 * Count, sum and sum of squares of a window's values.  The sums are kept
 * in double-double arithmetic (an unevaluated pair hi + lo, about 106 bits
 * of precision) with error-free transformations, so that they are exact
 * in practice whatever the order in which values were added and removed:
 * a running summary that has added and removed events for hours gives the
 * same feature as a fresh fold of the window's events.  Non-finite values
 * do not go into the pairs; "special" sums them apart, so that an infinity
 * or NaN propagates as in float8 arithmetic.
 */
typedef struct Moments
{
	double		n;
	double		sum[2];
	double		sumsq[2];
	int			nspecial;		/* non-finite values among the n */
	double		special;		/* their sum */
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
	const FsSlide *distinct_slide;	/* or a summary that holds all values */
	TimestampTz distinct_from;	/* its values seen after this are in */
	uint64	   *set;
	int			set_size;		/* power of 2 */
	int			set_used;
	bool		set_has_zero;	/* 0 is the empty marker; tracked apart */
	/* the window with the scored event's value, made once per accumulator */
	bool		have_all;
	Moments		all;
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

/* Whether the aggregation's values are whole numbers (count, distinct). */
bool
FsAggIsInteger(FsAgg agg)
{
	return agg == FS_AGG_COUNT || agg == FS_AGG_DISTINCT;
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

/* Error-free sum: a + b == *hi + *lo exactly. */
static inline void
two_sum(double a, double b, double *hi, double *lo)
{
	double		s = a + b;
	double		bb = s - a;

	*lo = (a - (s - bb)) + (b - bb);
	*hi = s;
}

/* Error-free product by Dekker's splitting: a * b == *hi + *lo exactly. */
static inline void
two_prod(double a, double b, double *hi, double *lo)
{
	const double split = 134217729.0;	/* 2^27 + 1 */
	double		p = a * b;
	double		t,
				ah,
				al,
				bh,
				bl;

	t = split * a;
	ah = t - (t - a);
	al = a - ah;
	t = split * b;
	bh = t - (t - b);
	bl = b - bh;
	*lo = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
	*hi = p;
}

/* dd += hi + lo, for double-double dd */
static inline void
dd_add(double *dd, double hi, double lo)
{
	double		s,
				e;

	two_sum(dd[0], hi, &s, &e);
	e += dd[1] + lo;
	two_sum(s, e, &dd[0], &dd[1]);
}

/* dd * b as a double-double */
static inline void
dd_mul(const double *dd, double b, double *out)
{
	double		p,
				e;

	two_prod(dd[0], b, &p, &e);
	e += dd[1] * b;
	two_sum(p, e, &out[0], &out[1]);
}

/*
 * Add (sign 1) or remove (sign -1) one finite value: count, sum and sum of
 * squares, wherever they are kept (Moments, or a running summary).
 */
static inline void
finite_change(double *n, double *sum, double *sumsq, double x, double sign)
{
	double		hi,
				lo;

	*n += sign;
	dd_add(sum, sign * x, 0.0);
	two_prod(x, x, &hi, &lo);
	dd_add(sumsq, sign * hi, sign * lo);
}

/* Add (sign 1) or remove (sign -1) one value. */
static inline void
moments_change(Moments *m, double x, double sign)
{
	if (!isfinite(x))
	{
		m->n += sign;
		m->nspecial += (int) sign;
		m->special = m->nspecial > 0 ? m->special + sign * x : 0.0;
		return;
	}
	finite_change(&m->n, m->sum, m->sumsq, x, sign);
}

static inline void
moments_add(Moments *m, double x)
{
	moments_change(m, x, 1.0);
}

static inline double
moments_sum(const Moments *m)
{
	if (m->nspecial > 0)
		return m->special;
	return m->sum[0] + m->sum[1];
}

static inline double
moments_avg(const Moments *m)
{
	return moments_sum(m) / m->n;
}

/*
 * Sample standard deviation, sqrt((n Sxx - Sx^2) / (n (n - 1))) with the
 * numerator in double-double; false below 2 values.
 */
static inline bool
moments_stddev(const Moments *m, double *result)
{
	double		nq[2],
				s2[2],
				num[2];

	if (m->n < 2.0)
		return false;
	if (m->nspecial > 0)
	{
		*result = get_float8_nan();
		return true;
	}
	dd_mul(m->sumsq, m->n, nq);
	dd_mul(m->sum, m->sum[0], s2);
	{
		/* add sum[1] * sum: the low half's share of the square */
		double		t[2];

		dd_mul(m->sum, m->sum[1], t);
		dd_add(s2, t[0], t[1]);
	}
	num[0] = nq[0];
	num[1] = nq[1];
	dd_add(num, -s2[0], -s2[1]);
	*result = sqrt(Max(num[0] + num[1], 0.0) / (m->n * (m->n - 1.0)));
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
 * Whether two features can read one accumulator: the same window, and
 * either both read the plain statistics of one value column (count, sum,
 * avg, min, max, stddev, zscore and ratio_to_avg do), or they are the same
 * aggregation of the same columns.
 */
static bool
can_share(const FsWindowSpec *a, const FsWindowSpec *b)
{
	if (a->window != b->window || a->slot != b->slot)
		return false;
	if (reads_value_stats(a) || reads_value_stats(b))
		return reads_value_stats(a) && reads_value_stats(b);
	return a->agg == b->agg && a->slot2 == b->slot2;
}

/*
 * Link each feature to the first earlier one whose accumulator it can
 * read, so that FsWindowCompute folds each event once per accumulator
 * instead of once per feature, and mark the accumulators whose minimum or
 * maximum a feature reads: a running summary of the others need not be
 * refolded when its minimum or maximum leaves the window.  Call once per
 * definition set.
 */
void
FsWindowSpecsLink(FsWindowSpec *specs, int nspecs)
{
	for (int f = 0; f < nspecs; f++)
	{
		specs[f].shares = 0;
		specs[f].extremes = false;
		for (int g = 0; g < f; g++)
		{
			if (specs[g].shares == 0 && can_share(&specs[g], &specs[f]))
			{
				specs[f].shares = g + 1;
				break;
			}
		}
	}
	for (int f = 0; f < nspecs; f++)
		if (specs[f].agg == FS_AGG_MIN || specs[f].agg == FS_AGG_MAX)
			specs[specs[f].shares == 0 ? f : specs[f].shares - 1].extremes = true;
}

/* Describe a linked definition set for FsWindowComputeSlid and the state. */
void
FsWindowSetInit(FsWindowSet *set, const FsWindowSpec *specs, int nspecs)
{
	uint32		sig = 0x9e3779b9;

	Assert(nspecs <= FS_MAX_SPECS);
	set->specs = specs;
	set->nspecs = nspecs;
	set->nslides = 0;
	set->longest = 0;
	for (int f = 0; f < nspecs; f++)
	{
		int64		fields[5];

		if (specs[f].shares == 0)
			set->slide_spec[set->nslides++] = f;

		fields[0] = specs[f].agg;
		fields[1] = specs[f].window;
		fields[2] = specs[f].slot;
		fields[3] = specs[f].slot2;
		fields[4] = specs[f].shares;
		set->longest = Max(set->longest, specs[f].window);
		sig = hash_combine(sig, hash_bytes((const unsigned char *) fields,
										   sizeof(fields)));
	}
	set->signature = sig;

	/* the packed summaries: distinct ones last (see FsWindowSet) */
	set->summary_size = 0;
	for (int pass = 0; pass < 2; pass++)
		for (int j = 0; j < set->nslides; j++)
		{
			const FsWindowSpec *spec = &specs[set->slide_spec[j]];

			if ((spec->agg == FS_AGG_DISTINCT) != (pass == 1))
				continue;
			set->slide_offset[j] = (uint16) set->summary_size;
			set->summary_size += (uint32) FsSlideStoredSize(spec);
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
	const Moments *all = &acc->all;
	double		sd;

	if (!acc->have_all)
	{
		acc->all = acc->m;
		if (has_slot && !cur_null)
			moments_add(&acc->all, x);
		acc->have_all = true;
	}

	switch (spec->agg)
	{
		case FS_AGG_COUNT:
			if (has_slot)
				*result = all->n;
			else
				*result = (double) (acc->count + (probe ? 0 : 1));
			return true;
		case FS_AGG_SUM:
			*result = moments_sum(all);
			return all->n > 0.0;
		case FS_AGG_AVG:
			*result = moments_avg(all);
			return all->n > 0.0;
		case FS_AGG_MIN:
			if (all->n == 0.0)
				return false;
			*result = acc->m.n == 0.0 ? x : (cur_null ? acc->min : Min(acc->min, x));
			return true;
		case FS_AGG_MAX:
			if (all->n == 0.0)
				return false;
			*result = acc->m.n == 0.0 ? x : (cur_null ? acc->max : Max(acc->max, x));
			return true;
		case FS_AGG_STDDEV:
			return moments_stddev(all, result);
		case FS_AGG_ZSCORE:
			if (cur_null || !moments_stddev(&acc->m, &sd) || sd == 0.0)
				return false;
			*result = (x - moments_avg(&acc->m)) / sd;
			return true;
		case FS_AGG_RATIO_TO_AVG:
			if (cur_null || acc->m.n == 0.0 || moments_sum(&acc->m) == 0.0)
				return false;
			*result = x / moments_avg(&acc->m);
			return true;
		case FS_AGG_DISTINCT:
			if (acc->distinct_slide != NULL)
			{
				/* its values are distinct already: count, and look for cur's */
				const FsSlide *slide = acc->distinct_slide;
				uint64		h = cur_null ? 0 : slot_hash(cur, spec->slot);
				bool		found = cur_null;
				int			n = 0;

				for (int i = 0; i < (int) slide->u.distinct.used; i++)
				{
					TimestampTz seen = slide->u.distinct.values[i].seen;

					if (seen > acc->distinct_from && seen <= cur->time)
					{
						n++;
						found |= slide->u.distinct.values[i].hash == h;
					}
				}
				*result = (double) (n + (found ? 0 : 1));
				return true;
			}
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
 * Running summaries (FsSlide).  The online state keeps one per
 * accumulator for entities with many events, anchored at the entity's
 * newest committed event, so that a feature costs O(1) instead of a scan
 * of the window:
 *	- stats add each new event and remove each event that leaves the
 *	  window (the caller walks its front); the double-double moments make
 *	  removal exact.  Removing the last copy of the minimum or maximum
 *	  (copies are counted), or meeting a value that is not finite, marks
 *	  the summary stale: the caller refolds it from the window's events,
 *	  which for values in random order happens about once per window's
 *	  worth of removals.
 *	- distinct keeps up to FS_SLIDE_DISTINCT values with the time each
 *	  was last seen, in the first "used" slots (so that an entity with a
 *	  few values reads a few), reusing the slot of one that left the
 *	  window; with
 *	  more values it overflows, features fall back to a scan, and the
 *	  caller refolds it every FS_SLIDE_REFOLD_EVERY appends to see whether
 *	  the window has shrunk back.
 *	- last (since_last, geo_velocity) keeps the newest event.
 * A summary requires events to arrive in time order: the caller drops it
 * when one does not.
 */

/* Whether a spec's summary is of the stats kind (has a front to walk). */
bool
FsSlideIsStats(const FsWindowSpec *spec)
{
	return reads_value_stats(spec);
}

/*
 * The leading bytes of a summary that hold its state: the header and the
 * member of the union its accumulator uses.  Stored summaries keep only
 * these (featurestate.c).
 */
Size
FsSlideStoredSize(const FsWindowSpec *spec)
{
	const FsSlide *slide = NULL;

	if (reads_value_stats(spec))
		return offsetof(FsSlide, u) + sizeof(slide->u.stats);
	switch (spec->agg)
	{
		case FS_AGG_DISTINCT:
			return offsetof(FsSlide, u) + sizeof(slide->u.distinct);
		case FS_AGG_SINCE_LAST:
		case FS_AGG_GEO_VELOCITY:
			return offsetof(FsSlide, u) + sizeof(slide->u.last);
		default:
			return offsetof(FsSlide, u);
	}
}

/*
 * Empty a summary.  Only the bytes its kind reads are cleared: a distinct
 * summary reads its first "used" slots, a stats one its stats.
 */
void
FsSlideReset(const FsWindowSpec *spec, FsSlide *slide)
{
	memset(slide, 0, spec->agg == FS_AGG_DISTINCT ?
		   offsetof(FsSlide, u.distinct.values) : FsSlideStoredSize(spec));
}

static inline Moments
slide_moments(const FsSlide *slide)
{
	Moments		m = {0};

	m.n = slide->u.stats.n;
	m.sum[0] = slide->u.stats.sum[0];
	m.sum[1] = slide->u.stats.sum[1];
	m.sumsq[0] = slide->u.stats.sumsq[0];
	m.sumsq[1] = slide->u.stats.sumsq[1];
	return m;
}

/*
 * The running summaries' operations are static here and exported by
 * FsSlideAdd and the others below: the replays call them directly, or
 * inline them, rather than through the library's exported symbols.
 */

/* Add the entity's newest event (no event of the window is newer). */
static inline void
slide_add(const FsWindowSpec *spec, FsSlide *slide, const FsEvent *event)
{
	if (reads_value_stats(spec))
	{
		double		x;

		if (spec->slot == FS_NO_SLOT)
		{
			slide->u.stats.n += 1.0;
			return;
		}
		if (FS_EVENT_ISNULL(event, spec->slot))
			return;
		x = event->values[spec->slot];
		if (!isfinite(x))
		{
			slide->flags |= FS_SLIDE_STALE;
			return;
		}
		finite_change(&slide->u.stats.n, slide->u.stats.sum, slide->u.stats.sumsq, x, 1.0);
		if (slide->u.stats.n == 1.0 || x < slide->u.stats.min)
		{
			slide->u.stats.min = x;
			slide->u.stats.nmin = 0;
		}
		if (x == slide->u.stats.min)
			slide->u.stats.nmin++;
		if (slide->u.stats.n == 1.0 || x > slide->u.stats.max)
		{
			slide->u.stats.max = x;
			slide->u.stats.nmax = 0;
		}
		if (x == slide->u.stats.max)
			slide->u.stats.nmax++;
		return;
	}
	switch (spec->agg)
	{
		case FS_AGG_DISTINCT:
			{
				uint64		h;
				int			free_slot = -1;

				if (FS_EVENT_ISNULL(event, spec->slot))
					return;
				if (slide->flags & FS_SLIDE_OVERFLOW)
				{
					if (slide->changes < PG_UINT16_MAX)
						slide->changes++;
					return;
				}
				h = slot_hash(event, spec->slot);
				for (int i = 0; i < (int) slide->u.distinct.used; i++)
				{
					TimestampTz seen = slide->u.distinct.values[i].seen;

					if (slide->u.distinct.values[i].hash == h)
					{
						slide->u.distinct.values[i].seen = Max(seen, event->time);
						return;
					}
					if (free_slot < 0 && seen <= event->time - spec->window)
						free_slot = i;
				}
				if (free_slot < 0 && slide->u.distinct.used < FS_SLIDE_DISTINCT)
					free_slot = (int) slide->u.distinct.used++;
				if (free_slot < 0)
				{
					slide->flags |= FS_SLIDE_OVERFLOW;
					slide->changes = 0;
					return;
				}
				slide->u.distinct.values[free_slot].hash = h;
				slide->u.distinct.values[free_slot].seen = event->time;
				return;
			}
		case FS_AGG_SINCE_LAST:
		case FS_AGG_GEO_VELOCITY:
			if (spec->agg == FS_AGG_GEO_VELOCITY)
			{
				if (FS_EVENT_ISNULL(event, spec->slot) ||
					FS_EVENT_ISNULL(event, spec->slot2))
					return;
				slide->u.last.lat = event->values[spec->slot];
				slide->u.last.lon = event->values[spec->slot2];
			}
			slide->u.last.time = event->time;
			slide->flags |= FS_SLIDE_HAVE;
			return;
		default:
			return;
	}
}

/* Remove the oldest event of a stats summary's window. */
static inline void
slide_remove(const FsWindowSpec *spec, FsSlide *slide, const FsEvent *event)
{
	double		x;

	Assert(reads_value_stats(spec));
	if (spec->slot == FS_NO_SLOT)
	{
		slide->u.stats.n -= 1.0;
		return;
	}
	if (FS_EVENT_ISNULL(event, spec->slot))
		return;
	x = event->values[spec->slot];
	if (!isfinite(x) || slide->u.stats.n <= 1.0)
	{
		/* a non-finite value never entered; the last value leaves */
		if (slide->u.stats.n <= 1.0 && isfinite(x))
		{
			memset(&slide->u.stats, 0, sizeof(slide->u.stats));
			slide->flags &= ~FS_SLIDE_STALE;
		}
		else
			slide->flags |= FS_SLIDE_STALE;
		return;
	}
	finite_change(&slide->u.stats.n, slide->u.stats.sum, slide->u.stats.sumsq, x, -1.0);
	/* the last copy of a minimum or maximum read leaves: find the next one */
	if (spec->extremes &&
		((x == slide->u.stats.min && --slide->u.stats.nmin == 0) ||
		 (x == slide->u.stats.max && --slide->u.stats.nmax == 0)))
		slide->flags |= FS_SLIDE_STALE;
}

/* Distinct summaries that overflowed are refolded this often. */
#define FS_SLIDE_REFOLD_EVERY	64

/* Whether the caller must rebuild the summary from the window's events. */
static inline bool
slide_needs_refold(const FsWindowSpec *spec, const FsSlide *slide)
{
	if (slide->flags & FS_SLIDE_STALE)
		return true;
	return spec->agg == FS_AGG_DISTINCT && (slide->flags & FS_SLIDE_OVERFLOW) &&
		slide->changes >= FS_SLIDE_REFOLD_EVERY;
}

void
FsSlideAdd(const FsWindowSpec *spec, FsSlide *slide, const FsEvent *event)
{
	slide_add(spec, slide, event);
}

void
FsSlideRemove(const FsWindowSpec *spec, FsSlide *slide, const FsEvent *event)
{
	slide_remove(spec, slide, event);
}

bool
FsSlideNeedsRefold(const FsWindowSpec *spec, const FsSlide *slide)
{
	return slide_needs_refold(spec, slide);
}

/*
 * A summary of a history kept in time order takes an event older than the
 * newest (anchor), put in its place: a stats summary whose front (the
 * first event after anchor - window) is at or before that place adds it;
 * one whose front was after it does not, and its front must move one
 * event on, past the older event now there (returns true).  A distinct
 * summary adds it (it keeps each value's newest time); a last event
 * summary keeps the newest event, which it is not.
 */
static inline bool
slide_take_late(const FsWindowSpec *spec, FsSlide *slide, const FsEvent *event,
				TimestampTz anchor)
{
	if (reads_value_stats(spec))
	{
		if (event->time <= anchor - spec->window)
			return true;
		slide_add(spec, slide, event);
	}
	else if (spec->agg == FS_AGG_DISTINCT)
		slide_add(spec, slide, event);
	return false;
}

bool
FsSlideTakeLate(const FsWindowSpec *spec, FsSlide *slide, const FsEvent *event,
				TimestampTz anchor)
{
	return slide_take_late(spec, slide, event, anchor);
}

/*
 * Load a summary into an accumulator for an event at time t, if it can
 * serve: a stats summary must already be walked to the window ending at
 * t.  Returns false when the feature must be computed by a scan.
 */
static bool
accum_from_slide(const FsWindowSpec *spec, Accum *acc, const FsSlide *slide,
				 TimestampTz t, bool complete)
{
	if (reads_value_stats(spec))
	{
		Moments		m;

		if (slide->flags & FS_SLIDE_STALE)
			return false;
		if (spec->slot == FS_NO_SLOT)
		{
			acc->count = (int64) slide->u.stats.n;
			return true;
		}
		m = slide_moments(slide);
		acc->m = m;
		acc->min = slide->u.stats.min;
		acc->max = slide->u.stats.max;
		return true;
	}
	switch (spec->agg)
	{
		case FS_AGG_DISTINCT:
			if (slide->flags & FS_SLIDE_OVERFLOW)
				return false;
			if (complete)
			{
				/* nothing else comes in: finish_feature reads the summary */
				acc->distinct_slide = slide;
				acc->distinct_from = t - spec->window;
				return true;
			}
			for (int i = 0; i < (int) slide->u.distinct.used; i++)
			{
				TimestampTz seen = slide->u.distinct.values[i].seen;

				if (seen > t - spec->window && seen <= t)
					set_add(acc, slide->u.distinct.values[i].hash);
			}
			return true;
		case FS_AGG_SINCE_LAST:
		case FS_AGG_GEO_VELOCITY:
			if ((slide->flags & FS_SLIDE_HAVE) &&
				slide->u.last.time > t - spec->window && slide->u.last.time <= t)
			{
				acc->have_prev = true;
				acc->prev_time = slide->u.last.time;
				acc->prev_lat = slide->u.last.lat;
				acc->prev_lon = slide->u.last.lon;
			}
			return true;
		default:
			return false;
	}
}

/*
 * Fold the events of runs into the accumulators of the features not
 * marked done.
 */
static void
fold_runs(const FsWindowSpec *specs, int nspecs, Size event_size,
		  Accum *acc, const bool *done, int64 longest,
		  const FsEventRun *runs, int nruns, const FsEvent *current)
{
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
				if (specs[f].shares == 0 && !(done && done[f]) &&
					age < specs[f].window)
					accum_event(&specs[f], &acc[f], ev, current);
		}
	}
}

/* Turn the accumulators into the features' values; frees their sets. */
static void
finish_all(const FsWindowSpec *specs, int nspecs, Accum *acc,
		   const FsEvent *current, bool probe, double *result, bool *isnull)
{
	for (int f = 0; f < nspecs; f++)
	{
		Accum	   *own = &acc[specs[f].shares == 0 ? f : specs[f].shares - 1];

		isnull[f] = !finish_feature(&specs[f], own, current, probe, &result[f]);
		if (isnull[f])
			result[f] = 0.0;
	}
	for (int f = 0; f < nspecs; f++)
		if (specs[f].shares == 0 && acc[f].set)
			pfree(acc[f].set);
}

/*
 * Start the accumulators of a computation: those of features that own
 * one.  Fields read only once set (prev_*, the set's slots, all) are left.
 */
static inline void
clear_accums(const FsWindowSpec *specs, int nspecs, Accum *acc)
{
	for (int f = 0; f < nspecs; f++)
	{
		if (specs[f].shares != 0)
			continue;
		acc[f].count = 0;
		memset(&acc[f].m, 0, sizeof(Moments));
		acc[f].min = acc[f].max = 0.0;
		acc[f].have_prev = false;
		acc[f].distinct_slide = NULL;
		acc[f].set = NULL;
		acc[f].set_size = acc[f].set_used = 0;
		acc[f].set_has_zero = false;
		acc[f].have_all = false;
	}
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
	Accum		acc[FS_MAX_SPECS];
	int64		longest = 0;

	Assert(nspecs <= FS_MAX_SPECS);
	clear_accums(specs, nspecs, acc);
	for (int f = 0; f < nspecs; f++)
		longest = Max(longest, specs[f].window);
	fold_runs(specs, nspecs, event_size, acc, NULL, longest, runs, nruns, current);
	finish_all(specs, nspecs, acc, current, probe, result, isnull);
}

/*
 * FsWindowCompute for an entity whose stored events have running
 * summaries: slides[f] (NULL for a feature that shares another's
 * accumulator, or whose summary is missing) stands for the stored events
 * of accumulator f, already walked to the window ending at current's
 * time.  The stored runs are scanned only for accumulators no summary can
 * serve; pending (the session's own events, which arrived after the
 * stored ones; NULL if none) is always folded.
 */
void
FsWindowComputeSlid(const FsWindowSet *set, Size event_size,
					const FsSlide *const *slides,
					const FsEventRun *stored, int nstored,
					const FsEventRun *pending,
					const FsEvent *current, bool probe,
					double *result, bool *isnull)
{
	const FsWindowSpec *specs = set->specs;
	int			nspecs = set->nspecs;
	Accum		acc[FS_MAX_SPECS];
	bool		done[FS_MAX_SPECS];
	bool		scan = false;

	Assert(nspecs <= FS_MAX_SPECS);
	clear_accums(specs, nspecs, acc);
	memset(done, 0, sizeof(bool) * nspecs);
	for (int f = 0; f < nspecs; f++)
	{
		if (specs[f].shares != 0)
			continue;
		if (slides != NULL && slides[f] != NULL)
			done[f] = accum_from_slide(&specs[f], &acc[f], slides[f], current->time,
									   pending == NULL || pending->count == 0);
		if (!done[f])
			scan = true;
	}
	if (scan)
		fold_runs(specs, nspecs, event_size, acc, done, set->longest,
				  stored, nstored, current);
	if (pending != NULL && pending->count > 0)
		fold_runs(specs, nspecs, event_size, acc, NULL, set->longest,
				  pending, 1, current);
	finish_all(specs, nspecs, acc, current, probe, result, isnull);
}

/*
 * Replays (the batch path).  A replay scores the events of one entity in
 * arrival order, each against the events before it, as the online state
 * would have: it keeps the entity's history (pruned to the group's
 * retention) and the same running summaries the online state keeps, with
 * each front as an index into the history.  Values are therefore the
 * online ones, bit for bit, at O(1) per event.  As online, an event a
 * little out of time order is put in its place in the history, and an
 * event older than the newest reads the stats summaries less the newer
 * events (replay_late); an event too far back to be put in place makes
 * the events be scanned until every window has moved past it, and until
 * then it bounds what is in time order (unsorted_max).  A summary that goes stale
 * as its front moves to the scored event's window (its minimum or
 * maximum left) is refolded there and then, which gives the values a
 * scan would, so that the event is not scanned for as well.
 */
struct FsReplay
{
	FsWindowSet set;
	Size		event_size;
	int64		retain;
	char	   *events;			/* event i has sequence number base + i */
	int			start;			/* first live event */
	int			count;
	int			capacity;
	int64		base;
	TimestampTz latest;
	TimestampTz blocked_until;	/* no summaries before this time */
	bool		valid;			/* the summaries hold their windows */
	TimestampTz unsorted_max;	/* events newer than this are in time order */
	FsSlide    *slides;			/* one per accumulator of set */
	int64	   *front;			/* sequence number of each stats front */
	const FsSlide **slide_of;	/* per spec: its summary, for the math */
	FsSlide    *late_slides;	/* scratch copies for a late read */
	const FsSlide **late_slide_of;
	MemoryContext cxt;
};

#define REPLAY_EVENT(r, seq) \
	((const FsEvent *) FS_EVENT_AT((r)->events, (seq) - (r)->base, (r)->event_size))

/* Room for n more events in the history. */
static void
replay_make_room(FsReplay *r, int n)
{
	Size		size = r->event_size;
	int			live = r->count - r->start;

	if (r->count + n <= r->capacity)
		return;
	if (r->start > 0 && live + n <= r->capacity / 2)
	{
		memmove(r->events, r->events + r->start * size, live * size);
		r->base += r->start;
		r->count = live;
		r->start = 0;
		return;
	}
	while (r->count + n > r->capacity)
		r->capacity = r->capacity ? r->capacity * 2 : 16;
	r->events = r->events
		? repalloc(r->events, r->capacity * size)
		: MemoryContextAlloc(r->cxt, r->capacity * size);
}

/* Drop what no window can reach; no front points there. */
static void
replay_prune(FsReplay *r)
{
	while (r->start < r->count &&
		   FS_EVENT_AT(r->events, r->start, r->event_size)->time <= r->latest - r->retain)
		r->start++;
}

/*
 * A replay for entities of one group, in cxt.  specs (linked) must outlive
 * it; retain is the group's longest window plus max_lateness.
 */
FsReplay *
FsReplayCreate(MemoryContext cxt, const FsWindowSpec *specs, int nspecs,
			   Size event_size, int64 retain)
{
	FsReplay   *r = MemoryContextAllocZero(cxt, sizeof(FsReplay));

	r->cxt = cxt;
	FsWindowSetInit(&r->set, specs, nspecs);
	r->event_size = event_size;
	r->retain = retain;
	r->slides = MemoryContextAllocZero(cxt, sizeof(FsSlide) * Max(r->set.nslides, 1));
	r->front = MemoryContextAllocZero(cxt, sizeof(int64) * Max(r->set.nslides, 1));
	r->slide_of = MemoryContextAllocZero(cxt, sizeof(FsSlide *) * Max(nspecs, 1));
	r->late_slides = MemoryContextAllocZero(cxt, sizeof(FsSlide) * Max(r->set.nslides, 1));
	r->late_slide_of = MemoryContextAllocZero(cxt, sizeof(FsSlide *) * Max(nspecs, 1));
	for (int j = 0; j < r->set.nslides; j++)
	{
		r->late_slide_of[r->set.slide_spec[j]] = &r->late_slides[j];
		r->slide_of[r->set.slide_spec[j]] = &r->slides[j];
	}
	FsReplayReset(r);
	return r;
}

/* Forget the history, to replay another entity; keeps the memory. */
void
FsReplayReset(FsReplay *r)
{
	r->start = r->count = 0;
	r->base = 0;
	r->latest = DT_NOBEGIN;
	r->blocked_until = DT_NOBEGIN;
	r->valid = false;
	r->unsorted_max = DT_NOBEGIN;
}

/* Time of the newest event replayed so far, or DT_NOBEGIN. */
TimestampTz
FsReplayLatest(const FsReplay *r)
{
	return r->latest;
}

/*
 * Walk a stats summary's front (a sequence number) past the events at or
 * before limit, removing them.
 */
static int64
replay_walk(const FsReplay *r, const FsWindowSpec *spec, FsSlide *slide,
			int64 front, TimestampTz limit)
{
	int64		end = r->base + r->count;

	while (front < end && REPLAY_EVENT(r, front)->time <= limit)
		slide_remove(spec, slide, REPLAY_EVENT(r, front++));
	return front;
}

/* Rebuild summary j from the history, for the window ending at time t. */
static void
replay_refold(FsReplay *r, const FsWindowSpec *spec, int j, TimestampTz t)
{
	TimestampTz limit = t - spec->window;
	int64		end = r->base + r->count;
	int64		seq = r->base + r->start;

	FsSlideReset(spec, &r->slides[j]);
	while (seq < end && REPLAY_EVENT(r, seq)->time <= limit)
		seq++;
	r->front[j] = seq;
	for (; seq < end; seq++)
		slide_add(spec, &r->slides[j], REPLAY_EVENT(r, seq));
}

/*
 * The summaries for an event at time t older than the newest, in
 * late_slides: each stats summary (its window ends at the newest event)
 * less the events newer than t, at the end of the history, plus the
 * events of t's window before its front.  False when a summary cannot
 * serve (another kind, t before a window, a minimum or maximum leaving,
 * events out of order within reach): the caller scans.
 */
static bool
replay_late(FsReplay *r, TimestampTz t)
{
	int64		first = r->base + r->start;
	int64		end = r->base + r->count;

	if (t <= r->unsorted_max)
		return false;
	for (int j = 0; j < r->set.nslides; j++)
	{
		const FsWindowSpec *spec = &r->set.specs[r->set.slide_spec[j]];

		if (!reads_value_stats(spec) || t <= r->latest - spec->window ||
			t - spec->window < r->unsorted_max)
			return false;
	}
	for (int j = 0; j < r->set.nslides; j++)
	{
		const FsWindowSpec *spec = &r->set.specs[r->set.slide_spec[j]];
		FsSlide    *slide = &r->late_slides[j];

		*slide = r->slides[j];
		for (int64 seq = end - 1; seq >= first && REPLAY_EVENT(r, seq)->time > t; seq--)
			slide_remove(spec, slide, REPLAY_EVENT(r, seq));
		for (int64 seq = r->front[j] - 1;
			 seq >= first && REPLAY_EVENT(r, seq)->time > t - spec->window; seq--)
			slide_add(spec, slide, REPLAY_EVENT(r, seq));
		if (slide->flags & FS_SLIDE_STALE)
			return false;
	}
	return true;
}

/* Most events an event out of time order may move to take its place. */
#define REPLAY_MAX_SHIFT	512

/*
 * Put an event older than the newest in its place in the history, the
 * newer events moving one place on, and into the summaries as the online
 * state does (featurestate.c's insert_in_order).  False, changing
 * nothing, when the place is out of reach (more than REPLAY_MAX_SHIFT
 * events back, or among events out of order).
 */
static bool
replay_insert_in_order(FsReplay *r, const FsEvent *event)
{
	Size		size = r->event_size;
	int			p = r->count;
	int64		seq;

	if (event->time <= r->unsorted_max)
		return false;
	while (p > r->start && FS_EVENT_AT(r->events, p - 1, size)->time > event->time)
		if (r->count - --p > REPLAY_MAX_SHIFT)
			return false;
	seq = r->base + p;
	replay_make_room(r, 1);
	p = (int) (seq - r->base);
	memmove(r->events + (p + 1) * size, r->events + p * size, (r->count - p) * size);
	memcpy(r->events + p * size, event, size);
	r->count++;
	for (int j = 0; j < r->set.nslides; j++)
	{
		const FsWindowSpec *spec = &r->set.specs[r->set.slide_spec[j]];

		if (slide_take_late(spec, &r->slides[j], event, r->latest))
			r->front[j]++;
		if (slide_needs_refold(spec, &r->slides[j]))
			replay_refold(r, spec, j, r->latest);
	}
	return true;
}

/*
 * Features of "current" against the history, as FsWindowCompute would
 * give them.  The caller appends "current" next (FsReplayAppend): so the
 * summaries' fronts can move to its window now, as the append would.
 */
void
FsReplayCompute(FsReplay *r, const FsEvent *current, double *result,
				bool *isnull)
{
	FsEventRun	run;

	run.events = (const FsEvent *) FS_EVENT_AT(r->events, r->start, r->event_size);
	run.count = r->count - r->start;
	if (!r->valid || current->time < r->latest)
	{
		if (r->valid && replay_late(r, current->time))
			FsWindowComputeSlid(&r->set, r->event_size, r->late_slide_of, &run, 1,
								NULL, current, false, result, isnull);
		else
			FsWindowCompute(r->set.specs, r->set.nspecs, r->event_size, &run, 1,
							current, false, result, isnull);
		return;
	}
	for (int j = 0; j < r->set.nslides; j++)
	{
		const FsWindowSpec *spec = &r->set.specs[r->set.slide_spec[j]];

		if (reads_value_stats(spec))
		{
			r->front[j] = replay_walk(r, spec, &r->slides[j], r->front[j],
									  current->time - spec->window);
			/* a minimum or maximum left: refold now rather than scan */
			if (slide_needs_refold(spec, &r->slides[j]))
				replay_refold(r, spec, j, current->time);
		}
	}
	FsWindowComputeSlid(&r->set, r->event_size, r->slide_of, &run, 1, NULL,
						current, false, result, isnull);
}

/*
 * Seeding a reset replay from the online state (featurestate.c), cheaper
 * than appending its stored events one by one: FsReplayAppendStored takes
 * the stored events, in time order, without maintaining summaries (the
 * first has sequence number 0); FsReplaySeed then installs the entity's
 * running summaries of them, made for the same definitions (same
 * signature), fronts given as sequence numbers.
 */
void
FsReplayAppendStored(FsReplay *r, const FsEvent *events, int count)
{
	Assert(r->start == 0 && r->base == 0);
	replay_make_room(r, count);
	memcpy(r->events + r->count * r->event_size, events, count * r->event_size);
	r->count += count;
	for (int i = 0; i < count; i++)
		r->latest = Max(r->latest, FS_EVENT_AT(events, i, r->event_size)->time);
}

void
FsReplaySeed(FsReplay *r, const char *summaries, const int64 *fronts)
{
	for (int j = 0; j < r->set.nslides; j++)
	{
		memcpy(&r->slides[j], summaries + r->set.slide_offset[j],
			   FsSlideStoredSize(&r->set.specs[r->set.slide_spec[j]]));
		r->front[j] = Min(Max(fronts[j], r->base + r->start), r->base + r->count);
	}
	r->valid = true;
	r->blocked_until = DT_NOBEGIN;
	/* with summaries, stored events newer than newest - retain are in order */
	r->unsorted_max = r->latest - r->retain;
	replay_prune(r);
}

/* The definitions a replay was made for. */
const FsWindowSet *
FsReplaySet(const FsReplay *r)
{
	return &r->set;
}

/* Append an event that is not late to the history, in arrival order. */
void
FsReplayAppend(FsReplay *r, const FsEvent *event)
{
	Size		size = r->event_size;

	if (r->count > r->start && event->time < r->latest)
	{
		if (r->valid && replay_insert_in_order(r, event))
			return;
		/* out of time order: scans until every window has passed it */
		r->valid = false;
		r->blocked_until = Max(r->blocked_until, r->latest + r->set.longest);
		r->unsorted_max = Max(r->unsorted_max, r->latest);
	}
	replay_make_room(r, 1);
	memcpy(r->events + r->count * size, event, size);
	r->count++;
	r->latest = Max(r->latest, event->time);
	replay_prune(r);

	for (int j = 0; j < r->set.nslides; j++)
	{
		const FsWindowSpec *spec = &r->set.specs[r->set.slide_spec[j]];

		if (!r->valid)
		{
			if (r->latest >= r->blocked_until)
				replay_refold(r, spec, j, r->latest);
		}
		else
		{
			slide_add(spec, &r->slides[j], event);
			if (reads_value_stats(spec))
				r->front[j] = replay_walk(r, spec, &r->slides[j], r->front[j],
										  r->latest - spec->window);
			if (slide_needs_refold(spec, &r->slides[j]))
				replay_refold(r, spec, j, r->latest);
		}
	}
	if (r->latest >= r->blocked_until)
		r->valid = true;
}
