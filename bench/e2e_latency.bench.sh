#!/usr/bin/env bash
# e2e_latency: end-to-end latency, from fs_gen producing a transaction to
# Kafka to a LISTEN client receiving the alert of that transaction, with
# the demo's setup (demo/setup.sql: transactions table and clickstream
# ring fed by two Kafka sources, its features and model, scoring
# attached), at 10,000, 25,000 and 50,000 transactions/s (fs_gen
# --event-time now --rate R, with its clickstream, customers R * 360), and
# at 2,000/s, a rate a shared 2-core machine sustains, for the latency of
# the path itself rather than of a backlog (FS_BENCH_E2E_RATES overrides
# the list).  Each transaction comes with about one clickstream event, so
# 25,000 transactions/s is about 50,000 events/s in all.
#
# The broker is warmed up first (see BROKER_WARMUP below).  Each rate runs
# against a fresh PostgreSQL cluster of its own, sized as
# the demo's (demo/lib.sh), on the bench run's Kafka broker with topics of
# its own.  Latency is the LISTEN client's receive time minus the
# transaction's produced_at_us (stamped by fs_gen as it hands the message
# to librdkafka), over every alert; throughput is the rows ingested and
# scored per second of the workers' batches.  The first
# FS_BENCH_E2E_WARMUP seconds (15) of production warm up the broker, the
# consumers and the state: percentiles over the alerts of transactions
# produced after them are reported as steady_*, next to those over every
# alert.  The machine's load (1-minute load average and the share of CPU
# busy during the run) is reported too: the generator, the broker and
# PostgreSQL share its cores.
#
# Target: p99 <= 50 ms at 50,000 events/s, reported in both readings:
# 50,000 transactions/s (and as many clickstream events), and 25,000
# transactions/s with their clickstream (events_per_s_R counts both).
# Writes e2e_latency.json and, per rate, the latencies of every alert in
# ms (e2e_latency_RATE.dat) for bench/plot.sh.
set -euo pipefail
. "$FS_LIB"

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RATES=${FS_BENCH_E2E_RATES:-2000 10000 25000 50000}
DURATION=${FS_BENCH_E2E_DURATION:-30}
WARMUP=${FS_BENCH_E2E_WARMUP:-15}
base=$(dirname "$FS_BENCH_OUT")/e2e
pgport=$((PGPORT + 1))

# CPU jiffies busy and total, from /proc/stat.
cpu_sample() {
    awk '/^cpu /{busy = $2 + $3 + $4 + $7 + $8; print busy, busy + $5 + $6}' /proc/stat
}

# A production broker is warm; this one was just started, and its JVM
# compiles its hot paths during the first minute or so of traffic, when it
# takes more than a core of this 2-core machine.  Before any measured rate,
# fs_gen streams FS_BENCH_E2E_BROKER_WARMUP seconds (30) at 10,000
# transactions/s into topics of their own, which kcat consumes.
BROKER_WARMUP=${FS_BENCH_E2E_BROKER_WARMUP:-30}
if [ "$BROKER_WARMUP" -gt 0 ]; then
    echo "-- warming the broker up: $BROKER_WARMUP s at 10,000 transactions/s"
    for t in e2e_warm_txn e2e_warm_clicks; do "$FS_KAFKA_CTL" topic "$FS_KAFKA_DIR" "$t" 4; done
    kcat -b "$FS_KAFKA_BOOTSTRAP" -G e2e_warm -q e2e_warm_txn e2e_warm_clicks >/dev/null 2>&1 &
    warm_consumer=$!
    "$top/bench/gen/fs_gen" --seed 2 --event-time now --rate 10000 --duration "$BROKER_WARMUP" \
        --customers 3600000 --output kafka --brokers "$FS_KAFKA_BOOTSTRAP" \
        --txn-topic e2e_warm_txn --event-topic e2e_warm_clicks 2>/dev/null
    kill "$warm_consumer" 2>/dev/null || true
    wait "$warm_consumer" 2>/dev/null || true
fi

