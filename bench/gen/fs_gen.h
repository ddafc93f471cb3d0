/*-------------------------------------------------------------------------
 *
 * fs_gen.h
 *		Shared types of fs_gen, fraudstream's synthetic fraud stream
 *		generator: the seeded PRNG, the simulated world (cities, merchants,
 *		customers), events, the simulation and the output sinks.
 *
 * fs_gen is a small discrete-event simulation.  population.c builds a
 * world from the seed; simulate.c runs customers' legitimate behaviour
 * over simulated event time and hands out events in event-time order,
 * through the event queue of queue.c; fraud.c injects the labelled fraud
 * patterns; output.c formats events as
 * JSON or CSV and ships them to stdout, files or Kafka; fs_gen.c parses
 * the command line, paces the run and prints the summary.
 *
 * Everything random comes from FsRng streams seeded from --seed, never
 * from rand() or the clock, so that in simulated event time the output
 * depends only on the seed and the options.
 *
 * bench/gen/fs_gen.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef FS_GEN_H
#define FS_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define lengthof(array) (sizeof(array) / sizeof((array)[0]))

/* Event time: microseconds since the Unix epoch, UTC. */
typedef int64_t FsTime;

#define FS_USEC_PER_SEC		INT64_C(1000000)
#define FS_USEC_PER_MIN		(60 * FS_USEC_PER_SEC)
#define FS_USEC_PER_HOUR	(60 * FS_USEC_PER_MIN)
#define FS_USEC_PER_DAY		(24 * FS_USEC_PER_HOUR)

/* ----------------------------------------------------------------
 * PRNG: xoshiro256** seeded through splitmix64 (public domain
 * algorithms by Blackman and Vigna).  Inline because the simulation
 * draws several numbers per event.
 * ----------------------------------------------------------------
 */
typedef struct FsRng
{
	uint64_t	s[4];
} FsRng;

/* Expand a 64-bit seed into a full state, as the xoshiro authors advise. */
static inline void
FsRngSeed(FsRng *rng, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
	{
		uint64_t	z = (seed += UINT64_C(0x9e3779b97f4a7c15));

		z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
		z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
		rng->s[i] = z ^ (z >> 31);
	}
}

/* The next 64 random bits. */
static inline uint64_t
FsRngNext(FsRng *rng)
{
	uint64_t   *s = rng->s;
	uint64_t	x = s[1] * 5;
	uint64_t	result = ((x << 7) | (x >> 57)) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return result;
}

/* Uniform in [0, 1), 53 random bits. */
static inline double
FsRngUniform(FsRng *rng)
{
	return (double) (FsRngNext(rng) >> 11) * (1.0 / 9007199254740992.0);
}

/*
 * Uniform integer in [0, n), by Lemire's multiply-shift; its bias, below
 * n / 2^32, does not matter for a simulation.
 */
static inline uint32_t
FsRngBelow(FsRng *rng, uint32_t n)
{
	return (uint32_t) (((FsRngNext(rng) >> 32) * (uint64_t) n) >> 32);
}

/* Uniform integer in [lo, hi]. */
static inline int64_t
FsRngRange(FsRng *rng, int64_t lo, int64_t hi)
{
	return lo + (int64_t) (FsRngUniform(rng) * (double) (hi - lo + 1));
}

/* True with probability p. */
static inline bool
FsRngChance(FsRng *rng, double p)
{
	return FsRngUniform(rng) < p;
}

/* Is x among set[0..n-1]?  For small sets drawn without repetition. */
static inline bool
FsIn(const uint32_t *set, int n, uint32_t x)
{
	for (int i = 0; i < n; i++)
		if (set[i] == x)
			return true;
	return false;
}

extern double FsRngNormal(FsRng *rng);
extern double FsRngExponential(FsRng *rng, double mean);

/* ----------------------------------------------------------------
 * The world: places, merchant categories, merchants and customers.
 * ----------------------------------------------------------------
 */

/* A position in units of 1e-5 degree (about 1 m), exact in the output. */
typedef struct FsPoint
{
	int32_t		lat;
	int32_t		lon;
} FsPoint;

#define FS_POINT_SCALE		100000.0
#define FS_SHOP_RADIUS_KM	12.0	/* shops lie this close to their city */

