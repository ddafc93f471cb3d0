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

W=${FS_TEST_DIR:-/tmp/fraudstream-test}
PGPORT=${FS_TEST_PGPORT:-54329}
export FS_KAFKA_PORT=${FS_KAFKA_PORT:-39092}
export FS_KAFKA_CONTROLLER_PORT=${FS_KAFKA_CONTROLLER_PORT:-39093}
if [ "$(id -u)" -eq 0 ]; then
    FS_PG_STAGE=${FS_PG_STAGE:-}
else
    FS_PG_STAGE=${FS_PG_STAGE:-$W/pginst}
fi
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

stop_servers() {
    if [ -f "$W/pg/data/postmaster.pid" ]; then
        as_pg_user "$PG_BINDIR/pg_ctl" -D "$W/pg/data" -m immediate -w stop >/dev/null 2>&1
    fi
    "$top/test/kafka/kafka-ctl.sh" stop "$W/kafka" >/dev/null 2>&1
    # Clusters of Perl TAP tests interrupted before their own cleanup.
    pkill -u "$FS_PG_USER" -f "postgres -D $W/" 2>/dev/null
    return 0
}

finish() {
    local status=$?
    stop_servers
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

clean_state() {
    stop_servers
    rm -rf "$W"
    mkdir -p "$W"
    chmod 755 "$W"
}

# The servers and tests run from a copy of the sources and helpers that the
# PostgreSQL account can reach, whatever the permissions of the checkout.
copy_sources() {
    mkdir_for_pg "$W/src" "$W/pg" "$W/regress" "$W/isolation" "$W/tap" "$W/kafka"
    cp -r "$top/sql" "$top/expected" "$top/test" "$top/fraudstream.control" \
        "$top/META.json" "$W/src/"
    [ "$(id -u)" -ne 0 ] || chown -R "$FS_PG_USER": "$W/src"
}

# Install into the system's PostgreSQL, or, with FS_PG_STAGE set (the
# default for non-root users), into a private copy of the PostgreSQL 15
# installation there: its binaries find their share and lib directories
# relative to themselves, so the servers and tests of this run load this
# build whatever else is installed, and no root is needed.
build() {
    say "build and install"
    make -C "$top" -s all || return 1
    if [ -z "$FS_PG_STAGE" ]; then
        make -C "$top" -s install || return 1
    else
        local libdir sharedir
        libdir=$("$PG_CONFIG" --pkglibdir)
        sharedir=$("$PG_CONFIG" --sharedir)
        mkdir -p "$FS_PG_STAGE$(dirname "$libdir")" "$FS_PG_STAGE$(dirname "$sharedir")"
        cp -a "$(dirname "$libdir")/." "$FS_PG_STAGE$(dirname "$libdir")/"
        cp -a "$sharedir" "$FS_PG_STAGE$(dirname "$sharedir")/"
        make -C "$top" -s install DESTDIR="$FS_PG_STAGE" || return 1
        PG_BINDIR="$FS_PG_STAGE$PG_BINDIR"
        PGXS_DIR="$FS_PG_STAGE$PGXS_DIR"
    fi
    make -C "$top/test/mock" -s || return 1
}

start_postgres() {
    say "start PostgreSQL on port $PGPORT"
    as_pg_user "$PG_BINDIR/initdb" -D "$W/pg/data" -A trust --no-sync \
        -E UTF8 --locale=C >"$W/pg/initdb.log" 2>&1 || { cat "$W/pg/initdb.log"; return 1; }
    mkdir_for_pg "$W/pg/sock"
    cat >>"$W/pg/data/postgresql.conf" <<CONF
port = $PGPORT
listen_addresses = ''
unix_socket_directories = '$W/pg/sock'
shared_preload_libraries = 'fraudstream'
fsync = off
log_line_prefix = '%m [%p] %q%a '
log_min_messages = warning
CONF
    as_pg_user "$PG_BINDIR/pg_ctl" -D "$W/pg/data" -l "$W/pg/server.log" -w start >/dev/null ||
        { cat "$W/pg/server.log"; return 1; }
    export PGHOST="$W/pg/sock" PGPORT
}

# Count "... ok" and "... FAILED" lines of pg_regress-style output.
count_regress() {               # count_regress LAYER LOGFILE
    local ok bad
    ok=$(grep -cE '\.\.\. ok|^ok ' "$2")
    bad=$(grep -cE '\.\.\. FAILED|^not ok ' "$2")
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
    [ ! -s "$W/regress/regression.diffs" ] || cat "$W/regress/regression.diffs"
    count_regress pg_regress "$W/regress.log"
}

run_isolation() {
    local specs
    specs=$(cd "$top/test/isolation/specs" && ls ./*.spec | sed 's|^\./||; s|\.spec$||')
    say "isolation: $(echo $specs)"
    as_pg_user "$PGXS_DIR/test/isolation/pg_isolation_regress" \
        --inputdir="$W/src/test/isolation" --outputdir="$W/isolation" \
        --bindir="$PG_BINDIR" --host="$PGHOST" --port="$PGPORT" \
        --dbname=isolation_regression $specs 2>&1 | tee "$W/isolation.log"
    [ ! -s "$W/isolation/regression.diffs" ] || cat "$W/isolation/regression.diffs"
    count_regress isolation "$W/isolation.log"
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

clean_state
build || { record build 0 1; exit 1; }
copy_sources
say "start Kafka on 127.0.0.1:$FS_KAFKA_PORT"
"$top/test/kafka/kafka-ctl.sh" fetch &&
    as_pg_user "$W/src/test/kafka/kafka-ctl.sh" start "$W/kafka" || { record kafka 0 1; exit 1; }
start_postgres || { record postgres 0 1; exit 1; }

for layer in "${layers[@]}"; do
    case "$layer" in
        regress) run_regress ;;
        isolation) run_isolation ;;
        pgtap) run_pgtap ;;
        tap) run_tap ;;
        *) echo "unknown layer: $layer" >&2; record "$layer" 0 1 ;;
    esac
done
stop_servers
check_server_logs
