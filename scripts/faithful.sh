#!/usr/bin/env bash
# Echo on the AWS code path, on one machine:
#   - dynalite stands in for DynamoDB,
#   - `cargo lambda watch` runs the real handler, fan-out and function Lambdas (Lambda Invoke API),
#   - the local edge stands in for API Gateway: it sends $connect/$disconnect/message events to
#     the handler Lambdas and serves the @connections API they post back to with the AWS SDK.
#
#   bash scripts/faithful.sh            # then open http://127.0.0.1:8080/
#
# Needs cargo-lambda (pip install cargo-lambda) and Node.js 20+ with npm (for dynalite).
# Ports: ECHO_PORT (8080), ECHO_MANAGE_PORT (8081), ECHO_DYNAMO_PORT (8000), ECHO_LAMBDA_PORT
# (9000). The secrets live in ECHO_DATA_DIR (.echo, as for `echoctl dev`, so that `echoctl jwt`
# and `echoctl publish` sign with them), with the Lambdas' log, lambda.log; dynalite keeps its
# data in memory.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${ECHO_PORT:-8080}
MANAGE_PORT=${ECHO_MANAGE_PORT:-8081}
DYNAMO_PORT=${ECHO_DYNAMO_PORT:-8000}
LAMBDA_PORT=${ECHO_LAMBDA_PORT:-9000}
DATA_DIR=${ECHO_DATA_DIR:-.echo}
mkdir -p "$DATA_DIR"

random_hex() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
keep() { # keep FILE: print the file's value, creating it first
  [ -s "$1" ] || (umask 077 && random_hex > "$1")
  cat "$1"
}
export ECHO_JWT_SECRET=${ECHO_JWT_SECRET:-$(keep "$DATA_DIR/dev-secret")}
export ECHO_MANAGE_TOKEN=${ECHO_MANAGE_TOKEN:-$(keep "$DATA_DIR/manage-token")}

command -v cargo-lambda >/dev/null || { echo "cargo-lambda is needed: pip install cargo-lambda" >&2; exit 1; }
[ -x tests/services/node_modules/.bin/dynalite ] || (cd tests/services && npm ci --no-audit --no-fund --loglevel=error)

