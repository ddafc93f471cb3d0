/*-------------------------------------------------------------------------
 *
 * fraud.c
 *		Injection of labelled fraud into fs_gen's stream: card testing,
 *		account takeover, impossible travel, amount spikes and merchant
 *		collusion.
 *
 * Budget: fraud follows legitimate traffic.  Each time a legitimate
 * transaction is delivered, every enabled pattern whose fraudulent
 * transactions (scheduled so far) fall behind its share of the requested
 * fraud rate by half an instance starts a new instance at that moment.
 * Instances vary in size (a card-testing burst has 5 to 30 transactions),
 * so the budget counts transactions, not instances: each pattern ends up
 * with fraud_rate / patterns of all transactions, give or take one
 * instance, and the patterns keep that share over any stretch of the run.
 *
 * Each pattern is built so that the windowed features fraudstream offers
 * reveal it and legitimate traffic (simulate.c) does not mimic it; the
 * README next to this file lists the features.  Every fraudulent
 * transaction, and every clickstream event of a takeover, carries
 * is_fraud and its pattern.  Fraud that the genuine customer does not
 * commit (card testing, takeover, the far end of impossible travel) comes
 * from a fresh device and network at the fraudster's place and leaves
 * the customer's own state untouched; fraud made with the customer's own
 * card, device and position (amount spikes, collusion) goes through
 * FsSimOwnerTxn like legitimate purchases, so it moves the customer only
 * as fast as they can move.
 *
 * bench/gen/fraud.c
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "fs_gen.h"

#define MAX_INSTANCE	30		/* largest instance, transactions */
#define IMPOSSIBLE_MIN_KM	1500.0	/* between the genuine and the clone */

typedef uint64_t (*StartFn) (FsSim *sim, FsTime t, int size);

/* Sizes of instances, in fraudulent transactions. */
static const struct
{
	int			min;
	int			max;
}			sizes[FS_NPATTERNS] = {
	[FS_CARD_TESTING] = {5, MAX_INSTANCE},
	[FS_ACCOUNT_TAKEOVER] = {1, 3},
	[FS_IMPOSSIBLE_TRAVEL] = {1, 1},
	[FS_AMOUNT_SPIKE] = {1, 1},
	[FS_MERCHANT_COLLUSION] = {10, MAX_INSTANCE},
};

/* What account takeovers buy: resellable goods. */
static const uint16_t takeover_mccs[] = {5732, 5944, 5311, 4814};

/* The size of the next instance of a pattern, drawn ahead of it. */
static int
draw_size(FsSim *sim, int pattern)
{
	return (int) FsRngRange(&sim->rng, sizes[pattern].min, sizes[pattern].max);
}

/*
 * A customer to be a victim: anyone but the colluders' complicit
 * cardholders, whose histories are no baseline.
 */
static uint32_t
random_customer(FsSim *sim)
{
	uint32_t	customer;

	do
		customer = FsRngBelow(&sim->rng, sim->world->ncustomers);
	while (sim->world->customers[customer].mule);
	return customer;
}

/* A customer, and one of their cards, whose details a fraudster has. */
static uint32_t
victim(FsSim *sim, uint32_t *card)
{
	uint32_t	customer = random_customer(sim);
	const FsCustomer *c = &sim->world->customers[customer];

	*card = c->first_card + FsRngBelow(&sim->rng, c->ncards);
	return customer;
}

/*
 * Start ev as an online transaction of a fraudster: a device never seen
 * before, a network, and a place: a foreign city half of the time, else
 * a domestic one by population.
 */
static void
fraudster(FsSim *sim, FsEvent *ev)
{
	uint32_t	city;

	memset(ev, 0, sizeof(*ev));
	ev->kind = FS_ECOM;
	ev->device = sim->world->next_device++;
	ev->ip = FsRandomIp(&sim->rng);
	if (FsRngChance(&sim->rng, 0.5))
	{
		do
			city = FsRngBelow(&sim->rng, (uint32_t) FsNumCities);
		while (FsCities[city].domestic);
	}
	else
		city = FsAliasPick(&sim->world->pick_city, &sim->rng);
	ev->where = FsJitter(&sim->rng, FsCities[city].lat, FsCities[city].lon, 20.0);
}

