/*-------------------------------------------------------------------------
 *
 * simulate.c
 *		The event-time simulation of fs_gen: customers' legitimate
 *		purchases and clickstream sessions, delivered in event-time order.
 *
 * The event queue (queue.c) holds everything that is scheduled: the
 * next arrival of the population's arrival process and every event
 * already decided but not yet due.  Arrivals form a Poisson process over
 * the whole population; each draws a customer by rhythm group (weighted
 * by the group's activity at that minute) and by rate within it, which
 * amounts to one non-homogeneous Poisson process per customer with no
 * rejected draws.  An arrival starts a session: a card-present purchase
 * happens at once, an online purchase comes after a login and page
 * views, a browsing session only clicks.  Everything a session produces
 * is decided when it starts and pushed with its event time, so events
 * leave the queue in event-time order whatever order they were decided
 * in.  The queue thus holds the sessions in flight, which last about 40
 * seconds.
 *
 * The simulation starts PREROLL (the longest session) before the
 * requested start and drops what falls before it, so that the run begins
 * with online purchases already under way instead of a ramp while the
 * first sessions reach checkout.  Sessions are shaped before a customer
 * is drawn, so the preroll costs little: only sessions that last into
 * the run touch a customer, and its arrivals bypass the queue.  Fraud
 * starts with the run: patterns that unfold over minutes (account
 * takeover, collusion) reach their share after that long.
 *
 * Legitimate movement is physically possible: every customer has a
 * position and the time of their latest activity (done or scheduled),
 * and a card-present purchase elsewhere in the city, a trip or the way
 * home is allowed only if the time since that activity covers the
 * distance at LOCAL_SPEED_KMH, or by plane at FLIGHT_SPEED_KMH plus
 * TRAVEL_OVERHEAD_H; otherwise the customer stays: buys again in the shop
 * they are in, or online from where they are.  A position changes only
 * at the moment it is decided, and nothing scheduled for later moves
 * anyone (online purchases do not).  So no legitimate pair of
 * transactions on a card implies more than FLIGHT_SPEED_KMH, which keeps
 * impossible travel (fraud.c) separable.
 *
 * Every delivered transaction gets the next txn_id, every clickstream
 * event the next event_id.  When out-of-order delivery is asked for, a
 * share of events is pushed back into the queue with a later due time
 * and the same event time; its lateness comes from a PRNG stream of its
 * own so that asking for it never changes the events themselves.
 *
 * bench/gen/simulate.c
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_gen.h"

#define FS_ITEM_ARRIVAL		0
#define FS_ITEM_EVENT		1

#define BROWSE_SHARE		0.15	/* arrivals that only browse */
#define FAVOURITE_SHARE		0.6		/* purchases at home at a favourite */
#define TRIP_CHANCE			0.008	/* a purchase at home starts a trip */
#define NEW_DEVICE_CHANCE	0.0005	/* an online session on a new device */
#define LOCAL_SPEED_KMH		60.0
#define FLIGHT_SPEED_KMH	700.0
#define TRAVEL_OVERHEAD_H	1.5
#define MAX_TICKET_RATIO	4.0		/* legit tickets <= 4x customer mean */
#define PREROLL				(170 * FS_USEC_PER_SEC)	/* the longest session */
#define MAX_STEPS			16		/* clicks in one session, at most */

const char *const FsPatternNames[FS_NPATTERNS] = {
	NULL, "card_testing", "account_takeover", "impossible_travel",
	"amount_spike", "merchant_collusion",
};

const char *const FsClickTypeNames[FS_NCLICKTYPES] = {
	"login", "login_failed", "page_view", "password_change", "add_payee",
};

/*
 * Schedule an event for delivery at its event time; during the preroll,
 * drop it right away if it falls before the start.
 */
void
FsSimPush(FsSim *sim, const FsEvent *ev)
{
	FsItem		item;

	if (ev->ts < sim->config.start)
		return;
	item.at = ev->ts;
	item.what = FS_ITEM_EVENT;
	item.late = false;
	item.ev = *ev;
	FsQueuePush(&sim->queue, &item);
}

/* Dollars to whole cents, rounded half away from zero. */
int32_t
FsCents(double dollars)
{
	return (int32_t) llround(dollars * 100.0);
}

/*
 * Each simulated minute, weigh the rhythm groups by their activity now.
 * In simulated time their sum sets the arrival rate, which follows the
 * day; when the run is paced in event time, the rate is constant and the
 * weights only decide who is active.
 */
