# The online feature state survives restarts and crashes (it is rebuilt
# from the source tables), and stays within its memory when there are more
# entities or events than it can hold: counters rise, no insert fails.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $setup = q{
	CREATE EXTENSION fraudstream;
	CREATE TABLE txn (id bigserial PRIMARY KEY, card text, ts timestamptz,
	                  amount numeric(12,2), device text, lat float8, lon float8);
	SELECT fraudstream.create_feature('cnt_1h', 'txn', 'card', 'count', '1 hour');
	SELECT fraudstream.create_feature('sum_1h', 'txn', 'card', 'sum', '1 hour', 'amount');
	SELECT fraudstream.create_feature('sd_1d', 'txn', 'card', 'stddev', '1 day', 'amount');
	SELECT fraudstream.create_feature('dev_1d', 'txn', 'card', 'distinct', '1 day', 'device');
	SELECT fraudstream.create_feature('since_1d', 'txn', 'card', 'since_last', '1 day');
	SELECT fraudstream.create_feature('geo_1d', 'txn', 'card', 'geo_velocity', '1 day');
	SELECT fraudstream.create_feature('dev_cnt_1h', 'txn', 'device', 'count', '1 hour');
};

# 5,000 events of 200 cards over about 14 hours, in arrival order.
my $feed = q{
	INSERT INTO txn (card, ts, amount, device, lat, lon)
	SELECT 'card' || (i * 7919 % 200),
	       timestamptz '2026-02-01 00:00+00' + i * interval '10 seconds',
	       (i * 37 % 1000) / 10.0,
	       'dev' || (i % 13),
	       40 + (i % 17), -3 + (i % 11)
	  FROM generate_series(1, 5000) i ORDER BY i;
};

my $snapshot = q{
	SELECT string_agg(card || ' ' || t || ' ' ||
	                  fraudstream.feature_values('card', card, t)::text, E'\n'
	                  ORDER BY card, t)
	  FROM (SELECT DISTINCT card FROM txn) c,
	       unnest(ARRAY[timestamptz '2026-02-01 06:00+00',
	                    timestamptz '2026-02-01 13:50+00',
	                    timestamptz '2026-02-01 20:00+00']) t;
};

# kill -9 the postmaster, wait until it and its children are gone, start.
sub crash_and_restart
{
	my ($node) = @_;
	my $pid = $node->{_pid};

	$node->kill9;
	for (my $i = 0; $i < 300 && kill(0, $pid); $i++)
	{
		select(undef, undef, undef, 0.1);
	}
	for (my $i = 0; $i < 100; $i++)
	{
		return if $node->start(fail_ok => 1);
		select(undef, undef, undef, 0.2);
	}
	BAIL_OUT('the server did not start after kill -9');
}

my $node = PostgreSQL::Test::Cluster->new('restart');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'fraudstream'");
$node->start;
$node->safe_psql('postgres', $setup);
$node->safe_psql('postgres', $feed);

my $before = $node->safe_psql('postgres', $snapshot);
like($before, qr/"cnt_1h": [1-9]/, 'features have values before the restart');

$node->restart;
is($node->safe_psql('postgres', $snapshot), $before,
	'after a clean restart every feature of every card is the same');
is($node->safe_psql('postgres',
		"SELECT DISTINCT status || ' ' || rebuilds FROM fraudstream.features
		  WHERE entity_column = 'card'"),
	"ready 1", 'the queried group was rebuilt once from its table');
is($node->safe_psql('postgres',
		"SELECT DISTINCT status FROM fraudstream.features WHERE entity_column = 'device'"),
	"unloaded", 'a group nobody used yet waits to be rebuilt');

# A crash loses shared memory; the logged table survives and so do features.
crash_and_restart($node);
is($node->safe_psql('postgres', $snapshot), $before,
	'after kill -9 and recovery every feature of every card is the same');

# New events after the rebuild extend the rebuilt state.
$node->safe_psql('postgres',
	"INSERT INTO txn (card, ts, amount, device) VALUES ('card1', '2026-02-01 13:55+00', 1, 'devX')");
is($node->safe_psql('postgres',
		"SELECT (fraudstream.feature_values('card', 'card1', '2026-02-01 13:56+00') ->> 'cnt_1h')::int
		      - (SELECT count(*) FROM txn WHERE card = 'card1'
		          AND ts > '2026-02-01 12:56+00' AND ts <= '2026-02-01 13:56+00')"),
	'0', 'an event after the rebuild counts with the rebuilt ones');
$node->stop;

# Small state: 1,024 entities and 1 MB of events at most.
my $small = PostgreSQL::Test::Cluster->new('small');
$small->init;
$small->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fraudstream'
fraudstream.max_entities = 1024
fraudstream.state_memory = '1MB'
});
$small->start;
$small->safe_psql('postgres', $setup);

