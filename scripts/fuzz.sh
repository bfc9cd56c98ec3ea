#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets/*.rs) for a bounded time over the committed
# seeds, without AddressSanitizer (the code under test has no `unsafe`; panics and failed
# assertions are what we look for). Fails on any crash.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]    # default 10; the test suite uses a few seconds
#
# The binaries are built with plain `cargo +nightly` and the flags cargo-fuzz would pass (cargo-fuzz
# itself is not needed). New corpus entries go to a scratch directory that is removed afterwards;
# a crash input is kept under $CACHE/fuzz-artifacts/<target>/ (never in the repository). Without
# the nightly toolchain it prints SKIP and exits 0.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SECONDS_PER_TARGET="${1:-10}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS_PER_TARGET]" >&2
  exit 2
fi
CACHE="${IDVERIFY_CACHE_DIR:-$HOME/.cache/idverify}"

if ! command -v rustup >/dev/null 2>&1 || ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "SKIP: fuzzing needs the nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi

HOST="$(rustup run nightly rustc -vV | sed -n 's/^host: //p')"
# Its own target dir under the cache (CI keeps it): these flags differ from the workspace build.
export CARGO_TARGET_DIR="$CACHE/fuzz-target"
# What `cargo fuzz build -s none` passes. `--target` keeps the flags off build scripts and
# proc macros.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"

echo "building fuzz targets (target dir $CARGO_TARGET_DIR)"
build_started=$SECONDS
if ! cargo +nightly build --manifest-path fuzz/Cargo.toml --locked --release --bins --target "$HOST"; then
  echo "fuzz build failed (if fuzz/Cargo.lock is out of date: (cd fuzz && cargo +nightly update --workspace))"
  exit 1
fi
echo "fuzz build: $((SECONDS - build_started)) s"
BIN="$CARGO_TARGET_DIR/$HOST/release"

SCRATCH="$(mktemp -d /tmp/idverify-fuzz.XXXXXX)"
trap 'rm -rf "$SCRATCH"' EXIT

failed=()
for source in fuzz/fuzz_targets/*.rs; do
  target="$(basename "$source" .rs)"
  seeds="fuzz/corpus/$target"
  [[ -d "$seeds" ]] || { echo "no seeds in $seeds" >&2; exit 1; }
  artifacts="$CACHE/fuzz-artifacts/$target"
  mkdir -p "$SCRATCH/$target" "$artifacts"
  log="$SCRATCH/$target.log"
  # New inputs go to the first directory (scratch); the seeds are only read.
  # -timeout: one input running over 10 s counts as a hang (a crash).
  if "$BIN/$target" "$SCRATCH/$target" "$seeds" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)"
    echo "fuzz $target: ok runs=${runs:-?} cov=${cov:-?} seconds=$SECONDS_PER_TARGET"
  else
    echo "fuzz $target: FAILED (last lines of its log follow; the input is under $artifacts/)"
    tail -n 40 "$log"
    echo "replay: $BIN/$target $artifacts/<crash-file>"
    failed+=("$target")
  fi
done

if ((${#failed[@]})); then
  echo "fuzzing found crashes in: ${failed[*]}"
  exit 1
fi
echo "fuzz: every target ran ${SECONDS_PER_TARGET}s without a crash"
