# Kafka source end to end against the real broker:
#  - 200,000 JSON messages over 4 partitions land as exactly 200,000 rows,
#    written by the source's owner, with BEFORE and AFTER row triggers fired;
#  - with 1% bad messages of seven kinds, rows + rejects = messages sent and
#    every reject carries its partition, offset, payload and error;
#  - CSV with a declared column order and Kafka metadata columns;
#  - pause, resume and drop act on the running worker.
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

my $node = fs_node('ingest', "fraudstream.max_message_bytes = 2048\n");
my $bs = bootstrap();
my $t = "fs101_$$";

$node->safe_psql('postgres', qq{
CREATE TABLE payments (id bigint, card text, amount numeric CHECK (amount >= 0),
                       note text, ts timestamptz NOT NULL DEFAULT now());
CREATE TABLE fired (id bigint);
CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN NEW.note := 'by ' || current_user; RETURN NEW; END \$\$;
CREATE FUNCTION count_row() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN INSERT INTO fired VALUES (NEW.id); RETURN NULL; END \$\$;
CREATE TRIGGER stamp BEFORE INSERT ON payments FOR EACH ROW EXECUTE FUNCTION stamp();
CREATE TRIGGER counted AFTER INSERT ON payments FOR EACH ROW EXECUTE FUNCTION count_row();
GRANT INSERT ON payments TO ingest;
GRANT INSERT ON fired TO ingest;
});

# ---------------------------------------------------------------------------
# 200,000 good messages
# ---------------------------------------------------------------------------
my $n = 200_000;
fs_topic("${t}_pay", 4);
$node->safe_psql('postgres', qq{
SET ROLE ingest;
SELECT fraudstream.create_source('pay', 'payments', '$bs', '${t}_pay');
});
fs_produce("${t}_pay",
	[ map { "card" . ($_ % 977) . "\t{\"id\": $_, \"card\": \"card" . ($_ % 977)
		  . "\", \"amount\": " . ($_ % 500) . ".25, \"ts\": \"2024-05-01 12:00:00+00\"}" } 1 .. $n ],
	keyed => 1);
ok(fs_wait_for($node, 'SELECT count(*) FROM payments', $n, 300),
	"$n messages land as $n rows");
is($node->safe_psql('postgres', 'SELECT count(DISTINCT id) FROM payments'), $n,
	'each message exactly once');
is($node->safe_psql('postgres', 'SELECT count(*) FROM fraudstream.rejects'), 0,
	'no rejects');
is($node->safe_psql('postgres', q{SELECT count(*) FROM payments WHERE note = 'by ingest'}), $n,
	'BEFORE ROW trigger ran for every row, as the source owner');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT id) FROM fired'), $n,
	'AFTER ROW trigger fired for every row');
ok(fs_wait_for($node,
		q{SELECT messages = 200000 AND rejects = 0 AND batches > 0 AND lag = 0 AND state = 'running'
		    AND jsonb_array_length(partitions) = 4 FROM fraudstream.source_stats WHERE source = 'pay'}, 't'),
	'source_stats counts the messages, no rejects, 4 partitions without lag');
is($node->safe_psql('postgres',
		q{SELECT count(*), sum(next_offset) FROM fraudstream.offsets}), "4|$n",
	'offsets of the 4 partitions are stored and add up to the messages');

# ---------------------------------------------------------------------------
# 1% bad messages of seven kinds
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE TABLE events (id bigint PRIMARY KEY, card text NOT NULL, amount numeric CHECK (amount >= 0));
GRANT INSERT ON events TO ingest;
});
fs_topic("${t}_bad", 4);
my $m = 10_000;
my @kinds = (
	sub { "{\"id\": $_[0], \"card\": \"c\", " },                          # malformed JSON
	sub { "{\"id\": $_[0], \"card\": \"c\", \"amount\": \"lots\"}" },     # wrong type
	sub { "{\"id\": $_[0], \"card\": \"c\", \"amount\": -1}" },           # CHECK violation
	sub { "{\"id\": $_[0], \"card\": \"" . ('x' x 3000) . "\"}" },         # oversize
	sub { "{\"id\": $_[0], \"card\": \"\xff\xfe\"}" },                     # invalid UTF-8
	sub { "{\"id\": $_[0], \"amount\": 1}" },                             # NOT NULL violation
	sub { "{\"id\": 1, \"card\": \"dup\"}" },                             # unique violation
);
my (@lines, $bad);
for my $i (1 .. $m)
{
	if ($i % 100 == 50)
	{
		push @lines, $kinds[ $bad++ % @kinds ]->($i);
	}
	else
	{
		push @lines, "{\"id\": $i, \"card\": \"c$i\", \"amount\": $i}";
	}
}
$node->safe_psql('postgres', qq{
SET ROLE ingest;
SELECT fraudstream.create_source('bad', 'events', '$bs', '${t}_bad');
});
fs_produce("${t}_bad", \@lines);
ok(fs_wait_for($node,
		q{SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM fraudstream.rejects WHERE source = 'bad')},
		$m, 300),
	'rows + rejects = messages sent');
