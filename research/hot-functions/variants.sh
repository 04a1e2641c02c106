#!/bin/sh
# usage: variants.sh <label> <mode> [extra rustc args]: 4 edits, rustc phases of each patch build
label=$1; mode=$2; shift 2
for i in 1 2 3 4; do
  sed -i "s/hello [^ \"]*/hello $label$i/" /work/proto12/app/src/main.rs
  RUSTC_BOOTSTRAP=1 /work/proto12/patch.py app /work/proto12/patches/var-$label-$i.so $mode -Z time-passes "$@" 2>&1 \
   | awk -v l=$label '/\tLLVM_passes$/{llvm=$2} /\trun_linker$/{lk=$2} /\ttotal$/{tot=$2} /PATCH/{w=$3} END{printf "%s: LLVM %s link %s total %s wall %s ms\n", l, llvm, lk, tot, w}'
done
