/*-------------------------------------------------------------------------
 *
 * population.c
 *		The simulated world of fs_gen: cities, merchant categories, the
 *		daily rhythm, merchants and customers with their habits.
 *
 * Modelled loosely on the public simulators PaySim (a population of
 * agents with their own transaction rates) and Sparkov (customers with a
 * home location, merchants with categories and coordinates, amounts per
 * category, fewer transactions at night).  Customers live in real US
 * metro areas (coordinates and populations rounded from public data);
 * a few foreign cities host merchants for travellers and fraudsters.
 *
 * The world is built once from its own PRNG stream, seeded from --seed
 * and the sizes, so the population is the same whatever the other
 * options are.  Weighted choices that happen per event use O(1) alias
 * tables (customers by activity) or prefix sums with binary search over
 * small ranges (merchants of one category in one city); customers are
 * grouped by daily rhythm so that drawing the next active one needs no
 * rejection.  Nothing here
 * changes after FsWorldBuild except the customers' mutable state, which
 * simulate.c owns, and next_device.
 *
 * XXX: memory is about 135 bytes per customer (1.4 GB for ten million)
 * and is never freed: the process exits when the run ends.
 *
 * bench/gen/population.c
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_gen.h"

/*
 * Domestic cities first (customers live there), then foreign ones.
 * Standard-time UTC offsets; daylight saving time is ignored.
 */
const FsCity FsCities[] = {
	{"New York", 40.7128, -74.0060, 19.5, -5, true},
	{"Los Angeles", 34.0522, -118.2437, 13.0, -8, true},
	{"Chicago", 41.8781, -87.6298, 9.4, -6, true},
	{"Dallas", 32.7767, -96.7970, 7.6, -6, true},
	{"Houston", 29.7604, -95.3698, 7.1, -6, true},
	{"Washington", 38.9072, -77.0369, 6.3, -5, true},
	{"Philadelphia", 39.9526, -75.1652, 6.2, -5, true},
	{"Miami", 25.7617, -80.1918, 6.1, -5, true},
	{"Atlanta", 33.7490, -84.3880, 6.1, -5, true},
	{"Boston", 42.3601, -71.0589, 4.9, -5, true},
	{"Phoenix", 33.4484, -112.0740, 4.9, -7, true},
	{"San Francisco", 37.7749, -122.4194, 4.7, -8, true},
	{"Detroit", 42.3314, -83.0458, 4.4, -5, true},
	{"Seattle", 47.6062, -122.3321, 4.0, -8, true},
	{"Minneapolis", 44.9778, -93.2650, 3.7, -6, true},
	{"San Diego", 32.7157, -117.1611, 3.3, -8, true},
	{"Tampa", 27.9506, -82.4572, 3.2, -5, true},
	{"Denver", 39.7392, -104.9903, 3.0, -7, true},
	{"St. Louis", 38.6270, -90.1994, 2.8, -6, true},
	{"Baltimore", 39.2904, -76.6122, 2.8, -5, true},
	{"Charlotte", 35.2271, -80.8431, 2.7, -5, true},
	{"Orlando", 28.5383, -81.3792, 2.7, -5, true},
	{"San Antonio", 29.4241, -98.4936, 2.6, -6, true},
	{"Portland", 45.5152, -122.6784, 2.5, -8, true},
	{"Sacramento", 38.5816, -121.4944, 2.4, -8, true},
	{"Pittsburgh", 40.4406, -79.9959, 2.3, -5, true},
	{"Las Vegas", 36.1699, -115.1398, 2.3, -8, true},
	{"Austin", 30.2672, -97.7431, 2.3, -6, true},
	{"Cincinnati", 39.1031, -84.5120, 2.2, -5, true},
	{"Kansas City", 39.0997, -94.5786, 2.2, -6, true},
	{"Columbus", 39.9612, -82.9988, 2.1, -5, true},
	{"Indianapolis", 39.7684, -86.1581, 2.1, -5, true},
	{"Cleveland", 41.4993, -81.6944, 2.0, -5, true},
	{"Nashville", 36.1627, -86.7816, 2.0, -6, true},
	{"Raleigh", 35.7796, -78.6382, 1.4, -5, true},
	{"Salt Lake City", 40.7608, -111.8910, 1.3, -7, true},
	{"New Orleans", 29.9511, -90.0715, 1.3, -6, true},
	{"Honolulu", 21.3069, -157.8583, 1.0, -10, true},
	{"Omaha", 41.2565, -95.9345, 1.0, -6, true},
	{"Albuquerque", 35.0844, -106.6504, 0.9, -7, true},
	{"Boise", 43.6150, -116.2023, 0.8, -7, true},
	{"Anchorage", 61.2181, -149.9003, 0.4, -9, true},
	{"Toronto", 43.6532, -79.3832, 6.2, -5, false},
	{"Mexico City", 19.4326, -99.1332, 21.8, -6, false},
	{"London", 51.5074, -0.1278, 9.5, 0, false},
	{"Paris", 48.8566, 2.3522, 11.1, 1, false},
	{"Bucharest", 44.4268, 26.1025, 2.3, 2, false},
	{"Moscow", 55.7558, 37.6173, 12.6, 3, false},
	{"Lagos", 6.5244, 3.3792, 15.4, 1, false},
	{"Sao Paulo", -23.5505, -46.6333, 22.4, -3, false},
	{"Mumbai", 19.0760, 72.8777, 20.7, 5, false},
	{"Manila", 14.5995, 120.9842, 14.4, 8, false},
	{"Beijing", 39.9042, 116.4074, 21.3, 8, false},
};
const int	FsNumCities = lengthof(FsCities);

