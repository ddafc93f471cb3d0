# kill -9 of the postmaster while workers ingest: after the restart, the
# logged target holds every message exactly once (offsets move in the
# transaction that writes the rows), and the ring, emptied by crash
# recovery like every unlogged table, is refilled from Kafka from
# now - retention.
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

# small batches, so that the kill lands in the middle of the ingestion
my $node = fs_node('crash', "fraudstream.batch_size = 500\n");
my $bs = bootstrap();
my $t = "fs102_$$";
my $n = 60_000;
my $r = 5_000;

fs_topic("${t}_log", 4);
fs_topic("${t}_ring", 2);
$node->safe_psql('postgres', qq{
CREATE TABLE logged (id bigint, v text);
-- slow the ingestion down enough for the kill to land in the middle of it
CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN IF NEW.id % 100 = 0 THEN PERFORM pg_sleep(0.02); END IF; RETURN NEW; END \$\$;
CREATE TRIGGER slow BEFORE INSERT ON logged FOR EACH ROW EXECUTE FUNCTION slow();
SELECT fraudstream.create_ring('clicks', 'card text, id bigint, ts timestamptz', 'card', 'ts', '1 hour');
SELECT fraudstream.create_source('log', 'logged', '$bs', '${t}_log');
SELECT fraudstream.create_source('ring', 'clicks', '$bs', '${t}_ring');
});
fs_produce("${t}_ring",
	[ map { "{\"card\": \"c" . ($_ % 50) . "\", \"id\": $_, \"ts\": \"now\"}" } 1 .. $r ]);
ok(fs_wait_for($node, 'SELECT count(*) FROM clicks', $r), 'the ring holds its events');

fs_produce("${t}_log", [ map { "{\"id\": $_, \"v\": \"m$_\"}" } 1 .. $n ]);
ok(fs_wait_for($node, 'SELECT count(*) > 0 FROM logged', 't'), 'ingestion has started');
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM logged');
cmp_ok($before, '<', $n, "the kill comes while ingesting ($before of $n rows)");

$node->kill9;
# the orphaned backends and workers notice the postmaster's death and exit;
# until they have, the old shared memory is in use and the start fails
my $started = 0;
for (my $i = 0; $i < 120 && !$started; $i++)
{
	$started = $node->start(fail_ok => 1);
	next if $started;
	# a failed start reads the stale postmaster.pid of the killed server
	$node->{_pid} = undef;
	sleep 1;
}
ok($started, 'the server restarts after kill -9 of the postmaster');

ok(fs_wait_for($node, 'SELECT count(*) FROM logged', $n, 300),
	"after the restart the logged target holds all $n messages");
is($node->safe_psql('postgres', 'SELECT count(DISTINCT id) FROM logged'), $n,
	'each exactly once');
is($node->safe_psql('postgres', 'SELECT count(*) FROM fraudstream.rejects'), 0, 'no rejects');
ok(fs_wait_for($node, 'SELECT count(*), count(DISTINCT id) FROM clicks', "$r|$r", 300),
	'the ring is refilled from Kafka with the events of its retention, each once');
like($node->safe_psql('postgres', q{SELECT count(*) FROM fraudstream.ring_offsets}), qr/^[12]$/,
	'the ring\'s offsets are stored beside it again');

$node->stop;
done_testing();
