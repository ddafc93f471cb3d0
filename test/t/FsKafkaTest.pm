# FsKafkaTest: helpers shared by the Kafka source tests (test/t/1*_*.pl):
# clusters with fraudstream preloaded, topics on the test broker,
# producing with kcat, and bounded waits.
package FsKafkaTest;

use strict;
use warnings;
use Exporter 'import';
use IPC::Run qw(run timeout);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(fs_node fs_topic fs_produce fs_wait_for fs_group_lag bootstrap);

sub bootstrap
{
	return $ENV{FS_KAFKA_BOOTSTRAP};
}

# A started cluster with fraudstream preloaded, serving database postgres,
# the extension created and a role "ingest" that owns sources.
sub fs_node
{
	my ($name, $extra) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fraudstream'
fraudstream.database = 'postgres'
max_worker_processes = 16
log_min_messages = warning
fraudstream.batch_max_age = 5ms
} . ($extra // ''));
	$node->start;
	$node->safe_psql('postgres', q{
CREATE EXTENSION fraudstream;
CREATE ROLE ingest LOGIN IN ROLE fraudstream_admin;
});
	return $node;
}

# Run test/kafka/kafka-ctl.sh COMMAND on the test broker; its output.
sub kafka_ctl
{
	my ($command, @args) = @_;
	my ($out, $err) = ('', '');
	run([ $ENV{FS_KAFKA_CTL}, $command, $ENV{FS_KAFKA_DIR}, @args ],
		'>', \$out, '2>', \$err, timeout(180))
	  or die "kafka-ctl.sh $command @args failed: $out$err";
	chomp $out;
	return $out;
}

# Create a topic with the given partition count on the test broker.
sub fs_topic
{
	my ($topic, $parts) = @_;
	kafka_ctl('topic', $topic, $parts);
}

# The messages a consumer group has consumed but not committed to Kafka,
# over all its partitions ("-" while a partition has no commit).
sub fs_group_lag
{
	my ($group) = @_;
	return kafka_ctl('lag', $group);
}

# Produce messages ("key\tpayload" lines when $keyed) with kcat; payload
# lines must not contain newlines.  Dies unless kcat succeeds.
sub fs_produce
{
	my ($topic, $lines, %opt) = @_;
	my $input = join('', map { "$_\n" } @$lines);
	my ($out, $err) = ('', '');
	my @cmd = ('kcat', '-b', $opt{bootstrap} // bootstrap(), '-P', '-t', $topic,
		'-X', 'linger.ms=50');
	push @cmd, '-K', "\t" if $opt{keyed};
	push @cmd, '-p', $opt{partition} if defined $opt{partition};
	run(\@cmd, '<', \$input, '>', \$out, '2>', \$err, timeout(300))
	  or die "kcat failed: $err";
}

# Wait (at most $secs, default 180) until $query returns $expected.
sub fs_wait_for
{
	my ($node, $query, $expected, $secs) = @_;
	$secs //= 180;
	for (my $i = 0; $i < $secs * 10; $i++)
	{
		my $got = $node->safe_psql('postgres', $query);
		return 1 if $got eq $expected;
		select(undef, undef, undef, 0.1);
	}
	diag("timed out waiting for [$query] to return [$expected], got ["
		  . $node->safe_psql('postgres', $query) . ']');
	return 0;
}

1;