/*
 * n times in (t, t + span), sorted, with exponential gaps: bursts look
 * like bursts, not like a metronome.
 */
static void
burst_times(FsSim *sim, FsTime t, FsTime span, int n, FsTime *times)
{
	double		gaps[MAX_INSTANCE + 1];
	double		total = 0,
				acc = 0;

	for (int i = 0; i <= n; i++)
		total += gaps[i] = FsRngExponential(&sim->rng, 1.0);
	for (int i = 0; i < n; i++)
	{
		acc += gaps[i];
		times[i] = t + (FsTime) (span * acc / total);
	}
}

/* Fill the fields of a fraudulent transaction on card at merchant. */
static void
fraud_txn(FsEvent *ev, FsTime t, uint32_t customer, uint32_t card,
		  const FsMerchant *m, uint32_t merchant, int32_t cents, FsPattern p)
{
	ev->stream = FS_STREAM_TXN;
	ev->ts = t;
	ev->customer = customer;
	ev->card = card;
	ev->merchant = merchant;
	ev->mcc = FsCategories[m->category].mcc;
	ev->cents = cents;
	ev->pattern = (uint8_t) p;
}

/*
 * Card testing: a stolen card number checked with a burst of tiny
 * online payments (0.50 to 2.00) at as many different online merchants
 * within one to five minutes, from the fraudster's device.  Revealed by
 * count and max of amount per card over minutes, distinct merchants per
 * card, and the new device.
 */
static uint64_t
card_testing(FsSim *sim, FsTime t, int n)
{
	const FsWorld *w = sim->world;
	uint32_t	card;
	uint32_t	customer = victim(sim, &card);
	uint32_t	used[MAX_INSTANCE];
	FsTime		times[MAX_INSTANCE];
	FsEvent		ev;

	fraudster(sim, &ev);
	burst_times(sim, t, FsRngRange(&sim->rng, FS_USEC_PER_MIN, 5 * FS_USEC_PER_MIN),
				n, times);
	for (int i = 0; i < n; i++)
	{
		uint32_t	m;

		/* Any online merchant but a colluder, not one tried already. */
		for (int tries = 0;; tries++)
		{
			m = w->online.order[FsRngBelow(&sim->rng, w->online.n)];
			if (tries >= 10 || !((w->merchants[m].flags & FS_MERCHANT_COLLUDER) ||
								 FsIn(used, i, m)))
				break;
		}
		used[i] = m;
		fraud_txn(&ev, times[i], customer, card, &w->merchants[m], m,
				  (int32_t) FsRngRange(&sim->rng, 50, 200), FS_CARD_TESTING);
		FsSimPush(sim, &ev);
	}
	return (uint64_t) n;
}

/*
 * Account takeover: failed logins, a login, often a password change and
 * a new payee, all from a device and network the account has never
 * used, then one to three online purchases of resellable goods at 3 to 8
 * times the customer's mean ticket.  Revealed by failed logins per
 * account, distinct devices and IPs per account, and the amount's ratio
 * to the card's average.
 */
