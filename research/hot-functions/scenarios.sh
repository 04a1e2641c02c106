#!/bin/sh
# Edits of a running host: frame's body, a helper, a hot signature change, a field added to State.
set -e
P=/work/proto12; cd $P
export CARGO_TARGET_DIR=$P/target HOT_REC_DIR=$P/rec RUSTC_WORKSPACE_WRAPPER=$P/wrapper.sh HOT_PATCH_REQ=$P/patch_req
cp app/src/main.rs scen.orig.rs
trap 'cp scen.orig.rs app/src/main.rs; kill $HOST 2>/dev/null || true' EXIT
(cd app && cargo build -q)
stdbuf -oL target/debug/app > scen.log 2>&1 & HOST=$!
sleep 0.5
step() { # label sed-expression
  sed -i "$2" app/src/main.rs
  ./patch.py app $P/patches/scen-$1.so bin 2>&1 | grep -E "PATCH|^error" || true
  echo $P/patches/scen-$1.so > patch_req.tmp; mv patch_req.tmp patch_req; sleep 0.4
  echo "== after $1:"; tail -n 3 scen.log | cut -c1-170
}
step frame-body 's/"{s} log=/"F2 {s} log=/'
step helper 's/hello [^ "]*/hello helper-edit/'
step signature 's/fn scale(x: i32) -> i32/fn scale(x: i64) -> i64/'
cp scen.orig.rs app/src/main.rs; sed -i 's/"{s} log=/"F2 {s} log=/; s/hello [^ "]*/hello helper-edit/' app/src/main.rs
step layout 's/pub frames: u64,/pub frames: u64,\n    pub extra: u8,/'
echo "host pid $HOST alive: $(kill -0 $HOST && echo yes)"
