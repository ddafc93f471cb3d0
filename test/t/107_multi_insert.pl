# The worker's multi-insert path (rows buffered per partition and written
# many at a time, as COPY does) keeps the row-by-row guarantees:
#  - one batch of 3,000 messages with bad rows in the middle (wrong type,
#    CHECK, NOT NULL, and duplicate keys caught only when the buffered rows'
#    index entries are written) lands every good row and rejects exactly
#    the bad ones, each with its own SQLSTATE and offset;
#  - the feature feed trigger (BEFORE ROW, which does not prevent
#    buffering) and a user AFTER ROW trigger fire once per row that landed;
#  - a target with a user BEFORE ROW trigger (rows one at a time, as in
#    COPY) and a ring (one buffer per partition) give the same result;
#  - values decoded in place keep their meaning (escapes, repeated keys,
#    nested JSON, NULL, empty text).
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

# a long batch age: each topic's messages form one batch
my $node = fs_node('multi', "fraudstream.batch_max_age = 3s\n");
my $bs = bootstrap();
my $t = "fs107_$$";
my $n = 3000;

$node->safe_psql('postgres', q{
CREATE TABLE after_log (tbl text, id bigint);  -- tbl: a ring's partition
CREATE TABLE before_log (id bigint);
CREATE FUNCTION log_after() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO after_log VALUES (TG_TABLE_NAME, NEW.id); RETURN NULL; END $$;
CREATE FUNCTION log_before() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO before_log VALUES (NEW.id); RETURN NEW; END $$;

CREATE TABLE buffered (id bigint PRIMARY KEY, card text NOT NULL,
                       amount numeric CHECK (amount >= 0), ts timestamptz NOT NULL DEFAULT now());
CREATE TRIGGER logged AFTER INSERT ON buffered FOR EACH ROW EXECUTE FUNCTION log_after();
SELECT fraudstream.create_feature('card_count_107', 'buffered', 'card', 'count', '1 hour');

CREATE TABLE single (LIKE buffered INCLUDING ALL);
CREATE TRIGGER before_logged BEFORE INSERT ON single FOR EACH ROW EXECUTE FUNCTION log_before();
CREATE TRIGGER logged AFTER INSERT ON single FOR EACH ROW EXECUTE FUNCTION log_after();

SELECT fraudstream.create_ring('ringed', 'id bigint, card text NOT NULL,
                               amount numeric CHECK (amount >= 0), ts timestamptz NOT NULL',
                               'card', 'ts', '1 hour');
CREATE TRIGGER logged AFTER INSERT ON ringed FOR EACH ROW EXECUTE FUNCTION log_after();
DO $$
DECLARE p regclass;
BEGIN
  FOR p IN SELECT unnest(slots) FROM fraudstream.ring_config WHERE ring = 'ringed'::regclass LOOP
    EXECUTE format('CREATE UNIQUE INDEX ON %s (id)', p);
  END LOOP;
END $$;

GRANT INSERT ON buffered, single, ringed, after_log, before_log TO ingest;
});

# Good rows, and at fixed places in the middle: a wrong type, a CHECK
# violation, a NOT NULL violation and duplicates of earlier ids (with the
# time of the original, so that they meet it in its ring partition).
my %bad = (
	700 => [ sub { "{\"id\": $_[0], \"card\": \"c\", \"amount\": \"lots\", \"ts\": \"$_[1]\"}" }, '22P02' ],
	1300 => [ sub { "{\"id\": $_[0], \"card\": \"c\", \"amount\": -1, \"ts\": \"$_[1]\"}" }, '23514' ],
	1301 => [ sub { "{\"id\": $_[0], \"amount\": 1, \"ts\": \"$_[1]\"}" }, '23502' ],
	2500 => [ sub { "{\"id\": 1500, \"card\": \"dup\", \"amount\": 1, \"ts\": \"" . ts_of(1500) . "\"}" }, '23505' ],
	2999 => [ sub { "{\"id\": 10, \"card\": \"dup\", \"amount\": 1, \"ts\": \"" . ts_of(10) . "\"}" }, '23505' ],
);
my $now = $node->safe_psql('postgres', "SELECT extract(epoch FROM now())::bigint");