static uint64_t
account_takeover(FsSim *sim, FsTime t, int n)
{
	const FsWorld *w = sim->world;
	uint32_t	card;
	uint32_t	customer = victim(sim, &card);
	int			fails = (int) FsRngRange(&sim->rng, 2, 8);
	int			views = (int) FsRngRange(&sim->rng, 1, 3);
	uint8_t		steps[16];
	int			nsteps = 0;
	FsEvent		ev;

	fraudster(sim, &ev);
	while (nsteps < fails)
		steps[nsteps++] = FS_LOGIN_FAILED;
	steps[nsteps++] = FS_LOGIN;
	if (FsRngChance(&sim->rng, 0.7))
		steps[nsteps++] = FS_PASSWORD_CHANGE;
	if (FsRngChance(&sim->rng, 0.5))
		steps[nsteps++] = FS_ADD_PAYEE;
	while (views-- > 0)
		steps[nsteps++] = FS_PAGE_VIEW;
	for (int i = 0; i < nsteps; i++)
	{
		FsSimClick(sim, customer, t, (FsClickType) steps[i], FS_ACCOUNT_TAKEOVER,
				   ev.device, ev.ip, ev.where);
		/* Retries come fast; a human reads pages. */
		t += steps[i] == FS_LOGIN_FAILED ?
			FsRngRange(&sim->rng, 3 * FS_USEC_PER_SEC, 40 * FS_USEC_PER_SEC) :
			FsRngRange(&sim->rng, 10 * FS_USEC_PER_SEC, 60 * FS_USEC_PER_SEC);
	}
	for (int i = 0; i < n; i++)
	{
		uint16_t	mcc = takeover_mccs[FsRngBelow(&sim->rng, lengthof(takeover_mccs))];
		int			m = FsPickOnline(w, &sim->rng, FsCategoryIndex(mcc));

		if (m < 0)
			m = FsPickOnline(w, &sim->rng, -1);
		t += FsRngRange(&sim->rng, FS_USEC_PER_MIN, 10 * FS_USEC_PER_MIN);
		fraud_txn(&ev, t, customer, card, &w->merchants[m], (uint32_t) m,
				  FsCents(w->customers[customer].mean_amount *
						  (3.0 + 5.0 * FsRngUniform(&sim->rng))),
				  FS_ACCOUNT_TAKEOVER);
		FsSimPush(sim, &ev);
	}
	return (uint64_t) n;
}

/*
 * Impossible travel: the customer makes a genuine purchase (legitimate,
 * unlabelled) and 5 to 50 minutes later a cloned card is used in person
 * at a merchant more than 1,500 km away from it: at least 1,800 km/h,
 * where legitimate travel stays below 700.  Revealed by geo_velocity
 * and since_last per card.
 */
static uint64_t
impossible_travel(FsSim *sim, FsTime t, int n)
{
	const FsWorld *w = sim->world;
	uint32_t	customer = random_customer(sim);
	const FsCustomer *c = &w->customers[customer];
	FsEvent		genuine,
				ev;
	int			m = -1;

	(void) n;
	FsSimPurchase(sim, customer, t, NULL, &genuine);
	for (int tries = 0; tries < 100 && m < 0; tries++)
	{
		int			city = (int) FsAliasPick(&w->pick_city, &sim->rng);

		/* Shops lie within FS_SHOP_RADIUS_KM of the centre. */
		if (FsDistanceKm(genuine.where, FsCityCentre(city)) >
			IMPOSSIBLE_MIN_KM + FS_SHOP_RADIUS_KM)
			m = FsPickPos(w, &sim->rng, city, -1);
	}
	if (m < 0)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.kind = FS_POS;
	ev.where = w->merchants[m].where;
	fraud_txn(&ev, t + FsRngRange(&sim->rng, 5 * FS_USEC_PER_MIN, 50 * FS_USEC_PER_MIN),
			  customer, genuine.card, &w->merchants[m], (uint32_t) m,
			  FsCents(c->mean_amount * (0.8 + 1.7 * FsRngUniform(&sim->rng))),
			  FS_IMPOSSIBLE_TRAVEL);
	FsSimPush(sim, &ev);
	return 1;
}

/*
 * Amount spike: a purchase of 12 to 30 times the customer's mean ticket
 * at one of their usual merchants, made where the customer is, with
 * their own device: nothing but the amount is odd.  Revealed by
 * ratio_to_avg and zscore of amount per card.
 */