typedef struct FsCity
{
	const char *name;
	double		lat;
	double		lon;
	double		population;		/* metro area, millions: drives weights */
	int			utc_offset;		/* hours, standard time */
	bool		domestic;		/* customers live only in domestic cities */
} FsCity;

typedef struct FsCategory
{
	uint16_t	mcc;
	double		amount_factor;	/* typical ticket relative to a customer's */
	double		online_share;	/* share of its merchants that sell online */
	double		preference;		/* how often customers favour it */
} FsCategory;

#define FS_MERCHANT_ONLINE		0x01
#define FS_MERCHANT_COLLUDER	0x02

typedef struct FsMerchant
{
	FsPoint		where;
	float		popularity;
	uint16_t	city;
	uint8_t		category;
	uint8_t		flags;
} FsMerchant;

#define FS_PREFS		4		/* preferred categories per customer */
#define FS_MIN_MULES	40		/* complicit cardholders, at least */
#define FS_MAX_FAV		4		/* favourite merchants per customer */

/*
 * A customer, with one account, one or two cards and the habits that
 * drive their legitimate traffic.  Ids are 1-based: customer_id and
 * account_id are index + 1, card ids first_card .. first_card + ncards - 1.
 */
typedef struct FsCustomer
{
	FsTime		last_seen;		/* latest activity, done or scheduled */
	FsTime		trip_until;		/* when an ongoing trip may end */
	FsPoint		home;
	FsPoint		pos;			/* where the customer is now */
	float		amount_median;	/* ticket size before category factors */
	float		amount_sigma;	/* log-normal spread of tickets */
	float		mean_amount;	/* expected legitimate amount, dollars */
	float		ecom_share;		/* propensity to buy online */
	uint32_t	first_card;
	uint32_t	device[2];
	uint32_t	ip[2];
	uint32_t	trip_ip;		/* hotel network while travelling */
	uint32_t	fav[FS_MAX_FAV];
	uint32_t	last_shop;		/* merchant index + 1 of the latest in person */
	uint16_t	home_city;
	uint16_t	city;			/* == home_city unless travelling */
	uint8_t		ncards;
	uint8_t		ndevices;
	uint8_t		nips;
	uint8_t		nfav;
	uint8_t		cat[FS_PREFS];
	uint8_t		cat_cum[FS_PREFS];	/* cumulative preference, of 255 */
	int8_t		utc_shift;		/* hours from UTC to the customer's rhythm */
	bool		mule;			/* lends cards to colluding merchants */
} FsCustomer;

/*
 * Walker/Vose alias table: O(1) weighted choice among items, one cache
 * line per draw.
 */
typedef struct FsAliasEntry
{
	float		prob;
	uint32_t	item;
	uint32_t	alias;
} FsAliasEntry;

typedef struct FsAlias
{
	uint32_t	n;
	FsAliasEntry *entry;
} FsAlias;

/* Merchants of one kind sorted into ranges, with popularity prefix sums. */
typedef struct FsMerchantIndex
{
	uint32_t	n;
	uint32_t   *order;			/* merchant indexes */
	double	   *cum;			/* cum[i] = popularity of order[0..i-1] */
	uint32_t   *start;			/* range r is order[start[r] .. start[r+1]) */
} FsMerchantIndex;

/*
 * Customers who share a daily rhythm (time zone plus chronotype), with
 * their summed rate and an alias table to pick one of them by rate.
 */
typedef struct FsGroup
{
	int			utc_shift;
	uint32_t	n;
	double		rate;			/* legitimate transactions/s at rhythm 1 */
	FsAlias		pick;			/* yields customer indexes */
} FsGroup;

#define FS_MAX_GROUPS	49		/* utc_shift from -24 to 24 */

typedef struct FsWorld
{
	FsCustomer *customers;
	uint32_t	ncustomers;
	FsMerchant *merchants;
	uint32_t	nmerchants;
	uint32_t	ncards;
	uint32_t	next_device;	/* devices that appear later take these ids */
	uint32_t   *colluders;		/* colluding merchants */
	uint32_t	ncolluders;
	uint32_t   *mules;			/* their complicit cardholders */
	uint32_t	nmules;
	FsGroup		groups[FS_MAX_GROUPS];
	int			ngroups;
	FsAlias		pick_city;		/* where merchants are and trips go */
	FsMerchantIndex pos;		/* ranges: city * ncategories + category */
	FsMerchantIndex online;		/* ranges: category */
} FsWorld;

