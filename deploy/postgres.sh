#!/usr/bin/env bash
# A private PostgreSQL cluster for the clearing ledger (development and tests), from Debian packages.
#
# The cluster is our own (initdb in a persistent data directory), not the distribution's `main`
# cluster: it listens on 127.0.0.1 only, on its own port, with its socket inside the data
# directory. It holds database `clearing` and two login roles: `clearing_owner` owns the
# database and its schema and runs the migrations (CREATEDB, so tests can make throw-away
# databases); `clearing_app` is what the workers use and gets only row rights from the
# migrations (no DDL: it cannot drop or disable the ledger's triggers). Their passwords are
# generated on first start (32 letters and digits), kept in 0600 files and never printed.
#
# The cluster lives where the user running the server owns the whole path, so no directory the
# project does not own is ever made searchable: run as a normal user, the server runs as that
# user with its data under CLEARING_HOME; run as root (PostgreSQL refuses to run as root), the
# server runs as the `postgres` OS user with its data under that user's home
# (/var/lib/postgresql/clearing/<digest of the state directory>), and the rest stays under
# CLEARING_HOME, root's own.
#
# Usage: deploy/postgres.sh start|stop|status|url [app|owner]|url-file [app|owner]
#   start     install PostgreSQL if missing, create the cluster once, start it unless it runs,
#             wait until it accepts connections, create roles and database once (passwords
#             set from their files on every start), print the path of the app's URL file
#   stop      fast shutdown; a no-op when it is not running
#   status    exit 0 when running and accepting connections, 3 when stopped, 1 otherwise
#   url       print the SQLAlchemy URL of the ledger database, its password masked (for people)
#   url-file  print the path of the 0600 file holding the full URL (for programs:
#             CLEARING_DB_URL_FILE=$(deploy/postgres.sh url-file) and
#             CLEARING_DB_OWNER_URL_FILE=$(deploy/postgres.sh url-file owner))
# No password goes to stdout or stderr. A cluster made by the older version of this script
# (in ${CLEARING_HOME}/postgres, as root reached through a searchable home) is stopped, with a
# message, and left in place: it only held test databases; delete it when you like.
#
# Environment:
#   CLEARING_HOME   state root (default ~/.local/share/clearing); state in postgresql/
#   PGPORT          port on 127.0.0.1 (default 5433, beside a distribution cluster on 5432)
#   PG_START_TIMEOUT  seconds to wait for the server (default 60)
set -euo pipefail
# Everything it creates (state, secrets, URL files, the cluster) is its owner's only.
umask 077

HOME_DIR="${CLEARING_HOME:-$HOME/.local/share/clearing}"
STATE="$HOME_DIR/postgresql"
LEGACY_DATA="$HOME_DIR/postgres"
HOST=127.0.0.1
PORT="${PGPORT:-5433}"
START_TIMEOUT="${PG_START_TIMEOUT:-60}"
OWNER_ROLE=clearing_owner
APP_ROLE=clearing_app
DATABASE=clearing

# Root: the data under the postgres user's home, one cluster per state directory.
if [ "$(id -u)" -eq 0 ]; then
    PG_HOME=$(getent passwd postgres 2>/dev/null | cut -d: -f6 || true)
    PG_HOME="${PG_HOME:-/var/lib/postgresql}"
    mkdir -p "$HOME_DIR"
    KEY=$(printf '%s' "$(cd "$HOME_DIR" && pwd -P)/postgresql" | sha256sum | cut -c1-16)
    CLUSTERS="$PG_HOME/clearing"
    DATA="$CLUSTERS/$KEY/data"
else
    CLUSTERS=""
    DATA="$STATE/data"
fi

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}

say() {
    echo "postgres.sh: $*" >&2
}

# Serialises start/stop between concurrent callers (pytest workers, a shell).
take_lock() {
    mkdir -p "$STATE"
    exec 9>"$STATE/lock"
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

# Runs a program as the cluster's owner: `postgres` when we are root (with umask 077 too),
# else ourselves.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- sh -c 'cd / && umask 077 && exec "$@"' sh "$@"
    else
        "$@"
    fi
}

