#!/usr/bin/env python3
"""Library edit to new output in the 2-crate workspace: swap (cdylib or lib+cdylib patch) vs
cargo build + restart. usage: measure_ws.py swap|restart N [cdylib|lib+cdylib]"""
import os, re, subprocess, sys, time, statistics, signal
P = "/work/proto12"
SRC = f"{P}/ws/game/src/lib.rs"
mode, n = sys.argv[1], int(sys.argv[2])
pmode = sys.argv[3] if len(sys.argv) > 3 else "cdylib"
env = dict(os.environ, CARGO_TARGET_DIR=f"{P}/target-ws", HOT_PATCH_REQ=f"{P}/patch_req_ws",
           HOT_REC_DIR=f"{P}/rec-ws", RUSTC_WORKSPACE_WRAPPER=f"{P}/wrapper.sh")
subprocess.run(["cp", f"{P}/ws/host/src/main.rs.orig", f"{P}/ws/host/src/main.rs"])
src = re.sub(r'lib v[^ "]*', 'lib base', open(f"{SRC}.orig").read())
open(SRC, "w").write(src)
subprocess.run(["cargo", "build", "-q"], cwd=f"{P}/ws", env=env, check=True)
log = f"{P}/measure-ws-{mode}.log"
open(log, "w").close()
def start():
    return subprocess.Popen(["stdbuf", "-oL", f"{P}/target-ws/debug/host"], stdout=open(log, "a"), stderr=subprocess.STDOUT, env=env)
def wait_for(token, t0):
    while time.time() - t0 < 60:
        for line in open(log):
            if line.startswith("OUT ") and f"lib {token} " in line:
                return int(line.split()[1][2:]) / 1e9
        time.sleep(0.002)
    raise SystemExit("timeout")
host = start(); time.sleep(0.5); pid0 = host.pid
rows = []
for i in range(n):
    token = f"{mode}{i}"
    t0 = time.time()
    open(SRC, "w").write(re.sub(r'lib [^ "]*', f'lib {token}', src))
    if mode == "swap":
        so = f"{P}/patches/mws-{os.getpid()}-{i}.so"
        r = subprocess.run([f"{P}/patch.py", "game", so, pmode], env=env, capture_output=True, text=True)
        if r.returncode: print(r.stderr); raise SystemExit(1)
        t1 = time.time()
        open(f"{P}/patch_req_ws.tmp", "w").write(f"game {so}"); os.rename(f"{P}/patch_req_ws.tmp", f"{P}/patch_req_ws")
    else:
        subprocess.run(["cargo", "build", "-q"], cwd=f"{P}/ws", env=env, check=True)
        t1 = time.time()
        host.send_signal(signal.SIGTERM); host.wait(); host = start()
    t2 = wait_for(token, t0)
    rows.append((t1 - t0, t2 - t0))
    time.sleep(0.3)
mapped = 0
for line in open(f"/proc/{host.pid}/maps"):
    f = line.split()
    if len(f) >= 6 and "/patches/" in f[5]:
        a, b = (int(x, 16) for x in f[0].split("-")); mapped += b - a
print(f"mapped by patches in the host: {mapped/1e6:.1f} MB; host VmRSS: " + [l.split()[1] for l in open(f"/proc/{host.pid}/status") if l.startswith("VmRSS")][0] + " kB")
host.send_signal(signal.SIGTERM); host.wait()
open(SRC, "w").write(open(f"{SRC}.orig").read())
b = [r[0] for r in rows]; e = [r[1] for r in rows]
print(f"ws {mode} {pmode if mode=='swap' else ''} n={n}: build median {1000*statistics.median(b):.0f} ms (min {1000*min(b):.0f}, max {1000*max(b):.0f}); "
      f"edit->output median {1000*statistics.median(e):.0f} ms (min {1000*min(e):.0f}, max {1000*max(e):.0f}); same pid: {host.pid == pid0}")
