# fs_gen, the synthetic fraud stream generator (bench/gen), produces what
# the benchmarks, the demo and model training rely on:
#
#  - the same seed gives byte-identical output, another seed other output,
#    and pacing (--rate) changes when events are written, not what;
#  - exactly the requested number of transactions, under the documented
#    CSV header and JSON fields;
#  - every fraud pattern, labelled, at the requested rate, each with the
#    shape README.md gives it, while legitimate traffic never implies
#    travel faster than a plane;
#  - simple windowed rules, of the kind fraudstream's features express,
#    find each pattern with recall >= 0.9 at <= 0.1% false positives;
#  - event time never goes back within a stream, unless out-of-order
#    delivery is asked for, which then reorders the same events within
#    the allowed lateness;
#  - --event-time now stamps events with the wall clock, and --rate holds
#    there too;
#  - bad usage exits 2 saying what was wanted; SIGTERM stops cleanly,
#    after delivering everything generated;
#  - Kafka output fails with exit code 1 when messages cannot be
#    delivered; with a broker (FS_KAFKA_BOOTSTRAP), N transactions give N
#    JSON messages keyed by card_id over every partition, and the
#    clickstream comes keyed by account_id.
#
# The generator is taken from FS_GEN_BIN, else ../../bench/gen/fs_gen
# relative to this file (build it with "make -C bench/gen").  The broker
# part needs kcat; FS_KAFKA_CTL and FS_KAFKA_DIR, when set, create its
# topics with 4 partitions, else the broker creates them on first use.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use IPC::Run qw(run start timeout);
use JSON::PP;
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm);
use Test::More;

my $bin = $ENV{FS_GEN_BIN}
  || File::Spec->catfile(dirname(File::Spec->rel2abs(__FILE__)),
	'..', '..', 'bench', 'gen', 'fs_gen');
unless (ok(-x $bin, "generator $bin is built"))
{
	diag('build it with: make -C bench/gen');
	done_testing();
	exit 1;
}
my $tmp = tempdir(CLEANUP => 1);

my @patterns = qw(card_testing account_takeover impossible_travel
  amount_spike merchant_collusion);

my @txn_fields = qw(txn_id ts card_id account_id customer_id merchant_id mcc
  amount currency device_id ip lat lon channel is_fraud fraud_pattern
  produced_at_us);
my @event_fields = qw(event_id ts account_id customer_id device_id ip lat lon
  type is_fraud fraud_pattern produced_at_us);

# Run fs_gen.  Returns its exit code, stdout, stderr, elapsed seconds and
# the summary's key=value pairs (those of the "instances" line prefixed).
sub fs_gen
{
	my @args = @_;
	my ($out, $err) = ('', '');
	my $t0 = time;
	run([ $bin, @args ], '>', \$out, '2>', \$err, timeout(600));
	my %sum;
	for my $line (split /\n/, $err)
	{
		next unless $line =~ s/^fs_gen: //;
		my $prefix = $line =~ s/^instances // ? 'instances_' : '';
		$sum{"$prefix$1"} = $2 while $line =~ /(\w+)=(\S*)/g;
	}
	return {
		rc => $? >> 8,
		out => $out,
		err => $err,
		secs => time - $t0,
		sum => \%sum
	};
}

sub slurp
{
	my ($path) = @_;
	open my $fh, '<', $path or die "$path: $!";
	local $/;
	return scalar <$fh>;
}

# CSV text to (column index by name, rows as array refs).  No field of
# ours contains a comma or a quote.
sub parse_csv
{
	my ($text) = @_;
	my @lines = split /\n/, $text;
	my @cols = split /,/, shift @lines;
	my %col;
	@col{@cols} = 0 .. $#cols;
	return (\%col, [ map { [ split /,/, $_, -1 ] } @lines ]);
}

# ISO 8601 UTC with microseconds to microseconds since the epoch.
my %day_secs;