extern const FsCity FsCities[];
extern const int FsNumCities;
extern const FsCategory FsCategories[];
extern const int FsNumCategories;

typedef struct FsWorldConfig
{
	uint64_t	seed;
	uint32_t	ncustomers;
	uint32_t	nmerchants;
	double		txn_per_day;	/* mean legitimate transactions/customer */
} FsWorldConfig;

extern bool FsWorldBuild(FsWorld *world, const FsWorldConfig *config,
						 char *err, size_t errlen);
extern uint32_t FsAliasPick(const FsAlias *alias, FsRng *rng);
extern double FsRhythm(int utc_shift, FsTime t);
extern int	FsPickPos(const FsWorld *world, FsRng *rng, int city, int category);
extern int	FsPickOnline(const FsWorld *world, FsRng *rng, int category);
extern FsPoint FsCityCentre(int city);
extern FsPoint FsJitter(FsRng *rng, double lat, double lon, double radius_km);
extern uint32_t FsRandomIp(FsRng *rng);
extern double FsDistanceKm(FsPoint a, FsPoint b);
extern int	FsCategoryIndex(uint16_t mcc);

/* ----------------------------------------------------------------
 * Events: one struct for both streams.
 * ----------------------------------------------------------------
 */
typedef enum FsStream
{
	FS_STREAM_TXN,
	FS_STREAM_CLICK,
} FsStream;

typedef enum FsPattern
{
	FS_LEGIT,
	FS_CARD_TESTING,
	FS_ACCOUNT_TAKEOVER,
	FS_IMPOSSIBLE_TRAVEL,
	FS_AMOUNT_SPIKE,
	FS_MERCHANT_COLLUSION,
	FS_NPATTERNS
} FsPattern;

typedef enum FsChannel
{
	FS_POS,
	FS_ECOM,
} FsChannel;

typedef enum FsClickType
{
	FS_LOGIN,
	FS_LOGIN_FAILED,
	FS_PAGE_VIEW,
	FS_PASSWORD_CHANGE,
	FS_ADD_PAYEE,
	FS_NCLICKTYPES
} FsClickType;

extern const char *const FsPatternNames[FS_NPATTERNS];
extern const char *const FsClickTypeNames[FS_NCLICKTYPES];

/*
 * A transaction (stream FS_STREAM_TXN) or a clickstream event
 * (FS_STREAM_CLICK, which leaves card, merchant, cents and mcc zero).
 * device and ip are 0 when absent (card-present transactions).
 */
typedef struct FsEvent
{
	FsTime		ts;
	uint64_t	id;				/* txn_id or event_id, from 1 */
	uint32_t	customer;		/* index; customer_id = account_id = +1 */
	uint32_t	card;
	uint32_t	merchant;		/* index; merchant_id = +1 */
	uint32_t	device;
	uint32_t	ip;
	FsPoint		where;
	int32_t		cents;
	uint16_t	mcc;
	uint8_t		stream;
	uint8_t		kind;			/* FsChannel or FsClickType */
	uint8_t		pattern;
} FsEvent;

/* ----------------------------------------------------------------
 * The simulation (simulate.c) and fraud injection (fraud.c).
 * ----------------------------------------------------------------
 */
typedef struct FsItem
{
	FsTime		at;				/* when it is due, simulated time */
	uint8_t		what;			/* FS_ITEM_* */
	bool		late;			/* held back: out-of-order delivery */
	FsEvent		ev;
} FsItem;

/* The event queue (queue.c): a radix heap over due times. */
typedef struct FsQueueKey
{
	FsTime		at;
	uint32_t	slot;			/* in pool */
} FsQueueKey;

typedef struct FsQueueBucket
{
	FsQueueKey *keys;
	size_t		len;
	size_t		cap;
	size_t		head;			/* bucket 0 is taken from the front */
} FsQueueBucket;

