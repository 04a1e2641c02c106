#!/bin/sh
# As ws_scenarios.sh, with the library patched as lib+cdylib in one rustc run, and the binary
# patch linking that newer rlib: a non-hot library helper called from the binary's hot
# function is then picked up too.
set -e
P=/work/proto12; cd $P
export CARGO_TARGET_DIR=$P/target-ws HOT_REC_DIR=$P/rec-ws RUSTC_WORKSPACE_WRAPPER=$P/wrapper.sh HOT_PATCH_REQ=$P/patch_req_ws
cp ws/game/src/lib.rs.orig ws/game/src/lib.rs; cp ws/host/src/main.rs.orig ws/host/src/main.rs
trap 'cp ws/game/src/lib.rs.orig ws/game/src/lib.rs; cp ws/host/src/main.rs.orig ws/host/src/main.rs; kill $HOST 2>/dev/null || true' EXIT
(cd ws && cargo build -q)
stdbuf -oL target-ws/debug/host > ws2.log 2>&1 & HOST=$!
sleep 0.5
n=0
load() { echo "$1 $2" > patch_req_ws.tmp; mv patch_req_ws.tmp patch_req_ws; sleep 0.4; tail -n 2 ws2.log | cut -c1-220; }
sed -i 's/lib v1/lib v2/; s/label-1/label-2/' ws/game/src/lib.rs
./patch.py game $P/patches/ws2-lib.so lib+cdylib 2>&1 | grep -E "PATCH|^error" || true
ls $P/patches/game-out/
echo "== lib patch (lib+cdylib):"; load game $P/patches/ws2-lib.so
HOT_EXTERN_OVERRIDE=game=$P/patches/game-out/libgame.rlib ./patch.py host $P/patches/ws2-bin.so bin 2>&1 | grep -E "PATCH|^error" || true
echo "== bin patch linking the patched rlib (no source edit in the binary):"; load host $P/patches/ws2-bin.so
