#!/usr/bin/env bash
# Edit-to-new-output latency of a heavy example (examples/polars-repl, examples/bevy-game), hot
# and cold, on a temp copy:
#   hot      `dylib-dev bench --edits N`: the logic edited under `dylib-dev watch`, swapped into
#            the running host (the data set / the game world stay in memory)
#   restart  what a plain `cargo run` loop costs after the same edit: `cargo build` (static, the
#            project as it is, no `dynamic` feature), start the host, wait for the first line that
#            shows the edit (for polars-repl that includes generating the 1M rows again)
#
# Usage: bench/examples.sh polars-repl|bevy-game [--edits N] [--only hot|restart]
# Environment:
#   CARGO_TARGET_DIR  shared target dir (default: <repo>/target/e2e, the one the tests use); the
#                     hot loop builds in <target>/dylib-dev, the restart loop in <target>/debug.
#                     The first run compiles the heavy dependency twice (dynamic and static).
#   DYLIB_DEV         the dylib-dev binary (default: <repo>/target/debug/dylib-dev)
set -euo pipefail

die() { printf 'examples.sh: error: %s\n' "$*" >&2; exit 1; }
say() { printf '%s\n' "$*" >&2; }

example=${1:-}
[[ $example == polars-repl || $example == bevy-game ]] || die "usage: bench/examples.sh polars-repl|bevy-game [--edits N] [--only hot|restart]"
shift
edits=10 only=""
while (($#)); do
  case $1 in
    --edits) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--edits takes a positive integer"; edits=$2; shift 2 ;;
    --only) [[ ${2:-} == hot || ${2:-} == restart ]] || die "--only takes hot or restart"; only=$2; shift 2 ;;
    *) die "unknown argument \`$1\`" ;;
  esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-$repo/target/e2e}")
dylib_dev=${DYLIB_DEV:-$repo/target/debug/dylib-dev}
[[ -x $dylib_dev ]] || die "no $dylib_dev: run \`cargo build -p dylib-dev\` (or set DYLIB_DEV)"

case $example in
  polars-repl) bin=polars-repl marker="revenue by pickup zone" host_args=() ;;
  bevy-game) bin=bevy-game marker="bouncing" host_args=(--headless --report-ms 20) ;;
esac
file=logic/src/lib.rs

work=$(mktemp -d "${TMPDIR:-/tmp}/dylib-dev-$example.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -R "$repo/examples/$example/." "$work"
rm -rf "$work/target"
# The examples name the runtime by a path into the repository.
for manifest in "$work"/*/Cargo.toml; do
  content=$(<"$manifest")
  printf '%s\n' "${content//..\/..\/..\/runner\/runtime/$repo/runner/runtime}" >"$manifest"
done
cd "$work"
say "example: $example (copy in $work), target dir: $CARGO_TARGET_DIR"
say "machine: $(nproc) cores, $(rustc -V), load $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ $only != restart ]]; then
  say ""
  say "== hot: dylib-dev bench --edits $edits -- ${host_args[*]:-}"
  "$dylib_dev" bench --edits "$edits" -- "${host_args[@]}"
fi
[[ $only == hot ]] && exit 0

# --- restart loop ------------------------------------------------------------------------------
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%02d' $(($1 / 1000)) $((($1 % 1000) / 10)); }
exe=$CARGO_TARGET_DIR/debug/$bin
say ""
say "== restart: edit, cargo build, start $bin ${host_args[*]:-}, first line with the edit"
say "warm-up: cargo build (static; compiles the heavy dependency unless the target dir has it)"
cargo build --quiet 2>"$work/warmup.log" || { tail -30 "$work/warmup.log" >&2; die "cargo build failed"; }
original=$(<"$file")
builds=() starts=() totals=()
for ((i = 1; i <= edits; i++)); do
  new="$marker-s$(printf '%03d' "$i")-"
  printf '%s\n' "${original/"$marker"/"$new"}" >"$file"
  t0=$(now_ms)
  cargo build --quiet 2>"$work/build.log" || { tail -30 "$work/build.log" >&2; die "cargo build after edit $i failed"; }
  t1=$(now_ms)
  "$exe" "${host_args[@]}" </dev/null >"$work/run.log" 2>&1 &
  pid=$!
  until grep -qF -- "$new" "$work/run.log"; do
    kill -0 "$pid" 2>/dev/null || { tail -30 "$work/run.log" >&2; die "$bin exited before printing the edit"; }
    (($(now_ms) - t1 < 300000)) || die "no new output after 5 min"
    sleep 0.01
  done
  t2=$(now_ms)
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  builds+=($((t1 - t0))) starts+=($((t2 - t1))) totals+=($((t2 - t0)))
  say "  edit $i: $(secs $((t2 - t0))) s (cargo build $(secs $((t1 - t0))) s, start to output $(secs $((t2 - t1))) s)"
done
printf '%s\n' "$original" >"$file"

stats() { # ms values -> "median min max" in seconds
  local -a s
  mapfile -t s < <(printf '%s\n' "$@" | sort -n)
  local n=${#s[@]} m
  if ((n % 2)); then m=${s[n / 2]}; else m=$(((s[n / 2 - 1] + s[n / 2]) / 2)); fi
  printf '%s %s %s' "$(secs "$m")" "$(secs "${s[0]}")" "$(secs "${s[n - 1]}")"
}
printf '%-28s %9s %9s %9s\n' "restart (s)" median min max
read -r a b c <<<"$(stats "${totals[@]}")"; printf '%-28s %9s %9s %9s\n' "edit to new output" "$a" "$b" "$c"
read -r a b c <<<"$(stats "${builds[@]}")"; printf '%-28s %9s %9s %9s\n' "  cargo build" "$a" "$b" "$c"
read -r a b c <<<"$(stats "${starts[@]}")"; printf '%-28s %9s %9s %9s\n' "  start to output" "$a" "$b" "$c"
say "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
