# A ring fed by Kafka for longer than its retention, read concurrently by
# pgbench clients: rotation empties partitions in turn without failing a
# reader, the ring keeps at least its retention of events and never much
# more than retention plus one step, and rotation goes on with no data.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use FsKafkaTest;
use IPC::Run qw(start finish timeout);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

plan skip_all => 'FS_KAFKA_BOOTSTRAP is not set (run through test/run.sh)'
  unless bootstrap();

my $node = fs_node('ring');
my $bs = bootstrap();
my $t = "fs105_$$";
my ($retention, $step) = (6, 2);    # 5 partitions: step = 6 s / 3
fs_topic($t, 2);
$node->safe_psql('postgres', qq{
SELECT fraudstream.create_ring('clicks', 'card text, n int, ts timestamptz', 'card', 'ts', '$retention seconds', 5);
SELECT fraudstream.create_source('clk', 'clicks', '$bs', '$t');
});
ok(fs_wait_for($node, q{SELECT jsonb_array_length(partitions) FROM fraudstream.source_stats}, 2),
	'the worker has its partitions');

# readers: index lookups and scans of the whole ring, all the time
my $script = $node->basedir . '/read.sql';
open(my $fh, '>', $script) or die;
print $fh "\\set c random(0, 49)\n"
  . "SELECT count(*) FROM clicks WHERE card = 'c' || :c AND ts > now() - interval '10 seconds';\n"
  . "SELECT count(*), min(ts) FROM clicks;\n";
close $fh;
my ($out, $err) = ('', '');
my $pgbench = start([ 'pgbench', '-n', '-c', '2', '-T', '20', '-f', $script,
		'-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err, timeout(120));

my $sent = 0;
my ($max_age, $min_full_age, $samples) = (0, 1e9, 0);
my $t0 = time;
while (time - $t0 < 18)
{
	fs_produce($t, [ map { "{\"card\": \"c" . ($_ % 50) . "\", \"n\": $_, \"ts\": \"now\"}" } 1 .. 200 ]);
	$sent += 200;
	select(undef, undef, undef, 0.3);
	my ($rows, $age) = split /\|/, $node->safe_psql('postgres',
		q{SELECT count(*), coalesce(extract(epoch FROM now() - min(ts)), 0) FROM clicks});
	$samples++;
	$max_age = $age if $age > $max_age;
	# once the feed has run for longer than retention + step, the ring
	# must hold a full retention
	$min_full_age = $age if time - $t0 > $retention + $step + 2 && $age < $min_full_age;
}
finish($pgbench);
is($?, 0, 'concurrent readers ran without an error') or diag($err);
like($out, qr/number of transactions actually processed: [1-9]/, 'the readers got work done');
unlike($out . $err, qr/number of failed transactions: [1-9]/, 'no reader transaction failed');
note("samples $samples, oldest event age max $max_age s, min once full $min_full_age s");
cmp_ok($max_age, '<=', $retention + $step + 1.5,
	'the ring never held much more than retention + one step of events');
cmp_ok($min_full_age, '>=', $retention - 1,
	'the ring always held its retention once fed long enough');
cmp_ok($node->safe_psql('postgres', 'SELECT rotations FROM fraudstream.rings'), '>=', 5,
	'the ring rotated partitions while being read and written');
is($node->safe_psql('postgres', q{SELECT count(*) FROM fraudstream.rejects}), 0, 'no rejects');

# no more data: rotation still empties the ring
ok(fs_wait_for($node, 'SELECT count(*) FROM clicks', 0, 60),
	'with no data arriving, rotation empties the ring');

$node->stop;
done_testing();