/* Foreign cities get this share of their population's merchants. */
#define FOREIGN_MERCHANT_WEIGHT		0.03

/*
 * Merchant categories by ISO 18245 MCC.  amount_factor scales a
 * customer's typical ticket; online_share of 1 means online only.
 */
const FsCategory FsCategories[] = {
	{5411, 1.00, 0.05, 10},		/* grocery stores, supermarkets */
	{5812, 1.10, 0.00, 8},		/* restaurants */
	{5814, 0.35, 0.00, 8},		/* fast food */
	{5541, 0.90, 0.00, 7},		/* service stations */
	{5912, 0.60, 0.10, 4},		/* drug stores, pharmacies */
	{5311, 1.60, 0.30, 4},		/* department stores */
	{5651, 1.40, 0.40, 4},		/* family clothing */
	{5732, 2.50, 0.50, 2},		/* electronics */
	{5942, 0.60, 0.50, 2},		/* book stores */
	{4121, 0.50, 1.00, 4},		/* taxis, ride sharing */
	{7832, 0.60, 0.20, 2},		/* cinemas */
	{5815, 0.30, 1.00, 4},		/* digital media */
	{5816, 0.40, 1.00, 2},		/* digital games */
	{5999, 1.00, 0.40, 4},		/* miscellaneous retail */
	{4814, 1.50, 0.80, 2},		/* telecommunication services */
	{5944, 2.50, 0.20, 1},		/* jewelry */
};
const int	FsNumCategories = lengthof(FsCategories);

/* Colluding merchants pose as shops where high tickets look plausible. */
static const uint16_t colluder_mccs[] = {5999, 5732, 5944, 5311};

/*
 * Relative transaction intensity per local hour (Sparkov-like: quiet
 * nights, a midday and an evening peak).  Normalized to mean 1 at start.
 */
static double rhythm[25] = {
	0.30, 0.15, 0.08, 0.05, 0.05, 0.10, 0.30, 0.60, 0.90, 1.10, 1.30, 1.50,
	1.70, 1.60, 1.40, 1.35, 1.40, 1.60, 1.75, 1.70, 1.50, 1.20, 0.85, 0.55,
};

/* Public first octets of large consumer ISP blocks, for plausible IPs. */
static const uint8_t ip_first_octets[] = {
	24, 47, 50, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76,
	96, 97, 98, 99, 104, 107, 108, 173, 174, 184,
};

#define EARTH_RADIUS_KM		6371.0
#define PI					3.14159265358979323846
#define DEG2RAD				(PI / 180.0)

