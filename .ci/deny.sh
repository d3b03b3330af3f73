#!/usr/bin/env bash
# `cargo deny check` (advisories, bans, licences, sources; see deny.toml), offline,
# against the RustSec snapshot in ../shared/advisory-db. Run by .ci/run; runs alone too.
#
# cargo-deny is pinned. It is taken from CARGO_DENY if that names the pinned version,
# else from the cache dir below, else installed there once with `cargo install --locked`
# (about 6.5 minutes of compiling on a busy 2-core machine; a few seconds once cached).
set -euo pipefail
cd "$(dirname "$0")/.."

DENY_VERSION=0.20.2
TOOLS_DIR=${TOKENWARDEN_TOOLS_DIR:-"${CARGO_HOME:-$HOME/.cargo}/tokenwarden-tools"}
DENY_ROOT="$TOOLS_DIR/cargo-deny-$DENY_VERSION"
SNAPSHOT=${TOKENWARDEN_ADVISORY_SNAPSHOT:-../shared/advisory-db}

is_pinned() { [ -x "$1" ] && [ "$("$1" --version 2>/dev/null)" = "cargo-deny $DENY_VERSION" ]; }

if [ -n "${CARGO_DENY:-}" ] && is_pinned "$CARGO_DENY"; then
  deny=$CARGO_DENY
elif is_pinned "$DENY_ROOT/bin/cargo-deny"; then
  deny="$DENY_ROOT/bin/cargo-deny"
else
  echo "installing cargo-deny $DENY_VERSION into $DENY_ROOT"
  start=$(date +%s)
  cargo install --locked --quiet cargo-deny --version "$DENY_VERSION" --root "$DENY_ROOT"
  echo "cargo-deny installed in $(( $(date +%s) - start )) s"
  deny="$DENY_ROOT/bin/cargo-deny"
fi

if [ ! -d "$SNAPSHOT/crates" ]; then
  echo "no advisory snapshot at $SNAPSHOT (expected the RustSec layout: crates/<name>/RUSTSEC-*.md)" >&2
  exit 1
fi
# The snapshot's date, from its SNAPSHOT.txt ("... of 2026-08-21 ..."): cargo-deny judges
# staleness (deny.toml maximum-db-staleness) by it, not by when this script ran.
snapshot_date=$(grep -oE '[0-9]{4}-[0-9]{2}-[0-9]{2}' "$SNAPSHOT/SNAPSHOT.txt" | head -1)
if [ -z "$snapshot_date" ]; then
  echo "$SNAPSHOT/SNAPSHOT.txt names no date" >&2
  exit 1
fi

# cargo-deny opens the database for db-urls' RustSec URL at
# <db-path>/advisory-db-<xxhash64 of the URL> (3157b0e258782691 for
# https://github.com/rustsec/advisory-db) and, with fetching disabled, takes its age from
# .git/FETCH_HEAD's mtime. The snapshot is no git clone, so a scratch db-path holds a
# link to its advisories and a FETCH_HEAD dated like the snapshot.
dbs=$(mktemp -d)
trap 'rm -rf "$dbs"' EXIT
db="$dbs/advisory-db-3157b0e258782691"
mkdir -p "$db/.git"
ln -s "$(cd "$SNAPSHOT" && pwd)/crates" "$db/crates"
touch -d "$snapshot_date" "$db/.git/FETCH_HEAD"

# cargo-deny runs `cargo metadata --offline`, which needs every locked crate in the local
# registry, including those of other platforms (windows-sys, ...) that no build here
# downloads: fetch them first (package registries are reachable; no-op once cached).
cargo fetch --locked --quiet

echo "advisory database: $(head -c 200 "$SNAPSHOT/SNAPSHOT.txt")"
TOKENWARDEN_ADVISORY_DBS=$dbs "$deny" --offline --locked --color never check --show-stats --hide-inclusion-graph
