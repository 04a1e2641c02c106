#!/usr/bin/env python3
"""N edits of a #[dylib_dev::hot] function under `dylib-dev watch`, each waited for in the running
program's output: edit-to-new-output latency, and what stays behind in the one process (resident
memory, patches mapped and the size of their mappings, from /proc/<pid>).

usage: bench/hot-soak.py [--edits N]        (DYLIB_DEV: the binary, default target/debug/dylib-dev)

The project is generated in a temp dir: a `cargo new`-style binary whose hot `frame` prints a
marker every 10 ms and calls a helper; each edit rewrites the marker."""
import argparse, os, re, statistics, subprocess, sys, tempfile, threading, time

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--edits", type=int, default=100)
args = ap.parse_args()
exe = os.environ.get("DYLIB_DEV", os.path.join(repo, "target/debug/dylib-dev"))
if not os.path.exists(exe):
    subprocess.run(["cargo", "build", "-q", "-p", "dylib-dev"], cwd=repo, check=True)

MAIN = """pub struct State { pub frames: u64 }

fn helper(n: u64) -> u64 { n % 1000 }

#[dylib_dev::hot]
fn frame(state: &mut State) -> String {
    state.frames += 1;
    format!("mark-0 {} {}", std::process::id(), helper(state.frames))
}

fn main() {
    let mut state = State { frames: 0 };
    loop {
        println!("{}", frame(&mut state));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
"""

work = tempfile.mkdtemp(prefix="dylib-dev-hot-soak-")
os.makedirs(os.path.join(work, "src"))
with open(os.path.join(work, "Cargo.toml"), "w") as f:
    f.write(f"""[package]
name = "hot-soak"
version = "0.1.0"
edition = "2024"

[dependencies]
dylib_dev = {{ package = "dylib-dev-runtime", path = "{repo}/runner/runtime" }}

[workspace]
""")
main_rs = os.path.join(work, "src/main.rs")
with open(main_rs, "w") as f:
    f.write(MAIN)

env = dict(os.environ, NO_COLOR="1")
watch = subprocess.Popen([exe, "watch"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
lines, errs = [], []
cond = threading.Condition()

def pump(stream, out):
    for line in stream:
        with cond:
            out.append((time.monotonic(), line.rstrip("\n")))
            cond.notify_all()

threading.Thread(target=pump, args=(watch.stdout, lines), daemon=True).start()
threading.Thread(target=pump, args=(watch.stderr, errs), daemon=True).start()

def wait_for(prefix, since, timeout):
    deadline = time.monotonic() + timeout
    with cond:
        while True:
            for at, line in lines[since:]:
                if line.startswith(prefix):
                    return at, line
            left = deadline - time.monotonic()
            if left <= 0:
                sys.exit(f"timed out waiting for {prefix!r}; watcher said:\n" + "\n".join(l for _, l in errs[-20:]))
            cond.wait(left)

def proc_numbers(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    patches, mapped = set(), 0
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and "/dylib-dev-hot-" in parts[5]:
                start, end = (int(x, 16) for x in parts[0].split("-"))
                patches.add(parts[5])
                mapped += end - start
    return rss, len(patches), mapped

try:
    _, first = wait_for("mark-0 ", 0, 900)
    pid = int(first.split()[1])
    time.sleep(1)
    rss0, _, _ = proc_numbers(pid)
    latencies, text = [], MAIN
    for i in range(1, args.edits + 1):
        since = len(lines)
        text = text.replace(f"mark-{i - 1} ", f"mark-{i} ")
        written = time.monotonic()
        with open(main_rs, "w") as f:
            f.write(text)
        at, line = wait_for(f"mark-{i} ", since, 120)
        if int(line.split()[1]) != pid:
            sys.exit(f"edit {i}: a new process ({line}); the watcher said:\n" + "\n".join(l for _, l in errs[-10:]))
        latencies.append((at - written) * 1000)
        print(f"  edit {i:3}: {latencies[-1]:6.0f} ms", file=sys.stderr)
    time.sleep(0.5)
    rss, patches, mapped = proc_numbers(pid)
    print(f"hot-soak: {args.edits} edits of a #[dylib_dev::hot] function, one process (pid {pid})")
    print(f"edit to new output: median {statistics.median(latencies):.0f} ms, min {min(latencies):.0f}, max {max(latencies):.0f}")
    print(f"after {args.edits} swaps: {patches} patches mapped, {mapped / 2**20:.1f} MiB of mappings; "
          f"RSS {rss0} KiB -> {rss} KiB (+{(rss - rss0) / args.edits:.0f} KiB per swap)")
    print(f"load average: {open('/proc/loadavg').read().split()[0]}")
finally:
    watch.terminate()
    watch.wait(timeout=30)