static uint64_t
amount_spike(FsSim *sim, FsTime t, int n)
{
	const FsWorld *w = sim->world;
	uint32_t	customer = 0;
	bool		found = false;
	FsEvent		ev;

	(void) n;
	for (int tries = 0; tries < 20 && !found; tries++)
	{
		const FsCustomer *c;

		customer = random_customer(sim);
		c = &w->customers[customer];
		found = c->city == c->home_city &&
			FsSimOwnerTxn(sim, customer, t, c->fav[FsRngBelow(&sim->rng, c->nfav)], &ev);
	}
	if (!found)
	{
		/* Nobody can be at a usual shop now: the last one buys online. */
		int			m = FsPickOnline(w, &sim->rng, w->customers[customer].cat[0]);

		if (m < 0)
			m = FsPickOnline(w, &sim->rng, -1);
		FsSimOwnerTxn(sim, customer, t, (uint32_t) m, &ev);
	}
	ev.cents = FsCents(w->customers[customer].mean_amount *
					   (12.0 + 18.0 * FsRngUniform(&sim->rng)));
	ev.pattern = FS_AMOUNT_SPIKE;
	FsSimPush(sim, &ev);
	return 1;
}

/*
 * Merchant collusion: a colluding shell merchant, which sees almost no
 * legitimate traffic, takes 10 to 30 online payments of 300 to 2,500
 * from as many different cards of the ring of complicit cardholders
 * (from their own devices and places) within 5 to 20 minutes.  Revealed by count, sum
 * and distinct cards per merchant over minutes against the merchant's
 * usual level.
 */
static uint64_t
merchant_collusion(FsSim *sim, FsTime t, int n)
{
	const FsWorld *w = sim->world;
	uint32_t	m = w->colluders[FsRngBelow(&sim->rng, w->ncolluders)];
	uint32_t	used[MAX_INSTANCE];
	FsTime		times[MAX_INSTANCE];
	FsEvent		ev;

	burst_times(sim, t, FsRngRange(&sim->rng, 5 * FS_USEC_PER_MIN, 20 * FS_USEC_PER_MIN),
				n, times);
	for (int i = 0; i < n; i++)
	{
		uint32_t	customer;

		do
			customer = w->mules[FsRngBelow(&sim->rng, w->nmules)];
		while (FsIn(used, i, customer));
		used[i] = customer;
		FsSimOwnerTxn(sim, customer, times[i], m, &ev);
		ev.cents = (int32_t) FsRngRange(&sim->rng, 30000, 250000);
		ev.pattern = FS_MERCHANT_COLLUSION;
		FsSimPush(sim, &ev);
	}
	return (uint64_t) n;
}

static const StartFn starters[FS_NPATTERNS] = {
	[FS_CARD_TESTING] = card_testing,
	[FS_ACCOUNT_TAKEOVER] = account_takeover,
	[FS_IMPOSSIBLE_TRAVEL] = impossible_travel,
	[FS_AMOUNT_SPIKE] = amount_spike,
	[FS_MERCHANT_COLLUSION] = merchant_collusion,
};

/* Count the enabled patterns and draw each one's first instance size. */
void
FsFraudInit(FsSim *sim)
{
	sim->npatterns = 0;
	for (int p = 1; p < FS_NPATTERNS; p++)
		if (sim->config.patterns[p])
		{
			sim->npatterns++;
			sim->next_size[p] = draw_size(sim, p);
		}
}

/*
 * Called for every delivered legitimate transaction: start whatever
 * instances the budget allows now.
 */
void
FsFraudMaybeStart(FsSim *sim, FsTime t)
{
	double		share;

	if (sim->npatterns == 0 || sim->config.fraud_rate <= 0)
		return;
	share = (double) sim->legit_txns * sim->config.fraud_rate /
		(1.0 - sim->config.fraud_rate) / sim->npatterns;
	for (int p = 1; p < FS_NPATTERNS; p++)
	{
		if (!sim->config.patterns[p])
			continue;
		while ((double) sim->scheduled[p] + sim->next_size[p] / 2.0 <= share)
		{
			uint64_t	made = starters[p] (sim, t, sim->next_size[p]);

			if (made == 0)
				break;
			sim->scheduled[p] += made;
			sim->instances[p]++;
			sim->next_size[p] = draw_size(sim, p);
		}
	}
}
