#!/usr/bin/env bash
# Installs cashu-ts (the TypeScript Cashu wallet library) for the e2e interop tests
# `interop_cashu_ts`: `npm ci` in tests/interop/cashu-ts, from its pinned package-lock.json.
#
#   usage: tests/interop/install-cashu-ts.sh
#
# Needs Node >= 20 with npm; on Debian/Ubuntu, nodejs and npm are installed with apt-get when
# missing (as root or via sudo). cashu-ts 4 declares node >= 22.4 but runs on Node 20, which is
# what the test was written against; npm only warns about the engine.
#
# Idempotent: an existing node_modules with the pinned cashu-ts version is left as it is.

set -euo pipefail

CASHU_TS_VERSION=4.8.0

log() { echo "install-cashu-ts: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[ $# -eq 0 ] || die "usage: $0"
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/cashu-ts" && pwd)"

installed_version() {
    node -p 'require("./node_modules/@cashu/cashu-ts/package.json").version' 2>/dev/null || true
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "cannot install $* without root or sudo"
    fi
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "node and npm are required"
    log "installing nodejs and npm with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq >&2
    as_root apt-get install -y -qq --no-install-recommends nodejs npm >&2
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 20 ] || die "cashu-ts $CASHU_TS_VERSION needs Node >= 20; node is $(node --version)"

cd "$DIR"
if [ "$(installed_version)" = "$CASHU_TS_VERSION" ]; then
    log "cashu-ts $CASHU_TS_VERSION is already installed in $DIR/node_modules"
    exit 0
fi
log "npm ci in $DIR (node $(node --version), npm $(npm --version))"
npm ci --no-audit --no-fund --loglevel=error >&2
[ "$(installed_version)" = "$CASHU_TS_VERSION" ] || die "cashu-ts $CASHU_TS_VERSION did not install"
log "installed cashu-ts $CASHU_TS_VERSION in $DIR/node_modules"
