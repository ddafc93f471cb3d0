#!/usr/bin/env bash
# run.sh: fraudstream's live demo (make demo).
#
# Builds and installs the extension, starts a private PostgreSQL cluster
# with fraudstream preloaded and a Kafka broker (test/lib.sh), creates the
# demo's tables, ring, Kafka sources, features and model (demo/setup.sql),
# attaches scoring to the transactions table, then streams fs_gen's
# transactions and clickstream to Kafka at DEMO_RATE transactions/s for
# DEMO_DURATION seconds while a LISTEN client (fs_listen) prints the alerts
# as they arrive.  At the end it prints a summary (demo/summary.sql):
# throughput, produce-to-NOTIFY latency, alerts, precision and recall per
# injected fraud pattern, the share of legitimate transactions alerted;
# then it stops both servers, also on failure or Ctrl-C.
#
# Settings (environment):
#   FS_TEST_DIR              state directory (default /tmp/fraudstream-demo),
#                            wiped at the start
#   FS_TEST_PGPORT           PostgreSQL port (default 54339, Unix socket only)
#   FS_KAFKA_PORT            Kafka broker port (default 39192)
#   FS_KAFKA_CONTROLLER_PORT Kafka controller port (default 39193)
#   DEMO_RATE                transactions per second (default 10000)
#   DEMO_DURATION            seconds of streaming (default 60)
#   DEMO_CUSTOMERS           customers (default DEMO_RATE * 360)
#   DEMO_SEED                fs_gen's seed (default 1)
#   DEMO_ALERT_LINES         alert lines printed per second at most (default 5)
#   DEMO_KEEP                1: leave the servers running at the end
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$top/test/lib.sh"
export FS_TEST_DIR=${FS_TEST_DIR:-/tmp/fraudstream-demo}
export FS_TEST_PGPORT=${FS_TEST_PGPORT:-54339}
export FS_KAFKA_PORT=${FS_KAFKA_PORT:-39192}
export FS_KAFKA_CONTROLLER_PORT=${FS_KAFKA_CONTROLLER_PORT:-39193}
fs_set_defaults /tmp/fraudstream-demo
. "$top/demo/lib.sh"

RATE=${DEMO_RATE:-10000}
DURATION=${DEMO_DURATION:-60}
CUSTOMERS=${DEMO_CUSTOMERS:-$((RATE * 360))}
SEED=${DEMO_SEED:-1}
LINES=${DEMO_ALERT_LINES:-5}

on_exit() {
    local rc=$?
    demo_stop_clients
    if [ "${DEMO_KEEP:-0}" = 1 ] && [ $rc -eq 0 ]; then
        echo "demo: servers left running (PGHOST=$W/pg/sock PGPORT=$PGPORT); stop with: FS_TEST_DIR=$W $0 stop"
    else
        fs_stop_servers
    fi
    [ $rc -eq 0 ] || echo "demo: failed (exit $rc); logs in $W" >&2
}

if [ "${1:-}" = stop ]; then
    fs_stop_servers
    exit 0
fi

trap on_exit EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

fs_clean_state
echo "== build and install"
fs_build_install
fs_copy_sources
echo "== start Kafka and PostgreSQL (state in $W)"
fs_start_kafka
demo_start_postgres
demo_setup
demo_stream "$RATE" "$DURATION" "$CUSTOMERS" "$SEED" "$LINES"
echo
echo "== summary"
demo_summary
