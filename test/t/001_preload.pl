# With and without shared_preload_libraries.
#
# Without preload, CREATE EXTENSION and the functions that need no shared
# state work; what needs shared memory fails with SQLSTATE 55000 and a hint
# that says how to fix it.  With preload the same calls succeed.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;

is($plain->safe_psql('postgres', 'CREATE EXTENSION fraudstream; SELECT fraudstream.version()'),
	$plain->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'fraudstream'"),
	'without preload: CREATE EXTENSION and version() work');

my ($ret, $stdout, $stderr) = $plain->psql('postgres',
	"\\set VERBOSITY verbose\nSELECT * FROM fraudstream.memory");
isnt($ret, 0, 'without preload: fraudstream.memory fails');
like($stderr, qr/ERROR:\s+55000: .*requires fraudstream to be loaded via shared_preload_libraries/,
	'without preload: the error names the cause, with SQLSTATE 55000');
like($stderr, qr/HINT:\s+Add 'fraudstream' to shared_preload_libraries in postgresql.conf and restart the server\./,
	'without preload: the hint says how to fix it');
$plain->stop;

my $preloaded = PostgreSQL::Test::Cluster->new('preloaded');
$preloaded->init;
$preloaded->append_conf('postgresql.conf', "shared_preload_libraries = 'fraudstream'");
$preloaded->start;
$preloaded->safe_psql('postgres', 'CREATE EXTENSION fraudstream');
cmp_ok($preloaded->safe_psql('postgres', 'SELECT sum(bytes) FROM fraudstream.memory'),
	'>', 0, 'with preload: fraudstream.memory reports reserved shared memory');

# An unknown fraudstream.* setting is refused once the prefix is reserved.
($ret, $stdout, $stderr) = $preloaded->psql('postgres', 'SET fraudstream.no_such_setting = 1');
like($stderr, qr/invalid configuration parameter name "fraudstream.no_such_setting"/,
	'with preload: the fraudstream. GUC prefix is reserved');
$preloaded->stop;

done_testing();
