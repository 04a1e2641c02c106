#!/bin/sh
# Reproduce every result of README.md (about 5 minutes on the shared 2-core machine).
set -e
cd /work/proto12
./scenarios.sh          # bin crate: frame edit, helper edit, signature refused, layout refused
./tls_check.sh          # bin crate with thread_local!: default fails to link, dynamic-no-pic works
./ws_scenarios.sh       # workspace: lib cdylib patch, bin patch, fan-out, TypeId
./ws_scenarios2.sh      # lib as lib+cdylib, bin patch linked against the new rlib
VS="-C link-arg=-Wl,--version-script=/work/proto12/patch-exports.map"
./measure.py swap 10 | tail -2
./measure.py swap 10 $VS | tail -2
./measure.py restart 10 | tail -1
HOST_RUSTFLAGS="-C prefer-dynamic" ./measure.py swap 10 $VS | tail -2
HOST_RUSTFLAGS="-C prefer-dynamic" ./measure.py restart 10 | tail -1
./measure_ws.py swap 8 cdylib; ./measure_ws.py swap 8 lib+cdylib; ./measure_ws.py restart 8
(cd app && CARGO_TARGET_DIR=/work/proto12/target cargo build --release -q && ../target/release/app bench)
(cd ui_errors && CARGO_TARGET_DIR=/work/proto12/target cargo check 2>&1 | grep -E "^error" || true)
uptime
