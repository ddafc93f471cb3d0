# lib.sh: the steps of the live demo, shared by demo/run.sh and
# bench/e2e_latency.bench.sh.  Source it after test/lib.sh and
# fs_set_defaults; it defines functions, runs nothing.  Callers set $top.

DEMO_TXN_TOPIC=${DEMO_TXN_TOPIC:-fs_transactions}
DEMO_EVENT_TOPIC=${DEMO_EVENT_TOPIC:-fs_clickstream}
DEMO_PARTITIONS=${DEMO_PARTITIONS:-4}

demo_psql() {
    as_pg_user "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d postgres "$@"
}

# PostgreSQL sized for a few million entities of online state, in huge
# pages when they can be had (fs_reserve_huge_pages), on a host whose
# dirty pages are written back steadily (fs_steady_writeback).
demo_start_postgres() {
    FS_PG_TUNE_HOST=1 FS_PG_EXTRA_CONF="fraudstream.max_entities = ${DEMO_MAX_ENTITIES:-4000000}
fraudstream.state_memory = ${DEMO_STATE_MEMORY:-768MB}
shared_buffers = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min
${FS_PG_EXTRA_CONF:-}" fs_start_postgres
}

# Topics, tables, ring, sources, features, model; attach scoring.
demo_setup() {
    local ctl=${DEMO_KAFKA_CTL:-$W/src/test/kafka/kafka-ctl.sh} kdir=${DEMO_KAFKA_DIR:-$W/kafka}
    as_pg_user "$ctl" topic "$kdir" "$DEMO_TXN_TOPIC" "$DEMO_PARTITIONS"
    as_pg_user "$ctl" topic "$kdir" "$DEMO_EVENT_TOPIC" "$DEMO_PARTITIONS"
    mkdir_for_pg "$W/demo"
    cp "$top"/demo/*.sql "$W/demo/"
    [ "$(id -u)" -ne 0 ] || chown -R "$FS_PG_USER": "$W/demo"
    demo_psql -v brokers="127.0.0.1:$FS_KAFKA_PORT" -v txn_topic="$DEMO_TXN_TOPIC" \
        -v event_topic="$DEMO_EVENT_TOPIC" -f "$W/demo/setup.sql" >"$W/setup.log"
    # Both workers must have joined their groups before anything is produced.
    local i state
    for ((i = 0; i < 300; i++)); do
        state=$(demo_psql -At -c "SELECT string_agg(state, ',' ORDER BY source) FROM fraudstream.source_stats")
        [ "$state" = "running,running" ] && break
        sleep 0.2
    done
    echo "demo: sources $state; features: $(demo_psql -At -c "SELECT count(*) FROM fraudstream.features"); model: $(demo_psql -At -c "SELECT name || ' v' || version || ' (' || kind || ', threshold ' || threshold || ')' FROM fraudstream.models WHERE active")"
}

DEMO_PIDS=()

demo_stop_clients() {
    local pid
    for pid in "${DEMO_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${DEMO_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    DEMO_PIDS=()
}

# Sum of the messages the two sources consumed so far.
demo_consumed() {
    demo_psql -At -c "SELECT coalesce(sum(messages), 0) FROM fraudstream.source_stats"
}

# demo_stream RATE DURATION CUSTOMERS SEED LINES
# Listen, stream, print alerts (at most LINES a second; 0: none) and a
# status line every 10 s, wait until both sources consumed everything,
# then load the listener's receive times into alert_rx.
demo_stream() {
    local rate=$1 duration=$2 customers=$3 seed=$4 lines=$5 i sent consumed extra=()
    local conninfo="host=$W/pg/sock port=$PGPORT dbname=postgres user=$FS_PG_USER"
    rm -f "$W/listen.ready"
    "$top/test/listen/fs_listen" --idle 86400 --ready "$W/listen.ready" "$conninfo" \
        fraudstream_alerts >"$W/alerts.tsv" 2>"$W/listen.log" &
    DEMO_PIDS+=($!)
    for ((i = 0; i < 100; i++)); do
        [ -e "$W/listen.ready" ] && break
        sleep 0.1
    done
    [ -e "$W/listen.ready" ] || { echo "demo: fs_listen did not start" >&2; cat "$W/listen.log" >&2; return 1; }
    if [ "$lines" -gt 0 ]; then
        perl "$top/demo/alerts.pl" "$W/alerts.tsv" "$lines" &
        DEMO_PIDS+=($!)
    fi
    [ "${DEMO_NO_EVENTS:-0}" = 1 ] && extra+=(--no-events)
    echo "== stream: $rate transactions/s for ${duration} s, $customers customers (fs_gen seed $seed)"
    "$top/bench/gen/fs_gen" --seed "$seed" --event-time now --rate "$rate" --duration "$duration" \
        --customers "$customers" --output kafka --brokers "127.0.0.1:$FS_KAFKA_PORT" \
        --txn-topic "$DEMO_TXN_TOPIC" --event-topic "$DEMO_EVENT_TOPIC" "${extra[@]}" \
        2>"$W/fs_gen.log" &
    local gen=$!
    DEMO_PIDS+=($gen)
    demo_status "$gen" &
    local status=$!
    DEMO_PIDS+=($status)
    wait "$gen" || { echo "demo: fs_gen failed:" >&2; cat "$W/fs_gen.log" >&2; return 1; }
    kill "$status" 2>/dev/null || true
    sed -n 's/^fs_gen: /fs_gen: /p' "$W/fs_gen.log"
    sent=$(sed -n 's/.*sent_transactions=\([0-9]*\) sent_events=\([0-9]*\).*/\1 \2/p' "$W/fs_gen.log" |
        awk '{print $1 + $2}')
    # The workers drain what is left in Kafka.
    for ((i = 0; i < 1200; i++)); do
        consumed=$(demo_consumed)
        [ "$consumed" -ge "$sent" ] && break
        sleep 0.1
    done
    [ "$consumed" -ge "$sent" ] || echo "demo: only $consumed of $sent messages consumed" >&2
    # The last notifications are on their way.
    sleep 1
    demo_stop_clients
    perl -ne 'print "$2\t$1\n" if /^(\d+)\t.*"row_key": *"([^"]*)"/' "$W/alerts.tsv" >"$W/alert_rx.tsv"
    chmod 644 "$W/alert_rx.tsv"
    demo_psql -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS alert_rx" \
        -c "CREATE TABLE alert_rx (row_key text, received_us bigint)" \
        -c "\\copy alert_rx FROM '$W/alert_rx.tsv'"
}

# A status line every 10 s while fs_gen ($1) runs.
demo_status() {
    local gen=$1 t=0 line
    while kill -0 "$gen" 2>/dev/null; do
        sleep 10
        t=$((t + 10))
        line=$(demo_psql -At -F ' ' -c "SELECT
            (SELECT messages FROM fraudstream.source_stats WHERE source = 'transactions'),
            (SELECT messages FROM fraudstream.source_stats WHERE source = 'clickstream'),
            (SELECT coalesce(sum(lag), 0) FROM fraudstream.source_stats),
            (SELECT coalesce(max(id), 0) FROM fraudstream.alerts)" 2>/dev/null) || continue
        set -- $line
        printf -- '-- %3d s: %s transactions and %s clickstream events ingested, lag %s, %s alerts\n' \
            "$t" "$1" "$2" "$3" "$4"
    done
}

demo_summary() {
    demo_psql -P footer=off -f "$W/demo/summary.sql"
}