/* Standard normal by Box-Muller; the spare value is dropped to stay simple. */
double
FsRngNormal(FsRng *rng)
{
	double		u = 1.0 - FsRngUniform(rng);
	double		v = FsRngUniform(rng);

	return sqrt(-2.0 * log(u)) * cos(2.0 * PI * v);
}

/* Exponential with the given mean: gaps of a Poisson process. */
double
FsRngExponential(FsRng *rng, double mean)
{
	return -log(1.0 - FsRngUniform(rng)) * mean;
}

/* Great-circle distance (haversine), kilometres. */
double
FsDistanceKm(FsPoint a, FsPoint b)
{
	double		lat1 = a.lat / FS_POINT_SCALE * DEG2RAD;
	double		lat2 = b.lat / FS_POINT_SCALE * DEG2RAD;
	double		dlat = lat2 - lat1;
	double		dlon = (b.lon - a.lon) / FS_POINT_SCALE * DEG2RAD;
	double		h = sin(dlat / 2) * sin(dlat / 2) +
		cos(lat1) * cos(lat2) * sin(dlon / 2) * sin(dlon / 2);

	return 2.0 * EARTH_RADIUS_KM * asin(sqrt(fmin(1.0, h)));
}

/* The centre of a city as a point. */
FsPoint
FsCityCentre(int city)
{
	FsPoint		p;

	p.lat = (int32_t) lround(FsCities[city].lat * FS_POINT_SCALE);
	p.lon = (int32_t) lround(FsCities[city].lon * FS_POINT_SCALE);
	return p;
}

/* A point uniformly spread over a disc around (lat, lon). */
FsPoint
FsJitter(FsRng *rng, double lat, double lon, double radius_km)
{
	double		r = radius_km * sqrt(FsRngUniform(rng));
	double		theta = 2.0 * PI * FsRngUniform(rng);
	double		dlat = r * cos(theta) / 111.32;
	double		dlon = r * sin(theta) / (111.32 * cos(lat * DEG2RAD));
	FsPoint		p;

	p.lat = (int32_t) lround((lat + dlat) * FS_POINT_SCALE);
	p.lon = (int32_t) lround((lon + dlon) * FS_POINT_SCALE);
	return p;
}

/* A public-looking IPv4 address, as a 32-bit number; never .0 or .255. */
uint32_t
FsRandomIp(FsRng *rng)
{
	uint32_t	first = ip_first_octets[FsRngBelow(rng, lengthof(ip_first_octets))];
	uint32_t	middle = FsRngBelow(rng, 65536);
	uint32_t	last = 1 + FsRngBelow(rng, 254);

	return (first << 24) | (middle << 8) | last;
}

/* Index of a category in FsCategories by its MCC, or -1. */
int
FsCategoryIndex(uint16_t mcc)
{
	for (int i = 0; i < FsNumCategories; i++)
		if (FsCategories[i].mcc == mcc)
			return i;
	return -1;
}

/*
 * Build a Vose alias table over weights w[0..n-1] of items ids[0..n-1]
 * (NULL: the items are 0..n-1), so that one choice costs two random
 * numbers and one cache line whatever n is.
 */
static bool
alias_build(FsAlias *a, const double *w, const uint32_t *ids, uint32_t n)
{
	double		sum = 0;
	double	   *p = malloc(n * sizeof(double));
	uint32_t   *small = malloc(n * sizeof(uint32_t));
	uint32_t   *large = malloc(n * sizeof(uint32_t));
	uint32_t	ns = 0,
				nl = 0;

	a->n = n;
	a->entry = malloc(n * sizeof(FsAliasEntry));
	if (!p || !small || !large || !a->entry)
		return false;
	for (uint32_t i = 0; i < n; i++)
		sum += w[i];
	for (uint32_t i = 0; i < n; i++)
	{
		p[i] = w[i] * n / sum;
		a->entry[i].prob = 1.0f;
		a->entry[i].item = a->entry[i].alias = ids ? ids[i] : i;
		if (p[i] < 1.0)
			small[ns++] = i;
		else
			large[nl++] = i;
	}
	while (ns > 0 && nl > 0)
	{
		uint32_t	s = small[--ns];
		uint32_t	l = large[nl - 1];

		a->entry[s].prob = (float) p[s];
		a->entry[s].alias = ids ? ids[l] : l;
		p[l] -= 1.0 - p[s];
		if (p[l] < 1.0)
		{
			nl--;
			small[ns++] = l;
		}
	}
	/* Leftovers are 1 up to rounding: they keep prob 1 and themselves. */
	free(p);
	free(small);
	free(large);
	return true;
}