typedef struct FsQueue
{
	FsQueueBucket bucket[65];
	uint64_t	last;			/* the latest due time taken out */
	size_t		len;
	FsItem	   *pool;
	size_t		pool_len;
	size_t		pool_cap;
	uint32_t   *free;
	size_t		nfree;
	size_t		free_cap;
} FsQueue;

extern void FsQueuePush(FsQueue *q, const FsItem *item);
extern bool FsQueuePop(FsQueue *q, FsItem *out);

typedef struct FsSimConfig
{
	uint64_t	seed;
	FsTime		start;
	double		fraud_rate;		/* share of transactions that are fraud */
	bool		patterns[FS_NPATTERNS]; /* enabled ones */
	double		out_of_order;	/* share of events delivered late */
	FsTime		max_lateness;
	double		paced_rate;		/* > 0: constant txn/s in event time */
} FsSimConfig;

typedef struct FsSim
{
	FsWorld    *world;
	FsRng		rng;
	FsRng		late_rng;		/* own stream: lateness never shifts data */
	FsSimConfig config;
	FsQueue		queue;
	FsTime		now;
	int64_t		minute;			/* of the rhythm below */
	double		group_cum[FS_MAX_GROUPS];	/* groups' activity, cumulative */
	double		arrival_rate;	/* sessions/s */
	double		next_arrival;	/* fractional microseconds */
	bool		draining;		/* stop producing, deliver held events */
	uint64_t	held;			/* events held back for late delivery */
	uint64_t	next_txn_id;
	uint64_t	next_event_id;
	/* fraud budget, see fraud.c */
	uint64_t	legit_txns;
	int			npatterns;
	int			next_size[FS_NPATTERNS];
	uint64_t	scheduled[FS_NPATTERNS];
	uint64_t	instances[FS_NPATTERNS];
} FsSim;

extern void FsSimInit(FsSim *sim, FsWorld *world, const FsSimConfig *config);
extern bool FsSimNext(FsSim *sim, FsEvent *ev, FsTime *due, bool *late);
extern void FsSimPush(FsSim *sim, const FsEvent *ev);
extern bool FsSimOwnerTxn(FsSim *sim, uint32_t customer, FsTime t,
						  uint32_t merchant, FsEvent *ev);
struct FsSession;
extern void FsSimPurchase(FsSim *sim, uint32_t customer, FsTime t,
						  const struct FsSession *session, FsEvent *ev);
extern void FsSimClick(FsSim *sim, uint32_t customer, FsTime t,
					   FsClickType type, FsPattern pattern,
					   uint32_t device, uint32_t ip, FsPoint where);
extern int32_t FsCents(double dollars);

extern void FsFraudInit(FsSim *sim);
extern void FsFraudMaybeStart(FsSim *sim, FsTime t);

/* ----------------------------------------------------------------
 * Output (output.c).
 * ----------------------------------------------------------------
 */
typedef enum FsFormat
{
	FS_FORMAT_JSON,
	FS_FORMAT_CSV,
} FsFormat;

typedef struct FsSink FsSink;

typedef struct FsSinkStats
{
	uint64_t	sent[2];		/* per FsStream */
	uint64_t	failed;			/* not delivered, or not written */
	char		first_error[256];
} FsSinkStats;

extern FsTime FsWallClock(void);
extern size_t FsFormatEvent(char *buf, FsFormat format, const FsEvent *ev,
							FsTime produced_at);
extern const char *FsCsvHeader(FsStream stream);
extern size_t FsFormatTime(char *buf, FsTime t);
extern FsSink *FsSinkOpenFiles(FsFormat format, const char *txn_path,
							   const char *event_path, bool stamp,
							   char *err, size_t errlen);
extern FsSink *FsSinkOpenKafka(const char *brokers, const char *txn_topic,
							   const char *event_topic,
							   char *const *props, int nprops, bool stamp,
							   char *err, size_t errlen);
extern bool FsSinkEmit(FsSink *sink, const FsEvent *ev);
extern void FsSinkIdle(FsSink *sink, FsTime usec);
extern void FsSinkClose(FsSink *sink, FsSinkStats *stats);

#define FS_MAX_LINE		1024

#endif							/* FS_GEN_H */
