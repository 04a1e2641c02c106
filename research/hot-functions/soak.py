#!/usr/bin/env python3
"""N swaps into one host (copies of one patch under fresh names, as the runtime copies before
dlopen), with HOT_THREADS threads calling a hot function throughout. Reports mapped size and RSS.
usage: soak.py N [patch extra rustc args]   (HOST_RUSTFLAGS as in measure.py)"""
import os, re, shutil, subprocess, sys, time
P = "/work/proto12"
n, extra = int(sys.argv[1]), sys.argv[2:]
env = dict(os.environ, CARGO_TARGET_DIR=f"{P}/target", HOT_PATCH_REQ=f"{P}/patch_req",
           HOT_REC_DIR=f"{P}/rec", RUSTC_WORKSPACE_WRAPPER=f"{P}/wrapper.sh", HOT_THREADS="2")
if os.environ.get("HOST_RUSTFLAGS"):
    env["RUSTFLAGS"] = os.environ["HOST_RUSTFLAGS"]
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True).stdout.strip()
    env["LD_LIBRARY_PATH"] = f"{sysroot}/lib/rustlib/x86_64-unknown-linux-gnu/lib"
SRC = f"{P}/app/src/main.rs"
src = re.sub(r'hello [^ "]*', 'hello base', open(SRC).read()); open(SRC, "w").write(src)
subprocess.run(["cargo", "build", "-q"], cwd=f"{P}/app", env=env, check=True)
open(SRC, "w").write(src.replace("hello base", "hello soak"))
so = f"{P}/patches/soak.so"
subprocess.run([f"{P}/patch.py", "app", so, "bin"] + extra, env=env, check=True, capture_output=True)
open(SRC, "w").write(src)
os.makedirs(f"{P}/patches/soak", exist_ok=True)
log = f"{P}/soak.log"
host = subprocess.Popen(["stdbuf", "-oL", f"{P}/target/debug/app"], stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
time.sleep(0.5)
def rss(): return int([l.split()[1] for l in open(f"/proc/{host.pid}/status") if l.startswith("VmRSS")][0])
def mapped():
    m = 0
    for line in open(f"/proc/{host.pid}/maps"):
        f = line.split()
        if len(f) >= 6 and "/patches/soak/" in f[5]:
            a, b = (int(x, 16) for x in f[0].split("-")); m += b - a
    return m
rss0 = rss()
t0 = time.time()
for i in range(n):
    dst = f"{P}/patches/soak/{i}.so"
    shutil.copyfile(so, dst)
    open(f"{P}/patch_req.tmp", "w").write(dst); os.rename(f"{P}/patch_req.tmp", f"{P}/patch_req")
    while os.path.exists(f"{P}/patch_req"): time.sleep(0.001)
    time.sleep(0.02)
time.sleep(1.2)
alive = host.poll() is None
print(f"{n} swaps in {time.time()-t0:.1f} s, host alive: {alive}, patch file {os.path.getsize(so)/1e6:.1f} MB, "
      f"mapped by patches {mapped()/1e6:.1f} MB ({mapped()/n/1e3:.0f} kB/swap), RSS {rss0} -> {rss()} kB")
host.terminate(); host.wait()
lines = open(log).read().splitlines()
print("swaps ok:", sum(l.startswith("swapped") for l in lines), "refused:", sum(l.startswith("REFUSED") for l in lines),
      "| last:", [l for l in lines if l.startswith("CALLS")][-1:], [l for l in lines if "panicked" in l][:1])
shutil.rmtree(f"{P}/patches/soak")
