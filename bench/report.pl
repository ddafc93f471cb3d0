#!/usr/bin/perl
# report.pl: merge the JSON results of one benchmark run into
# bench/results/latest.json and a markdown table, latest.md.
#
# Usage: report.pl RESULTS_DIR OUT_JSON OUT_MD
use strict;
use warnings;
use JSON::PP;

my ($dir, $out_json, $out_md) = @ARGV;
die "usage: report.pl RESULTS_DIR OUT_JSON OUT_MD\n" unless $out_md;

my @runs;
for my $file (sort glob("$dir/*.json"))
{
	open(my $fh, '<', $file) or die "cannot open $file: $!";
	local $/;
	push @runs, decode_json(<$fh>);
}

my $json = JSON::PP->new->pretty->canonical;
my %report = (
	generated => scalar(gmtime()) . ' UTC',
	machine => { cores => `nproc` + 0 },
	benchmarks => \@runs);
open(my $jf, '>', $out_json) or die "cannot write $out_json: $!";
print $jf $json->encode(\%report);
close $jf;

open(my $md, '>', $out_md) or die "cannot write $out_md: $!";
print $md "# fraudstream benchmark results\n\nGenerated $report{generated}.\n\n";
print $md "| benchmark | metric | target | reached | met |\n|---|---|---|---|---|\n";
for my $run (@runs)
{
	for my $t (@{ $run->{targets} || [] })
	{
		printf $md "| %s | %s | %s | %s | %s |\n", $run->{name}, $t->{metric},
		  $t->{target}, $t->{reached}, ($t->{met} ? 'yes' : '**no**');
	}
}
for my $run (@runs)
{
	print $md "\n## $run->{name}\n\n$run->{description}\n\n| metric | value |\n|---|---|\n";
	for my $k (sort keys %{ $run->{results} || {} })
	{
		print $md "| $k | $run->{results}{$k} |\n";
	}
}
close $md;
