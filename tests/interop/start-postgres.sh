#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the e2e tests and prints its connection string.
#
#   usage: tests/interop/start-postgres.sh DIR [PORT]      (PORT defaults to 5432)
#
#   export ALLOWANCE_MINT_TEST_POSTGRES_URL="$(tests/interop/start-postgres.sh /tmp/allowance-pg 5432)"
#   cargo test -p e2e
#   tests/interop/stop-postgres.sh /tmp/allowance-pg
#
# The cluster lives in DIR/data, listens on 127.0.0.1:PORT only (no Unix socket), trusts every
# local connection (user `postgres`, no password) and runs with fsync off: for tests only.
# If no `initdb`/`pg_ctl` is on PATH or in /usr/lib/postgresql/*/bin, PostgreSQL is installed with
# apt-get (Debian/Ubuntu, as root or through sudo) without creating or starting a default cluster.
# As root, the cluster runs as the `postgres` user (created as `pgtest` if absent), since PostgreSQL
# refuses to run as root.
#
# Idempotent: an existing cluster in DIR is reused, a running one is left running. Only the
# connection string goes to stdout; progress goes to stderr.

set -euo pipefail

log() { echo "start-postgres: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 DIR [PORT]"
PORT="${2:-5432}"
case "$PORT" in
'' | *[!0-9]*) die "PORT must be a number, got '$PORT'" ;;
esac
mkdir -p "$1"
DIR="$(cd "$1" && pwd)"
DATA="$DIR/data"

# Finds the directory holding initdb and pg_ctl; prints nothing if there is none.
find_bindir() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return
    fi
    local d
    # Highest version first.
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return
        fi
    done
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "PostgreSQL is not installed and neither root nor sudo is available to install it"
    fi
}

install_postgres() {
    command -v apt-get >/dev/null 2>&1 ||
        die "no initdb/pg_ctl found and no apt-get to install them; install PostgreSQL and retry"
    log "installing PostgreSQL with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq >&2
    # postgresql-common first, so that installing the server creates (and starts) no default
    # cluster that would take port 5432.
    as_root apt-get install -y -qq --no-install-recommends postgresql-common >&2
    if [ -f /etc/postgresql-common/createcluster.conf ]; then
        as_root sed -i 's/^#\?\s*create_main_cluster.*/create_main_cluster = false/' \
            /etc/postgresql-common/createcluster.conf
    fi
    as_root apt-get install -y -qq --no-install-recommends postgresql >&2
}

BINDIR="$(find_bindir)"
if [ -z "$BINDIR" ]; then
    install_postgres
    BINDIR="$(find_bindir)"
    [ -n "$BINDIR" ] || die "PostgreSQL was installed but initdb/pg_ctl are still not found"
fi
log "using PostgreSQL binaries in $BINDIR ($("$BINDIR/pg_ctl" --version))"

# PostgreSQL refuses to run as root: pick (or create) an unprivileged user to own the cluster.
RUN_AS=""
if [ "$(id -u)" -eq 0 ]; then
    if id postgres >/dev/null 2>&1; then
        RUN_AS=postgres
    else
        id pgtest >/dev/null 2>&1 || useradd --system --create-home --shell /bin/sh pgtest
        RUN_AS=pgtest
    fi
    chown -R "$RUN_AS" "$DIR"
fi

# Runs a command as the cluster's owner.
as_owner() {
    if [ -z "$RUN_AS" ]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u "$RUN_AS" -- "$@"
    else
        su -s /bin/sh "$RUN_AS" -c "$(printf '%q ' "$@")"
    fi
}

as_owner test -w "$DIR" ||
    die "$DIR is not writable by user $RUN_AS (is a parent directory private? try a directory under /tmp)"

if [ ! -f "$DATA/PG_VERSION" ]; then
    log "initialising a cluster in $DATA"
    as_owner "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale >&2
    echo "include_if_exists = 'allowance-test.conf'" >>"$DATA/postgresql.conf"
fi
echo "$BINDIR" >"$DIR/bindir"
[ -z "$RUN_AS" ] || chown "$RUN_AS" "$DIR/bindir"

# Rewritten on every start, so a new PORT takes effect on the next start.
cat >"$DATA/allowance-test.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = ''
max_connections = 500
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
[ -z "$RUN_AS" ] || chown "$RUN_AS" "$DATA/allowance-test.conf"

if as_owner "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    RUNNING_PORT="$(sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true)"
    if [ "$RUNNING_PORT" = "$PORT" ]; then
        log "already running on 127.0.0.1:$PORT ($DATA)"
    else
        log "running on port '$RUNNING_PORT', restarting on $PORT"
        as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$DIR/postgres.log" -m fast -w -t 60 restart >&2 ||
            die "PostgreSQL did not restart (is port $PORT taken?); log: $DIR/postgres.log"
    fi
else
    log "starting on 127.0.0.1:$PORT (log: $DIR/postgres.log)"
    if ! as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$DIR/postgres.log" -w -t 60 start >&2; then
        tail -n 30 "$DIR/postgres.log" >&2 || true
        die "PostgreSQL did not start (is port $PORT taken?)"
    fi
fi

URL="host=127.0.0.1 port=$PORT user=postgres dbname=postgres"
ISREADY="$BINDIR/pg_isready"
[ -x "$ISREADY" ] || ISREADY="$(command -v pg_isready || true)"
if [ -n "$ISREADY" ]; then
    for _ in $(seq 1 60); do
        "$ISREADY" -q -h 127.0.0.1 -p "$PORT" -U postgres && break
        sleep 0.5
    done
    "$ISREADY" -h 127.0.0.1 -p "$PORT" -U postgres >&2 ||
        die "PostgreSQL is not accepting connections on 127.0.0.1:$PORT"
fi
log "ready: export ALLOWANCE_MINT_TEST_POSTGRES_URL=\"$URL\""
echo "$URL"
