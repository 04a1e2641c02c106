#!/bin/sh
# 2-crate workspace: hot function in the library (cdylib patch) and in the binary (bin + -shared patch).
set -e
P=/work/proto12; cd $P
export CARGO_TARGET_DIR=$P/target-ws HOT_REC_DIR=$P/rec-ws RUSTC_WORKSPACE_WRAPPER=$P/wrapper.sh HOT_PATCH_REQ=$P/patch_req_ws
cp ws/game/src/lib.rs.orig ws/game/src/lib.rs; cp ws/host/src/main.rs.orig ws/host/src/main.rs
trap 'cp ws/game/src/lib.rs.orig ws/game/src/lib.rs; cp ws/host/src/main.rs.orig ws/host/src/main.rs; kill $HOST 2>/dev/null || true' EXIT
(cd ws && cargo build -q)
stdbuf -oL target-ws/debug/host > ws.log 2>&1 & HOST=$!
sleep 0.5
n=0
step() { # label crate mode file sed-expression
  n=$((n+1))
  sed -i "$5" ws/$4
  ./patch.py $2 $P/patches/ws-$n-$1.so $3 2>&1 | grep -E "PATCH|^error" || true
  echo "$2 $P/patches/ws-$n-$1.so" > patch_req_ws.tmp; mv patch_req_ws.tmp patch_req_ws; sleep 0.4
  echo "== after $1 ($2, $3):"; tail -n 2 ws.log | cut -c1-220
}
step lib-edit game cdylib game/src/lib.rs 's/lib v1/lib v2/; s/^    1$/    10/; s/label-1/label-2/'
step bin-edit host bin host/src/main.rs 's/bin v1/bin v2/'
step lib-edit2 game cdylib game/src/lib.rs 's/lib v2/lib v3/'
echo "host pid $HOST alive: $(kill -0 $HOST && echo yes); mapped patches: $(grep -c 'patches/ws-' /proc/$HOST/maps) mappings"