# event times over the last 50 minutes: several partitions of the ring
sub ts_of
{
	my @g = gmtime($now - 3000 + $_[0]);
	return sprintf('%04d-%02d-%02dT%02d:%02d:%02dZ',
		$g[5] + 1900, $g[4] + 1, $g[3], $g[2], $g[1], $g[0]);
}

my @lines;
for my $i (1 .. $n)
{
	my $ts = ts_of($i);
	if ($bad{$i})
	{
		push @lines, $bad{$i}[0]->($i, $ts);
		next;
	}
	push @lines, "{\"id\": $i, \"card\": \"card" . ($i % 37)
	  . "\", \"amount\": " . ($i % 50) . ".5, \"ts\": \"$ts\"}";
}
my $good = $n - keys %bad;
my $rejects_expected = join(',', map { "$_:$bad{$_}[1]" } sort { $a <=> $b } keys %bad);

# Produce the messages to a topic of one partition, consume them into the
# table of the same name, and wait until each is a row or a reject.
sub consume
{
	my ($target, $messages) = @_;
	fs_topic("${t}_$target", 1);
	fs_produce("${t}_$target", $messages);
	$node->safe_psql('postgres', qq{
SET ROLE ingest;
SELECT fraudstream.create_source('$target', '$target', '$bs', '${t}_$target');
});
	ok(fs_wait_for($node,
			qq{SELECT (SELECT count(*) FROM $target) + (SELECT count(*) FROM fraudstream.rejects WHERE source = '$target')},
			scalar(@$messages), 180),
		"$target: rows + rejects = messages sent");
}

for my $target ('buffered', 'single', 'ringed')
{
	consume($target, \@lines);
	is($node->safe_psql('postgres', qq{SELECT batches FROM fraudstream.source_stats WHERE source = '$target'}),
		1, "$target: the messages were written as one batch");
	is($node->safe_psql('postgres', qq{SELECT count(*), count(DISTINCT id) FROM $target}),
		"$good|$good", "$target: every good row landed once");
	is($node->safe_psql('postgres',
			qq{SELECT string_agg(("offset" + 1) || ':' || sqlstate, ',' ORDER BY "offset")
			     FROM fraudstream.rejects WHERE source = '$target'}),
		$rejects_expected, "$target: exactly the bad rows are rejected, each with its own error");
	is($node->safe_psql('postgres',
			qq{SELECT count(*) FROM $target WHERE card = 'dup' OR amount < 0}),
		0, "$target: the first of duplicate ids is the one kept");
	is($node->safe_psql('postgres',
			qq{SELECT count(*), count(DISTINCT id) FROM after_log WHERE tbl LIKE '$target%'}),
		"$good|$good", "$target: the AFTER ROW trigger fired once per row that landed");
}

is($node->safe_psql('postgres',
		"SELECT events FROM fraudstream.features WHERE name = 'card_count_107'"),
	$good, 'buffered: the feed trigger counted each row that landed once');
is($node->safe_psql('postgres', 'SELECT count(*), count(DISTINCT id) FROM before_log'),
	"$good|$good", 'single: the user BEFORE ROW trigger ran once per row that landed');
cmp_ok($node->safe_psql('postgres',
		'SELECT count(DISTINCT tableoid) FROM ringed'), '>', 1,
	'ringed: the batch spread over several partitions');

