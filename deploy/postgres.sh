#!/usr/bin/env bash
# A private PostgreSQL cluster for the clearing ledger (development and tests), from Debian packages.
#
# The cluster is our own (initdb in a persistent data directory), not the distribution's `main`
# cluster: it listens on 127.0.0.1 only, on its own port, with its socket inside the data
# directory, and holds role and database `clearing` (password `clearing`, CREATEDB so tests can
# make throw-away databases). Run as root, the server runs as the `postgres` OS user.
#
# Usage: deploy/postgres.sh start|stop|status|url
#   start   install PostgreSQL if missing, create the cluster once, start it unless it runs,
#           wait until it accepts connections, create role and database once, print the URL
#   stop    fast shutdown; a no-op when it is not running
#   status  exit 0 when running and accepting connections, 3 when stopped, 1 otherwise
#   url     print the SQLAlchemy URL of the ledger database
# Only the URL goes to stdout, so `CLEARING_DB_URL=$(deploy/postgres.sh start)` works.
#
# Environment:
#   CLEARING_HOME   state root (default ~/.local/share/clearing); the cluster is in postgres/
#   PGPORT          port on 127.0.0.1 (default 5433, beside a distribution cluster on 5432)
#   PG_START_TIMEOUT  seconds to wait for the server (default 60)
set -euo pipefail

DATA="${CLEARING_HOME:-$HOME/.local/share/clearing}/postgres"
HOST=127.0.0.1
PORT="${PGPORT:-5433}"
START_TIMEOUT="${PG_START_TIMEOUT:-60}"
ROLE=clearing
PASSWORD=clearing
DATABASE=clearing

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}

say() {
    echo "postgres.sh: $*" >&2
}

# Serialises start/stop between concurrent callers (pytest workers, a shell).
take_lock() {
    mkdir -p "$(dirname "$DATA")"
    exec 9>"$DATA.lock"
    flock 9
}

# Debian's own binaries, named by full path: other programs called initdb or pg_ctl may sit
# earlier on PATH (e.g. in /usr/local/bin).
find_bindir() {
    local dir
    dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null |
        sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ] || return 1
    echo "$dir"
}