sub usec
{
	my ($ts) = @_;
	my ($y, $mo, $d, $h, $mi, $s, $us) =
	  $ts =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{6})Z$/
	  or die "bad timestamp $ts";
	my $day = $day_secs{"$y$mo$d"} //= timegm(0, 0, 0, $d, $mo - 1, $y);
	return ($day + $h * 3600 + $mi * 60 + $s) * 1_000_000 + $us;
}

sub km
{
	my ($lat1, $lon1, $lat2, $lon2) = @_;
	my $r = 3.14159265358979 / 180;
	my $h =
	  sin(($lat2 - $lat1) * $r / 2)**2 +
	  cos($lat1 * $r) * cos($lat2 * $r) * sin(($lon2 - $lon1) * $r / 2)**2;
	return 2 * 6371 * atan2(sqrt($h), sqrt(1 - $h));
}

# Count, over rows, how many break the non-decreasing order of column ts,
# and the largest step back (microseconds).
sub order_breaks
{
	my ($rows, $ts_col) = @_;
	my ($breaks, $worst, $max) = (0, 0, 0);
	for my $r (@$rows)
	{
		my $t = usec($r->[$ts_col]);
		if ($t < $max)
		{
			$breaks++;
			$worst = $max - $t if $max - $t > $worst;
		}
		$max = $t if $t > $max;
	}
	return ($breaks, $worst);
}

##########################################################################
# Usage errors

{
	my $r = fs_gen('--help');
	is($r->{rc}, 0, '--help exits 0');
	like($r->{out}, qr/--fraud-rate/, '--help lists the options');
	for my $bad ([ '--fraud-rate', '0.9' ], [ '--customers', '5' ],
		[ '--patterns', 'card_testing,bogus' ], [ '--output', 'xml' ],
		[ '--output', 'kafka' ], [ '--no-such-option' ])
	{
		$r = fs_gen(@$bad, '--count', 1);
		is($r->{rc}, 2, "bad usage (@$bad) exits 2");
	}
	like(fs_gen('--fraud-rate', '0.9')->{err},
		qr/--fraud-rate wants a number from 0 to 0.5/,
		'bad usage says what is wanted');
}

##########################################################################
# Determinism, count and CSV header

my @small = ('--customers', 2000, '--count', 20000, '--output', 'csv');
my $first = fs_gen('--seed', 42, @small, '--event-file', "$tmp/first.csv");
my $again = fs_gen('--seed', 42, @small, '--event-file', "$tmp/again.csv");
my $other = fs_gen('--seed', 43, @small);
my $paced = fs_gen('--seed', 42, @small, '--rate', 8000);
is($first->{rc}, 0, 'CSV run exits 0') or diag($first->{err});
ok($first->{out} eq $again->{out}, 'same seed: byte-identical transactions');
ok(slurp("$tmp/first.csv") eq slurp("$tmp/again.csv"),
	'same seed: byte-identical clickstream');
ok($first->{out} ne $other->{out}, 'another seed: other transactions');
ok($paced->{out} eq $first->{out},
	'--rate paces the run without changing it');
ok($paced->{secs} >= 2.2 && $paced->{secs} < 10,
	sprintf('--rate 8000 sends 20000 transactions in about 2.5 s (%.2f s)',
		$paced->{secs}));

my @lines = split /\n/, $first->{out};
is(scalar(@lines), 20001, 'a header line and exactly 20000 transactions');
is($lines[0], join(',', @txn_fields), 'transaction CSV header as documented');
is((split /\n/, slurp("$tmp/first.csv"))[0],
	join(',', @event_fields), 'clickstream CSV header as documented');
is($first->{sum}{transactions}, 20000, 'summary counts the transactions');
is($first->{sum}{sent_events} + 1,
	scalar(split /\n/, slurp("$tmp/first.csv")),
	'summary counts the clickstream events written');

##########################################################################
# A labelled run: rates, shapes, order, and detectability

my $n = 200_000;
my $rate = 0.01;
my $big = fs_gen(
	'--seed', 7, '--customers', 2000, '--count', $n,
	'--fraud-rate', $rate, '--output', 'csv',
	'--event-file', "$tmp/big_events.csv");