static void
refresh_rhythm(FsSim *sim, int64_t minute)
{
	const FsWorld *w = sim->world;
	FsTime		mid = minute * FS_USEC_PER_MIN + 30 * FS_USEC_PER_SEC;
	double		total = 0;

	for (int g = 0; g < w->ngroups; g++)
	{
		total += w->groups[g].rate * FsRhythm(w->groups[g].utc_shift, mid);
		sim->group_cum[g] = total;
	}
	if (sim->config.paced_rate > 0)
		sim->arrival_rate = sim->config.paced_rate * (1.0 - sim->config.fraud_rate) /
			(1.0 - BROWSE_SHARE);
	else
		sim->arrival_rate = total / (1.0 - BROWSE_SHARE);
	sim->minute = minute;
}

/* Draw the time of the next arrival of the population's Poisson process. */
static FsTime
next_arrival(FsSim *sim)
{
	int64_t		minute = (FsTime) sim->next_arrival / FS_USEC_PER_MIN;

	if (minute != sim->minute)
		refresh_rhythm(sim, minute);
	sim->next_arrival += FsRngExponential(&sim->rng, FS_USEC_PER_SEC / sim->arrival_rate);
	return (FsTime) sim->next_arrival;
}

/* Queue the arrival due at t. */
static void
schedule_arrival(FsSim *sim, FsTime t)
{
	FsItem		item;

	memset(&item, 0, sizeof(item));
	item.at = t;
	item.what = FS_ITEM_ARRIVAL;
	FsQueuePush(&sim->queue, &item);
}

/* Hours from the customer's latest activity to t (negative if later). */
static double
hours_since_seen(const FsCustomer *c, FsTime t)
{
	if (c->last_seen == 0)
		return 1e9;
	return (double) (t - c->last_seen) / FS_USEC_PER_HOUR;
}

/* Could the customer be at `to` by t, moving at kmh plus overhead? */
static bool
can_reach(const FsCustomer *c, FsTime t, FsPoint to, double kmh, double overhead_h)
{
	double		km = FsDistanceKm(c->pos, to);

	if (km == 0)
		return true;
	return hours_since_seen(c, t) >= km / kmh + overhead_h;
}

/*
 * Trips: at home a purchase sometimes starts a trip by plane to another
 * city (by population, a few abroad) lasting one to seven days; a trip
 * ends at the first activity after its end from which home is reachable.
 */
static void
maybe_travel(FsSim *sim, FsCustomer *c, FsTime t)
{
	const FsCity *city;
	uint32_t	dest;
	FsPoint		hotel;

	if (c->city != c->home_city)
	{
		if (t >= c->trip_until &&
			can_reach(c, t, c->home, FLIGHT_SPEED_KMH, TRAVEL_OVERHEAD_H))
		{
			c->city = c->home_city;
			c->pos = c->home;
		}
		return;
	}
	if (!FsRngChance(&sim->rng, TRIP_CHANCE))
		return;
	dest = FsAliasPick(&sim->world->pick_city, &sim->rng);
	city = &FsCities[dest];
	hotel = FsJitter(&sim->rng, city->lat, city->lon, 5.0);
	if (dest == c->home_city || FsDistanceKm(c->pos, hotel) < 150.0 ||
		!can_reach(c, t, hotel, FLIGHT_SPEED_KMH, TRAVEL_OVERHEAD_H))
		return;
	c->city = (uint16_t) dest;
	c->pos = hotel;
	c->trip_until = t + FsRngRange(&sim->rng, FS_USEC_PER_DAY, 7 * FS_USEC_PER_DAY);
	c->trip_ip = FsRandomIp(&sim->rng);
}

/* The device and network a customer uses online: the hotel's on a trip. */
static void
owner_online(FsSim *sim, const FsCustomer *c, uint32_t *device, uint32_t *ip)
{
	*device = c->device[FsRngBelow(&sim->rng, c->ndevices)];
	if (c->city == c->home_city)
		*ip = c->ip[FsRngBelow(&sim->rng, c->nips)];
	else
		*ip = FsRngChance(&sim->rng, 0.7) ? c->trip_ip : c->ip[c->nips - 1];
}

/*
 * Fill ev with a transaction the customer makes themself at merchant at
 * t: in person at the merchant's place (if reachable in time; else
 * false, nothing changed) or online from where they are.  The caller
 * sets the amount and the label and pushes it.
 */
