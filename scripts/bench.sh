#!/usr/bin/env bash
# The token-read benchmark of issue 8 (see docs/performance.md): builds the release
# binary, starts it on fresh databases and prints the figures with their targets.
#
#   scripts/bench.sh                      # SQLite, plus PostgreSQL when
#                                         # TOKENWARDEN_BENCH_POSTGRES_URL is set
#   scripts/bench.sh --large 1000000      # also the read at a million connections
#   scripts/bench.sh --quick              # a smoke run, about a minute
#   scripts/bench.sh --help               # every option
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then export PATH="$HOME/.cargo/bin:$PATH"; fi
if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk from Debian's packages" >&2
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq wrk >/dev/null; else sudo -n apt-get install -y -qq wrk >/dev/null; fi
fi
exec cargo run --release --locked -q -p tokenwarden-bench -- "$@"
