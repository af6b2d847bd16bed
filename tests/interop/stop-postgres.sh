#!/usr/bin/env bash
# Stops the cluster that tests/interop/start-postgres.sh started in DIR.
#
#   usage: tests/interop/stop-postgres.sh DIR [--remove]
#
# With --remove, DIR is deleted afterwards. Idempotent: a stopped or missing cluster is not an
# error.

set -euo pipefail

log() { echo "stop-postgres: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 DIR [--remove]"
REMOVE=false
if [ $# -eq 2 ]; then
    [ "$2" = "--remove" ] || die "usage: $0 DIR [--remove]"
    REMOVE=true
fi
if [ ! -d "$1" ]; then
    log "$1 does not exist: nothing to stop"
    exit 0
fi
DIR="$(cd "$1" && pwd)"
DATA="$DIR/data"

if [ -f "$DATA/PG_VERSION" ]; then
    BINDIR=""
    [ -f "$DIR/bindir" ] && BINDIR="$(cat "$DIR/bindir")"
    if [ -z "$BINDIR" ] || [ ! -x "$BINDIR/pg_ctl" ]; then
        if command -v pg_ctl >/dev/null 2>&1; then
            BINDIR="$(dirname "$(command -v pg_ctl)")"
        else
            BINDIR="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r | head -n 1)"
        fi
    fi
    [ -n "$BINDIR" ] && [ -x "$BINDIR/pg_ctl" ] || die "cannot find pg_ctl"

    OWNER="$(stat -c %U "$DATA")"
    as_owner() {
        if [ "$(id -un)" = "$OWNER" ]; then
            "$@"
        elif command -v runuser >/dev/null 2>&1; then
            runuser -u "$OWNER" -- "$@"
        else
            su -s /bin/sh "$OWNER" -c "$(printf '%q ' "$@")"
        fi
    }

    if as_owner "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
        log "stopping the cluster in $DATA"
        as_owner "$BINDIR/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >&2
    else
        log "the cluster in $DATA is not running"
    fi
else
    log "no cluster in $DATA"
fi

if $REMOVE; then
    rm -rf "$DIR"
    log "removed $DIR"
fi
