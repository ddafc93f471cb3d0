# Fault injection through the librdkafka mock cluster (test/mock): request
# errors on group join, fetch and offset commit, and the broker going down
# and up, while a source consumes.  Every message lands exactly once.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use FsKafkaTest;
use IPC::Run qw(start timeout);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

$SIG{PIPE} = 'IGNORE';
my $mock_bin = $ENV{FS_MOCK_BIN};
plan skip_all => 'FS_MOCK_BIN is not set (run through test/run.sh)'
  unless $mock_bin && -x $mock_bin;

my %m = (in => '', out => '', err => '');
$m{timer} = timeout(30);
$m{h} = start([$mock_bin], '<', \$m{in}, '>', \$m{out}, '2>', \$m{err}, $m{timer});

sub reply
{
	$m{timer}->start(30);
	$m{h}->pump until $m{out} =~ s/\A([^\n]*)\n//;
	$m{timer}->reset;
	return $1;
}

sub cmd
{
	$m{in} .= "$_[0]\n";
	return reply();
}

my ($mbs) = reply() =~ /^bootstrap=(.*)$/;
ok($mbs, "mock cluster at $mbs");
is(cmd('topic mt 2'), 'ok', 'topic created');

my $node = fs_node('mock');
my $sent = 0;
my $produce = sub {
	my ($k) = @_;
	fs_produce('mt', [ map { "{\"id\": $_}" } $sent + 1 .. $sent + $k ], bootstrap => $mbs);
	$sent += $k;
};
$produce->(1000);

# the group join and the first fetches fail before they succeed
is(cmd('error JoinGroup COORDINATOR_LOAD_IN_PROGRESS 2'), 'ok', 'JoinGroup errors injected');
is(cmd('error Fetch NOT_LEADER_FOR_PARTITION 3'), 'ok', 'Fetch errors injected');
$node->safe_psql('postgres', qq{
CREATE TABLE t (id bigint);
SELECT fraudstream.create_source('mock', 't', '$mbs', 'mt',
  'json', '{"reconnect.backoff.ms": 100, "session.timeout.ms": 6000}');
});
ok(fs_wait_for($node, 'SELECT count(*) FROM t', $sent), 'messages land despite join and fetch errors');

# commits to Kafka fail: offsets live in PostgreSQL, nothing is repeated
is(cmd('error OffsetCommit COORDINATOR_NOT_AVAILABLE 5'), 'ok', 'OffsetCommit errors injected');
$produce->(1000);
ok(fs_wait_for($node, 'SELECT count(*) FROM t', $sent), 'messages land despite commit errors');

# the broker goes down and comes back
is(cmd('down 1'), 'ok', 'broker down');
sleep 5;
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fraudstream source mock'}),
	1, 'the worker survives the outage');
is(cmd('up 1'), 'ok', 'broker up');
$produce->(1000);
ok(fs_wait_for($node, 'SELECT count(*) FROM t', $sent, 300), 'messages after the outage land');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT id) FROM t'), $sent, 'each message exactly once');
is($node->safe_psql('postgres', 'SELECT count(*) FROM fraudstream.rejects'), 0, 'no rejects');

$node->safe_psql('postgres', q{SELECT fraudstream.drop_source('mock')});
$node->stop;
cmd('quit');
$m{h}->finish;
done_testing();