bool
FsSimOwnerTxn(FsSim *sim, uint32_t customer, FsTime t, uint32_t merchant,
			  FsEvent *ev)
{
	FsCustomer *c = &sim->world->customers[customer];
	const FsMerchant *m = &sim->world->merchants[merchant];

	memset(ev, 0, sizeof(*ev));
	if (m->flags & FS_MERCHANT_ONLINE)
	{
		ev->kind = FS_ECOM;
		ev->where = c->pos;
		owner_online(sim, c, &ev->device, &ev->ip);
	}
	else
	{
		if (!can_reach(c, t, m->where, LOCAL_SPEED_KMH, 0))
			return false;
		ev->kind = FS_POS;
		ev->where = c->pos = m->where;
		c->last_shop = merchant + 1;
	}
	ev->stream = FS_STREAM_TXN;
	ev->ts = t;
	ev->customer = customer;
	ev->card = c->first_card + FsRngBelow(&sim->rng, c->ncards);
	ev->merchant = merchant;
	ev->mcc = FsCategories[m->category].mcc;
	if (t > c->last_seen)
		c->last_seen = t;
	return true;
}

/* Schedule one clickstream event. */
void
FsSimClick(FsSim *sim, uint32_t customer, FsTime t, FsClickType type,
		   FsPattern pattern, uint32_t device, uint32_t ip, FsPoint where)
{
	FsEvent		ev;

	memset(&ev, 0, sizeof(ev));
	ev.stream = FS_STREAM_CLICK;
	ev.ts = t;
	ev.customer = customer;
	ev.kind = (uint8_t) type;
	ev.pattern = (uint8_t) pattern;
	ev.device = device;
	ev.ip = ip;
	ev.where = where;
	FsSimPush(sim, &ev);
}

/* A legitimate ticket: log-normal around the customer's typical one. */
static int32_t
legit_cents(FsSim *sim, const FsCustomer *c, int category)
{
	double		median = c->amount_median * FsCategories[category].amount_factor;
	double		cap = MAX_TICKET_RATIO * c->mean_amount;
	double		amount = cap;

	for (int tries = 0; tries < 8; tries++)
	{
		double		a = median * exp(c->amount_sigma * FsRngNormal(&sim->rng));

		if (a <= cap)
		{
			amount = a;
			break;
		}
	}
	return FsCents(fmax(1.0, amount));
}

/* A preferred category, by the customer's own weights. */
static int
preferred_category(FsSim *sim, const FsCustomer *c)
{
	uint32_t	x = FsRngBelow(&sim->rng, 255);

	for (int i = 0; i < FS_PREFS - 1; i++)
		if (x < c->cat_cum[i])
			return c->cat[i];
	return c->cat[FS_PREFS - 1];
}

/*
 * A session's shape: its clicks, as offsets from its start, and its end
 * (the checkout of an online purchase, the last click of a browse).  It
 * is drawn before the customer, so that the preroll can skip sessions
 * that would be over before the start without touching anyone.
 */
typedef struct FsSession
{
	int			n;
	FsTime		at[MAX_STEPS];
	uint8_t		type[MAX_STEPS];
	FsTime		end;
} FsSession;

/* Add a click to a session's shape. */
static void
step(FsSession *s, FsTime t, FsClickType type)
{
	s->at[s->n] = t;
	s->type[s->n++] = (uint8_t) type;
}

/* A pause between clicks, in microseconds. */
static FsTime
gap(FsSim *sim, int min_secs, int max_secs)
{
	return FsRngRange(&sim->rng, min_secs * FS_USEC_PER_SEC, max_secs * FS_USEC_PER_SEC);
}

/*
 * A legitimate login, now and then after one or two mistyped passwords.
 * Returns when the session goes on: at most 50 seconds later.
 */
static FsTime
legit_login(FsSim *sim, FsSession *s, FsTime t)
{
	if (FsRngChance(&sim->rng, 0.03))
	{
		int			fails = (int) FsRngRange(&sim->rng, 1, 2);

		for (int i = 0; i < fails; i++)
		{
			step(s, t, FS_LOGIN_FAILED);
			t += gap(sim, 3, 15);
		}
	}
	step(s, t, FS_LOGIN);
	return t + gap(sim, 5, 20);
}

/* n page views, 5 to 30 seconds apart. */
static FsTime
page_views(FsSim *sim, FsSession *s, FsTime t, int n)
{
	for (int i = 0; i < n; i++)
	{
		step(s, t, FS_PAGE_VIEW);
		t += gap(sim, 5, 30);
	}
	return t;
}