is($big->{rc}, 0, 'labelled run exits 0') or diag($big->{err});
my ($tc, $txns) = parse_csv($big->{out});
my ($ec, $events) = parse_csv(slurp("$tmp/big_events.csv"));
is(scalar(@$txns), $n, "$n transactions");

# Labels
my (%per_pattern, $bad_labels);
for my $r (@$txns)
{
	my ($fraud, $p) = ($r->[ $tc->{is_fraud} ], $r->[ $tc->{fraud_pattern} ]);
	$bad_labels++
	  unless ($fraud eq 'false' && $p eq '')
	  || ($fraud eq 'true' && grep { $_ eq $p } @patterns);
	$per_pattern{$p}++ if $p ne '';
}
is($bad_labels // 0, 0,
	'is_fraud is true exactly when fraud_pattern names a pattern');
my $fraud_total = 0;
for my $p (@patterns)
{
	my $got = $per_pattern{$p} // 0;
	my $want = $n * $rate / @patterns;
	$fraud_total += $got;
	ok(abs($got - $want) <= 0.2 * $want,
		"$p: $got transactions, within 20% of $want");
	is($big->{sum}{$p}, $got, "summary counts $p");
}
ok(abs($fraud_total - $n * $rate) <= 0.05 * $n * $rate,
	"fraud is $fraud_total of $n transactions, within 5% of the rate $rate");

# Order
my $ids_ok = !grep { $txns->[$_][ $tc->{txn_id} ] != $_ + 1 } 0 .. $#$txns;
ok($ids_ok, 'txn_id runs 1, 2, 3, ...');
$ids_ok = !grep { $events->[$_][ $ec->{event_id} ] != $_ + 1 } 0 .. $#$events;
ok($ids_ok, 'event_id runs 1, 2, 3, ...');
is((order_breaks($txns, $tc->{ts}))[0], 0,
	'transaction event time never goes back');
is((order_breaks($events, $ec->{ts}))[0], 0,
	'clickstream event time never goes back');

# Walk both streams in event-time order, clickstream first at equal times,
# computing per transaction the windowed features a model would use; at
# the same time collect what the shape checks need.
my $t0 = usec($txns->[0][ $tc->{ts} ]);
my $warmup = $t0 + 3 * 86400 * 1_000_000;    # features need history
my $t_end = usec($txns->[-1][ $tc->{ts} ]) - 3600 * 1_000_000;
my (%dev_first, %ip_first, %dev_first_label, %ip_first_label, %logins);
my (%card_prev, %card_legit_prev, %card_tiny, %card_recent, %card_sum, %card_n);
my (%merch_high, %merch_day, %cust_sum, %cust_n, %cust_merchants);
my (%rule_hits, %rule_fp, %pattern_seen, $legit_seen);
my ($too_fast, $worst_speed) = (0, 0);
my @ev_rows = @$events;
my @shape;    # [row, ts] of fraud, checked after the walk

for my $r (@$txns)
{
	next unless $r->[ $tc->{fraud_pattern} ] eq '';
	my $cu = $r->[ $tc->{customer_id} ];
	$cust_sum{$cu} += $r->[ $tc->{amount} ];
	$cust_n{$cu}++;
	$cust_merchants{$cu}{ $r->[ $tc->{merchant_id} ] } = 1;
}

# First sight of a device or network on an account, and its label.
sub seen
{
	my ($first, $label, $acct, $key, $ts, $pattern) = @_;
	return if $key eq '' || exists $first->{$acct}{$key};
	$first->{$acct}{$key} = $ts;
	$label->{$acct}{$key} = $pattern;
}

