# Checks that the fault-injection helper test/mock/fs_kafka_mock really
# injects faults into a librdkafka client (kcat), as the Kafka worker tests
# rely on:
#
#  - it starts a mock cluster on 127.0.0.1 and announces it in one
#    "bootstrap=" line, and answers every command with "ok" or "error: ...",
#    malformed commands included, without stopping;
#  - a topic it creates shows up in metadata with the requested partition
#    count, and messages produced to it are consumed back exactly once;
#  - "down 1" makes metadata and produce requests fail within seconds and
#    "up 1" makes them work again;
#  - "error Produce <non-retriable error> <count>" fails exactly <count>
#    deliveries with that broker error, given by name or by number;
#  - "error Produce NOT_LEADER_FOR_PARTITION" reaches the client, which
#    retries and delivers the message once;
#  - "quit" and SIGTERM both end the helper with exit code 0.
#
# The helper is taken from FS_MOCK_BIN, else ../mock/fs_kafka_mock relative
# to this file (build it with "make -C test/mock").  Needs kcat.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;
use IPC::Run qw(start run timeout);
use Time::HiRes qw(time sleep);
use Test::More;

# A helper that dies must fail assertions, not kill the test with SIGPIPE.
$SIG{PIPE} = 'IGNORE';

my $kcat = (grep { -x "$_/kcat" } File::Spec->path)[0];
plan skip_all => 'kcat is not installed (needed to act as the librdkafka client)'
  unless defined $kcat;
$kcat .= '/kcat';

my $mock_bin = $ENV{FS_MOCK_BIN}
  || File::Spec->catfile(dirname(File::Spec->rel2abs(__FILE__)),
	'..', 'mock', 'fs_kafka_mock');
unless (ok(-x $mock_bin, "fault-injection helper $mock_bin is built"))
{
	diag('build it with: make -C test/mock');
	done_testing();
	exit;
}

my $topic = "fs_mock_$$";

# Short librdkafka timeouts, so that a failure shows up in seconds.
my @client_conf = ('-X', 'socket.timeout.ms=5000',
	'-X', 'reconnect.backoff.max.ms=500');
my @producer_conf = (@client_conf, '-X', 'message.timeout.ms=5000');

# ---------------------------------------------------------------------------
# Talking to the helper
# ---------------------------------------------------------------------------

my @helpers;	# every helper started, stopped again in END

# Start the helper; returns its session, with bootstrap_line undef if the
# helper announced nothing within 10 s.
sub start_helper
{
	my %s = (in => '', out => '', err => '');
	$s{timer} = timeout(10, name => 'fs_kafka_mock reply');
	$s{h} = start([ $mock_bin, @_ ],
		'<', \$s{in}, '>', \$s{out}, '2>', \$s{err}, $s{timer});
	push @helpers, \%s;
	$s{bootstrap_line} = read_line(\%s);
	return \%s;
}

