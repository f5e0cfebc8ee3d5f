#!/usr/bin/env bash
# Echo on the AWS code path, on one machine: `echoctl dev --faithful` (README, "Faithful local
# mode"). It starts dynalite for DynamoDB, the handler, fan-out and function Lambdas under
# `cargo lambda watch`, and the edge in front of them as API Gateway.
#
#   bash scripts/faithful.sh            # then open http://127.0.0.1:8080/
#
# Needs cargo-lambda (pip install cargo-lambda) and Node.js 20+ with npm (for dynalite). Further
# arguments go to `echoctl dev` (--port, --associations FILE, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run -q -p echoctl -- dev --faithful "$@"
