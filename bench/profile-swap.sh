#!/usr/bin/env bash
# Instruction counts of the mint's swap path under valgrind's callgrind (repeatable, unlike
# timings on a shared machine).
#
#   usage: bench/profile-swap.sh [MINT_BINARY [SWAPS]]
#          (defaults: target/release/allowance-mint, 200; run bench/run.sh or
#           `cargo build --release -p allowance-mint -p bench` first)
#
# Starts the mint under callgrind (default config: SQLite, fake Lightning), prepares SWAPS swaps
# of 1 input → 2 outputs with `allowance-bench --swaps-only --pause`, zeroes the counters, sends
# the swaps at concurrency 1, dumps, and prints the instructions per swap and the top functions
# (inclusive). Everything the process does between the zeroing and the dump counts: HTTP, JSON,
# signing and verifying on any task, SQLite.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MINT="${1:-target/release/allowance-mint}"
SWAPS="${2:-200}"
BENCH=target/release/allowance-bench
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
[ -x "$MINT" ] && [ -x "$BENCH" ] || { echo "build $MINT and $BENCH first" >&2; exit 1; }

DIR="$(mktemp -d "$ROOT/target/profile.XXXXXX")"
printf '[admin]\nenabled = false\n' > "$DIR/config.toml"
valgrind --tool=callgrind --callgrind-out-file="$DIR/callgrind.out" \
    "$MINT" --config "$DIR/config.toml" --data-dir "$DIR/data" --listen 127.0.0.1:0 \
    > "$DIR/mint.out" 2> "$DIR/mint.log" &
VG=$!
BENCH_PID=""
cleanup() {
    [ -n "$BENCH_PID" ] && kill "$BENCH_PID" 2>/dev/null || true
    kill "$VG" 2>/dev/null || true
    wait "$VG" 2>/dev/null || true
}
trap cleanup EXIT

wait_for() { # file pattern seconds
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "timed out waiting for '$2' in $1" >&2
    tail -n 20 "$1" >&2 || true
    return 1
}

wait_for "$DIR/mint.out" "listening on" 300
URL="$(sed -n 's/^listening on //p' "$DIR/mint.out" | head -n 1)"
mkfifo "$DIR/go"
"$BENCH" --swaps-only "$URL" --swaps "$SWAPS" --max-secs 600 --pause \
    < "$DIR/go" > "$DIR/bench.out" 2> "$DIR/bench.log" &
BENCH_PID=$!
exec 3> "$DIR/go"
wait_for "$DIR/bench.log" "prepared" 600
callgrind_control -z "$VG" > /dev/null
echo >&3
wait "$BENCH_PID"
BENCH_PID=""
callgrind_control -d "$VG" > /dev/null
cat "$DIR/bench.out"

DUMP="$(ls -t "$DIR"/callgrind.out* | head -n 1)"
TOTAL="$(callgrind_annotate "$DUMP" 2> /dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')"
echo "instructions per swap: $((TOTAL / SWAPS)) (total $TOTAL over $SWAPS swaps; dump $DUMP)"
callgrind_annotate --inclusive=yes "$DUMP" 2> /dev/null | sed -n '/^Ir/,$p' | head -n 45
