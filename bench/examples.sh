#!/usr/bin/env bash
# Edit-to-new-output latency of a heavy example (examples/polars-repl, examples/bevy-game):
# `dylib-dev bench` on a temp copy, so the repository copy is never edited. Its three loops:
#   static   what a plain `cargo run` loop costs: `cargo build` (static, the project as it is),
#            a fresh host, time to its first line showing the edit (polars-repl: the 1M rows are
#            generated again; bevy-game: the game starts over)
#   dynamic  the same with the deps dylib (`-C prefer-dynamic`), still a fresh host
#   hot      `dylib-dev watch`: the logic swapped into the running host, its state kept
#
# Usage: bench/examples.sh polars-repl|bevy-game [dylib-dev bench options, e.g. --edits 10]
# Environment:
#   CARGO_TARGET_DIR  shared target dir (default: <repo>/target/e2e, the one the tests use); the
#                     static loop builds in <target>/debug, the others in <target>/dylib-dev, so
#                     a first run compiles the heavy dependency twice
#   DYLIB_DEV         the dylib-dev binary (default: <repo>/target/debug/dylib-dev)
set -euo pipefail

die() { printf 'examples.sh: error: %s\n' "$*" >&2; exit 1; }

example=${1:-}
case $example in
  polars-repl) host_args=() ;;
  bevy-game) host_args=(--headless --report-ms 20) ;;
  *) die "usage: bench/examples.sh polars-repl|bevy-game [dylib-dev bench options]" ;;
esac
shift

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-$repo/target/e2e}")
dylib_dev=${DYLIB_DEV:-$repo/target/debug/dylib-dev}
[[ -x $dylib_dev ]] || die "no $dylib_dev: run \`cargo build -p dylib-dev\` (or set DYLIB_DEV)"

work=$(mktemp -d "${TMPDIR:-/tmp}/dylib-dev-$example.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -R "$repo/examples/$example/." "$work"
rm -rf "$work/target"
# The examples name the runtime by a path into the repository: from a member's manifest
# (polars-repl's host) or from the root package's (bevy-game).
for manifest in "$work"/*/Cargo.toml; do
  content=$(<"$manifest")
  printf '%s\n' "${content//..\/..\/..\/runner\/runtime/$repo/runner/runtime}" >"$manifest"
done
content=$(<"$work/Cargo.toml")
printf '%s\n' "${content//\"..\/..\/runner\/runtime\"/\"$repo/runner/runtime\"}" >"$work/Cargo.toml"
cd "$work"
printf 'example: %s (a copy in %s), target dir: %s\n' "$example" "$work" "$CARGO_TARGET_DIR" >&2
printf 'machine: %s cores, %s, load %s\n' "$(nproc)" "$(rustc -V)" "$(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$dylib_dev" bench "$@" -- "${host_args[@]}"
printf 'load after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >&2
