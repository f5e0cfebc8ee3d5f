#!/usr/bin/env bash
# Installs what Echo's tests need and runs every test: formatting, lints, unit, adapter and
# system tests (real WebSockets against a real edge), the chat demo in headless Chromium, and the
# JavaScript client's tests.
#
#   bash scripts/test-all.sh
#
# Needs: a Rust toolchain (rustup), Python 3 with pip and venv (cargo-lambda, AWS SAM CLI,
# cfn-lint), Node.js 20+ with npm,
# and Debian/Ubuntu's apt for Chromium (skipped when `chromium` is already on PATH or $CHROMIUM
# points at one).
set -euo pipefail
cd "$(dirname "$0")/.."

# One build from scratch: incremental compilation's caches would only cost disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# The whole run needs about 10 GB of disk (toolchains included; the test binaries alone take
# 4 GB). A linker that runs out of it dies with a bus error: say what there was, before and at a
# failure.
df -h . | sed 's/^/disk: /'
trap 'df -h . | sed "s/^/disk at the failure: /"' ERR

step "Installing test dependencies"
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
fi
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# cargo-lambda serves functions on the Lambda Invoke API for the edge to call, and `sam build`
# compiles the Lambdas with it. pip puts its binary in the interpreter's scripts directory, which
# need not be on PATH (pyenv, for one, shows it only after a rehash): put that directory there.
if ! cargo lambda --version >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    python3 -m pip install -q cargo-lambda
    export PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
  else
    python3 -m pip install -q --user cargo-lambda
    export PATH="$(python3 -m site --user-base)/bin:$PATH"
  fi
  cargo lambda --version >/dev/null || { echo "cargo-lambda was installed but is not on PATH" >&2; exit 1; }
fi
# `sam build` packages a project's Python functions with the Python of their Lambda runtime
# (python3.13); pyenv may hold it without putting it on PATH. Only that command is added, so
# python3 stays what it was.
if ! python3.13 --version >/dev/null 2>&1; then
  for d in "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.13*/bin; do
    if [ -x "$d/python3.13" ]; then
      mkdir -p target/tools/bin && ln -sf "$d/python3.13" target/tools/bin/python3.13
      export PATH="$PWD/target/tools/bin:$PATH"
      break
    fi
  done
  python3.13 --version >/dev/null 2>&1 || { echo "Python 3.13 is needed (sam build of Python functions): install it and put python3.13 on PATH" >&2; exit 1; }
fi
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
# redis-server and the socket.io baseline: the benchmark smoke runs Echo against them.
if ! command -v redis-server >/dev/null 2>&1; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
fi
(cd bench/baseline && npm ci --no-audit --no-fund --loglevel=error)
# promtool (Debian's prometheus package) checks the edge's /metrics as Prometheus reads them.
if ! command -v promtool >/dev/null 2>&1; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
# dynalite: a DynamoDB-compatible server the DynamoDB adapter is tested against.
(cd tests/services && npm ci --no-audit --no-fund --loglevel=error)
# The AWS SDK for JavaScript v3, driving the local @connections API as applications do (boto3
# comes with the SAM virtualenv below).
(cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "template.yaml: cfn-lint and sam validate --lint"
bash scripts/validate-template.sh

step "sam build: every Lambda for arm64 (provided.al2023)"
AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1} SAM_CLI_TELEMETRY=0 \
  "${ECHO_SAM_VENV:-.venv-sam}/bin/sam" build --template template.yaml --build-dir target/sam-build
# Nothing below uses the arm64 release build (0.8 GB): give its disk to the test binaries.
rm -rf target/aarch64-unknown-linux-gnu target/lambda target/sam-build

step "cargo test (with echoctl's aws feature: status and associations push against moto)"
"${ECHO_SAM_VENV:-.venv-sam}/bin/pip" install -q 'moto[server]'
# Every cargo command below builds the same feature set, so nothing is compiled twice.
ECHO_MOTO_VENV="${ECHO_SAM_VENV:-.venv-sam}" cargo test --workspace --all-features
# The Lambdas `cargo lambda watch` built for the faithful-mode tests (2 GB) are done with.
rm -rf target/lambda-watch
cargo build --workspace --all-features --bins

step "Chat demo in headless Chromium"
(cd tests/browser && ECHOCTL="$PWD/../../target/debug/echoctl" node --test)

step "JavaScript client against real edges"
(cd clients/js && ECHOCTL="$PWD/../../target/debug/echoctl" npm test)

step "socket.io baseline"
(cd bench/baseline && npm test)

step "Fuzzing: frames, tokens, associations (10 s each; longer with FUZZ_SECONDS)"
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" bash scripts/fuzz.sh

step "Benchmark smoke (a quick pass of the suite; figures come from bash bench/run.sh)"
target/debug/echo-bench suite --smoke
