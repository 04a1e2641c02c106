#!/usr/bin/env bash
# What a one-line edit costs on a genuinely heavy dependency: bench/polars-app (a small binary on
# polars 0.55) rebuilt after an edit of one line, statically (`cargo build`) and in dynamic mode
# (`dylib-dev build`, polars in one dylib), plus the bare cargo command `dylib-dev build` runs,
# to show dylib-dev's own overhead.
#
# Usage: bench/relink.sh [--edits N] [--json] [--max-load L] [--keep]
#   --edits N      timed edits per loop (default 5)
#   --json         print the results as JSON on stdout (the table goes to stderr)
#   --max-load L   before each round, wait (up to 10 min) until the 1-minute load average is below L
#   --keep         keep the temporary copy of the project (its path is printed)
# Environment:
#   CARGO_TARGET_DIR  shared target dir (default: <repo>/target/bench), kept between runs so
#                     polars compiles once per machine (static: ~5 min; dynamic: ~5 min more)
#   DYLIB_DEV         the dylib-dev binary (default: <repo>/target/debug/dylib-dev, then PATH)
#
# The project is copied to a temp dir (the repository copy is never modified). Each round edits
# the marker line `println!("edit marker N");` to a new number and times, one after the other:
#   static     cargo build
#   dylib-dev  dylib-dev build
#   bare       CARGO_ENCODED_RUSTFLAGS=-Cprefer-dynamic cargo build --features dynamic --target-dir <target>/dylib-dev
# so a change in machine load hits the three alike. After every timed build the program is run
# and must print the new marker, and cargo must have compiled `polars-app` and nothing else (in
# particular not `polars-app-deps`). A sample during which cargo waited for a lock held by
# another cargo is discarded and taken again. Needs only bash, coreutils, cargo and dylib-dev
# (readelf, if present, also confirms the dynamic binary NEEDs libpolars_app_deps.so).
set -euo pipefail

die() { printf 'relink.sh: error: %s\n' "$*" >&2; exit 1; }
say() { printf '%s\n' "$*" >&2; }

