# lib.sh: shell helpers shared by fraudstream's test, benchmark and demo
# scripts.  Source it; it defines functions and defaults, runs nothing.
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