my $ei = 0;
for my $r (@$txns)
{
	my $ts = usec($r->[ $tc->{ts} ]);
	while ($ei < @ev_rows && usec($ev_rows[$ei][ $ec->{ts} ]) <= $ts)
	{
		my $e = $ev_rows[ $ei++ ];
		my $et = usec($e->[ $ec->{ts} ]);
		my ($acct, $dev, $ip) =
		  map { $e->[ $ec->{$_} ] } qw(account_id device_id ip);
		seen(\%dev_first, \%dev_first_label, $acct, $dev, $et,
			$e->[ $ec->{fraud_pattern} ]);
		seen(\%ip_first, \%ip_first_label, $acct, $ip, $et,
			$e->[ $ec->{fraud_pattern} ]);
		$logins{$acct}{$dev}{ $e->[ $ec->{type} ] } //= $et;
	}
	my ($card, $acct, $m, $amount, $dev, $ip, $lat, $lon, $channel, $p) =
	  map { $r->[ $tc->{$_} ] }
	  qw(card_id account_id merchant_id amount device_id ip lat lon channel
	  fraud_pattern);
	my %flag;

	# card testing: a second tiny amount on the card within 10 minutes
	my $tiny = $card_tiny{$card} //= [];
	shift @$tiny while @$tiny && $tiny->[0] < $ts - 600e6;
	$flag{card_testing} = $amount <= 2.00 && @$tiny >= 1;

	# The card's average amount over its history up to an hour ago, a
	# baseline that the fraud under way does not move.
	my $recent = $card_recent{$card} //= [];
	while (@$recent && $recent->[0][0] < $ts - 3600e6)
	{
		$card_sum{$card} += (shift @$recent)->[1];
		$card_n{$card}++;
	}
	my $mean = $card_n{$card} ? $card_sum{$card} / $card_n{$card} : undef;

	# account takeover: device and network both new to the account (first
	# seen within the hour) and an amount well above the card's average
	my $young = sub { my $f = $_[0]; !defined $f || $f >= $ts - 3600e6 };
	$flag{account_takeover} =
		 $channel eq 'ecom'
	  && $young->($dev_first{$acct}{$dev})
	  && $young->($ip_first{$acct}{$ip})
	  && $card_n{$card} && $card_n{$card} >= 3
	  && $amount >= 2.5 * $mean;

	# impossible travel: geo-velocity from the card's previous transaction
	# if that was within the hour (since_last)
	if (my $prev = $card_prev{$card})
	{
		my $d = km($prev->[1], $prev->[2], $lat, $lon);
		my $hours = ($ts - $prev->[0]) / 3600e6;
		$flag{impossible_travel} =
		  $hours < 1 && $d > 0 && ($hours <= 0 || $d / $hours > 900);
	}

	# amount spike: eight times the card's average
	$flag{amount_spike} =
	  $card_n{$card} && $card_n{$card} >= 5 && $amount >= 8 * $mean;

	# merchant collusion: high tickets bunch up at a merchant whose day
	# is otherwise quiet
	my $high = $merch_high{$m} //= [];
	my $day = $merch_day{$m} //= [];
	shift @$high while @$high && $high->[0] < $ts - 1800e6;
	shift @$day while @$day && $day->[0] < $ts - 86400e6;
	$flag{merchant_collusion} =
		 $amount >= 250
	  && @$high >= 1
	  && @$day + 1 <= 2 * (@$high + 1);

	if ($ts >= $warmup)
	{
		if ($p eq '')
		{
			$legit_seen++;
			$rule_fp{$_}++ for grep { $flag{$_} } @patterns;
		}
		else
		{
			$pattern_seen{$p}++;
			$rule_hits{$p}++ if $flag{$p};
		}
	}

	# Legitimate movement: never faster than a plane between two
	# legitimate transactions on the card.
	if ($p eq '' && (my $prev = $card_legit_prev{$card}))
	{
		my $d = km($prev->[1], $prev->[2], $lat, $lon);
		my $hours = ($ts - $prev->[0]) / 3600e6;
		my $speed = $d < 0.01 ? 0 : $hours > 0 ? $d / $hours : 9e9;
		$too_fast++ if $speed > 750;
		$worst_speed = $speed if $speed > $worst_speed;
	}
	push @shape, [ $r, $ts, $card_prev{$card} ] if $p ne '' && $ts <= $t_end;

	$card_prev{$card} = [ $ts, $lat, $lon ];
	$card_legit_prev{$card} = [ $ts, $lat, $lon ] if $p eq '';
	push @$tiny, $ts if $amount <= 2.00;
	push @$recent, [ $ts, $amount ];
	push @$high, $ts if $amount >= 250;
	push @$day, $ts;
	seen(\%dev_first, \%dev_first_label, $acct, $dev, $ts, $p);
	seen(\%ip_first, \%ip_first_label, $acct, $ip, $ts, $p);
}

