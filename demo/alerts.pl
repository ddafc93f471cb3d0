#!/usr/bin/perl
# alerts.pl: follow the file fs_listen writes (lines "<receive µs> TAB
# <payload>") and print one short line per alert, at most N lines per
# second (default 5); the alerts of a second beyond that are counted on one
# line instead.  Runs until killed.
#
#   alerts.pl FILE [N]
use strict;
use warnings;
use JSON::PP;
use POSIX qw(strftime);

my ($file, $max) = @ARGV;
$max //= 5;
open(my $in, "<", $file) or die "alerts.pl: cannot open $file: $!\n";
my $json = JSON::PP->new;
$| = 1;

my ($second, $shown, $skipped) = (-1, 0, 0);

sub flush_skipped
{
	printf "   ... and %d more alerts in that second\n", $skipped if $skipped;
	$skipped = 0;
}

for (;;)
{
	my $line = <$in>;
	if (!defined $line or $line !~ /\n\z/)
	{
		# At the end of the file (or of a line still being written): wait.
		seek($in, -length($line), 1) if defined $line;
		flush_skipped() if $skipped and time() > $second + 1;
		select(undef, undef, undef, 0.1);
		seek($in, 0, 1);
		next;
	}
	chomp $line;
	my ($us, $payload) = split /\t/, $line, 2;
	next unless defined $payload;
	my $a = eval { $json->decode($payload) } or next;
	my $s = int($us / 1e6);
	if ($s != $second)
	{
		flush_skipped();
		($second, $shown) = ($s, 0);
	}
	if ($shown >= $max)
	{
		$skipped++;
		next;
	}
	$shown++;
	my $e = $a->{entities} || {};
	my $rules = ref($a->{reasons}) eq 'HASH' && $a->{reasons}{rules} ? join(',', @{ $a->{reasons}{rules} }) : '';
	printf "ALERT %s.%03d #%-6s txn %-9s card %-8s merchant %-5s score %.2f  %s\n",
	  strftime('%H:%M:%S', localtime($s)), int($us / 1000) % 1000, $a->{alert_id}, $a->{row_key},
	  $e->{card_id} // '-', $e->{merchant_id} // '-', $a->{score}, $rules;
}