pids=()
cleanup() { for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

# What the Lambdas see, as template.yaml sets it on AWS, pointed at the local stand-ins. The
# management API takes the management token as the access key id.
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=$ECHO_MANAGE_TOKEN
# The edge checks the signatures of the Lambdas' posts with the management token as the secret.
export AWS_SECRET_ACCESS_KEY=$ECHO_MANAGE_TOKEN
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$DYNAMO_PORT
export AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:$LAMBDA_PORT
export ECHO_CONNECTIONS_TABLE=echo-connections
export ECHO_HISTORY_TABLE=echo-history
export ECHO_FANOUT_FUNCTION=fanout
export ECHO_RELAY_FUNCTION=message-handler
export ECHO_MANAGEMENT_ENDPOINT=http://127.0.0.1:$MANAGE_PORT/local
export ECHO_FUNCTION_PREFIX=
export ECHO_ASSOCIATIONS_CACHE_SECS=${ECHO_ASSOCIATIONS_CACHE_SECS:-1}
export ECHO_FANOUT_BATCH_SIZE=${ECHO_FANOUT_BATCH_SIZE:-1000}

echo "==> dynalite on 127.0.0.1:$DYNAMO_PORT"
setsid tests/services/node_modules/.bin/dynalite --port "$DYNAMO_PORT" >/dev/null 2>&1 &
pids+=($!)
until (exec 3<>"/dev/tcp/127.0.0.1/$DYNAMO_PORT") 2>/dev/null; do sleep 0.2; done

echo "==> tables and associations"
cargo run -q -p echo-aws --bin echo-aws-setup -- --create-tables --associations "${ECHO_ASSOCIATIONS:-apps/chat/associations.json}"

echo "==> cargo lambda watch on 127.0.0.1:$LAMBDA_PORT"
env_flags=()
for v in AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_LAMBDA \
         ECHO_JWT_SECRET ECHO_CONNECTIONS_TABLE ECHO_HISTORY_TABLE ECHO_FANOUT_FUNCTION ECHO_RELAY_FUNCTION ECHO_MANAGEMENT_ENDPOINT \
         ECHO_FUNCTION_PREFIX ECHO_ASSOCIATIONS_CACHE_SECS ECHO_FANOUT_BATCH_SIZE; do
  [ -n "${!v}" ] && env_flags+=(--env-var "$v=${!v}")
done
# Several instances per function: fan-out hands batches of a large channel to itself.
setsid cargo lambda watch --ignore-changes --concurrency 4 -P "$LAMBDA_PORT" "${env_flags[@]}" >"$DATA_DIR/lambda.log" 2>&1 &
watch_pid=$!
pids+=("$watch_pid")

echo "==> building the Lambdas (first run: a few minutes)"
# Each is invoked once with an event it takes and that changes nothing, so that none is built on
# a client's first request and the log holds no error of the script's own.
message='{"id":"warm","data":{"text":"warm"},"from":"warm","ts":0}'
warm_events=(
  'connect-handler {"sweep":{}}'
  'message-handler {"relay":{"app":"warm","origin":"warm","publish":[]}}'
  'fanout {"channel":"warm/warm","message":{"channel":"warm","seq":1,"id":"warm","data":null,"from":"warm","ts":0},"connections":[]}'
  'http-api {"version":"2.0","routeKey":"$default","rawPath":"/v1/connect-attempts/warm-0123456789abcdefghij","rawQueryString":"","headers":{},"requestContext":{"accountId":"local","apiId":"local","domainName":"localhost","domainPrefix":"localhost","http":{"method":"GET","path":"/v1/connect-attempts/warm-0123456789abcdefghij","protocol":"HTTP/1.1","sourceIp":"127.0.0.1","userAgent":"faithful.sh"},"requestId":"warm","routeKey":"$default","stage":"$default","time":"01/Jan/2026:00:00:00 +0000","timeEpoch":0},"isBase64Encoded":false}'
  "members {\"hook\":\"connect\",\"app\":\"warm\",\"user\":{\"sub\":\"warm\",\"claims\":{}},\"sourceIp\":\"127.0.0.1\"}"
  'ticker {"hook":"schedule","app":"warm","at":0}'
)
for f in angry emojify backwards robot profanity; do
  warm_events+=("$f {\"app\":\"warm\",\"channel\":\"warm\",\"message\":$message}")
done
for entry in "${warm_events[@]}"; do
  f=${entry%% *} event=${entry#* }
  # 000: nothing answered yet (cargo lambda watch holds the first invocation while it builds).
  until code=$(curl -s -o "$DATA_DIR/warm.out" -w '%{http_code}' --max-time 900 -X POST -d "$event" \
                 "http://127.0.0.1:$LAMBDA_PORT/2015-03-31/functions/$f/invocations") && [ "$code" != 000 ]; do
    kill -0 "$watch_pid" 2>/dev/null || { echo "cargo lambda watch stopped; see $DATA_DIR/lambda.log" >&2; tail -5 "$DATA_DIR/lambda.log" >&2; exit 1; }
    sleep 1
  done
  [ "$code" = 200 ] || echo "    $f answered its warm-up with HTTP $code: $(head -c 300 "$DATA_DIR/warm.out")" >&2
  echo "    $f ready"
done
if grep -q '"level":"ERROR"' "$DATA_DIR/lambda.log"; then
  echo "the Lambdas logged errors while warming up; see $DATA_DIR/lambda.log" >&2
fi

echo "==> edge (faithful mode)"
cargo run -q -p echoctl -- dev --port "$PORT" --manage-port "$MANAGE_PORT" --data-dir "$DATA_DIR" \
  --faithful "http://127.0.0.1:$LAMBDA_PORT" --concurrent-frames
