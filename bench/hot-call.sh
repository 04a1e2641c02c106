#!/usr/bin/env bash
# Per-call cost of a `#[dylib_dev::hot]` function (bench/hot-call/), release builds:
# - as `dylib-dev watch` builds it (DYLIB_DEV_HOT_PATCHABLE=1, what dylib-dev's rustc wrapper sets):
#   one atomic load of the function's slot and an indirect call;
# - as plain `cargo build` leaves it: the function as written, a direct call.
#   usage: bench/hot-call.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/hot-call" && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
for mode in patchable plain; do
  if [ "$mode" = patchable ]; then export DYLIB_DEV_HOT_PATCHABLE=1; else unset DYLIB_DEV_HOT_PATCHABLE; fi
  # Separate target dirs: cargo does not track the variable the macro reads.
  CARGO_TARGET_DIR="$target/$mode" cargo build -q --release --manifest-path "$here/Cargo.toml"
  printf '%-10s ' "$mode:"; "$target/$mode/release/hot-call"
done