# Next line of helper output, or undef if it exits or stays silent for 10 s.
# A helper that failed once is killed and gets no second 10 s wait.
sub read_line
{
	my ($s) = @_;
	my $line;

	return undef if $s->{dead};
	$s->{timer}->start(10);
	eval {
		while (1)
		{
			if ($s->{out} =~ s/\A([^\n]*)\n//)
			{
				$line = $1;
				last;
			}
			die "helper exited\n" unless $s->{h}->pumpable;
			$s->{h}->pump;
		}
		1;
	} or do {
		diag("no reply from fs_kafka_mock: $@stderr: $s->{err}");
		$s->{dead} = 1;
		eval { $s->{h}->kill_kill(grace => 2) };
	};
	$s->{timer}->reset;
	return $line;
}

# Send one command, return the helper's one-line reply (undef on timeout).
sub cmd
{
	my ($s, $command) = @_;
	$s->{in} .= "$command\n";
	$s->{quit_sent} = 1 if $command eq 'quit';
	my $reply = read_line($s);
	return defined $reply ? $reply : '(no reply)';
}

# Stop a helper: "quit" first, then kill if it does not go.  Returns the
# wait status (0: exit code 0, no signal), or undef if it had to be killed.
sub stop_helper
{
	my ($s) = @_;
	return $s->{exit} if $s->{stopped};
	$s->{stopped} = 1;
	return $s->{exit} = undef if $s->{dead};
	my $ok = eval {
		$s->{in} .= "quit\n" if !$s->{quit_sent} && $s->{h}->pumpable;
		$s->{timer}->start(10);
		$s->{h}->finish;
		1;
	};
	unless ($ok)
	{
		eval { $s->{h}->kill_kill(grace => 2) };
		return $s->{exit} = undef;
	}
	return $s->{exit} = $s->{h}->full_result(0);
}

END
{
	local $?;
	stop_helper($_) for @helpers;
}

# ---------------------------------------------------------------------------
# Running kcat
# ---------------------------------------------------------------------------

# Run kcat with bounded time; returns { rc, out, err, secs }, rc -1 on timeout.
sub kcat
{
	my ($input, @args) = @_;
	my ($out, $err) = ('', '');
	my $t0 = time;
	my $rc = -1;

	eval {
		run([ $kcat, '-F', '/dev/null', @args ],
			'<', \$input, '>', \$out, '2>', \$err, timeout(30));
		$rc = $? >> 8;
		1;
	} or $err .= "\n(kcat did not finish: $@)";
	return { rc => $rc, out => $out, err => $err, secs => time - $t0 };
}

sub metadata
{
	my ($bootstrap) = @_;
	return kcat('', '-b', $bootstrap, '-L', '-t', $topic, '-m', '3',
		@client_conf);
}

sub produce
{
	my ($bootstrap, $partition, @messages) = @_;
	return kcat(join('', map { "$_\n" } @messages),
		'-b', $bootstrap, '-P', '-t', $topic, '-p', $partition, @producer_conf);
}

# Everything in the topic as sorted "partition:payload" strings.
sub consume_all
{
	my ($bootstrap) = @_;
	my $r = kcat('', '-b', $bootstrap, '-C', '-t', $topic, '-o', 'beginning',
		'-e', '-q', '-f', '%p:%s\n', @client_conf);
	return ($r, [ sort split /\n/, $r->{out} ]);
}

sub show
{
	my ($r) = @_;
	diag("kcat exit $r->{rc} after " . sprintf('%.1f', $r->{secs})
		  . " s\nstdout: $r->{out}\nstderr: $r->{err}");
}

# ---------------------------------------------------------------------------
# Start-up and command protocol
# ---------------------------------------------------------------------------

my $mock = start_helper();
my ($bootstrap) =
  ($mock->{bootstrap_line} // '') =~ /\Abootstrap=(127\.0\.0\.1:\d+)\z/;
ok(defined $bootstrap,
	'helper prints one bootstrap line with a 127.0.0.1 listener')
  or diag('got: ' . ($mock->{bootstrap_line} // '(nothing)'));
unless (defined $bootstrap)
{
	done_testing();
	exit;
}

like(cmd($mock, 'bogus'), qr/\Aerror: unknown command/,
	'unknown command is answered with an error');
like(cmd($mock, 'topic'), qr/\Aerror: usage/,
	'topic without arguments is answered with a usage error');
like(cmd($mock, "topic $topic 0"), qr/\Aerror: invalid partition count/,
	'topic with 0 partitions is refused');
like(cmd($mock, 'error NoSuchApi NOT_LEADER_FOR_PARTITION'),
	qr/\Aerror: unknown ApiKey/, 'unknown ApiKey name is refused');
like(cmd($mock, 'error Produce NO_SUCH_ERROR'), qr/\Aerror: unknown error/,
	'unknown error name is refused');
like(cmd($mock, 'error Produce _MSG_TIMED_OUT'), qr/\Aerror: unknown error/,
	'client-side librdkafka error is refused');
like(cmd($mock, 'error Produce NOT_LEADER_FOR_PARTITION 0'),
	qr/\Aerror: invalid count/, 'error count 0 is refused');
like(cmd($mock, 'down 2'), qr/\Aerror: invalid broker id/,
	'down for a broker that does not exist is refused');

unless (is(cmd($mock, "topic $topic 2"), 'ok',
		"topic $topic created with 2 partitions"))
{
	# nothing below means anything without the topic
	done_testing();
	exit;
}
like(cmd($mock, "topic $topic 2"), qr/\Aerror: .*TOPIC_ALREADY_EXISTS/,
	'creating the same topic again is refused');

# ---------------------------------------------------------------------------
# Healthy cluster
# ---------------------------------------------------------------------------

my $r = metadata($bootstrap);
is($r->{rc}, 0, 'metadata request succeeds') or show($r);
like($r->{out}, qr/topic "\Q$topic\E" with 2 partitions/,
	'metadata lists the topic with 2 partitions');
like($r->{out}, qr/partition 0, leader 1\b.*partition 1, leader 1\b/s,
	'both partitions are led by broker 1');

my @expected = ('0:m1', '0:m2', '0:m3', '1:m4', '1:m5');
$r = produce($bootstrap, 0, 'm1', 'm2', 'm3');
is($r->{rc}, 0, '3 messages produced to partition 0') or show($r);
$r = produce($bootstrap, 1, 'm4', 'm5');
is($r->{rc}, 0, '2 messages produced to partition 1') or show($r);

my $got;
($r, $got) = consume_all($bootstrap);
is($r->{rc}, 0, 'consumer reads the topic to its end') or show($r);
is_deeply($got, \@expected, 'all 5 messages are consumed back exactly once');

# ---------------------------------------------------------------------------
# Broker down and up again
# ---------------------------------------------------------------------------

is(cmd($mock, 'down 1'), 'ok', 'down 1 accepted');

$r = metadata($bootstrap);
isnt($r->{rc}, 0, 'with broker 1 down the metadata request fails') or show($r);
like($r->{err}, qr/Failed to acquire metadata|Connection refused/,
	'with broker 1 down kcat reports the unreachable broker');

$r = produce($bootstrap, 0, 'lost-while-down');
isnt($r->{rc}, 0, 'with broker 1 down producing fails') or show($r);
like($r->{err}, qr/brokers are down|Connection refused|Delivery failed/,
	'with broker 1 down kcat reports why producing failed');

is(cmd($mock, 'up 1'), 'ok', 'up 1 accepted');

$r = metadata($bootstrap);
is($r->{rc}, 0, 'after up 1 the metadata request succeeds again') or show($r);
like($r->{out}, qr/topic "\Q$topic\E" with 2 partitions/,
	'after up 1 metadata lists the topic with 2 partitions again');

$r = produce($bootstrap, 0, 'm6');
is($r->{rc}, 0, 'after up 1 producing works again') or show($r);
push @expected, '0:m6';

# ---------------------------------------------------------------------------
# Injected request errors
# ---------------------------------------------------------------------------

# A non-retriable broker error fails the delivery; count 2 fails two
# ProduceRequests (one per kcat run of a single message), not more.
is(cmd($mock, 'error Produce TOPIC_AUTHORIZATION_FAILED 2'), 'ok',
	'error Produce TOPIC_AUTHORIZATION_FAILED 2 accepted');
for my $n (1, 2)
{
	$r = produce($bootstrap, 1, "rejected$n");
	isnt($r->{rc}, 0, "injected Produce error $n of 2 fails the delivery")
	  or show($r);
	like($r->{err}, qr/Delivery failed.*Topic authorization failed/,
		"injected Produce error $n of 2 is reported as the broker's error");
}
$r = produce($bootstrap, 1, 'm7');
is($r->{rc}, 0, 'once the 2 injected errors are used up producing works')
  or show($r);
push @expected, '1:m7';

# The same by number: ApiKey 0 is Produce, error 29 TOPIC_AUTHORIZATION_FAILED.
is(cmd($mock, 'error 0 29'), 'ok', 'error 0 29 (numeric form) accepted');
$r = produce($bootstrap, 0, 'rejected3');
isnt($r->{rc}, 0, 'numeric injected Produce error fails the delivery')
  or show($r);
like($r->{err}, qr/Topic authorization failed/,
	'numeric injected Produce error is reported as the broker\'s error');

# A retriable error reaches the client, which refreshes metadata, retries
# and delivers the message once.
is(cmd($mock, 'error Produce NOT_LEADER_FOR_PARTITION 1'), 'ok',
	'error Produce NOT_LEADER_FOR_PARTITION 1 accepted');
$r = kcat("m8\n", '-b', $bootstrap, '-P', '-t', $topic, '-p', '1',
	'-d', 'msg', @producer_conf);
is($r->{rc}, 0, 'message is delivered despite the retriable error')
  or show($r);
like($r->{err}, qr/encountered error: Broker: Not leader for partition/,
	'the client saw the injected NOT_LEADER_FOR_PARTITION');
push @expected, '1:m8';

($r, $got) = consume_all($bootstrap);
is($r->{rc}, 0, 'consumer reads the topic to its end after the faults')
  or show($r);
is_deeply($got, [ sort @expected ],
	'exactly the delivered messages are in the topic, each once');

# ---------------------------------------------------------------------------
# Shutdown
# ---------------------------------------------------------------------------

is(cmd($mock, 'quit'), 'ok', 'quit is acknowledged');
is(stop_helper($mock), 0, 'helper exits with code 0 (wait status 0) after quit');

# SIGTERM while waiting for a command (stdin stays open).
my $second = start_helper('--brokers', '3');
like($second->{bootstrap_line} // '',
	qr/\Abootstrap=127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+\z/,
	'--brokers 3 announces three loopback listeners');
$second->{h}->signal('TERM');
my $deadline = time + 10;
while ($second->{h}->pumpable && time < $deadline)
{
	$second->{h}->pump_nb;
	sleep 0.05;
}
ok(!$second->{h}->pumpable, 'helper ends within 10 s of SIGTERM');
is(stop_helper($second), 0, 'helper exits with code 0 (wait status 0) after SIGTERM');

done_testing();
