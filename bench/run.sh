#!/usr/bin/env bash
# run.sh: fraudstream's benchmarks (make bench).
#
# Builds and installs the extension, starts a private PostgreSQL cluster
# with fraudstream preloaded and a real Kafka broker (test/lib.sh, state in
# $FS_BENCH_DIR, default /tmp/fraudstream-bench), then runs every
# bench/*.bench.sh, or those named on the command line.
#
# A benchmark script runs with PGHOST, PGPORT, PG_BINDIR, FS_KAFKA_BOOTSTRAP,
# FS_KAFKA_CTL, FS_KAFKA_DIR and FS_BENCH_OUT in its environment and with
# test/lib.sh's as_pg_user available through $FS_LIB.  It prints what it
# measures and writes one JSON object to $FS_BENCH_OUT/NAME.json:
#   {"name": ..., "description": ..., "results": {metric: value, ...},
#    "targets": [{"metric": ..., "target": ..., "reached": value, "met": bool}]}
# Ratios compare against a baseline measured in the same run: no figure is
# compared with a number recorded elsewhere.  The merged results go to
# bench/results/latest.json and bench/results/latest.md, and bench/plot.sh
# draws PNG plots of them there.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$top/test/lib.sh"
FS_TEST_DIR=${FS_BENCH_DIR:-/tmp/fraudstream-bench}
fs_set_defaults /tmp/fraudstream-bench

trap fs_stop_servers EXIT
trap 'exit 130' INT TERM

if [ $# -gt 0 ]; then
    benches=()
    for name in "$@"; do benches+=("$top/bench/$name.bench.sh"); done
else
    benches=("$top"/bench/*.bench.sh)
fi
[ -e "${benches[0]}" ] || { echo "bench: no benchmarks found" >&2; exit 1; }

fs_clean_state
echo "== build and install"
fs_build_install
fs_copy_sources
cp -r "$top/bench" "$W/src/"
[ "$(id -u)" -ne 0 ] || chown -R "$FS_PG_USER": "$W/src/bench"
echo "== start Kafka and PostgreSQL"
fs_start_kafka
fs_start_postgres

out="$W/results"
mkdir_for_pg "$out"
export PGHOST PGPORT PG_BINDIR FS_BENCH_OUT="$out" FS_LIB="$top/test/lib.sh"
export FS_KAFKA_BOOTSTRAP="127.0.0.1:$FS_KAFKA_PORT"
export FS_KAFKA_CTL="$W/src/test/kafka/kafka-ctl.sh" FS_KAFKA_DIR="$W/kafka"

for bench in "${benches[@]}"; do
    echo
    echo "== $(basename "$bench" .bench.sh)"
    bash "$bench"
done

mkdir -p "$top/bench/results"
perl "$top/bench/report.pl" "$out" "$top/bench/results/latest.json" \
    "$top/bench/results/latest.md"
cat "$top/bench/results/latest.md"
# PNG plots: latency distribution, throughput against the baselines.
"$top/bench/plot.sh" "$top/bench/results/latest.json" "$out" "$top/bench/results" ||
    echo "bench: plots failed" >&2
