# The real broker stops for 10 s and starts again (same data): the worker
# logs the outage once and the recovery once, reconnects by itself, and
# nothing is lost or duplicated.
use strict;
use warnings;
use File::Basename qw(dirname);
use FindBin;
use lib $FindBin::RealBin;
use FsKafkaTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

plan skip_all => 'FS_KAFKA_BOOTSTRAP is not set (run through test/run.sh)'
  unless bootstrap();

my $dir = $ENV{FS_KAFKA_DIR};
my $ctl = $ENV{FS_KAFKA_CTL};

# The broker as kafka-ctl.sh started it, restarted on the same data
# (kafka-ctl.sh start would format a new cluster).
sub broker_pid
{
	open(my $fh, '<', "$dir/kafka.pid") or return undef;
	my $pid = <$fh>;
	chomp $pid;
	return $pid;
}

sub stop_broker
{
	my $pid = broker_pid();
	kill 'TERM', $pid;
	for (my $i = 0; $i < 600 && kill(0, $pid); $i++)
	{
		select(undef, undef, undef, 0.1);
	}
	kill 'KILL', $pid if kill(0, $pid);
}

sub start_broker
{
	my $pom = dirname($ctl) . '/pom.xml';
	open(my $fh, '<', $pom) or die "cannot read $pom";
	my ($version) = join('', <$fh>) =~ m{<kafka.version>(.*)</kafka.version>};
	my $lib = $ENV{FS_KAFKA_LIB} || "/var/tmp/fraudstream-cache/kafka-$version";
	open(my $jf, '<', dirname($ctl) . '/broker-jvm.options') or die "cannot read broker-jvm.options";
	chomp(my @jvm = <$jf>);
	close($jf);
	my $pid = fork();
	if ($pid == 0)
	{
		POSIX::setsid();
		open(STDOUT, '>>', "$dir/stdout.log");
		open(STDERR, '>&', \*STDOUT);
		open(STDIN, '<', '/dev/null');
		exec('java', @jvm,
			"-Dlog4j2.configurationFile=$dir/log4j2.properties", '-cp', "$lib/*",
			'kafka.Kafka', "$dir/server.properties");
		exit 1;
	}
	open(my $pf, '>', "$dir/kafka.pid") or die;
	print $pf "$pid\n";
	close $pf;
	for (my $i = 0; $i < 1200; $i++)
	{
		return 1 if system('kcat', '-b', bootstrap(), '-L', '-m', '2', '-q') == 0;
		select(undef, undef, undef, 0.25);
	}
	die 'the broker did not come back';
}

my $node = fs_node('down');
my $bs = bootstrap();
my $t = "fs103_$$";
fs_topic($t, 4);
$node->safe_psql('postgres', qq{
CREATE TABLE t (id bigint);
SELECT fraudstream.create_source('src', 't', '$bs', '$t');
});
fs_produce($t, [ map { "{\"id\": $_}" } 1 .. 5000 ]);
ok(fs_wait_for($node, 'SELECT count(*) FROM t', 5000), 'messages before the outage land');

my $log_offset = -s $node->logfile;
stop_broker();
ok(fs_wait_for($node, q{SELECT state FROM fraudstream.source_stats}, 'broker down', 120),
	'source_stats shows the broker down');
sleep 10;
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fraudstream source src'}),
	1, 'the worker survives the outage');
start_broker();
fs_produce($t, [ map { "{\"id\": $_}" } 5001 .. 10000 ]);
ok(fs_wait_for($node, 'SELECT count(*) FROM t', 10000, 300), 'messages after the outage land');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT id) FROM t'), 10000, 'nothing lost, nothing twice');
ok(fs_wait_for($node, q{SELECT state FROM fraudstream.source_stats}, 'running'), 'the source is running again');

my $log = slurp_file($node->logfile, $log_offset);
my $downs = () = $log =~ /all Kafka brokers are down/g;
my $ups = () = $log =~ /connected to Kafka again/g;
is($downs, 1, 'the outage is logged once');
is($ups, 1, 'the recovery is logged once');

$node->stop;
done_testing();