is($node->safe_psql('postgres', q{SELECT count(*) FROM fraudstream.rejects WHERE source = 'bad'}),
	$bad, "the $bad bad messages are rejected");
is($node->safe_psql('postgres',
		q{SELECT count(DISTINCT (partition, "offset")) FROM fraudstream.rejects
		   WHERE source = 'bad' AND "offset" >= 0 AND error <> '' AND payload IS NOT NULL}),
	$bad, 'each reject carries its own partition, offset, payload and error');
is($node->safe_psql('postgres', q{SELECT count(*) FROM events WHERE id % 100 = 50 AND id <> 1}), 0,
	'no bad message became a row');
my $errors = $node->safe_psql('postgres',
	q{SELECT string_agg(DISTINCT coalesce(sqlstate, 'decode') || ':' || split_part(error, ':', 1), E'\n' ORDER BY coalesce(sqlstate, 'decode') || ':' || split_part(error, ':', 1))
	    FROM fraudstream.rejects WHERE source = 'bad'});
note($errors);
like($errors, qr/decode:malformed JSON/, 'malformed JSON is rejected');
like($errors, qr/22P02:invalid input syntax for type numeric/, 'wrong type is rejected');
like($errors, qr/23514:/, 'CHECK violation is rejected');
like($errors, qr/decode:message of \d+ bytes exceeds/, 'oversize message is rejected');
like($errors, qr/decode:invalid UTF-8/, 'invalid UTF-8 is rejected');
like($errors, qr/23502:/, 'NOT NULL violation is rejected');
like($errors, qr/23505:/, 'unique violation is rejected');

# ---------------------------------------------------------------------------
# CSV with declared columns and Kafka metadata
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE TABLE csvt (label text, id int, amount numeric, kp int, ko bigint, kts timestamptz, kk text,
                   extra text DEFAULT 'dflt');
GRANT INSERT ON csvt TO ingest;
});
fs_topic("${t}_csv", 1);
$node->safe_psql('postgres', qq{
SET ROLE ingest;
SELECT fraudstream.create_source('csv', 'csvt', '$bs', '${t}_csv', 'csv',
  '{"columns": ["id", "label", "amount"], "partition_column": "kp", "offset_column": "ko",
    "timestamp_column": "kts", "key_column": "kk"}');
});
fs_produce("${t}_csv", [ "k1\t1,hello,2.5", "k2\t2,\"quoted, \"\"comma\"\"\",", "k3\t3,,7" ], keyed => 1);
ok(fs_wait_for($node, 'SELECT count(*) FROM csvt', 3), 'CSV messages land');
is($node->safe_psql('postgres',
		q{SELECT string_agg(concat_ws('|', id, coalesce(label, 'NULL'), coalesce(amount::text, 'NULL'), kp, ko, kk, extra, kts > now() - interval '1 hour'), ';' ORDER BY id) FROM csvt}),
	'1|hello|2.5|0|0|k1|dflt|t;2|quoted, "comma"|NULL|0|1|k2|dflt|t;3|NULL|7|0|2|k3|dflt|t',
	'CSV fields map to the declared columns, metadata to their columns, defaults fill the rest');

# ---------------------------------------------------------------------------
# pause, resume, drop
# ---------------------------------------------------------------------------
my $workers = q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fraudstream source pay'};
is($node->safe_psql('postgres', $workers), 1, 'the source has a worker');
$node->safe_psql('postgres', q{SET ROLE ingest; SELECT fraudstream.pause_source('pay')});
ok(fs_wait_for($node, $workers, 0), 'pause_source stops the worker');
is($node->safe_psql('postgres', q{SELECT state FROM fraudstream.source_stats WHERE source = 'pay'}),
	'paused', 'source_stats shows the source paused');
fs_produce("${t}_pay", [ map { "{\"id\": $_, \"card\": \"p\", \"amount\": 1}" } $n + 1 .. $n + 1000 ]);
$node->safe_psql('postgres', q{SET ROLE ingest; SELECT fraudstream.resume_source('pay')});
ok(fs_wait_for($node, 'SELECT count(*) FROM payments', $n + 1000), 'after resume_source the messages sent meanwhile land');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT id) FROM payments'), $n + 1000,
	'still each message exactly once');
$node->safe_psql('postgres', q{SET ROLE ingest; SELECT fraudstream.drop_source('pay')});
ok(fs_wait_for($node, $workers, 0), 'drop_source stops the worker');
is($node->safe_psql('postgres', q{SELECT count(*) FROM fraudstream.source_stats WHERE source = 'pay'}), 0,
	'the dropped source is gone from source_stats');

$node->stop;
done_testing();
