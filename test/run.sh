#!/usr/bin/env bash
# run.sh: build, install and run every fraudstream test layer.
#
# Starts a private PostgreSQL 15 cluster with fraudstream preloaded and a
# real Apache Kafka broker (KRaft, single node, 127.0.0.1), runs
#   1. pg_regress        sql/*.sql against expected/*.out
#   2. isolation tester  test/isolation/specs/*.spec
#   3. pgTAP             test/pgtap/*.sql through pg_prove
#   4. Perl TAP          test/t/*.pl (PostgreSQL::Test::Cluster, Kafka)
# then checks every server log for crashes, failed assertions and leaks,
# stops both servers (also on failure or interruption) and ends with one
# summary line: "fraudstream: N passed, M failed".  Exit status 0 only if
# nothing failed.
#
# Works as root (CI): PostgreSQL then runs as $FS_PG_USER (postgres), and
# the extension is installed into the system's PostgreSQL.  As another
# user, it is installed into a private copy of PostgreSQL (FS_PG_STAGE).
# State lives in $FS_TEST_DIR (default /tmp/fraudstream-test), wiped at
# the start of each run, so an interrupted run never breaks the next one.
#
# Usage: test/run.sh [LAYER...]   LAYER is regress, isolation, pgtap, tap;
# the default is all of them.  FS_TAP_TESTS="test/t/003_x.pl ..." narrows
# the Perl TAP layer.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$top/test/lib.sh"

