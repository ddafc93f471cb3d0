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
