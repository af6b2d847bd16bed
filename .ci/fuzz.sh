#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each for a bounded time on the committed seed
# corpus (docs/fuzzing.md). New inputs go to $FUZZ_OUT/corpus/<target> (the committed corpus
# is only read), crashes to $FUZZ_OUT/artifacts/<target>; the script fails if any target crashed.
#
#   FUZZ_SECONDS   seconds per target (default 20; e.g. 600 for a longer run)
#   FUZZ_TARGETS   space-separated subset (default: every target)
#   FUZZ_OUT       output directory (default fuzz/target/fuzz-out)
#
# Works on stable Rust: no sanitizer (`-s none`, the code under test forbids `unsafe`), so no
# nightly `-Z` flag is needed. Debug assertions and overflow checks are on (fuzz/Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${FUZZ_SECONDS:-20}"
out="$(mkdir -p "${FUZZ_OUT:-target/fuzz-out}" && cd "${FUZZ_OUT:-target/fuzz-out}" && pwd)"
flags=(-O -s none --codegen-units 16)

# libfuzzer-sys compiles libFuzzer (C++).
if ! command -v c++ >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ >/dev/null
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
cargo fuzz --version
cargo fuzz build "${flags[@]}"

targets="${FUZZ_TARGETS:-$(cargo fuzz list | tr '\n' ' ')}"
failed=()
for t in $targets; do
  mkdir -p "$out/corpus/$t" "$out/artifacts/$t" "corpus/$t"
  echo "--- fuzz $t for ${secs}s"
  if ! cargo fuzz run "${flags[@]}" "$t" "$out/corpus/$t" "corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$out/artifacts/$t/" -print_final_stats=1 2>"$out/$t.log"; then
    failed+=("$t")
    tail -n 60 "$out/$t.log"
  else
    grep -E "^(stat::number_of_executed_units|Done)" "$out/$t.log" || tail -n 3 "$out/$t.log"
  fi
  echo "    new corpus inputs: $(find "$out/corpus/$t" -type f | wc -l) in $out/corpus/$t"
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]}" >&2
  for t in "${failed[@]}"; do
    for a in "$out/artifacts/$t"/*; do
      [ -f "$a" ] && echo "  reproduce: (cd fuzz && cargo fuzz run ${flags[*]} $t $a)" >&2
    done
  done
  exit 1
fi
echo "fuzz: no crash; keep new inputs with: docs/fuzzing.md, \"Keeping the corpus\""
