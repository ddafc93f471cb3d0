# Alerts reach a real LISTEN client (fs_listen) exactly once per committed
# alerting row and never for a rolled-back one: single-row and multi-row
# INSERTs, COPY, rolled-back transactions and savepoints, and rows the
# Kafka worker writes into an attached ring.  Every notification matches
# its row in fraudstream.alerts and stays under NOTIFY's 8000-byte limit.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use FsKafkaTest;
use IPC::Run qw(start finish timeout);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

plan skip_all => 'FS_KAFKA_BOOTSTRAP is not set (run through test/run.sh)'
  unless bootstrap();

my $node = fs_node('alerts');
my $bs = bootstrap();
my $topic = "fs020_$$";

# Payments and a ring fed by Kafka, both attached; a rule alerts on the
# third payment of a card within an hour (its own event counts).
$node->safe_psql('postgres', q{
CREATE TABLE pay (id bigint PRIMARY KEY, card text, ts timestamptz, amount float8, score float8);
SELECT fraudstream.create_ring('kpay', 'id bigint, card text, ts timestamptz, amount float8, score float8',
                               'card', 'ts', '1 day');
GRANT INSERT ON kpay TO ingest;
SELECT fraudstream.create_feature('pay_count', 'pay', 'card', 'count', '1 hour');
SELECT fraudstream.create_feature('kpay_count', 'kpay', 'card', 'count', '1 hour');
SELECT fraudstream.deploy_model('burst', '{"type": "rules", "threshold": 0.5, "rules": [
  {"name": "third_pay", "feature": "pay_count", "op": ">=", "value": 3, "points": 1},
  {"name": "third_kpay", "feature": "kpay_count", "op": ">=", "value": 3, "points": 1}]}');
SELECT fraudstream.activate_model('burst', 1);
SELECT fraudstream.attach('pay', 'id', 'score', 'burst');
SELECT fraudstream.attach('kpay', 'id', 'score', 'burst', false);
});

my $ready = $PostgreSQL::Test::Utils::tmp_check . "/listen_ready_$$";
my ($out, $err) = ('', '');
my $connstr = $node->connstr('postgres');
my $listener = start([ $ENV{FS_LISTEN_BIN}, '--idle', '300', '--ready', $ready,
		$connstr, 'fraudstream_alerts' ], '>', \$out, '2>', \$err, timeout(600));
for (my $i = 0; $i < 300 && !-e $ready; $i++)
{
	select(undef, undef, undef, 0.1);
}
ok(-e $ready, 'the LISTEN client is listening');

# Cards c1..c4 pay three times each: the third payment alerts (4 alerts).
$node->safe_psql('postgres', q{
INSERT INTO pay SELECT c * 10 + k, 'c' || c, timestamptz '2026-05-01 10:00+00' + k * interval '1 minute', 10
  FROM generate_series(1, 4) c, generate_series(1, 3) k ORDER BY k, c;
});
# COPY: card c5's third row alerts.
$node->safe_psql('postgres', q{
COPY pay (id, card, ts, amount) FROM PROGRAM 'printf "51\tc5\t2026-05-01 10:01+00\t1\n52\tc5\t2026-05-01 10:02+00\t1\n53\tc5\t2026-05-01 10:03+00\t1\n"';
});
# Rolled back: no alert, no notification.
$node->safe_psql('postgres', q{
BEGIN;
INSERT INTO pay VALUES (61, 'c6', '2026-05-01 10:01+00', 1), (62, 'c6', '2026-05-01 10:02+00', 1),
                       (63, 'c6', '2026-05-01 10:03+00', 1);
ROLLBACK;
});
# A rolled-back savepoint drops its alert; the rest of the transaction
# commits with its own alert (c7's third row, id 73 after the savepoint).
$node->safe_psql('postgres', q{
BEGIN;
INSERT INTO pay VALUES (71, 'c7', '2026-05-01 10:01+00', 1), (72, 'c7', '2026-05-01 10:02+00', 1);
SAVEPOINT s;
INSERT INTO pay VALUES (79, 'c7', '2026-05-01 10:03+00', 1);
ROLLBACK TO SAVEPOINT s;
INSERT INTO pay VALUES (73, 'c7', '2026-05-01 10:04+00', 1);
COMMIT;
});
# A failed statement (its last row violates the primary key after it was
# scored): its two alerts are gone with it.
$node->psql('postgres', q{
INSERT INTO pay VALUES (81, 'c8', '2026-05-01 10:01+00', 1), (82, 'c8', '2026-05-01 10:02+00', 1),
                       (83, 'c8', '2026-05-01 10:03+00', 1), (81, 'c8', '2026-05-01 10:04+00', 1);
});