/* A weighted choice: a uniform slot, then the slot's item or its alias. */
uint32_t
FsAliasPick(const FsAlias *alias, FsRng *rng)
{
	const FsAliasEntry *e = &alias->entry[FsRngBelow(rng, alias->n)];

	return FsRngUniform(rng) < e->prob ? e->item : e->alias;
}

/*
 * Sort the merchants that range_of() places into one of nranges ranges
 * (a counting sort, stable, so the order depends only on the world), and
 * lay out their popularity prefix sums.
 */
static bool
index_build(FsMerchantIndex *ix, const FsWorld *world, uint32_t nranges,
			int (*range_of) (const FsMerchant *m))
{
	uint32_t   *fill = calloc(nranges + 1, sizeof(uint32_t));

	ix->start = calloc(nranges + 1, sizeof(uint32_t));
	if (!fill || !ix->start)
		return false;
	for (uint32_t i = 0; i < world->nmerchants; i++)
	{
		int			r = range_of(&world->merchants[i]);

		if (r >= 0)
			ix->start[r + 1]++;
	}
	for (uint32_t r = 0; r < nranges; r++)
		ix->start[r + 1] += ix->start[r];
	ix->n = ix->start[nranges];
	ix->order = malloc((ix->n + 1) * sizeof(uint32_t));
	ix->cum = malloc((ix->n + 1) * sizeof(double));
	if (!ix->order || !ix->cum)
		return false;
	for (uint32_t i = 0; i < world->nmerchants; i++)
	{
		int			r = range_of(&world->merchants[i]);

		if (r >= 0)
			ix->order[ix->start[r] + fill[r]++] = i;
	}
	ix->cum[0] = 0;
	for (uint32_t i = 0; i < ix->n; i++)
		ix->cum[i + 1] = ix->cum[i] + world->merchants[ix->order[i]].popularity;
	free(fill);
	return true;
}

/* A merchant of ranges first..last by popularity, or -1 if none. */
static int
index_pick(const FsMerchantIndex *ix, FsRng *rng, uint32_t first, uint32_t last)
{
	uint32_t	lo = ix->start[first];
	uint32_t	hi = ix->start[last + 1];
	double		target;

	if (lo == hi)
		return -1;
	target = ix->cum[lo] + FsRngUniform(rng) * (ix->cum[hi] - ix->cum[lo]);
	hi--;
	while (lo < hi)
	{
		uint32_t	mid = lo + (hi - lo + 1) / 2;

		if (ix->cum[mid] <= target)
			lo = mid;
		else
			hi = mid - 1;
	}
	return (int) ix->order[lo];
}

/* Card-present merchants are ranged by city, then category. */
static int
pos_range(const FsMerchant *m)
{
	if (m->flags & FS_MERCHANT_ONLINE)
		return -1;
	return m->city * FsNumCategories + m->category;
}

/* Online merchants are ranged by category. */
static int
online_range(const FsMerchant *m)
{
	return (m->flags & FS_MERCHANT_ONLINE) ? m->category : -1;
}

/* A card-present merchant in city of category (-1: any), or -1 if none. */
int
FsPickPos(const FsWorld *world, FsRng *rng, int city, int category)
{
	uint32_t	base = (uint32_t) city * FsNumCategories;

	if (category < 0)
		return index_pick(&world->pos, rng, base, base + FsNumCategories - 1);
	return index_pick(&world->pos, rng, base + category, base + category);
}

/* An online merchant of category (-1: any), or -1 if none. */
int
FsPickOnline(const FsWorld *world, FsRng *rng, int category)
{
	if (category < 0)
		return index_pick(&world->online, rng, 0, FsNumCategories - 1);
	return index_pick(&world->online, rng, category, category);
}