# Root: the postgres user's own directory for our clusters, made by that user, checked to be
# its own down from its home (which the package made).
ensure_cluster_root() {
    [ "$(id -u)" -eq 0 ] || return 0
    id postgres >/dev/null 2>&1 || die "there is no 'postgres' OS user; reinstall the postgresql package"
    [ "$(stat -c %U "$PG_HOME")" = postgres ] ||
        die "$PG_HOME is not owned by the postgres user; cannot place the cluster there"
    as_owner mkdir -p "$(dirname "$DATA")"
    local dir
    for dir in "$CLUSTERS" "$(dirname "$DATA")"; do
        [ "$(stat -c %U "$dir")" = postgres ] || die "$dir is not owned by the postgres user"
    done
}

# A cluster of the older script lives in $LEGACY_DATA; stop it if it runs (it holds the port).
stop_legacy() {
    local bin=$1 user
    [ -f "$LEGACY_DATA/PG_VERSION" ] && [ -f "$LEGACY_DATA/postmaster.pid" ] || return 0
    user=$(stat -c %U "$LEGACY_DATA")
    say "stopping the cluster an older deploy/postgres.sh made in $LEGACY_DATA" \
        "(left in place: it only held test databases; delete it when you like)"
    if [ "$(id -u)" -eq 0 ] && [ "$user" != root ]; then
        runuser -u "$user" -- "$bin/pg_ctl" -D "$LEGACY_DATA" -m fast -w stop >/dev/null 2>&1 ||
            say "could not stop it: run $bin/pg_ctl -D $LEGACY_DATA stop as $user"
    else
        "$bin/pg_ctl" -D "$LEGACY_DATA" -m fast -w stop >/dev/null 2>&1 ||
            say "could not stop it: run $bin/pg_ctl -D $LEGACY_DATA stop"
    fi
}

ensure_cluster() {
    local bin=$1
    as_owner test -f "$DATA/PG_VERSION" && return 0
    as_owner mkdir -p "$DATA"
    [ -z "$(as_owner ls -A "$DATA")" ] || die "$DATA is not empty and holds no cluster (no PG_VERSION); move it away"
    as_owner chmod 700 "$DATA"
    say "creating a cluster in $DATA"
    as_owner "$bin/initdb" -D "$DATA" --no-locale --encoding=UTF8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$STATE/initdb.log" 2>&1 ||
        { tail -n 20 "$STATE/initdb.log" >&2; die "initdb failed; full output in $STATE/initdb.log"; }
    as_owner sh -c 'cat >>"$1/postgresql.conf"' sh "$DATA" <<CONF

# Added by deploy/postgres.sh: a private cluster, reachable on 127.0.0.1 and by its own socket.
listen_addresses = '$HOST'
unix_socket_directories = '$DATA'
unix_socket_permissions = 0700
CONF
    # Only the loopback address, with a password; the socket (in the 0700 data directory) trusts.
    as_owner sh -c 'cat >"$1/pg_hba.conf"' sh "$DATA" <<CONF
# Written by deploy/postgres.sh.
local   all   all                  trust
host    all   all   127.0.0.1/32   scram-sha-256
CONF
    return 0
}

# The port of the running server (from postmaster.pid), else the configured one.
current_port() {
    local port
    port=$(as_owner sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true)
    echo "${port:-$PORT}"
}

running() {
    local bin=$1
    as_owner test -f "$DATA/PG_VERSION" 2>/dev/null &&
        as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

accepting() {
    local bin=$1
    as_owner "$bin/pg_isready" -q -h "$DATA" -p "$(current_port)" -d postgres >/dev/null 2>&1
}

# SQL on stdin, as the cluster's superuser over its socket: passwords never on a command line.
psql_admin() {
    local bin=$1
    shift
    local user=postgres
    [ "$(id -u)" -eq 0 ] || user=$(id -un)
    as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$DATA" -p "$(current_port)" -U "$user" "$@"
}

# Passwords: 32 random letters and digits (no quoting needed in SQL or URLs), created once.
ensure_password() {
    local file="$STATE/$1.password"
    [ -s "$file" ] && return 0
    python3 -c 'import secrets, string; a = string.ascii_letters + string.digits; print("".join(secrets.choice(a) for _ in range(32)))' >"$file.tmp"
    mv "$file.tmp" "$file"
}

password() {
    cat "$STATE/$1.password"
}

role_of() {
    case "$1" in
    app) echo "$APP_ROLE" ;;
    owner) echo "$OWNER_ROLE" ;;
    *) die "no such role '$1' (app or owner)" ;;
    esac
}