# Kafka: 40 cards pay 5 times each into the ring; payments 3, 4 and 5 of
# each card alert (120 alerts).  Keyed by card, so a card's messages stay
# in order in one partition.
fs_topic($topic, 4);
my $now = $node->safe_psql('postgres', "SELECT extract(epoch FROM now())::bigint");
my @lines;
for my $k (1 .. 5)
{
	for my $c (1 .. 40)
	{
		my $id = 1000 + $c * 10 + $k;
		my @g = gmtime($now - 600 + $k * 10);
		my $ts = sprintf('%04d-%02d-%02dT%02d:%02d:%02dZ', $g[5] + 1900, $g[4] + 1, $g[3], $g[2], $g[1], $g[0]);
		push @lines, "k$c\t{\"id\": $id, \"card\": \"k$c\", \"ts\": \"$ts\", \"amount\": 1}";
	}
}
fs_produce($topic, \@lines, keyed => 1);
$node->safe_psql('postgres',
	"SET ROLE ingest; SELECT fraudstream.create_source('kpay', 'kpay', '$bs', '$topic')");
ok(fs_wait_for($node, 'SELECT count(*) FROM kpay', '200'), 'the worker wrote the 200 messages');

my $expected_alerts = 4 + 1 + 1 + 120;
ok(fs_wait_for($node, 'SELECT count(*) FROM fraudstream.alerts', $expected_alerts),
	"$expected_alerts alerts committed");
# Notifications go out at commit; give the last ones a moment to arrive
# (and any duplicate time to show), then stop the listener.
sleep(2);
$listener->signal('TERM');
finish($listener);

my @notes = map { [ split /\t/, $_, 2 ] } grep { length } split /\n/, $out;
is(scalar(@notes), $expected_alerts, 'one notification per committed alerting row')
  or diag("listener stderr: $err");

my %by_id;
my $too_long = 0;
for my $n (@notes)
{
	$too_long++ if length($n->[1]) >= 8000;
	my $p = decode_json($n->[1]);
	$by_id{ $p->{alert_id} } = $p;
}
is(scalar(keys %by_id), $expected_alerts, 'no alert was notified twice');
is($too_long, 0, 'every payload is under 8000 bytes');

my @rows = split /\n/, $node->safe_psql('postgres',
	q{SELECT id || '|' || relation::text || '|' || row_key || '|' || (entities->>'card')
	  || '|' || score || '|' || model || '|' || version || '|' || (reasons->'rules'->>0)
	  FROM fraudstream.alerts ORDER BY id});
my $mismatch = 0;
for my $row (@rows)
{
	my ($id, $rel, $key, $card, $score, $model, $version, $rule) = split /\|/, $row;
	my $p = $by_id{$id};
	$mismatch++
	  unless $p
	  && $p->{table} eq "public.$rel"
	  && $p->{row_key} eq $key
	  && $p->{entities}{card} eq $card
	  && $p->{score} == $score
	  && $p->{model} eq $model
	  && $p->{version} == $version
	  && $p->{reasons}{rules}[0] eq $rule;
}
is($mismatch, 0, 'each notification carries its alert row: id, table, key, entity, score, model, reasons');

is($node->safe_psql('postgres',
		q{SELECT string_agg(row_key, ',' ORDER BY row_key) FROM fraudstream.alerts
		   WHERE relation = 'pay'::regclass}),
	'13,23,33,43,53,73', 'the alerting rows of committed transactions, and only they, alerted');
is($node->safe_psql('postgres',
		q{SELECT count(*) FILTER (WHERE score = 1) || ' ' || count(*) FROM kpay}),
	'120 200', 'the worker\'s rows are scored into their score column');
is($node->safe_psql('postgres',
		q{SELECT rows_scored || ' ' || alerts FROM fraudstream.model_stats WHERE model = 'burst'}),
	(12 + 3 + 3 + 4 + 4 + 200) . ' ' . ($expected_alerts + 4),
	'model_stats counts every scored row and alert, rolled back ones included');

$node->stop;
done_testing();