/*
 * Activity at t relative to the daily mean of customers whose rhythm is
 * utc_shift hours from UTC (time zone plus their own habit of rising
 * early or late): the hourly rhythm, interpolated, at their local time.
 */
double
FsRhythm(int utc_shift, FsTime t)
{
	int64_t		secs = t / FS_USEC_PER_SEC + (int64_t) utc_shift * 3600;
	double		hour;
	int			h;

	secs %= 86400;
	if (secs < 0)
		secs += 86400;
	hour = secs / 3600.0;
	h = (int) hour;
	return rhythm[h] + (rhythm[h + 1] - rhythm[h]) * (hour - h);
}

/* Scale the rhythm to mean 1 and close the cycle (rhythm[24] = [0]). */
static void
rhythm_normalize(void)
{
	static bool done = false;
	double		sum = 0;

	if (done)
		return;
	for (int h = 0; h < 24; h++)
		sum += rhythm[h];
	for (int h = 0; h < 24; h++)
		rhythm[h] *= 24.0 / sum;
	rhythm[24] = rhythm[0];
	done = true;
}

/* Pareto-distributed popularity: a few merchants get most of the traffic. */
static float
popularity(FsRng *rng)
{
	return (float) fmin(50.0, pow(1.0 - FsRngUniform(rng), -1.0 / 1.5));
}

/* A category drawn by how often customers (and merchants) favour it. */
static int
draw_category(FsRng *rng)
{
	static double total = 0;
	double		x;

	if (total == 0)
		for (int k = 0; k < FsNumCategories; k++)
			total += FsCategories[k].preference;
	x = FsRngUniform(rng) * total;
	for (int k = 0; k < FsNumCategories - 1; k++)
	{
		x -= FsCategories[k].preference;
		if (x < 0)
			return k;
	}
	return FsNumCategories - 1;
}

/*
 * Lay out the merchants: one grocery store in every domestic city so that
 * every customer has somewhere to shop in person, the rest spread by
 * population, about 1% of them colluders (online shell shops that get
 * almost no legitimate traffic).
 */
static bool
build_merchants(FsWorld *world, FsRng *rng, char *err, size_t errlen)
{
	uint32_t	n = world->nmerchants;
	uint32_t	seeded = 0;

	world->merchants = calloc(n, sizeof(FsMerchant));
	world->ncolluders = n / 100 > 0 ? n / 100 : 1;
	world->colluders = malloc(world->ncolluders * sizeof(uint32_t));
	if (!world->merchants || !world->colluders)
	{
		snprintf(err, errlen, "out of memory for %u merchants", n);
		return false;
	}
	for (uint32_t i = 0; i < n; i++)
	{
		FsMerchant *m = &world->merchants[i];
		const FsCity *city;
		int			k;

		if (i < (uint32_t) FsNumCities && FsCities[i].domestic)
		{
			m->city = (uint16_t) i;
			k = FsCategoryIndex(5411);
			seeded++;
		}
		else
		{
			m->city = (uint16_t) FsAliasPick(&world->pick_city, rng);
			k = draw_category(rng);
			if (FsRngChance(rng, FsCategories[k].online_share))
				m->flags |= FS_MERCHANT_ONLINE;
		}
		city = &FsCities[m->city];
		m->category = (uint8_t) k;
		m->popularity = popularity(rng);
		m->where = FsJitter(rng, city->lat, city->lon,
							(m->flags & FS_MERCHANT_ONLINE) ? 5.0 : FS_SHOP_RADIUS_KM);
	}
	for (uint32_t j = 0; j < world->ncolluders; j++)
	{
		uint32_t	i;
		uint16_t	mcc;
		FsMerchant *m;

		do
			i = seeded + FsRngBelow(rng, n - seeded);
		while (world->merchants[i].flags & FS_MERCHANT_COLLUDER);
		m = &world->merchants[i];
		m->flags = FS_MERCHANT_ONLINE | FS_MERCHANT_COLLUDER;
		mcc = colluder_mccs[FsRngBelow(rng, lengthof(colluder_mccs))];
		m->category = (uint8_t) FsCategoryIndex(mcc);
		m->popularity = 0.02f;
		world->colluders[j] = i;
	}
	if (!index_build(&world->pos, world, (uint32_t) FsNumCities * FsNumCategories, pos_range) ||
		!index_build(&world->online, world, (uint32_t) FsNumCategories, online_range))
	{
		snprintf(err, errlen, "out of memory for the merchant indexes");
		return false;
	}
	return true;
}

