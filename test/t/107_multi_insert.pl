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

$node->stop;
done_testing();