# The full URLs, for programs: 0600 files in the state directory.
write_url_files() {
    local which role
    for which in app owner; do
        role=$(role_of "$which")
        echo "postgresql+psycopg://$role:$(password "$which")@$HOST:$(current_port)/$DATABASE" \
            >"$STATE/$which.url.tmp"
        mv "$STATE/$which.url.tmp" "$STATE/$which.url"
    done
}

ensure_roles_and_database() {
    local bin=$1
    ensure_password owner
    ensure_password app
    # Both roles exist with the passwords of their files (set again on every start: deleting a
    # file and starting again rotates that password). The app role may log in, nothing more.
    psql_admin "$bin" -d postgres >/dev/null <<SQL
SELECT format('CREATE ROLE %I', r) FROM unnest(ARRAY['$OWNER_ROLE', '$APP_ROLE']) AS r
    WHERE r NOT IN (SELECT rolname FROM pg_roles) \gexec
ALTER ROLE $OWNER_ROLE LOGIN CREATEDB NOCREATEROLE NOSUPERUSER PASSWORD '$(password owner)';
ALTER ROLE $APP_ROLE LOGIN NOCREATEDB NOCREATEROLE NOSUPERUSER PASSWORD '$(password app)';
SELECT 'CREATE DATABASE $DATABASE OWNER $OWNER_ROLE'
    WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$DATABASE') \gexec
SQL
    # Only the owner creates anything in the database (PostgreSQL 15's default, made sure of).
    psql_admin "$bin" -d "$DATABASE" >/dev/null <<SQL
ALTER SCHEMA public OWNER TO $OWNER_ROLE;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE CREATE ON DATABASE $DATABASE FROM PUBLIC;
SQL
    write_url_files
}

url() {
    echo "postgresql+psycopg://$(role_of "$1"):***@$HOST:$(current_port)/$DATABASE"
}

url_file() {
    role_of "$1" >/dev/null
    echo "$STATE/$1.url"
}

cmd_start() {
    local bin deadline
    ensure_installed
    bin=$(find_bindir)
    take_lock
    ensure_cluster_root
    stop_legacy "$bin"
    ensure_cluster "$bin"
    if ! running "$bin"; then
        if "$bin/pg_isready" -q -h "$HOST" -p "$PORT" >/dev/null 2>&1; then
            die "port $PORT on $HOST already answers but not from the cluster in $DATA; stop it or set PGPORT"
        fi
        say "starting the cluster in $DATA on $HOST:$PORT"
        # 9>&-: the server must not inherit the lock, or the next caller waits for ever.
        as_owner "$bin/pg_ctl" -D "$DATA" -l "$DATA/server.log" -o "-p $PORT" -w \
            -t "$START_TIMEOUT" start >/dev/null 2>&1 9>&- ||
            { as_owner tail -n 20 "$DATA/server.log" >&2 || true; die "the server did not start; see $DATA/server.log"; }
    fi
    deadline=$((SECONDS + START_TIMEOUT))
    until accepting "$bin"; do
        [ "$SECONDS" -lt "$deadline" ] ||
            die "the server in $DATA does not accept connections after ${START_TIMEOUT}s; see $DATA/server.log"
        sleep 0.3
    done
    ensure_roles_and_database "$bin"
    say "running on $HOST:$(current_port) as $(url app); data: $DATA; log: $DATA/server.log"
    url_file app
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
        url app
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
url) url "${2:-app}" ;;
url-file) url_file "${2:-app}" ;;
*)
    echo "usage: $0 start|stop|status|url [app|owner]|url-file [app|owner]" >&2
    exit 2
    ;;
esac