# Values are decoded in place (text columns take the parsed text as their
# datum): escapes in keys and values, repeated keys (the last wins, also
# when they repeat more often than the table has columns), nested JSON,
# unknown keys, NULL and the empty string.
$node->safe_psql('postgres', q{
CREATE TABLE shapes (id int, t text, j jsonb, n numeric);
GRANT INSERT ON shapes TO ingest;
});
my @shapes = (
	q({"id": 1, "t": "a\"b\\\\c\u00e9\n/\/", "n": 1.5e2}),
	q({"i\u0064": 2, "t": "k"}),
	'{"id": 3, ' . join(', ', map { "\"t\": \"v$_\"" } 1 .. 50) . ', "t": "last"}',
	q({"id": 4, "j": {"a": [1, 2, {"b": null}]}, "unknown": {"x": [1]}, "t": null}),
	q({"id": 5, "t": "", "n": -0.25}),
	q( {"t":"x\u0000y","id":6} ),
	'{"id": 7, ' . join(', ', map { "\"j\": [$_]" } 1 .. 50)
	  . ', "j": {"k": "' . ('w' x 500) . '"}}',
);
consume('shapes', \@shapes);
is($node->safe_psql('postgres',
		q{SELECT string_agg(concat_ws('|', id, coalesce(t, 'NULL'), coalesce(length(t)::text, '-'), coalesce(j::text, 'NULL'), coalesce(n::text, 'NULL')), ';' ORDER BY id) FROM shapes}),
	"1|a\"b\\c\xc3\xa9\n//|9|NULL|150;2|k|1|NULL|NULL;3|last|4|NULL|NULL;"
	  . '4|NULL|-|{"a": [1, 2, {"b": null}]}|NULL;5||0|NULL|-0.25;'
	  . '7|NULL|-|{"k": "' . ('w' x 500) . '"}|NULL',
	'shapes: escapes, repeated keys, nested JSON, NULL and empty text decode as before');
like($node->safe_psql('postgres', q{SELECT error FROM fraudstream.rejects WHERE source = 'shapes'}),
	qr/\\u0000 cannot be stored in text/, 'shapes: \u0000 is rejected');

# UTF-8 is checked in JSON strings as they are parsed: multibyte text in
# values lands as sent; invalid sequences anywhere (a value, a key, a
# skipped nested value, outside strings) are rejected as invalid UTF-8.
$node->safe_psql('postgres', q{
CREATE TABLE utf8 (id int, t text);
GRANT INSERT ON utf8 TO ingest;
});
consume('utf8', [
	"{\"id\": 1, \"t\": \"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac\"}",
	"{\"id\": 2, \"t\": \"\xc0\x80\"}",
	"{\"id\": 3, \"t\": \"ab\xe2\x82\"}",
	"{\"id\": 4, \"t\xff\": \"x\"}",
	"{\"id\": 5, \"u\": {\"a\": [\"\xed\xa0\x80\"]}}",
	"{\"id\": 6, \"t\": \"x\"} \xff",
	"{\"id\": 7, \"t\": \"\xf4\x90\x80\x80\"}",
	"{\"id\": 8, \"\xc3\xa9\": 1, \"t\": \"\xc3\xa9\"}",
]);
is($node->safe_psql('postgres', q{SELECT string_agg(id || ':' || t || ':' || length(t), ',' ORDER BY id) FROM utf8}),
	"1:caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac:8,8:\xc3\xa9:1", 'utf8: multibyte text lands as sent');
is($node->safe_psql('postgres',
		q{SELECT string_agg(("offset" + 1) || ':' || error, ',' ORDER BY "offset") FROM fraudstream.rejects WHERE source = 'utf8'}),
	join(',', map { "$_:invalid UTF-8 in message" } 2 .. 7), 'utf8: invalid UTF-8 is rejected wherever it is');