/* A favourite merchant of category k near home, online if need be. */
static uint32_t
pick_favourite(const FsWorld *world, FsRng *rng, const FsCustomer *c, int k)
{
	int			m = -1;

	if (FsCategories[k].online_share < 1.0)
	{
		m = FsPickPos(world, rng, c->home_city, k);
		if (m < 0)
			m = FsPickPos(world, rng, c->home_city, -1);
	}
	if (m < 0)
		m = FsPickOnline(world, rng, k);
	if (m < 0)
		m = FsPickOnline(world, rng, -1);
	return (uint32_t) (m < 0 ? 0 : m);
}

/*
 * One customer: where they live, their cards, devices and networks, what
 * they buy and how much, when in the day they are active.  Returns their
 * legitimate transactions per second at rhythm 1.
 */
static double
build_customer(FsWorld *world, FsRng *rng, FsCustomer *c, double txn_per_day)
{
	static const int8_t chronotype[] = {-2, -1, -1, 0, 0, 0, 0, 1, 1, 2};
	const FsCity *city;
	double		wsum = 0,
				mix = 0,
				wk[FS_PREFS],
				acc = 0;
	uint32_t	home,
				chosen[FS_PREFS];

	do
		home = FsAliasPick(&world->pick_city, rng);
	while (!FsCities[home].domestic);
	city = &FsCities[home];
	c->home_city = c->city = (uint16_t) home;
	c->home = c->pos = FsJitter(rng, city->lat, city->lon, 15.0);
	c->utc_shift = (int8_t) (city->utc_offset +
							 chronotype[FsRngBelow(rng, lengthof(chronotype))]);
	c->ncards = FsRngChance(rng, 0.3) ? 2 : 1;
	c->first_card = world->ncards + 1;
	world->ncards += c->ncards;
	c->ndevices = FsRngChance(rng, 0.5) ? 2 : 1;
	for (int i = 0; i < c->ndevices; i++)
		c->device[i] = world->next_device++;
	c->nips = FsRngChance(rng, 0.4) ? 2 : 1;
	for (int i = 0; i < c->nips; i++)
		c->ip[i] = FsRandomIp(rng);
	c->amount_median = (float) fmin(300.0, fmax(5.0, 35.0 * exp(0.6 * FsRngNormal(rng))));
	c->amount_sigma = (float) (0.30 + 0.25 * FsRngUniform(rng));
	c->ecom_share = (float) (0.15 + 0.45 * FsRngUniform(rng));

	/* Preferred categories, distinct, with random weights. */
	for (int i = 0; i < FS_PREFS; i++)
	{
		do
			chosen[i] = (uint32_t) draw_category(rng);
		while (FsIn(chosen, i, chosen[i]));
		c->cat[i] = (uint8_t) chosen[i];
		wk[i] = 0.2 + FsRngUniform(rng);
		wsum += wk[i];
	}
	for (int i = 0; i < FS_PREFS; i++)
	{
		acc += wk[i] / wsum;
		c->cat_cum[i] = (uint8_t) (i == FS_PREFS - 1 ? 255 : lround(acc * 255));
		mix += wk[i] / wsum * FsCategories[c->cat[i]].amount_factor;
	}
	c->mean_amount = (float) (c->amount_median *
							  exp(c->amount_sigma * c->amount_sigma / 2) * mix);
	c->nfav = (uint8_t) FsRngRange(rng, 2, FS_MAX_FAV);
	for (int i = 0; i < c->nfav; i++)
		c->fav[i] = pick_favourite(world, rng, c, c->cat[FsRngBelow(rng, FS_PREFS)]);

	/* Activity: log-normal around the mean, like PaySim's agents. */
	return fmin(50.0, fmax(0.05, txn_per_day * exp(0.5 * FsRngNormal(rng) - 0.125))) / 86400.0;
}

