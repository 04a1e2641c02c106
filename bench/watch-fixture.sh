#!/usr/bin/env bash
# Edit-to-new-output latency of `dylib-dev watch` on the `hot` test fixture (a host with state, a
# logic cdylib, serde_json + regex in a deps dylib): N edits of the logic, swapped into the host.
#   usage: bench/watch-fixture.sh [--edits N] [--json]      (HOT_TICK_MS: host print interval, default 10)
#          bench/watch-fixture.sh --soak N [--json]         (N swaps into one host: memory, mapped copies)
#   HOT_TLS=1 gives the logic a thread-local with a destructor (its old versions must stay mapped).
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
if [ "${HOT_TLS:-0}" = 1 ]; then
  cat >>"$work/logic/src/lib.rs" <<'EOF'

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 4096]);
}

/// A thread-local with a destructor, used by every call.
#[unsafe(no_mangle)]
pub fn scratch_len() -> usize {
    SCRATCH.with(|s| s.borrow().len())
}
EOF
  sed -i 's|let words = |let _ = scratch_len();\n    let words = |' "$work/logic/src/lib.rs"
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target/e2e}
export HOT_TICK_MS=${HOT_TICK_MS:-10}
cd "$work"
echo "machine: $(nproc) cores, $(rustc -V), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bin" bench "$@"
