#!/bin/sh
# A binary crate with its own thread_local!: the default (PIE) codegen cannot be linked with
# -shared (local-exec TLS); -C relocation-model=dynamic-no-pic can, and the patch's
# thread-local is a separate copy (its count restarts at 1), TypeId still equal.
P=/work/proto12; cd $P
export CARGO_TARGET_DIR=$P/target HOT_REC_DIR=$P/rec RUSTC_WORKSPACE_WRAPPER=$P/wrapper.sh HOT_PATCH_REQ=$P/patch_req
cp app/src/main.rs tls.orig.rs
trap 'cp tls.orig.rs app/src/main.rs; kill $HOST 2>/dev/null' EXIT
python3 - <<'PY'
p='/work/proto12/app/src/main.rs'
s=open(p).read()
s=s.replace('static PATCH_STATIC','thread_local! { static TLS_COUNT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) }; }\n\nstatic PATCH_STATIC')
s=s.replace('    PATCH_STATIC.fetch_add(1,','    TLS_COUNT.with(|c| c.set(c.get() + 1));\n    PATCH_STATIC.fetch_add(1,')
s=s.replace('"{s} log={} static@','"{s} tls={} log={} static@')
s=s.replace('        state.log.len(),\n','        TLS_COUNT.with(|c| c.get()),\n        state.log.len(),\n')
open(p,'w').write(s)
PY
(cd app && cargo build -q)
stdbuf -oL target/debug/app > tls.log 2>&1 & HOST=$!
sleep 0.4
sed -i 's/hello [^ "]*/hello tls-default/' app/src/main.rs
echo "== default codegen:"; ./patch.py app $P/patches/tls-default.so bin 2>&1 | grep -E "rust-lld|PATCH"
sed -i 's/hello [^ "]*/hello tls-dnp/' app/src/main.rs
echo "== -C relocation-model=dynamic-no-pic:"; ./patch.py app $P/patches/tls-dnp.so bin -C relocation-model=dynamic-no-pic 2>&1 | grep -E "rust-lld|PATCH"
echo $P/patches/tls-dnp.so > patch_req; sleep 0.5
cut -c1-160 tls.log