fs_set_defaults /tmp/fraudstream-test
layers=("$@")
[ ${#layers[@]} -gt 0 ] || layers=(regress isolation pgtap tap)

passed=0
failed=0
failures=()

say() { printf '\n== %s\n' "$*"; }

record() {                      # record LAYER PASSED FAILED
    passed=$((passed + $2))
    failed=$((failed + $3))
    [ "$3" -eq 0 ] || failures+=("$1: $3 failed")
}

finish() {
    local status=$?
    fs_stop_servers
    if [ ${#failures[@]} -gt 0 ]; then
        printf '\nFailed:\n'
        printf '  %s\n' "${failures[@]}"
        echo "Logs and outputs are kept in $W."
    fi
    echo "fraudstream: $passed passed, $failed failed"
    if [ "$failed" -gt 0 ] || [ "$status" -ne 0 ]; then
        exit 1
    fi
    exit 0
}

# Count "... ok" and "... FAILED" lines of pg_regress-style output; a run
# that failed without such a line (it could not even diff) counts as one
# failure.
count_regress() {               # count_regress LAYER LOGFILE STATUS
    local ok bad
    ok=$(grep -cE '\.\.\. ok|^ok ' "$2")
    bad=$(grep -cE '\.\.\. FAILED|^not ok ' "$2")
    if [ "$3" -ne 0 ] && [ "$bad" -eq 0 ]; then
        bad=1
    fi
    record "$1" "$ok" "$bad"
}

# Count test programs from a TAP harness summary (prove, pg_prove).
count_tap() {                   # count_tap LAYER LOGFILE STATUS
    local files bad
    files=$(sed -n 's/^Files=\([0-9]*\),.*/\1/p' "$2" | tail -n 1)
    bad=$(sed -n 's/^Failed \([0-9]*\)\/[0-9]* test programs.*/\1/p' "$2" | tail -n 1)
    files=${files:-0}
    bad=${bad:-0}
    # A harness that died before its summary still counts as a failure.
    if [ "$3" -ne 0 ] && [ "$bad" -eq 0 ]; then
        bad=1
    fi
    record "$1" $((files - bad > 0 ? files - bad : 0)) "$bad"
}

run_regress() {
    local tests
    tests=$(cd "$top/sql" && ls ./*.sql | grep -v -- '--' | sed 's|^\./||; s|\.sql$||')
    say "pg_regress: $(echo $tests)"
    as_pg_user "$PGXS_DIR/test/regress/pg_regress" --inputdir="$W/src" \
        --outputdir="$W/regress" --bindir="$PG_BINDIR" --host="$PGHOST" \
        --port="$PGPORT" --dbname=contrib_regression --load-extension=fraudstream \
        $tests 2>&1 | tee "$W/regress.log"
    local status=${PIPESTATUS[0]}
    [ ! -s "$W/regress/regression.diffs" ] || cat "$W/regress/regression.diffs"
    count_regress pg_regress "$W/regress.log" "$status"
}

run_isolation() {
    local specs
    specs=$(cd "$top/test/isolation/specs" && ls ./*.spec | sed 's|^\./||; s|\.spec$||')
    say "isolation: $(echo $specs)"
    as_pg_user "$PGXS_DIR/test/isolation/pg_isolation_regress" \
        --inputdir="$W/src/test/isolation" --outputdir="$W/isolation" \
        --bindir="$PG_BINDIR" --host="$PGHOST" --port="$PGPORT" \
        --dbname=isolation_regression $specs 2>&1 | tee "$W/isolation.log"
    local status=${PIPESTATUS[0]}
    [ ! -s "$W/isolation/regression.diffs" ] || cat "$W/isolation/regression.diffs"
    count_regress isolation "$W/isolation.log" "$status"
}

run_pgtap() {
    say "pgTAP"
    as_pg_user "$PG_BINDIR/psql" -X -q -d postgres -c 'CREATE DATABASE fraudstream_tap' &&
        as_pg_user "$PG_BINDIR/psql" -X -q -d fraudstream_tap -c 'CREATE EXTENSION pgtap'
    (cd "$W/src" && as_pg_user pg_prove --host "$PGHOST" --port "$PGPORT" \
        --dbname fraudstream_tap --ext .sql -r test/pgtap) 2>&1 | tee "$W/pgtap.log"
    count_tap pgTAP "$W/pgtap.log" "${PIPESTATUS[0]}"
}

run_tap() {
    local tests
    tests=${FS_TAP_TESTS:-$(cd "$top" && ls test/t/*.pl)}
    say "Perl TAP: $(echo $tests)"
    (cd "$W/src" && as_pg_user env PATH="$PG_BINDIR:$PATH" TESTDIR="$W/tap" \
        PG_REGRESS="$PGXS_DIR/test/regress/pg_regress" \
        FS_KAFKA_BOOTSTRAP="127.0.0.1:$FS_KAFKA_PORT" \
        FS_KAFKA_CTL="$W/src/test/kafka/kafka-ctl.sh" FS_KAFKA_DIR="$W/kafka" \
        FS_MOCK_BIN="$W/src/test/mock/fs_kafka_mock" \
        FS_GEN_BIN="$W/src/bench/gen/fs_gen" \
        FS_LISTEN_BIN="$W/src/test/listen/fs_listen" \
        prove -I "$PGXS_DIR/test/perl" -I "$W/src/test/t" $tests) 2>&1 | tee "$W/tap.log"
    count_tap "Perl TAP" "$W/tap.log" "${PIPESTATUS[0]}"
}

# The server logs of every cluster of the run must show no crash, failed
# assertion or leak warning.
check_server_logs() {
    local logs bad
    say "server logs"
    logs=$(find "$W" -name '*.log' \( -path '*/pg/*' -o -path '*/tmp_check/log/*' \) 2>/dev/null)
    bad=$(grep -HE 'PANIC|TRAP:|terminated by signal|was terminated|leaked|leak warning|still referenced' $logs 2>/dev/null |
        grep -v 'terminated by signal 9: Killed' )
    if [ -n "$bad" ]; then
        echo "$bad"
        record "server logs" 0 1
    else
        echo "no crash, assertion failure or leak warning in $(echo $logs | wc -w) logs"
        record "server logs" 1 0
    fi
}

trap finish EXIT
trap 'echo "interrupted"; exit 130' INT TERM

fs_clean_state
say "build and install"
fs_build_install || { record build 0 1; exit 1; }
fs_copy_sources
say "start Kafka on 127.0.0.1:$FS_KAFKA_PORT"
fs_start_kafka || { record kafka 0 1; exit 1; }
say "start PostgreSQL on port $PGPORT"
fs_start_postgres || { record postgres 0 1; exit 1; }

for layer in "${layers[@]}"; do
    case "$layer" in
        regress) run_regress ;;
        isolation) run_isolation ;;
        pgtap) run_pgtap ;;
        tap) run_tap ;;
        *) echo "unknown layer: $layer" >&2; record "$layer" 0 1 ;;
    esac
done
fs_stop_servers
check_server_logs