results=""
targets=""
for rate in $RATES; do
    echo "-- $rate transactions/s for $DURATION s"
    W="$base/$rate"
    PGPORT=$pgport
    mkdir_for_pg "$W" "$W/pg" "$W/kafka"
    FS_KAFKA_PORT=${FS_KAFKA_BOOTSTRAP##*:}
    DEMO_TXN_TOPIC="e2e_txn_$rate" DEMO_EVENT_TOPIC="e2e_clicks_$rate"
    DEMO_KAFKA_CTL=$FS_KAFKA_CTL DEMO_KAFKA_DIR=$FS_KAFKA_DIR
    . "$top/demo/lib.sh"
    trap 'demo_stop_clients; fs_stop_postgres' EXIT
    demo_start_postgres
    mkdir_for_pg "$W/demo"
    demo_setup
    read -r busy0 total0 < <(cpu_sample)
    demo_stream "$rate" "$DURATION" "$((rate * 360))" 1 0
    read -r busy1 total1 < <(cpu_sample)
    load=$(cut -d' ' -f1 /proc/loadavg)
    busy=$(echo "100 * ($busy1 - $busy0) / ($total1 - $total0)" | bc -l)
    demo_psql -At -c "SELECT (r.received_us - t.produced_at_us) / 1000.0
                        FROM alert_rx r JOIN txn t ON t.txn_id = r.row_key::bigint" \
        >"$FS_BENCH_OUT/e2e_latency_$rate.dat"
    IFS='|' read -r n p50 p99 max sn sp50 sp99 smax rows ingest produced events < <(demo_psql -At -c "
        WITH l AS (SELECT (r.received_us - t.produced_at_us) / 1000.0 AS ms,
                          t.produced_at_us >= (SELECT min(produced_at_us) FROM txn) + $WARMUP * 1000000 AS steady
                     FROM alert_rx r JOIN txn t ON t.txn_id = r.row_key::bigint)
        SELECT (SELECT count(*) FROM l),
               (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM l),
               (SELECT round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM l),
               (SELECT round(max(ms), 1) FROM l),
               (SELECT count(*) FROM l WHERE steady),
               (SELECT coalesce(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1), 0) FROM l WHERE steady),
               (SELECT coalesce(round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), 0) FROM l WHERE steady),
               (SELECT coalesce(round(max(ms), 1), 0) FROM l WHERE steady),
               count(*),
               round(count(*) / nullif(extract(epoch FROM max(ingested_at) - min(ingested_at)), 0)),
               round(count(*) / nullif((max(produced_at_us) - min(produced_at_us)) / 1e6, 0)),
               round((count(*) + (SELECT count(*) FROM clicks))
                     / nullif((max(produced_at_us) - min(produced_at_us)) / 1e6, 0))
          FROM txn")
    printf 'rate %s: %s rows, ingested and scored %s rows/s (produced %s/s, %s events/s with the clickstream); %s alerts: latency p50 %s ms, p99 %s ms, max %s ms; after the first %s s: p50 %s ms, p99 %s ms, max %s ms; load %s, CPU busy %.0f%%\n' \
        "$rate" "$rows" "$ingest" "$produced" "$events" "$n" "$p50" "$p99" "$max" "$WARMUP" "$sp50" "$sp99" "$smax" "$load" "$busy"
    results+="\"p50_ms_$rate\": $p50, \"p99_ms_$rate\": $p99, \"max_ms_$rate\": $max, \"alerts_$rate\": $n,
             \"steady_p50_ms_$rate\": $sp50, \"steady_p99_ms_$rate\": $sp99, \"steady_max_ms_$rate\": $smax, \"steady_alerts_$rate\": $sn,
             \"rows_$rate\": $rows, \"ingested_rows_per_s_$rate\": $ingest, \"produced_rows_per_s_$rate\": $produced,
             \"events_per_s_$rate\": $events,
             \"load_avg_1m_$rate\": $load, \"cpu_busy_pct_$rate\": $(printf '%.0f' "$busy"),
             "
    case $rate in
        25000) reading="25,000 transactions/s and their clickstream: about 50,000 events/s" ;;
        50000) reading="50,000 transactions/s, and as many clickstream events" ;;
        *) reading= ;;
    esac
    if [ -n "$reading" ]; then
        met=$(echo "$p99 <= 50" | bc)
        targets+="${targets:+, }{\"metric\": \"p99_ms_$rate (produce to NOTIFY received, $reading)\", \"target\": \"<= 50\", \"reached\": $p99, \"met\": $([ "$met" = 1 ] && echo true || echo false)}"
    fi
    demo_stop_clients
    fs_stop_postgres
    trap - EXIT
done

cat >"$FS_BENCH_OUT/e2e_latency.json" <<JSON
{"name": "e2e_latency",
 "description": "produce to Kafka (fs_gen produced_at_us) to NOTIFY received by a LISTEN client (fs_listen), over every alert, with the demo's setup (two Kafka sources, demo features and model), after $BROKER_WARMUP s of traffic to warm the broker's JVM up, fs_gen --event-time now for $DURATION s per rate with its clickstream, customers = rate * 360; a fresh cluster per rate; steady_* over the alerts of transactions produced after the first $WARMUP s; events_per_s: transactions and clickstream events ingested per second of production; load and CPU share of the whole machine during the run ($(nproc) cores, shared by fs_gen, the broker and PostgreSQL)",
 "results": {${results}"duration_s": $DURATION},
 "targets": [$targets]}
JSON
