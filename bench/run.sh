#!/usr/bin/env bash
# Runs every benchmark in one go (under 10 minutes on 2 cores once built) and prints the table;
# the JSON lands in target/bench/results.json.
#
#   usage: bench/run.sh [allowance-bench flags, e.g. --max-secs 10]
#
# - Builds the release binaries (allowance-mint, the paid_api example, allowance-bench).
# - PostgreSQL: uses BENCH_POSTGRES_URL if set, else starts a throwaway cluster with
#   tests/interop/start-postgres.sh on BENCH_PG_PORT or the first free port from 55432 (stopped afterwards); without
#   one the PostgreSQL rows are reported as skipped.
# - Nutshell: the virtualenv target/nutshell-venv (tests/interop/install-nutshell.sh makes it;
#   BENCH_INSTALL_NUTSHELL=1 runs it here). Its mint needs `limits<5`, installed here if needed.
# - cdk-mintd: $CDK_MINTD_ROOT/bin/cdk-mintd, CDK_MINTD_ROOT defaulting to
#   ~/.local/share/allowance-bench/cdk-mintd (outside the repository, so it survives
#   `cargo clean` and is shared by clones). It is a second, long release build, so it is installed
#   here only with BENCH_INSTALL_CDK_MINTD=1:
#     PROTOC=$PWD/tools/protoc cargo install cdk-mintd --version 0.18.3 --locked \
#         --no-default-features --features fakewallet,sqlite --root "$CDK_MINTD_ROOT"
# Missing peers are reported as skipped with the reason; the bench never blocks on them.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { echo "bench/run.sh: $*" >&2; }

cargo build --release -p allowance-mint -p bench -p merchant --bins --example paid_api >&2

VENV="$ROOT/target/nutshell-venv"
if [ ! -x "$VENV/bin/python" ] && [ "${BENCH_INSTALL_NUTSHELL:-0}" = 1 ]; then
    tests/interop/install-nutshell.sh "$VENV" >&2 || log "Nutshell install failed; it will be skipped"
fi
if [ -x "$VENV/bin/python" ]; then
    # Nutshell 0.20.2's mint (slowapi) breaks with limits >= 5.
    if ! "$VENV/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(int(m.version("limits").split(".")[0]) >= 5)' 2>/dev/null; then
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check 'limits<5' >&2 ||
            log "could not install limits<5; Nutshell's mint may fail to start"
    fi
fi

CDK_MINTD_ROOT="${CDK_MINTD_ROOT:-$HOME/.local/share/allowance-bench/cdk-mintd}"
MINTD="$CDK_MINTD_ROOT/bin/cdk-mintd"
if [ ! -x "$MINTD" ] && [ "${BENCH_INSTALL_CDK_MINTD:-0}" = 1 ]; then
    PROTOC="$ROOT/tools/protoc" cargo install cdk-mintd --version 0.18.3 --locked \
        --no-default-features --features fakewallet,sqlite --root "$CDK_MINTD_ROOT" >&2 ||
        log "cdk-mintd install failed; it will be skipped"
fi

PG_DIR=""
if [ -z "${BENCH_POSTGRES_URL:-}" ]; then
    PG_DIR="$ROOT/target/bench/postgres"
    PG_PORT="${BENCH_PG_PORT:-}"
    if [ -z "$PG_PORT" ]; then
        # The first free port from 55432 (other clusters may run on this machine).
        for PG_PORT in $(seq 55432 55531); do
            (exec 3<>"/dev/tcp/127.0.0.1/$PG_PORT") 2>/dev/null || break
        done
    fi
    if URL="$(tests/interop/start-postgres.sh "$PG_DIR" "$PG_PORT")"; then
        export BENCH_POSTGRES_URL="$URL"
        trap 'tests/interop/stop-postgres.sh "$PG_DIR" >&2 || true' EXIT
    else
        log "no PostgreSQL; its rows will be skipped"
        PG_DIR=""
    fi
fi

target/release/allowance-bench --cdk-mintd "$MINTD" "$@"
