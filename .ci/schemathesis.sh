#!/usr/bin/env bash
# API fuzzing with schemathesis against the real server: the published /openapi.json,
# all checks, the stateful phase (links between operations), once with an admin key,
# once with a read key and once with a proxy key. Fails on any server error, any answer
# the document does not describe, any ignored or bypassed authorisation.
#
# Runs on its own (bash .ci/schemathesis.sh) or from .ci/run. Bounded: a fixed seed, a
# fixed number of examples per operation and a hard timeout per run.
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION=4.32.5
# Per-run examples and hard time limits (seconds); the whole step stays under 4 minutes
# on 2 cores.
EXAMPLES=${TW_FUZZ_EXAMPLES:-20}
SEED=${TW_FUZZ_SEED:-20261130}
RUN_TIMEOUT=${TW_FUZZ_RUN_TIMEOUT:-120}

target=${CARGO_TARGET_DIR:-target}
venv="$target/schemathesis-$ST_VERSION"
if [ ! -x "$venv/bin/st" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
"$venv/bin/st" --version

cargo build -j 2 --bin tokenwarden --locked
bin="$target/debug/tokenwarden"

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "schemathesis: $1" >&2
  echo "--- last 60 lines of the server's log ($work/server.log) ---" >&2
  tail -n 60 "$work/server.log" >&2 || true
  exit 1
}

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# --dev: a fresh SQLite file in a temporary directory, the demo OAuth provider (so the
# proxy reaches a real API and a real connect flow can run), an admin key in its banner.
# A master key, so that managed vaults can be created too.
master_key=$("$venv/bin/python" -c 'import secrets; print(secrets.token_hex(32))')
NO_COLOR=1 TOKENWARDEN_LISTEN="127.0.0.1:$port" TOKENWARDEN_LOG=info TOKENWARDEN_MASTER_KEY="$master_key" \
  "$bin" serve --dev >"$work/banner.txt" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 100); do
  if grep -q "admin key" "$work/banner.txt" 2>/dev/null && curl -fsS "$base/readyz" >/dev/null 2>&1; then
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || fail "the server exited at start"
  sleep 0.2
done
curl -fsS "$base/readyz" >/dev/null || fail "the server did not become ready"

"$venv/bin/python" .ci/schemathesis/setup.py "$base" "$work/banner.txt" >"$work/keys.env" \
  || fail "setting up keys and connections failed"
# shellcheck source=/dev/null
source "$work/keys.env"
export TW_EMAIL TW_PASSWORD

failed=()
fuzz() {
  local who=$1 key=$2
  shift 2
  echo "--- schemathesis with the $who key"
  local start
  start=$(date +%s)
  if ! TW_API_KEY="$key" timeout --kill-after=10 "$RUN_TIMEOUT" \
    "$venv/bin/st" --config-file .ci/schemathesis/schemathesis.toml run "$base/openapi.json" \
      --checks all --phases examples,coverage,fuzzing,stateful \
      --seed "$SEED" --max-examples "$EXAMPLES" "$@"; then
    failed+=("$who")
  fi
  kill -0 "$server_pid" 2>/dev/null || fail "the server died during the $who run"
  echo "schemathesis ($who key): $(( $(date +%s) - start )) s"
}

# Narrow keys first: the admin run may delete what they use. They run only the
# operations an API key can call (the others have no key to lose).
api_key_tags='^(api-keys|providers|apps|connect|connections|audit|proxy)$'
fuzz read "$TW_READ_KEY" --include-tag-regex "$api_key_tags"
fuzz proxy "$TW_PROXY_KEY" --include-tag-regex "$api_key_tags"
fuzz admin "$TW_ADMIN_KEY"

if grep -E ' ERROR ' "$work/server.log" >/dev/null; then
  grep -E ' ERROR ' "$work/server.log" | tail -n 20 >&2
  fail "the server logged errors"
fi
if [ ${#failed[@]} -gt 0 ]; then
  fail "failures with the ${failed[*]} key(s), or a run past its ${RUN_TIMEOUT}s limit"
fi
echo "schemathesis: no failures with the read, proxy and admin keys"
