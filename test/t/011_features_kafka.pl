# Rows written by the Kafka worker feed features like rows from SQL: 5,000
# JSON transactions of 50 cards consumed into a ring with features give
# every card the feature values its rows define.  One message in 100 is
# bad (its insert fails and is rolled back to the rejects table): those
# never count.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use FsKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

plan skip_all => 'FS_KAFKA_BOOTSTRAP is not set (run through test/run.sh)'
  unless bootstrap();

my $node = fs_node('featkafka');
my $bs = bootstrap();
my $topic = "fs011_$$";
my $n = 5000;

$node->safe_psql('postgres', qq{
SELECT fraudstream.create_ring('txn', 'id bigint, card text, ts timestamptz, amount numeric',
                               'card', 'ts', '1 hour');
GRANT INSERT ON txn TO ingest;
SELECT fraudstream.create_feature('card_count_10m', 'txn', 'card', 'count', '10 minutes');
SELECT fraudstream.create_feature('card_sum_10m', 'txn', 'card', 'sum', '10 minutes', 'amount');
});
fs_topic($topic, 4);

# event times within the last ten minutes, increasing with id
my $now = $node->safe_psql('postgres', "SELECT extract(epoch FROM now())::bigint");
my @lines;
for my $i (1 .. $n)
{
	my $card = 'card' . ($i % 50);
	my $ts = $now - 600 + int($i * 500 / $n);
	my $amount = $i % 100 == 0 ? '"not a number"' : ($i % 97) + 0.5;
	push @lines, "$card\t{\"id\": $i, \"card\": \"$card\", \"ts\": \"" . gmtime_iso($ts)
	  . "\", \"amount\": $amount}";
}
fs_produce($topic, \@lines, keyed => 1);

$node->safe_psql('postgres',
	"SET ROLE ingest; SELECT fraudstream.create_source('txn', 'txn', '$bs', '$topic')");
my $bad = int($n / 100);
ok(fs_wait_for($node,
		'SELECT (SELECT count(*) FROM txn) || \' \' || (SELECT count(*) FROM fraudstream.rejects)',
		($n - $bad) . " $bad"),
	"the worker wrote the good rows and rejected the $bad bad ones");

is($node->safe_psql('postgres',
		"SELECT events FROM fraudstream.features WHERE name = 'card_count_10m'"),
	$n - $bad, 'every row the worker wrote, and no rejected one, was fed to the features');

is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT c.card,
	         fraudstream.feature_values('card', c.card, m.t) AS f,
	         (SELECT count(*) FROM txn x WHERE x.card = c.card
	             AND x.ts > m.t - interval '10 minutes' AND x.ts <= m.t) AS cnt,
	         (SELECT sum(amount) FROM txn x WHERE x.card = c.card
	             AND x.ts > m.t - interval '10 minutes' AND x.ts <= m.t) AS total
	    FROM (SELECT DISTINCT card FROM txn) c, (SELECT max(ts) AS t FROM txn) m) s
	 WHERE (f ->> 'card_count_10m')::bigint <> cnt
	    OR (f ->> 'card_sum_10m')::numeric <> total}),
	'0', 'each card\'s features equal what its rows define');

$node->stop;
done_testing();

sub gmtime_iso
{
	my ($t) = @_;
	my @g = gmtime($t);
	return sprintf('%04d-%02d-%02dT%02d:%02d:%02dZ',
		$g[5] + 1900, $g[4] + 1, $g[3], $g[2], $g[1], $g[0]);
}