/*
 * Sort customers into groups by rhythm, each with an alias table over its
 * members' rates: simulate.c then picks a group by its current activity
 * and a member by rate, which draws each customer exactly as often as
 * their rate times their rhythm says, with no rejected draws.
 */
static bool
build_groups(FsWorld *world, const double *rate)
{
	int			index[FS_MAX_GROUPS];
	uint32_t   *members[FS_MAX_GROUPS];
	double	   *w[FS_MAX_GROUPS];
	uint32_t	fill[FS_MAX_GROUPS] = {0};
	bool		ok = true;

	for (int s = 0; s < FS_MAX_GROUPS; s++)
		index[s] = -1;
	for (uint32_t i = 0; i < world->ncustomers; i++)
	{
		int			s = world->customers[i].utc_shift + FS_MAX_GROUPS / 2;

		if (index[s] < 0)
		{
			index[s] = world->ngroups++;
			world->groups[index[s]].utc_shift = s - FS_MAX_GROUPS / 2;
		}
		world->groups[index[s]].n++;
		world->groups[index[s]].rate += rate[i];
	}
	for (int g = 0; g < world->ngroups; g++)
	{
		members[g] = malloc(world->groups[g].n * sizeof(uint32_t));
		w[g] = malloc(world->groups[g].n * sizeof(double));
		ok &= members[g] && w[g];
	}
	for (uint32_t i = 0; ok && i < world->ncustomers; i++)
	{
		int			g = index[world->customers[i].utc_shift + FS_MAX_GROUPS / 2];

		members[g][fill[g]] = i;
		w[g][fill[g]++] = rate[i];
	}
	for (int g = 0; g < world->ngroups; g++)
	{
		ok = ok && alias_build(&world->groups[g].pick, w[g], members[g], world->groups[g].n);
		free(members[g]);
		free(w[g]);
	}
	return ok;
}

/*
 * Build the world of config from its seed: cities' weights, merchants
 * and their indexes, customers and their rhythm groups, the mules.  On
 * failure (out of memory) err says why.
 */
bool
FsWorldBuild(FsWorld *world, const FsWorldConfig *config, char *err, size_t errlen)
{
	FsRng		rng;
	double	   *w;
	uint32_t	n = config->ncustomers;

	memset(world, 0, sizeof(*world));
	FsRngSeed(&rng, config->seed ^ UINT64_C(0x776f726c64));	/* "world" */
	rhythm_normalize();
	world->next_device = 1;

	w = malloc((size_t) FsNumCities * sizeof(double));
	if (!w)
		goto oom;
	for (int i = 0; i < FsNumCities; i++)
		w[i] = FsCities[i].population *
			(FsCities[i].domestic ? 1.0 : FOREIGN_MERCHANT_WEIGHT);
	if (!alias_build(&world->pick_city, w, NULL, (uint32_t) FsNumCities))
		goto oom;
	free(w);

	world->nmerchants = config->nmerchants;
	if (!build_merchants(world, &rng, err, errlen))
		return false;

	world->ncustomers = n;
	world->customers = calloc(n, sizeof(FsCustomer));
	w = malloc(n * sizeof(double));
	if (!world->customers || !w)
		goto oom;
	for (uint32_t i = 0; i < n; i++)
		w[i] = build_customer(world, &rng, &world->customers[i], config->txn_per_day);
	if (!build_groups(world, w))
		goto oom;
	free(w);

	/*
	 * About 2% of customers lend their cards to colluding merchants:
	 * every k-th, which is as random as any choice since customers are
	 * drawn independently.
	 */
	world->nmules = n / 50 > FS_MIN_MULES ? n / 50 : FS_MIN_MULES;
	if (!(world->mules = malloc(world->nmules * sizeof(uint32_t))))
		goto oom;
	for (uint32_t j = 0; j < world->nmules; j++)
	{
		world->mules[j] = j * (n / world->nmules);
		world->customers[world->mules[j]].mule = true;
	}
	return true;

oom:
	snprintf(err, errlen, "out of memory for %u customers", n);
	return false;
}
