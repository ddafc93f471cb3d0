# lib.sh: shell helpers shared by fraudstream's test, benchmark and demo
# scripts: building and installing, and starting and stopping a private
# PostgreSQL cluster and Kafka broker.  Source it; it defines functions and
# defaults, runs nothing.  Callers set $top (the checkout) first.
#
# PostgreSQL refuses to run as root, so when these scripts are invoked as
# root every PostgreSQL command goes through as_pg_user, which runs it as
# an unprivileged account (FS_PG_USER, default "postgres").  The Kafka
# broker and the build run as the invoking user.

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$PG_CONFIG" ] || PG_CONFIG=pg_config
PG_BINDIR=${PG_BINDIR:-$("$PG_CONFIG" --bindir 2>/dev/null)}
PGXS_DIR=${PGXS_DIR:-$(dirname "$(dirname "$("$PG_CONFIG" --pgxs 2>/dev/null)")")}
FS_PG_USER=${FS_PG_USER:-postgres}

# Run a command as the account that owns PostgreSQL processes and files.
as_pg_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$FS_PG_USER" -- "$@"
    else
        "$@"
    fi
}

# Make a directory owned by that account.
mkdir_for_pg() {
    mkdir -p "$@"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$FS_PG_USER": "$@"
    fi
}

# Wait until something accepts TCP connections on 127.0.0.1:$1, at most $2
# seconds.
wait_for_port() {
    local port=$1 limit=${2:-60} i
    for ((i = 0; i < limit * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# Kill the process (and its process group) whose pid is stored in file $1,
# if it still runs, then remove the file.
kill_pidfile() {
    local file=$1 pid i
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$file"
}

# Settings of a run, each overridable from the environment:
#   W           state directory (FS_TEST_DIR), wiped at the start of a run
#   PGPORT      the private cluster's port (FS_TEST_PGPORT)
#   FS_KAFKA_PORT, FS_KAFKA_CONTROLLER_PORT   the broker's ports
#   FS_PG_STAGE install into a private copy of PostgreSQL there (default
#               for non-root users; root installs into the system)
fs_set_defaults() {
    W=${FS_TEST_DIR:-$1}
    PGPORT=${FS_TEST_PGPORT:-54329}
    export FS_KAFKA_PORT=${FS_KAFKA_PORT:-39092}
    export FS_KAFKA_CONTROLLER_PORT=${FS_KAFKA_CONTROLLER_PORT:-39093}
    if [ "$(id -u)" -eq 0 ]; then
        FS_PG_STAGE=${FS_PG_STAGE:-}
    else
        FS_PG_STAGE=${FS_PG_STAGE:-$W/pginst}
    fi
}

fs_start_kafka() {
    "$top/test/kafka/kafka-ctl.sh" fetch &&
        as_pg_user "$W/src/test/kafka/kafka-ctl.sh" start "$W/kafka"
}

fs_stop_servers() {
    fs_stop_postgres
    "$top/test/kafka/kafka-ctl.sh" stop "$W/kafka" >/dev/null 2>&1 || true
    # Clusters of Perl TAP tests interrupted before their own cleanup.
    pkill -u "$FS_PG_USER" -f "postgres -D $W/" 2>/dev/null || true
    return 0
}

fs_clean_state() {
    fs_stop_servers
    # A server just stopped may still be closing files: retry once.
    rm -rf "$W" 2>/dev/null || { sleep 1; rm -rf "$W"; }
    mkdir -p "$W"
    chmod 755 "$W"
}

# The servers and tests run from a copy of the sources and helpers that the
# PostgreSQL account can reach, whatever the permissions of the checkout.
fs_copy_sources() {
    mkdir_for_pg "$W/src" "$W/pg" "$W/regress" "$W/isolation" "$W/tap" "$W/kafka"
    cp -r "$top/sql" "$top/expected" "$top/test" "$top/fraudstream.control" \
        "$top/META.json" "$W/src/"
    mkdir -p "$W/src/bench/gen"
    cp "$top/bench/gen/fs_gen" "$W/src/bench/gen/"
    [ "$(id -u)" -ne 0 ] || chown -R "$FS_PG_USER": "$W/src"
}

# Build; install into the system's PostgreSQL, or, with FS_PG_STAGE set (the
# default for non-root users), into a private copy of the PostgreSQL 15
# installation there: its binaries find their share and lib directories
# relative to themselves, so the servers and tests of this run load this
# build whatever else is installed, and no root is needed.
fs_build_install() {
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
    make -C "$top/test/listen" -s || return 1
    make -C "$top/bench/gen" -s || return 1
}

# A fresh cluster in $W/pg, serving on a socket there, fraudstream
# preloaded, FS_PG_EXTRA_CONF appended to its configuration.  With
# FS_PG_TUNE_HOST=1 (the demo and the end-to-end benchmark) the host is
# tuned as for a production server while it runs: huge pages and steady
# writeback (both need root; fs_stop_postgres undoes them).
fs_start_postgres() {
    local huge=
    [ "${FS_PG_TUNE_HOST:-0}" != 1 ] || huge="huge_pages = try"
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
$huge
${FS_PG_EXTRA_CONF:-}
CONF
    [ -z "$huge" ] || { fs_reserve_huge_pages; fs_steady_writeback; }
    as_pg_user "$PG_BINDIR/pg_ctl" -D "$W/pg/data" -l "$W/pg/server.log" -w start >/dev/null ||
        { cat "$W/pg/server.log"; return 1; }
    export PGHOST="$W/pg/sock" PGPORT
}

# Shared memory of gigabytes (the demo's state) in huge pages: random
# reads of the state then miss the TLB far less.  As root, reserve as
# many huge pages as the cluster needs beyond those free (the count it was
# is kept in $W/pg/hugepages.orig, for fs_stop_postgres to put back).  The
# cluster asks for them with huge_pages = try: without them it starts all
# the same.
fs_reserve_huge_pages() {
    local need total free
    [ "$(id -u)" -eq 0 ] && [ -w /proc/sys/vm/nr_hugepages ] || return 0
    need=$(as_pg_user "$PG_BINDIR/postgres" -D "$W/pg/data" -C shared_memory_size_in_huge_pages 2>/dev/null) ||
        return 0
    total=$(awk '/^HugePages_Total:/ {print $2}' /proc/meminfo)
    free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
    [ "$need" -gt "$free" ] || return 0
    echo "$total" >"$W/pg/hugepages.orig"
    echo $((total + need - free)) >/proc/sys/vm/nr_hugepages
}

# Dirty pages reach the disk steadily rather than in bursts: as root,
# start background writeback at 64 MB of dirty data (FS_WRITEBACK_BYTES)
# instead of the default 10% of memory.  With fsync = off and a broker
# that never flushes its log, the default let gigabytes pile up and go
# out all at once every 30 s, stalling the servers' writes for seconds.
# The setting it replaces is kept in $W/pg/writeback.orig for
# fs_stop_postgres to put back.
fs_steady_writeback() {
    local f=/proc/sys/vm/dirty_background_bytes
    [ "$(id -u)" -eq 0 ] && [ -w "$f" ] || return 0
    echo "$(cat "$f") $(cat /proc/sys/vm/dirty_background_ratio)" >"$W/pg/writeback.orig"
    echo "${FS_WRITEBACK_BYTES:-67108864}" >"$f"
}

# Stop the cluster at once; give back the huge pages reserved for it and
# the writeback setting.
fs_stop_postgres() {
    if [ -f "$W/pg/data/postmaster.pid" ]; then
        as_pg_user "$PG_BINDIR/pg_ctl" -D "$W/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ -f "$W/pg/hugepages.orig" ]; then
        cat "$W/pg/hugepages.orig" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
        rm -f "$W/pg/hugepages.orig"
    fi
    if [ -f "$W/pg/writeback.orig" ]; then
        local bytes ratio
        read -r bytes ratio <"$W/pg/writeback.orig"
        # writing one of the two clears the other
        if [ "$bytes" -gt 0 ]; then
            echo "$bytes" >/proc/sys/vm/dirty_background_bytes 2>/dev/null || true
        else
            echo "$ratio" >/proc/sys/vm/dirty_background_ratio 2>/dev/null || true
        fi
        rm -f "$W/pg/writeback.orig"
    fi
}