/*
 * A session's login (with probability login_chance) and min_views to
 * max_views page views; its end is the last of them.
 */
static void
session_shape(FsSim *sim, FsSession *s, double login_chance, int min_views, int max_views)
{
	FsTime		t = 0;

	s->n = 0;
	if (FsRngChance(&sim->rng, login_chance))
		t = legit_login(sim, s, t);
	s->end = page_views(sim, s, t, (int) FsRngRange(&sim->rng, min_views, max_views));
}

/*
 * Before an online purchase: half of the time a login, then up to two
 * page views; the checkout 5 to 30 seconds later.  About 40 seconds in
 * all, never more than 50 + 60 + 30.
 */
static void
purchase_shape(FsSim *sim, FsSession *s)
{
	session_shape(sim, s, 0.5, 0, 2);
	s->end += gap(sim, 5, 30);
}

/*
 * Browsing: a login more often than not, one to four page views, rarely
 * a change of settings.  Never more than 50 + 120 seconds.
 */
static void
browse_shape(FsSim *sim, FsSession *s)
{
	session_shape(sim, s, 0.6, 1, 4);
	if (FsRngChance(&sim->rng, 0.003))
		step(s, s->end, FS_PASSWORD_CHANGE);
	else if (FsRngChance(&sim->rng, 0.005))
		step(s, s->end, FS_ADD_PAYEE);
}

/* Push a session's clicks, shifted to start at t, from device/ip/where. */
static void
session_push(FsSim *sim, const FsSession *s, uint32_t customer, FsTime t,
			 const FsEvent *from)
{
	for (int i = 0; i < s->n; i++)
		FsSimClick(sim, customer, t + s->at[i], (FsClickType) s->type[i],
				   FS_LEGIT, from->device, from->ip, from->where);
}

/* Rarely a customer starts using a new device, at home, on their network. */
static void
maybe_new_device(FsSim *sim, FsCustomer *c, FsEvent *s)
{
	int			which;

	if (c->city != c->home_city || !FsRngChance(&sim->rng, NEW_DEVICE_CHANCE))
		return;
	which = (int) FsRngBelow(&sim->rng, c->ndevices);
	c->device[which] = s->device = sim->world->next_device++;
}

/* Mark the customer busy until t: they cannot move before. */
static void
busy_until(FsCustomer *c, FsTime t)
{
	if (t > c->last_seen)
		c->last_seen = t;
}

/* A browsing session of customer from start, from where they are. */
static void
browse_session(FsSim *sim, uint32_t customer, FsTime start, const FsSession *s)
{
	FsCustomer *c = &sim->world->customers[customer];
	FsEvent		from;

	memset(&from, 0, sizeof(from));
	from.where = c->pos;
	owner_online(sim, c, &from.device, &from.ip);
	maybe_new_device(sim, c, &from);
	session_push(sim, s, customer, start, &from);
	busy_until(c, start + s->end);
}

/*
 * A legitimate purchase by customer at t: maybe a trip first; at home
 * often at a favourite merchant, else a preferred category in person or
 * online.  Online, the session's clicks come first and the checkout at
 * its end; without a session (NULL) it happens at once.  The transaction
 * is pushed and, if out is given, copied there.
 */
void
FsSimPurchase(FsSim *sim, uint32_t customer, FsTime t,
			  const FsSession *session, FsEvent *out)
{
	FsWorld    *w = sim->world;
	FsCustomer *c = &w->customers[customer];
	int			k,
				m;
	FsEvent		ev;

	maybe_travel(sim, c, t);
	k = preferred_category(sim, c);
	if (c->city == c->home_city && FsRngChance(&sim->rng, FAVOURITE_SHARE))
		m = (int) c->fav[FsRngBelow(&sim->rng, c->nfav)];
	else if (FsRngChance(&sim->rng, FsCategories[k].online_share >= 1.0 ? 1.0 :
						 2.0 * FsCategories[k].online_share * c->ecom_share))
		m = FsPickOnline(w, &sim->rng, k);
	else if ((m = FsPickPos(w, &sim->rng, c->city, k)) < 0)
		m = FsPickPos(w, &sim->rng, c->city, -1);
	if (m < 0 || !FsSimOwnerTxn(sim, customer, t, (uint32_t) m, &ev))
	{
		/*
		 * No time to get there: buy again in the shop they are in, if they
		 * are in one, else online from where they are.
		 */
		if (c->last_shop &&
			FsSimOwnerTxn(sim, customer, t, (m = (int) c->last_shop - 1), &ev))
			;
		else
		{
			if ((m = FsPickOnline(w, &sim->rng, k)) < 0)
				m = FsPickOnline(w, &sim->rng, -1);
			FsSimOwnerTxn(sim, customer, t, (uint32_t) m, &ev);
		}
	}
	ev.cents = legit_cents(sim, c, w->merchants[m].category);
	if (ev.kind == FS_ECOM && session)
	{
		maybe_new_device(sim, c, &ev);
		session_push(sim, session, customer, t, &ev);
		ev.ts = t + session->end;
		busy_until(c, ev.ts);
	}
	FsSimPush(sim, &ev);
	if (out)
		*out = ev;
}

