#!/usr/bin/env bash
# plot.sh: PNG plots of a benchmark run, with gnuplot (bench/run.sh calls
# it last).
#
#   plot.sh RESULTS_JSON RESULTS_DIR OUT_DIR
#
#   e2e_latency.png  distribution of the produce-to-NOTIFY latency of every
#                    alert, per rate (cumulative share against ms), from
#                    the e2e_latency_RATE.dat files of the e2e benchmark
#   throughput.png   each throughput next to the baseline measured in the
#                    same run, from the merged JSON of all benchmarks:
#                    Kafka ingest (worker against kcat), batch features
#                    (feature_vectors and feature_history against window
#                    aggregates, rows/s), end to end (rows ingested and
#                    scored against rows produced, per rate)
#
# A plot whose data is missing (a benchmark not run) is skipped.
set -euo pipefail

json=$1 dir=$2 out=$3
command -v gnuplot >/dev/null || { echo "plot: gnuplot not found (make deps installs it)" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Latency distribution.
plots=()
for f in $(ls "$dir"/e2e_latency_*.dat 2>/dev/null | sort -V); do
    [ -s "$f" ] || continue
    rate=$(basename "$f" .dat)
    rate=${rate#e2e_latency_}
    plots+=("'$f' using 1:(1.0) smooth cnormal with lines lw 2 title '$rate transactions/s'")
done
if [ ${#plots[@]} -gt 0 ]; then
    (IFS=,; gnuplot <<GP
set terminal pngcairo size 900,560 font ",10"
set termoption noenhanced
set output '$out/e2e_latency.png'
set title 'Produce to NOTIFY received: latency of every alert (fs_gen -> Kafka -> worker -> score trigger -> LISTEN)'
set xlabel 'latency (ms, log scale)'
set ylabel 'share of alerts at or below'
set logscale x
set grid
set key bottom right
set yrange [0:1]
set arrow from 50, graph 0 to 50, graph 1 nohead dashtype 2 lc rgb '#888888'
set label '50 ms target' at 50, graph 0.05 offset 0.5,0 tc rgb '#666666'
plot ${plots[*]}
GP
    )
    echo "plot: $out/e2e_latency.png"
fi

# Throughput against baselines: one row per comparison.
perl -MJSON::PP -e '
local $/;
open(my $fh, "<", $ARGV[0]) or die "cannot open $ARGV[0]: $!";
my $report = decode_json(<$fh>);
for my $b (@{ $report->{benchmarks} })
{
    my $r = $b->{results} || {};
    if ($b->{name} eq "kafka_ingest" && $r->{worker_msgs_per_s})
    {
        printf "\"Kafka ingest\\n(worker vs kcat)\"\t%d\t%d\n", $r->{worker_msgs_per_s}, $r->{kcat_msgs_per_s};
        printf "\"Kafka ingest\\n(worker vs COPY)\"\t%d\t%d\n", $r->{worker_msgs_per_s}, $r->{copy_rows_per_s}
          if $r->{copy_rows_per_s};
    }
    elsif ($b->{name} eq "features" && $r->{window_aggregates_ms})
    {
        my ($rows) = ($b->{description} =~ /\((\d+) rows/);
        next unless $rows;
        my $base = $rows / $r->{window_aggregates_ms} * 1000;
        for my $f (qw(feature_vectors feature_history))
        {
            printf "\"%s\\n(vs window aggregates)\"\t%d\t%d\n", $f, $rows / $r->{"${f}_ms"} * 1000, $base
              if $r->{"${f}_ms"};
        }
    }
    elsif ($b->{name} eq "e2e_latency")
    {
        for my $k (sort { ($a =~ /(\d+)$/)[0] <=> ($b =~ /(\d+)$/)[0] } grep { /^ingested_rows_per_s_\d+$/ } keys %$r)
        {
            my ($rate) = $k =~ /(\d+)$/;
            printf "\"end to end %d/s\\n(scored vs produced)\"\t%d\t%d\n", $rate, $r->{$k},
              $r->{"produced_rows_per_s_$rate"} // 0;
        }
    }
}' "$json" >"$tmp/throughput.dat"
if [ -s "$tmp/throughput.dat" ]; then
    gnuplot <<GP
set terminal pngcairo size 1000,560 font ",10"
set termoption noenhanced
set bmargin 5
set yrange [1000:*]
set output '$out/throughput.png'
set title 'Throughput against the baseline measured in the same run'
set ylabel 'rows or messages per second (log scale)'
set logscale y
set grid ytics
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top right
set xtics font ",9"
set datafile separator "\t"
plot '$tmp/throughput.dat' using 2:xtic(1) title 'fraudstream', '' using 3 title 'baseline'
GP
    echo "plot: $out/throughput.png"
fi
