#!/usr/bin/env bash
# Echo's benchmark suite: Echo, the socket.io + Redis baseline and the raw broadcaster ceiling,
# side by side on this machine; writes docs/benchmarks.md.
#
#   bash bench/run.sh            # the whole suite (about 8 minutes once built)
#   bash bench/run.sh --smoke    # a quick pass that checks everything runs (not written)
#
# Needs: a Rust toolchain, Node.js 20+ with npm, and redis-server (installed with apt when
# missing). The Lambda start-up and faithful-mode figures need cargo-lambda (skipped without it).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null 2>&1; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
fi
(cd bench/baseline && npm ci --no-audit --no-fund --loglevel=error)
cargo build --release -p echoctl -p echo-bench
# The build leaves hundreds of MB to write back; Echo's store syncs each commit, and its commits
# would wait behind them.
sync
extra=()
if ! cargo lambda --version >/dev/null 2>&1; then
  echo "cargo-lambda not found: skipping the Lambda start-up figures" >&2
  extra+=(--skip-startup)
fi
exec target/release/echo-bench suite "${extra[@]}" "$@"