edits=5 json=0 max_load="" keep=0
while (($#)); do
  case $1 in
    --edits) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--edits takes a positive integer"; edits=$2; shift 2 ;;
    --edits=*) edits=${1#--edits=}; [[ $edits =~ ^[1-9][0-9]*$ ]] || die "--edits takes a positive integer"; shift ;;
    --json) json=1; shift ;;
    --max-load) [[ ${2:-} =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--max-load takes a number"; max_load=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) while IFS= read -r line; do
                 [[ $line == '#!'* ]] && continue; [[ $line == '#'* ]] || break; line=${line#\#}; printf '%s\n' "${line# }"
               done <"$0"; exit 0 ;;
    *) die "unknown argument \`$1\` (see --help)" ;;
  esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=$(realpath -m "${CARGO_TARGET_DIR:-$repo/target/bench}")
export CARGO_TARGET_DIR=$target
dylib_dev=${DYLIB_DEV:-$repo/target/debug/dylib-dev}
if [[ ! -x $dylib_dev ]]; then
  dylib_dev=$(command -v dylib-dev || true)
  [[ -n $dylib_dev ]] || die "no dylib-dev binary: run \`cargo build -p dylib-dev\` in $repo (or set DYLIB_DEV)"
fi
command -v cargo >/dev/null || die "cargo is not on PATH"

# The rustflags `dylib-dev build` passes: the user's own (CARGO_ENCODED_RUSTFLAGS wins over
# RUSTFLAGS, as in cargo), then -Cprefer-dynamic. The bare command must use exactly these, or
# cargo's fingerprints differ and each side rebuilds everything the other built.
if [[ -v CARGO_ENCODED_RUSTFLAGS ]]; then
  encoded=${CARGO_ENCODED_RUSTFLAGS:+$CARGO_ENCODED_RUSTFLAGS$'\x1f'}-Cprefer-dynamic
elif [[ -n ${RUSTFLAGS:-} ]]; then
  read -ra user_flags <<<"$RUSTFLAGS"
  encoded=$(IFS=$'\x1f'; printf '%s' "${user_flags[*]}")$'\x1f'-Cprefer-dynamic
else
  encoded=-Cprefer-dynamic
fi

# --- the temp copy ---------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/dylib-dev-relink.XXXXXX")
cleanup() { if ((keep)); then say "kept the project copy: $work/polars-app"; else rm -rf "$work"; fi; }
trap cleanup EXIT
app=$work/polars-app
mkdir "$app"
for entry in "$repo"/bench/polars-app/*; do
  [[ $(basename "$entry") == target ]] || cp -R "$entry" "$app/"
done
logs=$work/logs
mkdir "$logs"
cd "$app"

marker_file=src/main.rs
marker_re='println!\("edit marker ([0-9]+)"\);'
set_marker() { # N: rewrites the one `println!("edit marker <number>");` line to N, nothing else
  local content new prev
  content=$(<"$marker_file")
  [[ $content =~ $marker_re ]] || die "no \`println!(\"edit marker N\");\` line in $marker_file"
  prev=${BASH_REMATCH[1]}
  ! [[ ${content#*"${BASH_REMATCH[0]}"} =~ $marker_re ]] || die "more than one marker line in $marker_file"
  new=${content/"println!(\"edit marker $prev\");"/"println!(\"edit marker $1\");"}
  printf '%s\n' "$new" >"$marker_file"
}
marker=0

now_ns() { date +%s%N; }
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); } # ms -> s.mmm
load1() { local l _; read -r l _ </proc/loadavg; printf '%s' "$l"; }
load_centi() { local l=$1 i f; i=${l%%.*}; f=${l#*.}; [[ $l == *.* ]] || f=0; f=${f}00; printf '%d' $((10#$i * 100 + 10#${f:0:2})); }

# Runs "$@" with output in $logs/$1.log; on failure shows the end of the log.
run_logged() {
  local name=$1; shift
  if ! "$@" >"$logs/$name.log" 2>&1; then
    tail -n 40 "$logs/$name.log" >&2
    die "\`$*\` failed (log above; rerun with --keep to read $logs/$name.log)"
  fi
}

static_cmd() { cargo build; }
dylib_dev_cmd() { "$dylib_dev" build; }
# dylib-dev also runs as rustc's workspace wrapper (cargo fingerprints the wrapper, so the bare
# command must name it too, or the two would recompile polars-app for each other).
bare_cmd() { RUSTC_WORKSPACE_WRAPPER=$dylib_dev DYLIB_DEV_RUSTC_WRAPPER=1 CARGO_ENCODED_RUSTFLAGS=$encoded cargo build --features dynamic --target-dir "$target/dylib-dev"; }

static_exe=$target/debug/polars-app
dyn_profile=$target/dylib-dev/debug
dyn_exe=$dyn_profile/polars-app
deps_so=$dyn_profile/deps/libpolars_app_deps.so
host=$(rustc -vV | while read -r k v; do if [[ $k == host: ]]; then printf '%s' "$v"; fi; done)
runtime_lib=$(rustc --print sysroot)/lib/rustlib/$host/lib

run_program() { # static|dynamic: the program's output
  if [[ $1 == static ]]; then
    "$static_exe"
  else
    LD_LIBRARY_PATH="$dyn_profile:$dyn_profile/deps:$runtime_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$dyn_exe"
  fi
}

# --- warm-up (untimed) -----------------------------------------------------------------------
say "project copy: $app"
say "target dir:   $target"
say "warm-up: dylib-dev wrap polars"
run_logged wrap "$dylib_dev" wrap polars
say "warm-up: cargo build (static: no \`dynamic\` feature; compiles polars unless $target already has it)"
run_logged warmup-static cargo build
say "warm-up: dylib-dev build (compiles polars with -C prefer-dynamic unless $target/dylib-dev already has it: ~5 min on 2 cores)"
run_logged warmup-dylib-dev "$dylib_dev" build
run_logged warmup-bare bare_cmd
[[ -f $deps_so ]] || die "the dynamic build made no $deps_so"
out=$(run_program dynamic) || die "the dynamic binary does not run"
[[ $out == *"edit marker 0"* ]] || die "the dynamic binary does not print the marker"

# --- timed rounds ----------------------------------------------------------------------------
declare -A samples=() # kind -> space-separated ms
loads=()              # 1-minute load average before each timed build
retried=0

timed() { # kind program: edit, build, check; appends to samples[kind]
  local kind=$1 program=$2 attempt t0 t1 ms log compiled line out deps_before deps_after
  for attempt in 1 2 3; do
    marker=$((marker + 1))
    set_marker "$marker"
    log=$logs/$kind-$marker.log
    deps_before=$(stat -c %y "$deps_so")
    loads+=("$(load1)")
    t0=$(now_ns)
    if ! "${kind}_cmd" >"$log" 2>&1; then
      tail -n 40 "$log" >&2
      die "$kind build after edit $marker failed"
    fi
    t1=$(now_ns)
    ms=$(((t1 - t0) / 1000000))
    deps_after=$(stat -c %y "$deps_so")
    compiled=()
    while IFS= read -r line; do
      if [[ $line =~ ^\ *Compiling\ ([^ ]+) ]]; then compiled+=("${BASH_REMATCH[1]}"); fi
    done <"$log"
    [[ ${compiled[*]:-} == polars-app ]] ||
      die "$kind build after edit $marker compiled \`${compiled[*]:-nothing}\`, expected only polars-app (rerun with --keep to read $log)"
    [[ $deps_before == "$deps_after" ]] || die "$kind build after edit $marker rewrote $deps_so"
    out=$(run_program "$program") || die "the $program binary failed after edit $marker"
    [[ $out == *"edit marker $marker"* ]] || die "after edit $marker the $program binary does not print \`edit marker $marker\`"
    if [[ $(<"$log") == *"Blocking waiting for file lock"* ]]; then
      say "  $kind: $(secs "$ms") s, but cargo waited for another cargo's lock: discarded"
      retried=$((retried + 1))
      continue
    fi
    samples[$kind]+="$ms "
    say "  $kind: $(secs "$ms") s (load $(load1))"
    return
  done
  die "$kind: cargo waited for another cargo's lock 3 times in a row; run again when the machine is quieter"
}

wait_for_load() {
  [[ -n $max_load ]] || return 0
  local limit waited=0
  limit=$(load_centi "$max_load")
  while (($(load_centi "$(load1)") >= limit)); do
    ((waited < 600)) || die "the load average stayed above $max_load for 10 minutes"
    ((waited % 60)) || say "  waiting for the 1-minute load average ($(load1)) to drop below $max_load"
    sleep 5; waited=$((waited + 5))
  done
}

load_start=$(</proc/loadavg)
for ((round = 1; round <= edits; round++)); do
  wait_for_load
  say "round $round/$edits"
  timed static static
  timed dylib_dev dynamic
  timed bare dynamic
done
load_end=$(</proc/loadavg)

# --- results ---------------------------------------------------------------------------------
stats() { # kind -> "median min max" in ms
  local -a sorted
  mapfile -t sorted < <(printf '%s\n' ${samples[$1]} | sort -n)
  local n=${#sorted[@]} median
  if ((n % 2)); then median=${sorted[n / 2]}; else median=$(((sorted[n / 2 - 1] + sorted[n / 2]) / 2)); fi
  printf '%d %d %d' "$median" "${sorted[0]}" "${sorted[n - 1]}"
}
read -r s_med s_min s_max <<<"$(stats static)"
read -r d_med d_min d_max <<<"$(stats dylib_dev)"
read -r b_med b_min b_max <<<"$(stats bare)"
ratio_x100=$(((s_med * 100 + d_med / 2) / d_med))
ratio=$(printf '%d.%02d' $((ratio_x100 / 100)) $((ratio_x100 % 100)))
overhead=$((d_med - b_med))
overhead_s=$( ((overhead < 0)) && printf -- '-%s' "$(secs $((-overhead)))" || secs "$overhead")

mapfile -t sorted_loads < <(printf '%s\n' "${loads[@]}" | sort -n)
load_lo=${sorted_loads[0]} load_hi=${sorted_loads[${#sorted_loads[@]} - 1]}
load_med=${sorted_loads[${#sorted_loads[@]} / 2]}

cores=$(nproc)
rustc_v=$(rustc -V)
linker=unknown
while IFS= read -r line; do
  if [[ $line =~ ^[a-z]+\ +linker\ +(.*)$ ]]; then linker=${BASH_REMATCH[1]}; fi
done < <("$dylib_dev" doctor 2>&1 || true)
size_static=$(stat -c %s "$static_exe")
size_so=$(stat -c %s "$deps_so")
size_dyn=$(stat -c %s "$dyn_exe")
mb() { printf '%d.%d MB' $(($1 / 1000000)) $((($1 % 1000000) / 100000)); }
needed="not checked (no readelf)"
if command -v readelf >/dev/null; then
  if [[ $(readelf -d "$dyn_exe") == *"(NEEDED)"*"[libpolars_app_deps.so]"* ]]; then
    needed="yes"
  else
    die "$dyn_exe does not NEED libpolars_app_deps.so"
  fi
fi

row() { printf '%-48s %7s %7s %7s\n' "$1" "$2" "$3" "$4"; }
table() {
  printf 'polars-app, one-line edit -> rebuilt binary: wall clock in seconds, %d edits each\n\n' "$edits"
  row "loop" median min max
  row "static     cargo build" "$(secs "$s_med")" "$(secs "$s_min")" "$(secs "$s_max")"
  row "dynamic    dylib-dev build" "$(secs "$d_med")" "$(secs "$d_min")" "$(secs "$d_max")"
  row "dynamic    bare cargo (same flags, same target)" "$(secs "$b_med")" "$(secs "$b_min")" "$(secs "$b_max")"
  printf '\nstatic / dylib-dev build (medians): %sx; dylib-dev overhead over bare cargo: %s s\n' "$ratio" "$overhead_s"
  printf 'sizes: static binary %s; dynamic binary %s + libpolars_app_deps.so %s (NEEDED: %s)\n' \
    "$(mb "$size_static")" "$(mb "$size_dyn")" "$(mb "$size_so")" "$needed"
  printf 'machine: %s cores (nproc), %s, linker %s\n' "$cores" "$rustc_v" "$linker"
  printf 'load average (1 min) before each timed build: median %s, min %s, max %s\n' "$load_med" "$load_lo" "$load_hi"
  ((retried == 0)) || printf 'samples discarded because cargo waited for a lock: %d\n' "$retried"
}

json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
json_list() { local IFS=,; printf '[%s]' "$*"; }
json_secs() { local -a out=(); local ms; for ms in $1; do out+=("$(secs "$ms")"); done; json_list "${out[@]}"; }
json_loop() { # kind med min max
  printf '{"median_s": %s, "min_s": %s, "max_s": %s, "samples_s": %s}' \
    "$(secs "$2")" "$(secs "$3")" "$(secs "$4")" "$(json_secs "${samples[$1]}")"
}

if ((json)); then
  table >&2
  printf '{\n'
  printf '  "project": "bench/polars-app", "edits": %d,\n' "$edits"
  printf '  "static": %s,\n' "$(json_loop static "$s_med" "$s_min" "$s_max")"
  printf '  "dylib_dev_build": %s,\n' "$(json_loop dylib_dev "$d_med" "$d_min" "$d_max")"
  printf '  "bare_cargo_dynamic": %s,\n' "$(json_loop bare "$b_med" "$b_min" "$b_max")"
  printf '  "ratio_static_over_dylib_dev": %s,\n' "$ratio"
  printf '  "sizes_bytes": {"static_binary": %d, "dynamic_binary": %d, "deps_dylib": %d},\n' "$size_static" "$size_dyn" "$size_so"
  printf '  "machine": {"nproc": %d, "rustc": %s, "linker": %s},\n' "$cores" "$(json_str "$rustc_v")" "$(json_str "$linker")"
  printf '  "load_1min": %s,\n' "$(json_list "${loads[@]}")"
  printf '  "loadavg_start": %s, "loadavg_end": %s, "discarded_for_lock": %d\n' \
    "$(json_str "$load_start")" "$(json_str "$load_end")" "$retried"
  printf '}\n'
else
  table
fi
