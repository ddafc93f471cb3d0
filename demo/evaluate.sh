#!/usr/bin/env bash
# evaluate.sh: the demo model's precision and recall per fraud pattern in
# steady state, offline (make demo-eval).
#
# The live demo runs 60 s from a cold start: customers have no history
# (amount spikes hit customers picked uniformly, whose usual tickets are
# unknown) and the patterns that unfold over minutes (account takeover,
# impossible travel) have not happened yet.  This script replays a longer
# stretch of the same kind of traffic instead, through the same path as
# the workers' inserts: fs_gen writes CSV in simulated time (EVAL_CUSTOMERS
# customers paying about 10 times an hour, as in the demo, EVAL_MERCHANTS
# merchants), both streams are loaded in event-time order in 20-second
# slices (clickstream first, each slice one transaction, as worker batches
# are), with the demo's tables, features and model (demo/tables.sql,
# features.sql, model.sql) and the clickstream in a plain table (a ring
# rotates by the wall clock, and this data is replayed faster than that).
# The first EVAL_WARMUP_MINUTES of event time only feed the features; the
# rest is scored, and demo/detection.sql reports on the scored rows.
#
# Settings: FS_TEST_DIR (default /tmp/fraudstream-demo-eval),
# FS_TEST_PGPORT (default 54338), EVAL_SEED (7), EVAL_CUSTOMERS (120000),
# EVAL_MERCHANTS (100), EVAL_TRANSACTIONS (720000),
# EVAL_WARMUP_MINUTES (45), EVAL_START (the simulated start in epoch
# seconds; default three hours ago, so the local hours of the customers,
# and with them the traffic, depend on when it runs: set it to compare
# runs).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$top/test/lib.sh"
export FS_TEST_DIR=${FS_TEST_DIR:-/tmp/fraudstream-demo-eval}
export FS_TEST_PGPORT=${FS_TEST_PGPORT:-54338}
fs_set_defaults /tmp/fraudstream-demo-eval
. "$top/demo/lib.sh"

SEED=${EVAL_SEED:-7}
CUSTOMERS=${EVAL_CUSTOMERS:-120000}
MERCHANTS=${EVAL_MERCHANTS:-100}
COUNT=${EVAL_TRANSACTIONS:-720000}
WARMUP=${EVAL_WARMUP_MINUTES:-45}
START=${EVAL_START:-$(($(date +%s) - 3 * 3600))}

trap fs_stop_servers EXIT
trap 'echo; echo "evaluate: interrupted"; exit 130' INT TERM

fs_clean_state
echo "== build and install"
fs_build_install
fs_copy_sources
echo "== start PostgreSQL (state in $W)"
demo_start_postgres
mkdir_for_pg "$W/demo" "$W/eval"
cp "$top"/demo/*.sql "$W/demo/"

echo "== generate $COUNT transactions: $CUSTOMERS customers, $MERCHANTS merchants, 10 per customer-hour (fs_gen seed $SEED, start $START)"
"$top/bench/gen/fs_gen" --seed "$SEED" --customers "$CUSTOMERS" --merchants "$MERCHANTS" \
    --txn-per-day 240 --start "$START" --count "$COUNT" \
    --output csv --txn-file "$W/eval/txn.csv" --event-file "$W/eval/clicks.csv" 2>&1 | sed -n '3p'
chmod 644 "$W"/eval/*.csv
[ "$(id -u)" -ne 0 ] || chown -R "$FS_PG_USER": "$W/demo" "$W/eval"

echo "== load in event-time order, scoring after $WARMUP minutes"
demo_psql >"$W/eval/load.log" <<SQL
CREATE EXTENSION fraudstream;
\\ir $W/demo/tables.sql
CREATE TABLE clicks (event_id bigint, ts timestamptz, account_id bigint, customer_id bigint,
    device_id bigint, ip inet, lat float8, lon float8, type text,
    is_fraud boolean, fraud_pattern text, produced_at_us bigint);
CREATE UNLOGGED TABLE txn_in (LIKE txn);
CREATE UNLOGGED TABLE clicks_in (LIKE clicks);
\\copy txn_in (txn_id, ts, card_id, account_id, customer_id, merchant_id, mcc, amount, currency, device_id, ip, lat, lon, channel, is_fraud, fraud_pattern, produced_at_us) FROM '$W/eval/txn.csv' CSV HEADER
\\copy clicks_in FROM '$W/eval/clicks.csv' CSV HEADER
CREATE INDEX ON txn_in (ts);
CREATE INDEX ON clicks_in (ts);
\\ir $W/demo/features.sql
\\ir $W/demo/model.sql
CREATE PROCEDURE replay(t0 timestamptz, tend timestamptz) LANGUAGE plpgsql AS \$\$
DECLARE t1 timestamptz;
BEGIN
    WHILE t0 <= tend LOOP
        t1 := t0 + interval '20 seconds';
        INSERT INTO clicks SELECT * FROM clicks_in WHERE ts >= t0 AND ts < t1 ORDER BY ts;
        COMMIT;
        INSERT INTO txn SELECT * FROM txn_in WHERE ts >= t0 AND ts < t1 ORDER BY ts;
        COMMIT;
        t0 := t1;
    END LOOP;
END \$\$;
SELECT min(ts) AS t0, min(ts) + interval '$WARMUP minutes' AS tw, max(ts) AS tend FROM txn_in \\gset
CALL replay(:'t0', :'tw'::timestamptz - interval '20 seconds');
SELECT fraudstream.attach('txn', key_column => 'txn_id', score_column => 'score',
                          model => 'demo', store_scores => false);
CALL replay(:'tw', :'tend');
SQL

echo "== steady state: $(demo_psql -At -c "SELECT count(*) || ' transactions scored, ' || min(ts)::time(0) || ' to ' || max(ts)::time(0) || ' of event time' FROM txn WHERE score IS NOT NULL")"
demo_psql -P footer=off -f "$W/demo/detection.sql"
