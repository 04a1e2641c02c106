#!/usr/bin/env python3
"""Edit-to-new-output latency of a running host, swap vs restart.
usage: measure.py swap|restart N [patch extra rustc args...]
swap: host started once (target/debug/app); each edit -> patch.py -> request file -> host loads.
restart: each edit -> cargo build -> kill host -> start host; time to its first OUT line."""
import os, re, subprocess, sys, time, statistics, signal
P = "/work/proto12"
SRC = f"{P}/app/src/main.rs"
mode, n, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
env = dict(os.environ, CARGO_TARGET_DIR=f"{P}/target", HOT_PATCH_REQ=f"{P}/patch_req",
           HOT_REC_DIR=f"{P}/rec", RUSTC_WORKSPACE_WRAPPER=f"{P}/wrapper.sh")
# HOST_RUSTFLAGS="-C prefer-dynamic": the host as dylib-dev's dynamic mode builds it (shared libstd);
# the patch inherits the flag from the recorded invocation.
if os.environ.get("HOST_RUSTFLAGS"):
    env["RUSTFLAGS"] = os.environ["HOST_RUSTFLAGS"]
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True).stdout.strip()
    env["LD_LIBRARY_PATH"] = f"{sysroot}/lib/rustlib/x86_64-unknown-linux-gnu/lib"
# Start state: a known greeting, a fresh host build (records the invocation).
src = open(SRC).read()
src = re.sub(r'hello [^ "]*', 'hello base', src)
open(SRC, "w").write(src)
subprocess.run(["cargo", "build", "-q"], cwd=f"{P}/app", env=env, check=True)
log = f"{P}/measure-{mode}.log"
def start():
    return subprocess.Popen(["stdbuf", "-oL", f"{P}/target/debug/app"], stdout=open(log, "a"), stderr=subprocess.STDOUT, env=env)
def wait_for(token, t0, timeout=60):
    while time.time() - t0 < timeout:
        for line in open(log):
            if line.startswith("OUT ") and f"hello {token} " in line:
                return int(line.split()[1][2:]) / 1e9
        time.sleep(0.002)
    raise SystemExit(f"timeout waiting for {token}")
open(log, "w").close()
host = start(); time.sleep(0.5)
pid0 = host.pid
rows = []
for i in range(n):
    token = f"{mode}{i}"
    src = open(SRC).read()
    t0 = time.time()
    open(SRC, "w").write(re.sub(r'hello [^ "]*', f'hello {token}', src))
    if mode == "swap":
        so = f"{P}/patches/m-{os.getpid()}-{i}.so"
        r = subprocess.run([f"{P}/patch.py", "app", so, "bin"] + extra, env=env, capture_output=True, text=True)
        if r.returncode: print(r.stderr); raise SystemExit(1)
        t1 = time.time()
        open(f"{P}/patch_req.tmp", "w").write(so); os.rename(f"{P}/patch_req.tmp", f"{P}/patch_req")
    else:
        subprocess.run(["cargo", "build", "-q"], cwd=f"{P}/app", env=env, check=True)
        t1 = time.time()
        host.send_signal(signal.SIGTERM); host.wait()
        host = start()
    t2 = wait_for(token, t0)
    rows.append((t1 - t0, t2 - t0))
    print(f"{mode} {i}: build {1000*(t1-t0):.0f} ms, edit->new output {1000*(t2-t0):.0f} ms, pid {host.pid}", flush=True)
    time.sleep(0.3)
mapped = 0
for line in open(f"/proc/{host.pid}/maps"):
    f = line.split()
    if len(f) >= 6 and "/patches/" in f[5]:
        a, b = (int(x, 16) for x in f[0].split("-")); mapped += b - a
print(f"mapped by patches in the host: {mapped/1e6:.1f} MB; host VmRSS: " + [l.split()[1] for l in open(f"/proc/{host.pid}/status") if l.startswith("VmRSS")][0] + " kB")
host.send_signal(signal.SIGTERM); host.wait()
b = [r[0] for r in rows]; e = [r[1] for r in rows]
print(f"{mode} n={n}: build median {1000*statistics.median(b):.0f} ms (min {1000*min(b):.0f}, max {1000*max(b):.0f}); "
      f"edit->output median {1000*statistics.median(e):.0f} ms (min {1000*min(e):.0f}, max {1000*max(e):.0f}); same pid: {host.pid == pid0}")