# timestamptz, numeric and inet values take exact shortcuts for their
# common forms (fastinput.c): every value must equal what the type's input
# function makes of the same text, bit for bit, whichever path it took;
# forms the shortcuts do not read, and bad values, still go to the input
# function, which rejects the bad ones.
$node->safe_psql('postgres', q{
CREATE TABLE typed (id int, ts timestamptz, ts_raw text, n numeric, n_raw text,
                    ip inet, ip_raw text, started timestamptz DEFAULT now());
GRANT INSERT ON typed TO ingest;
});
my @ts = ('2024-01-31T23:59:59Z', '2024-02-29T12:00:00.5+05:30',
	'2023-06-15 08:30:00.123456-07:00', '1999-12-31T23:59:59.999999+14',
	'2024-03-10T02:30:00-00:00', '2024-07-01T10:00:00+02', '1000-01-01T00:00:00Z',
	'9999-12-31T23:59:59Z', '2024-01-01T00:00:00.1234567Z', '2024-01-01 12:00:00',
	'2024-01-01T24:00:00Z', 'NOW', 'epoch', ' 2024-01-01T00:00:00Z', '2023-02-28T00:00:00.000001+15:00');
my @num = ('0', '-0', '-0.00', '007.50', '123456789012345', '1234567890123456',
	'0.000000000000001', '-99.99', '1.5e2', 'NaN', '12345.6789', '+5', '.5', '5.', '100000000');
my @ip = ('10.0.0.1', '255.255.255.255', '0.0.0.0', '010.001.000.009', '1.2.3.4/24',
	'::1', '1.2.3.4.', '192.168.1.254', '0.0.0.00000000', '127.0.0.1');
my @typed;
for my $i (0 .. $#ts)
{
	my ($tv, $nv, $iv) = ($ts[$i], $num[$i % @num], $ip[$i % @ip]);
	push @typed, qq({"id": $i, "ts": "$tv", "ts_raw": "$tv", "n": "$nv", "n_raw": "$nv", "ip": "$iv", "ip_raw": "$iv"});
}
my $k = @ts;
push @typed, qq({"id": $k, "ts": "now", "ts_raw": "now", "n": 12.75, "n_raw": "12.75", "ip": "8.8.4.4", "ip_raw": "8.8.4.4"});
$k++;
push @typed, qq({"id": $k, "ts": "now", "ts_raw": "now", "n": -3, "n_raw": "-3", "ip": "1.1.1.1", "ip_raw": "1.1.1.1"});
# bad values: each is rejected by the input function
my @typed_bad = (qq({"id": 100, "ts": "2024-02-30T00:00:00Z"}), qq({"id": 101, "ip": "1.2.3.256"}),
	qq({"id": 102, "n": "1.2.3"}), qq({"id": 103, "ts": "2024-01-01T00:00:00+16:00"}));
consume('typed', [ @typed, @typed_bad ]);
is($node->safe_psql('postgres', q{
SELECT count(*) FROM typed
 WHERE ts IS DISTINCT FROM (CASE WHEN lower(ts_raw) = 'now' THEN started ELSE ts_raw::timestamptz END)
    OR timestamptz_send(ts) IS DISTINCT FROM timestamptz_send(CASE WHEN lower(ts_raw) = 'now' THEN started ELSE ts_raw::timestamptz END)
    OR numeric_send(n) IS DISTINCT FROM numeric_send(n_raw::numeric)
    OR n::text IS DISTINCT FROM n_raw::numeric::text
    OR inet_send(ip) IS DISTINCT FROM inet_send(ip_raw::inet)
    OR ip::text IS DISTINCT FROM ip_raw::inet::text}),
	0, 'typed: shortcut values equal the input functions\' values');
is($node->safe_psql('postgres', q{SELECT count(*) FROM typed WHERE id < 100}),
	scalar(@typed), 'typed: every good value landed');
is($node->safe_psql('postgres',
		q{SELECT string_agg(sqlstate, ',' ORDER BY "offset") FROM fraudstream.rejects WHERE source = 'typed'}),
	'22008,22P02,22P02,22009', 'typed: bad values are rejected by the input functions');

$node->stop;
done_testing();
