# Two PostgreSQL clusters run the same source (same database and source
# name, hence the same consumer group): they split the topic's partitions,
# and the messages land with no overlap and no gap, and the offsets they
# store reach Kafka while they run.
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

my $bs = bootstrap();
my $t = "fs104_$$";
my $n = 20_000;
fs_topic($t, 4);
my @nodes = (fs_node('a'), fs_node('b'));
for my $node (@nodes)
{
	$node->safe_psql('postgres', qq{
CREATE TABLE t (id bigint, p int);
SELECT fraudstream.create_source('grp', 't', '$bs', '$t', 'json', '{"partition_column": "p"}');
});
}
my $assigned = q{SELECT coalesce(jsonb_array_length(partitions), 0) FROM fraudstream.source_stats};
ok(fs_wait_for($nodes[0], $assigned, 2) && fs_wait_for($nodes[1], $assigned, 2),
	'the two clusters hold two partitions each');

fs_produce($t, [ map { "k$_\t{\"id\": $_}" } 1 .. $n ], keyed => 1);
my $total = sub {
	return $nodes[0]->safe_psql('postgres', 'SELECT count(*) FROM t')
	  + $nodes[1]->safe_psql('postgres', 'SELECT count(*) FROM t');
};
for (my $i = 0; $i < 1800 && $total->() < $n; $i++)
{
	select(undef, undef, undef, 0.1);
}
is($total->(), $n, "the clusters hold $n rows together");

my (%seen, @parts);
for my $node (@nodes)
{
	for my $id (split /\n/, $node->safe_psql('postgres', 'SELECT id FROM t'))
	{
		$seen{$id}++;
	}
	push @parts, $node->safe_psql('postgres', q{SELECT string_agg(DISTINCT p::text, ',' ORDER BY p::text) FROM t});
}
is(scalar(keys %seen), $n, 'no gap: every message landed');
is(scalar(grep { $_ > 1 } values %seen), 0, 'no overlap: no message landed twice');
my %both;
$both{$_}++ for map { split /,/ } @parts;
is(scalar(grep { $_ > 1 } values %both), 0, "no partition was consumed by both clusters (@parts)");

# While they run, the workers also commit what they stored to Kafka (about
# once a second), for the group's other members: the lag drops to 0.
my $lag;
for (my $i = 0; $i < 30; $i++)
{
	$lag = fs_group_lag('fraudstream-postgres-grp');
	last if $lag eq '0';
	sleep 1;
}
is($lag, '0', 'the offsets the clusters stored are committed to Kafka while they run');

$_->stop for @nodes;
done_testing();
