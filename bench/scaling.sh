#!/usr/bin/env bash
# How hot-swap latency grows with the size of the logic crate: examples/minimal with N generated
# lines of logic code (functions that are all reachable, so rustc compiles every one of them).
#   usage: bench/scaling.sh [LINES...]        default: 1000 10000 50000;  EDITS (default 5)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${DYLIB_DEV:-$repo/target/debug/dylib-dev}
[ -x "$bin" ] || cargo build --manifest-path "$repo/Cargo.toml" -p dylib-dev
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target/e2e}
export TICK_MS=${TICK_MS:-10}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 50000)
echo "machine: $(nproc) cores, $(rustc -V), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf '%-8s %10s %10s %10s %10s\n' lines median min max rebuild
for lines in "${sizes[@]}"; do
  work=$(mktemp -d)
  cp -r "$repo/examples/minimal/." "$work"
  manifest="$work/host/Cargo.toml"
  content=$(<"$manifest")
  printf '%s\n' "${content//..\/..\/..\/runner\/runtime/$repo/runner/runtime}" >"$manifest"
  gen="$work/logic/src/generated.rs"
  {
    echo "//! Generated: $lines lines of logic for bench/scaling.sh."
    n=$(( lines / 6 ))
    for ((i = 0; i < n; i++)); do
      echo "#[inline(never)]"
      echo "pub fn f$i(x: u64) -> u64 {"
      echo "    let s = format!(\"{}-{}\", x, $i);"
      echo "    s.len() as u64 + x.wrapping_mul($i)"
      echo "}"
      echo
    done
    # A table, not one long `a + b + ...` expression: rustc recurses on that and overflows.
    echo "const ALL: [fn(u64) -> u64; $n] = [$(for ((i = 0; i < n; i++)); do printf 'f%d, ' "$i"; done)];"
    echo "/// Calls every generated function."
    echo "pub fn all(x: u64) -> u64 {"
    echo "    ALL.iter().map(|f| f(x)).fold(0, u64::wrapping_add)"
    echo "}"
  } >"$gen"
  lib="$work/logic/src/lib.rs"
  content=$(<"$lib")
  content=${content/use minimal_shared::Counter;/mod generated;
use minimal_shared::Counter;}
  content=${content/counter.value, std::process::id()/generated::all(counter.value), std::process::id()}
  printf '%s\n' "$content" >"$lib"
  json=$(cd "$work" && "$bin" bench --loops hot --edits "${EDITS:-5}" --json 2>"$work.log") || { echo "bench failed for $lines lines:" >&2; tail -20 "$work.log" >&2; exit 1; }
  rm -f "$work.log"
  printf '%s' "$json" | python3 -c '
import json, sys
d = json.load(sys.stdin)["loops"][0]
l, b = d["latency_ms"], d["build_ms"] or {"median": float("nan")}
print("%-8s %8.0f ms %7.0f ms %7.0f ms %7.0f ms" % (sys.argv[1], l["median"], l["min"], l["max"], b["median"]))
' "$lines"
  rm -rf "$work"
done