is($too_fast, 0,
	sprintf('legitimate transactions on a card never imply more than '
		  . '750 km/h (fastest %.0f km/h)', $worst_speed));
for my $p (@patterns)
{
	my $recall = ($rule_hits{$p} // 0) / ($pattern_seen{$p} || 1);
	my $fp = ($rule_fp{$p} // 0) / ($legit_seen || 1);
	ok($recall >= 0.9,
		sprintf('%s: a windowed rule finds %.1f%% of %d', $p, 100 * $recall,
			$pattern_seen{$p} // 0));
	ok($fp <= 0.001,
		sprintf('%s: that rule flags %.3f%% of legitimate transactions',
			$p, 100 * $fp));
}

# Shapes, as README.md describes them (fraud up to an hour before the end).
my (%shape_bad, %shape_n);
my %by_card;
push @{ $by_card{ $_->[0][ $tc->{card_id} ] }{ $_->[0][ $tc->{fraud_pattern} ] } },
  $_
  for @shape;
for my $s (@shape)
{
	my ($r, $ts, $prev) = @$s;
	my ($p, $card, $acct, $cust, $m, $amount, $dev, $ip, $channel) =
	  map { $r->[ $tc->{$_} ] }
	  qw(fraud_pattern card_id account_id customer_id merchant_id amount
	  device_id ip channel);
	my $mean = $cust_n{$cust} ? $cust_sum{$cust} / $cust_n{$cust} : 0;
	my $ok;
	$shape_n{$p}++;
	if ($p eq 'card_testing')
	{
		my @burst = grep { abs($_->[1] - $ts) <= 300e6 }
		  @{ $by_card{$card}{$p} };
		my %merchants = map { $_->[0][ $tc->{merchant_id} ] => 1 } @burst;
		$ok =
			 $amount >= 0.50
		  && $amount <= 2.00
		  && $channel eq 'ecom'
		  && @burst >= 5
		  && keys(%merchants) >= 0.8 * @burst;
	}
	elsif ($p eq 'account_takeover')
	{
		my $seen = $logins{$acct}{$dev};
		$ok =
			 $channel eq 'ecom'
		  && $dev_first_label{$acct}{$dev} eq $p
		  && $ip_first_label{$acct}{$ip} eq $p
		  && defined $seen->{login_failed}
		  && defined $seen->{login}
		  && $seen->{login_failed} < $seen->{login}
		  && $seen->{login} < $ts
		  && $amount >= 2 * $mean;
	}
	elsif ($p eq 'impossible_travel')
	{
		$ok =
			 $prev
		  && $ts - $prev->[0] < 3600e6
		  && km($prev->[1], $prev->[2], $r->[ $tc->{lat} ],
			$r->[ $tc->{lon} ]) > 1000;
	}
	elsif ($p eq 'amount_spike')
	{
		$ok = $amount > 8 * $mean && $cust_merchants{$cust}{$m};
	}
	else
	{
		my @burst;
		for my $o (@shape)
		{
			push @burst, $o
			  if $o->[0][ $tc->{fraud_pattern} ] eq $p
			  && $o->[0][ $tc->{merchant_id} ] == $m
			  && abs($o->[1] - $ts) <= 1200e6;
		}
		my %cards = map { $_->[0][ $tc->{card_id} ] => 1 } @burst;
		$ok =
			 $amount >= 300
		  && $amount <= 2500
		  && @burst >= 10
		  && keys(%cards) == @burst;
	}
	$shape_bad{$p}++ unless $ok;
}
my %shape_text = (
	card_testing =>
	  '0.50 to 2.00 online, in bursts of 5+ within 5 minutes at distinct merchants',
	account_takeover =>
	  'on a device and network new to the account, after failed logins and a login from them, at 2x+ the mean',
	impossible_travel =>
	  'more than 1000 km from the card\'s previous transaction, within the hour',
	amount_spike => 'over 8x the customer\'s mean, at a merchant they use',
	merchant_collusion =>
	  '300 to 2500, in bursts of 10+ distinct cards at one merchant within 20 minutes',
);
for my $p (@patterns)
{
	my $bad = $shape_bad{$p} // 0;
	# Sample means wobble: amounts against them may miss by a little.
	my $allowed = $p =~ /amount_spike|account_takeover/ ? 0.02 : 0;
	ok($shape_n{$p} && $bad <= $allowed * $shape_n{$p},
		"$p: $shape_text{$p} ($bad of " . ($shape_n{$p} // 0) . ' not)');
}

##########################################################################
# JSON: every line parses, with the documented fields, types and order

{
	my $r = fs_gen(
		'--seed', 3, '--customers', 1000, '--count', 5000,
		'--fraud-rate', 0.05, '--output', 'json',
		'--event-file', "$tmp/events.json");
	is($r->{rc}, 0, 'JSON run exits 0') or diag($r->{err});
	my $id = qr/\d+/;
	my $ts = qr/"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"/;
	my $deg = qr/-?\d+\.\d{5}/;
	my $label =
	  qr/(?:false,"fraud_pattern":null|true,"fraud_pattern":"(?:${\ join '|', @patterns})")/;
	my $ip = qr/"\d+\.\d+\.\d+\.\d+"/;
	my %type = (
		txn_id => $id,
		event_id => $id,
		ts => $ts,
		card_id => $id,
		account_id => $id,
		customer_id => $id,
		merchant_id => $id,
		mcc => qr/"\d{4}"/,
		amount => qr/\d+\.\d\d/,
		currency => qr/"USD"/,
		device_id => qr/(?:$id|null)/,
		ip => qr/(?:$ip|null)/,
		lat => $deg,
		lon => $deg,
		channel => qr/(?:"pos"|"ecom")/,
		type =>
		  qr/"(?:login|login_failed|page_view|password_change|add_payee)"/,
		is_fraud => $label,
		produced_at_us => qr/null/);
	for my $stream ([ 'transactions', $r->{out}, \@txn_fields, 5000 ],
		[ 'clickstream events', slurp("$tmp/events.json"), \@event_fields ])
	{
		my ($what, $text, $fields, $want) = @$stream;
		my $line_re = join ',',
		  map { $_ eq 'fraud_pattern' ? () : qq("$_":$type{$_}) } @$fields;
		$line_re = qr/^\{$line_re\}$/;
		my ($lines, $invalid, $unlike, $bad_channel) = (0, 0, 0, 0);
		for my $line (split /\n/, $text)
		{
			$lines++;
			my $obj = eval { decode_json($line) };
			$invalid++ unless ref $obj eq 'HASH'
			  && keys %$obj == @$fields;
			$unlike++ unless $line =~ $line_re;
			# In person: no device or network; online and clicks: both.
			my $in_person = ($obj->{channel} // '') eq 'pos';
			$bad_channel++
			  if $obj
			  && ($in_person != !defined $obj->{device_id}
				|| $in_person != !defined $obj->{ip});
		}
		ok($lines > 0 && $invalid == 0,
			"$what: all $lines lines are JSON objects with "
			  . scalar(@$fields) . ' fields');
		is($unlike, 0, "$what: fields in documented order and types");
		is($lines, $want, "$what: $want of them") if defined $want;
		is($bad_channel, 0,
			"$what: device and ip set unless paid in person");
	}
	my $stamped = fs_gen('--count', 100, '--produced-at', 'yes');
	my $now_us = time * 1e6;
	my @stamps = $stamped->{out} =~ /"produced_at_us":(\d+)\}/g;
	ok(@stamps == 100 && !grep({ abs($_ - $now_us) > 60e6 } @stamps),
		'--produced-at yes stamps every event with the wall clock');
}

##########################################################################
# Out-of-order delivery: the same events, late within the bound

{
	my @args = ('--seed', 11, '--customers', 2000, '--count', 30000,
		'--output', 'csv');
	my $plain = fs_gen(@args, '--event-file', "$tmp/plain_events.csv");
	my $late = fs_gen(@args, '--out-of-order', 0.05, '--max-lateness', 30,
		'--event-file', "$tmp/late_events.csv");
	is($late->{rc}, 0, 'out-of-order run exits 0');
	for my $stream ([ 'transactions', $plain->{out}, $late->{out} ],
		[ 'clickstream', slurp("$tmp/plain_events.csv"),
			slurp("$tmp/late_events.csv") ])
	{
		my ($what, $in_order, $shuffled) = @$stream;
		my ($col, $rows) = parse_csv($shuffled);
		my ($breaks, $worst) = order_breaks($rows, $col->{ts});
		ok($breaks > 0.01 * @$rows,
			"$what: some event time goes back ($breaks times)");
		ok($worst <= 30e6, "$what: by at most 30 s ($worst us)");
		my $by_id = sub {
			join "\n",
			  sort { (split /,/, $a)[0] <=> (split /,/, $b)[0] }
			  (split /\n/, $_[0])[ 1 .. scalar(split /\n/, $_[0]) - 1 ];
		};
		ok($by_id->($shuffled) eq $by_id->($in_order),
			"$what: the same events as without out-of-order delivery");
	}
}

##########################################################################
# --event-time now

{
	my $before = time * 1e6;
	my $r = fs_gen('--event-time', 'now', '--rate', 2000, '--duration', 2,
		'--customers', 20000, '--output', 'csv');
	my $after = time * 1e6;
	my ($col, $rows) = parse_csv($r->{out});
	my @ts = map { usec($_->[ $col->{ts} ]) } @$rows;
	is($r->{rc}, 0, '--event-time now run exits 0');
	ok(@$rows >= 3000 && @$rows <= 5000,
		'--rate 2000 for 2 s gives about 4000 transactions (' . @$rows . ')');
	ok(!grep({ $_ < $before || $_ > $after } @ts),
		'event times are the wall-clock times of the run');
	is((order_breaks($rows, $col->{ts}))[0], 0,
		'and never go back');
}

{
	# Late delivery on the wall clock: stamps go back by at most the bound.
	my $before = time * 1e6;
	my $r = fs_gen('--event-time', 'now', '--rate', 2000, '--duration', 1,
		'--customers', 20000, '--out-of-order', 0.1, '--max-lateness', 2,
		'--output', 'csv');
	my $after = time * 1e6;
	my ($col, $rows) = parse_csv($r->{out});
	my ($breaks, $worst) = order_breaks($rows, $col->{ts});
	my @ts = map { usec($_->[ $col->{ts} ]) } @$rows;
	ok($breaks > 0 && $worst <= 2e6,
		"--event-time now with late delivery: back $breaks times, by at most 2 s");
	ok(!grep({ $_ < $before - 2e6 || $_ > $after } @ts),
		'and stamps stay within the run');
}

{
	# SIGTERM: a clean stop that delivers and reports what was generated.
	my $err = '';
	my $h = start([ $bin, '--rate', 2000, '--output', 'csv' ],
		'>', "$tmp/stopped.csv", '2>', \$err, timeout(60));
	sleep 1.5;
	$h->signal('TERM');
	$h->finish;
	is($?, 0, 'SIGTERM stops the run with exit code 0');
	my @rows = split /\n/, slurp("$tmp/stopped.csv");
	my ($reported) = $err =~ /transactions=(\d+)/;
	ok(@rows > 1000 && defined $reported && $reported == @rows - 1,
		'after writing everything it generated, as the summary says ('
		  . (@rows - 1) . ')');
}

##########################################################################
# Kafka

{
	# A port nothing listens on.
	my $sock = IO::Socket::INET->new(
		Listen => 1,
		LocalAddr => '127.0.0.1',
		LocalPort => 0);
	my $port = $sock->sockport;
	close $sock;
	my $r = fs_gen('--output', 'kafka', '--brokers', "127.0.0.1:$port",
		'--count', 25, '--no-events', '--kafka-opt', 'message.timeout.ms=2000');
	is($r->{rc}, 1, 'undeliverable Kafka messages: exit code 1');
	is($r->{sum}{failed}, 25, 'and all 25 counted as failed');
	like($r->{err}, qr/25 events were not delivered/, 'and reported');
}

SKIP:
{
	my $bootstrap = $ENV{FS_KAFKA_BOOTSTRAP};
	skip 'FS_KAFKA_BOOTSTRAP is not set: no broker to produce to', 14
	  unless $bootstrap;
	skip 'kcat is not installed: nothing to consume with', 14
	  unless grep { -x "$_/kcat" } File::Spec->path;
	my $count = 20_000;
	my ($txn_topic, $event_topic) = ("fs_gen_txn_$$", "fs_gen_events_$$");
	if ($ENV{FS_KAFKA_CTL} && $ENV{FS_KAFKA_DIR})
	{
		for my $topic ($txn_topic, $event_topic)
		{
			my $log = '';
			run([ $ENV{FS_KAFKA_CTL}, 'topic', $ENV{FS_KAFKA_DIR}, $topic, 4 ],
				'>&', \$log, timeout(120))
			  or diag($log);
		}
	}

	# Otherwise the broker creates them on first use.
	my $r = fs_gen('--seed', 5, '--count', $count, '--output', 'kafka',
		'--brokers', $bootstrap, '--txn-topic', $txn_topic,
		'--event-topic', $event_topic);
	is($r->{rc}, 0, "$count transactions produced to $txn_topic")
	  or diag($r->{err});
	is($r->{sum}{failed}, 0, 'no delivery failed');

	my ($meta, $err) = ('', '');
	run([ 'kcat', '-b', $bootstrap, '-L', '-t', $txn_topic ],
		'>', \$meta, '2>', \$err, timeout(60));
	my ($partitions) = $meta =~ /with (\d+) partitions/;
	my %spread;

	for my $stream (
		[ $txn_topic, $count, 'card_id', 'txn_id' ],
		[ $event_topic, $r->{sum}{sent_events}, 'account_id', 'event_id' ])
	{
		my ($topic, $want, $key_field, $id_field) = @$stream;
		my $out = '';
		run([ 'kcat', '-b', $bootstrap, '-C', '-t', $topic, '-e', '-o',
				'beginning', '-q', '-f', '%p\t%k\t%s\n' ],
			'>', \$out, '2>', \$err, timeout(120));
		my (%ids, %parts, $invalid, $bad_key, $unstamped);
		my $msgs = 0;
		for my $line (split /\n/, $out)
		{
			my ($part, $key, $payload) = split /\t/, $line, 3;
			my $obj = eval { decode_json($payload) };
			$msgs++;
			$parts{$part}++;
			if (ref $obj ne 'HASH')
			{
				$invalid++;
				next;
			}
			$ids{ $obj->{$id_field} }++;
			$bad_key++ unless $key eq $obj->{$key_field};
			$unstamped++ unless ($obj->{produced_at_us} // 0) > 0;
		}
		is($msgs, $want, "$topic: $want messages consumed back");
		is($invalid // 0, 0, "$topic: all valid JSON");
		is(scalar(keys %ids), $want, "$topic: each $id_field exactly once");
		is($bad_key // 0, 0, "$topic: keyed by $key_field");
		is($unstamped // 0, 0, "$topic: produced_at_us stamped");
		$spread{$topic} = scalar keys %parts;
	}
	ok($partitions && $partitions > 1,
		"$txn_topic has " . ($partitions // '?') . ' partitions');
	is($spread{$txn_topic}, $partitions // -1,
		'keys by card_id spread the transactions over every partition');
}

done_testing();

