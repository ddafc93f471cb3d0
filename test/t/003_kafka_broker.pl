# The real Apache Kafka broker started by the harness works: N keyed
# messages produced to a 4-partition topic are consumed back, each exactly
# once, spread over every partition.
use strict;
use warnings;
use IPC::Run qw(run timeout);
use Test::More;

my $bootstrap = $ENV{FS_KAFKA_BOOTSTRAP}
  or plan skip_all => 'FS_KAFKA_BOOTSTRAP is not set (run through test/run.sh)';
my $n = 10_000;
my $topic = "fs_roundtrip_$$";

my $ctl_out = '';
ok(run([ $ENV{FS_KAFKA_CTL}, 'topic', $ENV{FS_KAFKA_DIR}, $topic, 4 ],
		'>&', \$ctl_out, timeout(120)),
	"topic $topic created with 4 partitions")
  or diag($ctl_out);

my $input = join('', map { "key$_\t{\"seq\":$_}\n" } 1 .. $n);
my ($out, $err) = ('', '');
ok(run([ 'kcat', '-b', $bootstrap, '-P', '-t', $topic, '-K', "\t" ],
		'<', \$input, '>', \$out, '2>', \$err, timeout(120)),
	"$n messages produced")
  or diag($err);

($out, $err) = ('', '');
ok(run([ 'kcat', '-b', $bootstrap, '-C', '-t', $topic, '-o', 'beginning', '-e',
			'-q', '-f', '%p\t%k\t%s\n' ],
		'>', \$out, '2>', \$err, timeout(120)),
	'topic consumed to its end')
  or diag($err);

my (%seen, %partitions);
for my $line (split /\n/, $out)
{
	my ($partition, $key, $payload) = split /\t/, $line;
	$seen{$payload}++;
	$partitions{$partition}++;
}
is(scalar(keys %seen), $n, "$n distinct messages consumed back");
is(scalar(grep { $_ != 1 } values %seen), 0, 'each message exactly once');
is(scalar(keys %partitions), 4, 'messages spread over all 4 partitions');

done_testing();
