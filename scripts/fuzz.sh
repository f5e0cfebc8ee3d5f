#!/usr/bin/env bash
# Runs Echo's fuzz targets with cargo fuzz (libFuzzer, nightly): client frames, tokens and
# associations documents.
#
#   bash scripts/fuzz.sh                       # 15 s per target (the test script does this)
#   FUZZ_SECONDS=3600 bash scripts/fuzz.sh     # longer, on demand
#
# A crash stops the run and leaves its input in fuzz/artifacts/TARGET/. Copy that file into
# fuzz/regressions/TARGET/: core's `fuzz_regressions` test replays every file there on stable
# Rust, so the case stays fixed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
seconds="${FUZZ_SECONDS:-15}"
for target in frame token associations; do
  # New inputs go to the scratch corpus; the committed seeds are only read.
  mkdir -p "target/corpus/$target"
  echo "==> fuzzing $target for ${seconds} s"
  cargo +nightly fuzz run "$target" "target/corpus/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 2>&1 | tail -n 4
done