/*
 * An arrival: a session whose shape is drawn first; if any of it falls
 * after the start, a customer, drawn by rhythm group activity and then
 * by rate, browses or buys from t.
 */
static void
arrival(FsSim *sim, FsTime t)
{
	const FsWorld *w = sim->world;
	bool		browse = FsRngChance(&sim->rng, BROWSE_SHARE);
	FsSession	s;
	double		x;
	int			g = 0;
	uint32_t	customer;

	if (browse)
		browse_shape(sim, &s);
	else
		purchase_shape(sim, &s);
	if (t + s.end < sim->config.start)
		return;
	x = FsRngUniform(&sim->rng) * sim->group_cum[w->ngroups - 1];
	while (g < w->ngroups - 1 && sim->group_cum[g] <= x)
		g++;
	customer = FsAliasPick(&w->groups[g].pick, &sim->rng);
	if (browse)
		browse_session(sim, customer, t, &s);
	else
		FsSimPurchase(sim, customer, t, &s, NULL);
}

/*
 * Set up a simulation of world: its PRNG streams from the seed, the fraud
 * budget, the preroll, and the first arrival at or after the start.
 */
void
FsSimInit(FsSim *sim, FsWorld *world, const FsSimConfig *config)
{
	memset(sim, 0, sizeof(*sim));
	sim->world = world;
	sim->config = *config;
	FsRngSeed(&sim->rng, config->seed ^ UINT64_C(0x73696d));	/* "sim" */
	FsRngSeed(&sim->late_rng, config->seed ^ UINT64_C(0x6c617465));	/* "late" */
	sim->next_arrival = (double) (config->start - PREROLL);
	sim->minute = INT64_MIN;
	FsFraudInit(sim);

	/*
	 * The preroll: whatever it produces before the start is dropped, so
	 * its arrivals need not go through the queue.
	 */
	for (FsTime t = next_arrival(sim); t < config->start; t = next_arrival(sim))
	{
		sim->now = t;
		arrival(sim, t);
	}
	sim->now = config->start;
	schedule_arrival(sim, (FsTime) sim->next_arrival);
}

/*
 * The next event to deliver, with the time it is due (its event time,
 * later for a held-back one) and whether it is held back.  Runs the
 * simulation as far as needed.  While draining, only held-back events
 * still come out; false when nothing is left.
 */
bool
FsSimNext(FsSim *sim, FsEvent *ev, FsTime *due, bool *late)
{
	FsItem		item;

	while (!(sim->draining && sim->held == 0) && FsQueuePop(&sim->queue, &item))
	{
		if (item.late)
		{
			sim->held--;
			*ev = item.ev;
			*due = item.at;
			*late = true;
			return true;
		}
		if (sim->draining)
			continue;
		sim->now = item.at;
		if (item.what == FS_ITEM_ARRIVAL)
		{
			schedule_arrival(sim, next_arrival(sim));
			arrival(sim, item.at);
			continue;
		}
		if (item.ev.stream == FS_STREAM_TXN)
		{
			item.ev.id = ++sim->next_txn_id;
			if (item.ev.pattern == FS_LEGIT)
			{
				sim->legit_txns++;
				FsFraudMaybeStart(sim, item.at);
			}
		}
		else
			item.ev.id = ++sim->next_event_id;
		if (sim->config.out_of_order > 0 &&
			FsRngChance(&sim->late_rng, sim->config.out_of_order))
		{
			item.late = true;
			item.at += FsRngRange(&sim->late_rng, 1, sim->config.max_lateness);
			FsQueuePush(&sim->queue, &item);
			sim->held++;
			continue;
		}
		*ev = item.ev;
		*due = item.at;
		*late = false;
		return true;
	}
	return false;
}