ensure_installed() {
    dpkg -s postgresql >/dev/null 2>&1 && find_bindir >/dev/null && return 0
    [ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed; as root run: apt-get install -y postgresql"
    say "installing PostgreSQL from Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq postgresql >&2 || die "apt-get install postgresql failed"
    find_bindir >/dev/null || die "postgresql is installed but no /usr/lib/postgresql/*/bin/pg_ctl was found"
}

# Runs a server program as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# The postgres user must be able to reach the data directory; a root home (/root) is mode 700.
# Grant search permission only (never read) on each parent that lacks it, with an ACL if possible.
ensure_reachable() {
    [ "$(id -u)" -eq 0 ] || return 0
    id postgres >/dev/null 2>&1 || die "there is no 'postgres' OS user; reinstall the postgresql package"
    local dir parents=() parent
    dir=$(dirname "$DATA")
    while [ "$dir" != "/" ]; do
        parents=("$dir" "${parents[@]}")
        dir=$(dirname "$dir")
    done
    for parent in "${parents[@]}"; do
        runuser -u postgres -- test -x "$parent" && continue
        if command -v setfacl >/dev/null && setfacl -m u:postgres:x "$parent" 2>/dev/null; then
            say "granted the postgres user search access to $parent (ACL)"
        else
            chmod o+x "$parent" || die "cannot make $parent searchable for the postgres user"
            say "made $parent searchable (o+x) so the postgres user can reach $DATA"
        fi
    done
}

ensure_cluster() {
    local bin=$1
    [ -f "$DATA/PG_VERSION" ] && return 0
    mkdir -p "$DATA"
    [ -z "$(ls -A "$DATA")" ] || die "$DATA is not empty and holds no cluster (no PG_VERSION); move it away"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DATA"
    chmod 700 "$DATA"
    say "creating a cluster in $DATA"
    as_owner "$bin/initdb" -D "$DATA" --no-locale --encoding=UTF8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$DATA.initdb.log" 2>&1 ||
        { tail -n 20 "$DATA.initdb.log" >&2; die "initdb failed; full output in $DATA.initdb.log"; }
    cat >>"$DATA/postgresql.conf" <<EOF

# Added by deploy/postgres.sh: a private cluster, reachable on 127.0.0.1 and by its own socket.
listen_addresses = '$HOST'
unix_socket_directories = '$DATA'
EOF
    # Only the loopback address, with a password; the socket (in the 0700 data directory) trusts.
    cat >"$DATA/pg_hba.conf" <<EOF
# Written by deploy/postgres.sh.
local   all   all                  trust
host    all   all   127.0.0.1/32   scram-sha-256
EOF
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DATA/pg_hba.conf"
    return 0
}

# The port of the running server (from postmaster.pid), else the configured one.
current_port() {
    local port
    port=$(sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true)
    echo "${port:-$PORT}"
}

running() {
    local bin=$1
    [ -f "$DATA/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

accepting() {
    local bin=$1
    "$bin/pg_isready" -q -h "$DATA" -p "$(current_port)" -d postgres -U postgres >/dev/null 2>&1 ||
        "$bin/pg_isready" -q -h "$DATA" -p "$(current_port)" -d postgres >/dev/null 2>&1
}

psql_admin() {
    local bin=$1
    shift
    local user=postgres
    [ "$(id -u)" -eq 0 ] || user=$(id -un)
    as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$DATA" -p "$(current_port)" -U "$user" \
        -d postgres "$@"
}

ensure_role_and_database() {
    local bin=$1
    if [ "$(psql_admin "$bin" -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]; then
        say "creating role $ROLE"
        psql_admin "$bin" -c "CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'" >/dev/null
    fi
    if [ "$(psql_admin "$bin" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]; then
        say "creating database $DATABASE"
        psql_admin "$bin" -c "CREATE DATABASE $DATABASE OWNER $ROLE" >/dev/null
    fi
}

url() {
    echo "postgresql+psycopg://$ROLE:$PASSWORD@$HOST:$(current_port)/$DATABASE"
}

cmd_start() {
    local bin deadline
    ensure_installed
    bin=$(find_bindir)
    take_lock
    ensure_reachable
    ensure_cluster "$bin"
    if ! running "$bin"; then
        if "$bin/pg_isready" -q -h "$HOST" -p "$PORT" >/dev/null 2>&1; then
            die "port $PORT on $HOST already answers but not from the cluster in $DATA; stop it or set PGPORT"
        fi
        say "starting the cluster in $DATA on $HOST:$PORT"
        # 9>&-: the server must not inherit the lock, or the next caller waits for ever.
        as_owner "$bin/pg_ctl" -D "$DATA" -l "$DATA/server.log" -o "-p $PORT" -w \
            -t "$START_TIMEOUT" start >/dev/null 2>&1 9>&- ||
            { tail -n 20 "$DATA/server.log" >&2 || true; die "the server did not start; see $DATA/server.log"; }
    fi
    deadline=$((SECONDS + START_TIMEOUT))
    until accepting "$bin"; do
        [ "$SECONDS" -lt "$deadline" ] ||
            die "the server in $DATA does not accept connections after ${START_TIMEOUT}s; see $DATA/server.log"
        sleep 0.3
    done
    ensure_role_and_database "$bin"
    say "running on $HOST:$(current_port); data: $DATA; log: $DATA/server.log"
    url
}

cmd_stop() {
    local bin
    bin=$(find_bindir) || die "PostgreSQL is not installed"
    take_lock
    if ! running "$bin"; then
        say "not running"
        return 0
    fi
    as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null ||
        die "pg_ctl stop failed; see $DATA/server.log"
    say "stopped"
}

cmd_status() {
    local bin
    bin=$(find_bindir) || { say "PostgreSQL is not installed"; return 3; }
    if running "$bin" && accepting "$bin"; then
        say "running on $HOST:$(current_port); data: $DATA; log: $DATA/server.log"
        url
    elif running "$bin"; then
        say "running but not accepting connections; see $DATA/server.log"
        return 1
    else
        say "not running (data: $DATA)"
        return 3
    fi
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
url) url ;;
*)
    echo "usage: $0 start|stop|status|url" >&2
    exit 2
    ;;
esac