# 5,000 cards at once: more entities than the state holds.
$small->safe_psql('postgres', q{
	INSERT INTO txn (card, ts, amount, device)
	SELECT 'card' || i, timestamptz '2026-02-01 00:00+00' + i * interval '1 second', 1, 'd'
	  FROM generate_series(1, 5000) i});
is($small->safe_psql('postgres', 'SELECT count(*) FROM txn'), '5000',
	'every insert succeeded with more entities than capacity');
my ($entities, $evicted) = split /\|/, $small->safe_psql('postgres',
	"SELECT entities, evicted_entities + expired_entities FROM fraudstream.features WHERE name = 'cnt_1h'");
cmp_ok($entities, '<=', 1024, "entities held ($entities) stay within max_entities");
cmp_ok($evicted, '>', 0, "entities were evicted or expired ($evicted)");

# One card with more events in its window than the whole event memory.
$small->safe_psql('postgres', q{
	INSERT INTO txn (card, ts, amount, device)
	SELECT 'busy', timestamptz '2026-02-02 00:00+00' + i * interval '100 milliseconds', 1, 'd'
	  FROM generate_series(1, 30000) i});
is($small->safe_psql('postgres', "SELECT count(*) FROM txn WHERE card = 'busy'"), '30000',
	'every insert succeeded with more events than the event memory');
cmp_ok($small->safe_psql('postgres',
		"SELECT truncated_events FROM fraudstream.features WHERE name = 'cnt_1h'"),
	'>', 0, 'the oldest events of the busy card were dropped and counted');
cmp_ok($small->safe_psql('postgres',
		"SELECT (fraudstream.feature_values('card', 'busy', '2026-02-02 00:50:00+00') ->> 'cnt_1h')::int"),
	'>', 0, 'the busy card still has its most recent events');

# A scoring session looks an entity up first where it last found it.
# Once the entity is evicted and its entry holds another card, the
# session must find it anew: 50 cards, then 5,000 others that evict them,
# then 3 new events of each of the 50, all in one session: each counts
# its 3 only.
$small->safe_psql('postgres', q{
	SELECT fraudstream.activate_model('hint_m', fraudstream.deploy_model('hint_m',
	  '{"type": "logistic", "threshold": 1, "bias": 0, "weights": {"cnt_1h": 0.01}}'));
	SELECT fraudstream.attach('txn', 'id', model => 'hint_m')});
is($small->safe_psql('postgres', q{
	INSERT INTO txn (card, ts, amount, device)
	SELECT 'h' || (i % 50), timestamptz '2026-02-03 00:00+00' + i * interval '1 second', 1, 'd'
	  FROM generate_series(0, 99) i;
	INSERT INTO txn (card, ts, amount, device)
	SELECT 'f' || i, timestamptz '2026-02-03 00:01+00' + i * interval '1 millisecond', 1, 'd'
	  FROM generate_series(1, 5000) i;
	INSERT INTO txn (card, ts, amount, device)
	SELECT 'h' || (i % 50), timestamptz '2026-02-03 00:10+00' + i * interval '1 second', 1, 'd'
	  FROM generate_series(0, 149) i;
	SELECT count(*) FROM generate_series(0, 49) i
	 WHERE (fraudstream.feature_values('card', 'h' || i, '2026-02-03 00:15+00')
	        ->> 'cnt_1h')::int IS DISTINCT FROM 3}),
	'0', 'entities evicted from under a session are looked up anew');

# A full state evicts its least recently appended entities, an eighth of
# a partition at a time: 1,000 cards, then 1,000 others, then 300 more
# (a day later, when the earlier cards have expired); every card of the
# last 300 keeps its event, and fewer of the first 1,000 than of the
# second are left.
foreach my $range ([1, 1000], [1001, 2000], [2001, 2300])
{
	$small->safe_psql('postgres', qq{
		INSERT INTO txn (card, ts, amount, device)
		SELECT 'lru' || i, timestamptz '2026-02-04 00:00+00' + i * interval '10 milliseconds', 1, 'd'
		  FROM generate_series($range->[0], $range->[1]) i});
}
my @kept = split /\|/, $small->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE i <= 1000), count(*) FILTER (WHERE i BETWEEN 1001 AND 2000),
	       count(*) FILTER (WHERE i > 2000)
	  FROM generate_series(1, 2300) i
	 WHERE (fraudstream.feature_values('card', 'lru' || i, '2026-02-04 00:01+00') ->> 'cnt_1h')::int = 1});
is($kept[2], '300', 'the most recently appended cards are all kept');
cmp_ok($kept[0], '<', $kept[1],
	"the oldest cards go first ($kept[0] of the first 1,000 kept, $kept[1] of the second)");
$small->stop;

done_testing();
