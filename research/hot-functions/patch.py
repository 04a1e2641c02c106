#!/usr/bin/env python3
"""Build a patch from a crate's recorded rustc invocation.
usage: patch.py <crate> <out.so> [bin|cdylib] [extra rustc args...]
bin: keep --crate-type bin, add -C link-arg=-shared. cdylib: replace the crate type(s) with cdylib.
The patch gets its own -o and its own incremental dir, so the host's build is untouched."""
import os, sys, subprocess, time
REC = os.environ.get("HOT_REC_DIR", "/work/proto12/rec")
crate, out, mode = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else "bin")
extra = sys.argv[4:]
args = open(f"{REC}/{crate}.args", "rb").read().split(b"\0")[:-1]
args = [a.decode() for a in args]
cwd = open(f"{REC}/{crate}.cwd").read().strip()
env = dict(kv.split("=", 1) for kv in open(f"{REC}/{crate}.env", "rb").read().decode().split("\0") if "=" in kv)
env.pop("CARGO_MAKEFLAGS", None); env.pop("MAKEFLAGS", None); env.pop("MFLAGS", None)
if "RUSTC_BOOTSTRAP" in os.environ: env["RUSTC_BOOTSTRAP"] = os.environ["RUSTC_BOOTSTRAP"]
rustc, rest = args[0], args[1:]
new, i = [], 0
patch_inc = os.path.join(os.path.dirname(os.path.abspath(out)), f"incremental-{crate}-{mode}")
while i < len(rest):
    a = rest[i]
    if a in ("--out-dir",):            # own output
        i += 2; continue
    if a == "-C" and rest[i+1].startswith(("incremental=", "extra-filename=")):
        i += 2; continue
    if a == "--crate-type":
        if mode == "lib+cdylib":
            # one rustc run: the rlib (for later binary patches to link) and the cdylib (to load)
            new += ["--crate-type", "lib", "--crate-type", "cdylib"]
        elif mode == "cdylib":
            if "cdylib" not in new: new += ["--crate-type", "cdylib"]
        else:
            new += [a, rest[i+1]]
        i += 2; continue
    if a.startswith("--json=") or a == "--error-format=json":
        i += 1; continue
    if a.startswith("--emit="):
        new.append("--emit=link"); i += 1; continue
    if a == "--extern" and os.environ.get("HOT_EXTERN_OVERRIDE"):
        # "name=path,...": link the newest rlib of a library patched meanwhile (lib+cdylib)
        over = dict(x.split("=", 1) for x in os.environ["HOT_EXTERN_OVERRIDE"].split(","))
        name = rest[i+1].split("=", 1)[0]
        if name in over:
            new += [a, f"{name}={over[name]}"]; i += 2; continue
    if a == "--extern" and mode in ("cdylib", "lib+cdylib") and rest[i+1].endswith(".rmeta"):
        # cargo pipelines library builds against upstream .rmeta; a cdylib links, so it needs the .rlib
        rlib = rest[i+1][:-len(".rmeta")] + ".rlib"
        new += [a, rlib if os.path.exists(rlib.split("=", 1)[1]) else rest[i+1]]; i += 2; continue
    new.append(a); i += 1
# A fixed output name keeps incremental reuse (a new -o per patch made every patch slower);
# the result is renamed to the unique name dlopen needs (lld writes a new inode each time).
fixed_out = os.path.join(os.path.dirname(os.path.abspath(out)), f"{crate}-{mode}-build.so")
if mode == "lib+cdylib":
    # two outputs: an out-dir of the patch's own; lib<crate>.rlib stays there for binary patches
    odir = os.path.join(os.path.dirname(os.path.abspath(out)), f"{crate}-out")
    os.makedirs(odir, exist_ok=True)
    fixed_out = os.path.join(odir, f"lib{crate}.so")
    new += ["--out-dir", odir, "-C", f"incremental={patch_inc}"]
else:
    new += ["-o", fixed_out, "-C", f"incremental={patch_inc}"]
if mode == "bin":
    new += ["-C", "link-arg=-shared"]
new += extra
t = time.time()
r = subprocess.run([rustc] + new, cwd=cwd, env=env)
dt = time.time() - t
if r.returncode == 0: os.rename(fixed_out, out)
print(f"PATCH rustc {dt*1000:.0f} ms rc={r.returncode} -> {out}", file=sys.stderr)
if os.environ.get("HOT_PATCH_SHOW_CMD"): print(" ".join([rustc] + new), file=sys.stderr)
sys.exit(r.returncode)
