# Release metadata agrees with itself.  The version is defined once, in
# fraudstream.control; the Makefile derives the rest from it, and META.json
# (PGXN) must repeat it exactly and meet the PGXN meta spec's required keys.
use strict;
use warnings;
use File::Basename qw(dirname);
use JSON::PP;
use Test::More;

my $top = dirname(dirname(dirname(__FILE__)));    # test/t/.. /..

sub slurp
{
	my ($path) = @_;
	open(my $fh, '<', $path) or die "cannot open $path: $!";
	local $/;
	return <$fh>;
}

my $control = slurp("$top/fraudstream.control");
my ($version) = $control =~ /^default_version\s*=\s*'([^']+)'/m;
like($version, qr/^\d+\.\d+\.\d+$/, "fraudstream.control has a semantic default_version ($version)");
like($control, qr/^relocatable\s*=\s*false/m, 'the extension is not relocatable');
like($control, qr/^schema\s*=\s*fraudstream/m, 'the extension lives in schema fraudstream');

ok(-f "$top/sql/fraudstream--$version.sql", "install script sql/fraudstream--$version.sql exists");

my $meta = eval { decode_json(slurp("$top/META.json")) };
ok($meta, 'META.json is valid JSON') or diag($@);
for my $key (qw(name abstract version maintainer license provides meta-spec))
{
	ok(exists $meta->{$key}, "META.json has required key $key");
}
is($meta->{version}, $version, 'META.json version is the control version');
is($meta->{provides}{fraudstream}{version}, $version,
	'META.json provides.fraudstream.version is the control version');
is($meta->{provides}{fraudstream}{file}, "sql/fraudstream--$version.sql",
	'META.json provides.fraudstream.file is the install script');

done_testing();
