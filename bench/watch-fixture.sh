#!/usr/bin/env bash
# Edit-to-new-output latency of `dylib-dev watch` on the `hot` test fixture (a host with state, a
# logic cdylib, serde_json + regex in a deps dylib): N edits of the logic, swapped into the host.
#   usage: bench/watch-fixture.sh [--edits N] [--json]      (HOT_TICK_MS: host print interval, default 10)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${DYLIB_DEV:-$repo/target/debug/dylib-dev}
[ -x "$bin" ] || cargo build --manifest-path "$repo/Cargo.toml" -p dylib-dev
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$repo/tests/fixtures/hot/." "$work"
manifest="$work/host/Cargo.toml"
content=$(<"$manifest")
printf '%s\n' "${content//@DYLIB_DEV_RUNTIME@/$repo/runner/runtime}" >"$manifest"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target/e2e}
export HOT_TICK_MS=${HOT_TICK_MS:-10}
cd "$work"
echo "machine: $(nproc) cores, $(rustc -V), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bin" bench "$@"
