#!/usr/bin/env bash
# features.bench.sh: the feature engine's benchmarks (see bench/run.sh).
#
# 1. Batch path against PostgreSQL's window aggregates: count, sum, avg,
#    stddev and max over a 1-hour RANGE frame per card, on the same
#    1,000,000 rows (10,000 cards, about 10 events per card-hour), both
#    reading the table and returning every value, checked row by row;
#    both forms timed (feature_history's jsonb, feature_vectors' float8[]);
#    target >= 3x for the faster.
# 2. Online cost per event, in ns: inserting 200,000 events into a table
#    with 1, 10 or 50 features minus inserting them into the same table
#    without features (the feed), and computing the features of 20,000 new
#    events against full windows (row_features), at 10, 100 and 1,000
#    events per entity-hour.
set -euo pipefail
. "$FS_LIB"

BATCH_ROWS=${FS_BENCH_BATCH_ROWS:-1000000}
ONLINE_ROWS=${FS_BENCH_ONLINE_ROWS:-200000}
PROBES=${FS_BENCH_PROBES:-20000}

psql_q() { as_pg_user "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -At -d fs_bench "$@"; }

# Milliseconds a statement takes, measured inside the server.
time_ms() {
    psql_q -c "DO \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    EXECUTE \$q\$ $1 \$q\$;
    RAISE NOTICE 'ms=%', round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
END \$\$" 2>&1 | sed -n 's/.*ms=\([0-9.]*\).*/\1/p'
}

as_pg_user "$PG_BINDIR/psql" -X -q -d postgres -c 'DROP DATABASE IF EXISTS fs_bench' -c 'CREATE DATABASE fs_bench'
psql_q -c 'CREATE EXTENSION fraudstream'

echo "-- batch: $BATCH_ROWS rows, 10,000 cards"
psql_q <<SQL
CREATE TABLE hist (id bigint PRIMARY KEY, card text, ts timestamptz, amount float8);
INSERT INTO hist
SELECT i, 'card' || (hashint4(i::int) & 16383) % 10000,
       timestamptz '2026-01-01' + i * interval '36 milliseconds' + (i % 7) * interval '1 microsecond',
       (hashint4(i::int * 31) & 65535) / 100.0
  FROM generate_series(1, $BATCH_ROWS) i;
ANALYZE hist;
SELECT fraudstream.create_feature('b_count', 'hist', 'card', 'count', '1 hour');
SELECT fraudstream.create_feature('b_sum', 'hist', 'card', 'sum', '1 hour', 'amount');
SELECT fraudstream.create_feature('b_avg', 'hist', 'card', 'avg', '1 hour', 'amount');
SELECT fraudstream.create_feature('b_sd', 'hist', 'card', 'stddev', '1 hour', 'amount');
SELECT fraudstream.create_feature('b_max', 'hist', 'card', 'max', '1 hour', 'amount');
SQL

window_sql="SELECT id, count(*) OVER w AS c, sum(amount) OVER w AS s, avg(amount) OVER w AS a,
       stddev_samp(amount) OVER w AS sd, max(amount) OVER w AS mx
  FROM hist WINDOW w AS (PARTITION BY card ORDER BY ts
                         RANGE BETWEEN '1 hour' PRECEDING AND CURRENT ROW)"
batch_sql="SELECT key, features FROM fraudstream.feature_history('hist', 'id', 'ts')"
vector_sql="SELECT key, features FROM fraudstream.feature_vectors('hist', 'id', 'ts')"

# The same values, row by row (relative tolerance 1e-9), for both forms:
# jsonb by feature name, float8[] by the positions feature_names() gives.
check=$(psql_q -c "
CREATE TEMP TABLE w AS $window_sql;
CREATE TEMP TABLE b AS SELECT key::bigint AS id, features AS f FROM ($batch_sql) x;
CREATE TEMP TABLE p AS SELECT n AS name, i FROM unnest(fraudstream.feature_names('hist')) WITH ORDINALITY u(n, i);
CREATE TEMP TABLE v AS
SELECT key::bigint AS id, features[(SELECT i FROM p WHERE name = 'b_count')] AS c,
       features[(SELECT i FROM p WHERE name = 'b_sum')] AS s,
       features[(SELECT i FROM p WHERE name = 'b_avg')] AS a,
       features[(SELECT i FROM p WHERE name = 'b_sd')] AS sd,
       features[(SELECT i FROM p WHERE name = 'b_max')] AS mx
  FROM ($vector_sql) x;
ANALYZE w; ANALYZE b; ANALYZE v;
SELECT (SELECT count(*) = $BATCH_ROWS AND count(*) FILTER (WHERE
        w.c <> (f->>'b_count')::bigint
     OR abs(w.s - (f->>'b_sum')::float8) > 1e-9 * greatest(1, abs(w.s))
     OR abs(w.a - (f->>'b_avg')::float8) > 1e-9 * greatest(1, abs(w.a))
     OR coalesce(abs(w.sd - (f->>'b_sd')::float8) > 1e-9 * greatest(1, abs(w.sd)),
                 (w.sd IS NULL) <> (f->'b_sd' = 'null'))
     OR w.mx <> (f->>'b_max')::float8) = 0
          FROM w JOIN b USING (id))
   AND (SELECT count(*) = $BATCH_ROWS AND count(*) FILTER (WHERE
        w.c <> v.c
     OR abs(w.s - v.s) > 1e-9 * greatest(1, abs(w.s))
     OR abs(w.a - v.a) > 1e-9 * greatest(1, abs(w.a))
     OR coalesce(abs(w.sd - v.sd) > 1e-9 * greatest(1, abs(w.sd)), (w.sd IS NULL) <> (v.sd IS NULL))
     OR w.mx <> v.mx) = 0
          FROM w JOIN v USING (id))" | tail -1)
echo "same values (jsonb and float8[] forms): $check"

# Aggregate every output column, or the planner drops unused window functions.
# Each side is timed twice, interleaved, and keeps its best run; all run
# with the same settings (work_mem included: the function's result
# materializes into a tuplestore, the window aggregate's input into a sort).
window_run="SELECT sum(c), sum(s), sum(a), sum(sd), sum(mx) FROM ($window_sql) s"
batch_run="SELECT count(features) FROM ($batch_sql) s"
vector_run="SELECT count(features) FROM ($vector_sql) s"
best() { echo "$1 $2" | awk '{print ($1 < $2) ? $1 : $2}'; }
window_ms=$(time_ms "$window_run"); batch_ms=$(time_ms "$batch_run"); vector_ms=$(time_ms "$vector_run")
# best of three, the sides taking turns, so that a slow moment of a
# shared machine does not decide the ratio
for run in 2 3; do
    window_ms=$(best "$window_ms" "$(time_ms "$window_run")")
    batch_ms=$(best "$batch_ms" "$(time_ms "$batch_run")")
    vector_ms=$(best "$vector_ms" "$(time_ms "$vector_run")")
done
ratio=$(echo "$window_ms $batch_ms" | awk '{printf "%.2f", $1 / $2}')
vector_ratio=$(echo "$window_ms $vector_ms" | awk '{printf "%.2f", $1 / $2}')
echo "window aggregates: $window_ms ms; feature_history (jsonb): $batch_ms ms, speed-up ${ratio}x;" \
     "feature_vectors (float8[]): $vector_ms ms, speed-up ${vector_ratio}x"
if awk "BEGIN {exit !($vector_ratio >= $ratio)}"; then
    best_form=feature_vectors best_ratio=$vector_ratio
else
    best_form=feature_history best_ratio=$ratio
fi

echo "-- online: $ONLINE_ROWS events inserted, $PROBES computed, per density and feature count"
online_json=""
for density in 10 100 1000; do
    # entities so that each sees $density events per hour over the run
    entities=$(( ONLINE_ROWS / density ))
    [ "$entities" -ge 1 ] || entities=1
    for nfeat in 0 1 10 50; do
        psql_q <<SQL
DROP TABLE IF EXISTS ev CASCADE;
DELETE FROM fraudstream.feature_definitions;
CREATE TABLE ev (card text, ts timestamptz, amount float8, device text);
CREATE INDEX ON ev (card, ts);
SQL
        if [ "$nfeat" -gt 0 ]; then
            psql_q -c "
SELECT fraudstream.create_feature('f' || i, 'ev', 'card',
           (ARRAY['count','sum','avg','stddev','zscore','ratio_to_avg','since_last','min','max','distinct'])[1 + i % 10],
           (ARRAY['10 minutes','1 hour','1 hour','30 minutes','1 hour'])[1 + i % 5]::interval,
           CASE WHEN i % 10 IN (0, 6) THEN NULL WHEN i % 10 = 9 THEN 'device' ELSE 'amount' END)
  FROM generate_series(0, $nfeat - 1) i" >/dev/null
        fi
        # events spread over one hour of event time, in time order; the
        # best of three runs, each into an emptied table
        feed_ms=""
        for run in 1 2 3; do
            psql_q -c "TRUNCATE ev" >/dev/null
            ms=$(time_ms "INSERT INTO ev
SELECT 'card' || (i % $entities), timestamptz '2026-01-01' + (i::float8 / $ONLINE_ROWS) * interval '1 hour',
       (i % 1000) / 10.0, 'dev' || (i % 5)
  FROM generate_series(1, $ONLINE_ROWS) i")
            feed_ms=$(echo "${feed_ms:-$ms} $ms" | awk '{print ($1 < $2) ? $1 : $2}')
        done
        compute_ms=""
        if [ "$nfeat" -gt 0 ]; then
            compute_ms=$(time_ms "SELECT count(fraudstream.row_features('ev',
    ROW('card' || (i % $entities), timestamptz '2026-01-01 01:00' + i * interval '1 microsecond',
        (i % 1000) / 10.0, 'dev' || (i % 5))::ev))
  FROM generate_series(1, $PROBES) i")
        fi
        eval "feed_${density}_${nfeat}=$feed_ms"
        eval "compute_${density}_${nfeat}=${compute_ms:-0}"
    done
done

summary=""
for density in 10 100 1000; do
    base=$(eval echo "\$feed_${density}_0")
    for nfeat in 1 10 50; do
        f=$(eval echo "\$feed_${density}_${nfeat}")
        c=$(eval echo "\$compute_${density}_${nfeat}")
        feed_ns=$(echo "$f $base $ONLINE_ROWS" | awk '{printf "%.0f", ($1 - $2) * 1e6 / $3}')
        compute_ns=$(echo "$c $PROBES" | awk '{printf "%.0f", $1 * 1e6 / $2}')
        echo "density $density/h, $nfeat features: feed $feed_ns ns/event, compute $compute_ns ns/event"
        summary="$summary\"feed_ns_${density}_per_hour_${nfeat}_features\": $feed_ns, \"compute_ns_${density}_per_hour_${nfeat}_features\": $compute_ns, "
    done
done

met=$(echo "$best_ratio $check" | awk '{print ($1 >= 3 && $2 == "t") ? "true" : "false"}')
cat >"$FS_BENCH_OUT/features.json" <<JSON
{"name": "features",
 "description": "Batch path vs PostgreSQL window aggregates ($BATCH_ROWS rows, count/sum/avg/stddev/max over 1-hour RANGE frames; same values in both forms: $check): feature_history returns jsonb, feature_vectors float8[]; the target is met by the faster form ($best_form). Online cost per event: feed = insert with features minus insert without ($ONLINE_ROWS events), compute = row_features of $PROBES new events against full windows.",
 "results": {${summary}"window_aggregates_ms": $window_ms, "feature_history_ms": $batch_ms, "feature_vectors_ms": $vector_ms, "feature_history_speedup": $ratio, "feature_vectors_speedup": $vector_ratio},
 "targets": [{"metric": "batch speed-up over window aggregates ($best_form, the faster form; same values)", "target": ">= 3x", "reached": "${best_ratio}x", "met": $met}]}
JSON
