#!/usr/bin/env python3
"""Where a logic rebuild's time goes: re-run a logic library's recorded rustc invocation (the one
`dylib-dev watch` replays on its fast path) with `-Z time-passes`, into a scratch output dir so
the real artifacts are left alone, and print the passes that took 8 ms or more.

Usage:
  bench/rustc-passes.py INVOCATION.json [--plain] [--cwd DIR] [--out DIR] [-- RUSTC_ARGS...]

  INVOCATION.json  <target>/dylib-dev/invocations/debug/<crate>.json, written by `dylib-dev watch`
  --plain          undo dylib-dev's logic tuning: no -Zshare-generics=no, cargo's own linker
  --cwd DIR        the workspace to build from (default: the recorded one; bench copies are gone)
  --out DIR        scratch output and incremental dir (default: /tmp/dylib-dev-rustc-passes)
  RUSTC_ARGS       added to rustc's arguments, e.g. -Zshare-generics=no

Incremental state lives in --out: the first run there is a full build. Edit a function body of
the logic (e.g. a string literal) before each timed run: a comment-only edit lets rustc reuse
the monomorphization collector's result. The README's "Where a heavy logic rebuild goes" table
was made this way on examples/polars-repl (`--plain`, `--plain -- -Zshare-generics=no`, tuned).
"""
import json
import os
import subprocess
import sys
import time

TUNING_ENV = ("DYLIB_DEV_LINKER", "DYLIB_DEV_STUB_LIBS", "DYLIB_DEV_STUB_DIR", "DYLIB_DEV_LINK_TIME")


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    path, rest = argv[0], argv[1:]
    extra = []
    if "--" in rest:
        extra = rest[rest.index("--") + 1:]
        rest = rest[: rest.index("--")]
    plain = "--plain" in rest
    cwd = rest[rest.index("--cwd") + 1] if "--cwd" in rest else None
    out = rest[rest.index("--out") + 1] if "--out" in rest else "/tmp/dylib-dev-rustc-passes"

    with open(path) as f:
        inv = json.load(f)
    args = list(inv["args"])
    env = dict(inv["env"])
    linker = env.get("DYLIB_DEV_LINKER")
    for i, arg in enumerate(args):
        if arg == "--out-dir":
            args[i + 1] = out
        elif arg == "-C" and args[i + 1].startswith("incremental="):
            args[i + 1] = "incremental=" + os.path.join(out, "incremental")
    if plain:
        args = [a for a in args if a != "-Zshare-generics=no"]
        args = [a for a in args if not a.startswith("-Clinker=")]
        if linker and linker != "cc":
            args.append("-Clinker=" + linker)
        for key in TUNING_ENV:
            env.pop(key, None)
    else:
        # The shim writes its link time next to the stubs; keep the real one untouched.
        env["DYLIB_DEV_LINK_TIME"] = os.path.join(out, "link-us")
    env["RUSTC_BOOTSTRAP"] = "1"  # -Z time-passes is unstable
    os.makedirs(out, exist_ok=True)

    started = time.monotonic()
    done = subprocess.run(
        [inv["program"], *args, "-Ztime-passes", *extra],
        cwd=cwd or inv["cwd"],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - started
    for line in done.stdout.splitlines() + done.stderr.splitlines():
        if line.startswith("time:"):
            if float(line.split()[1].rstrip(";")) >= 0.008:
                print(line)
        elif not line.startswith("{"):
            print(line)
    errors = [
        json.loads(l).get("rendered", "")
        for l in done.stderr.splitlines()
        if l.startswith("{") and '"level":"error"' in l
    ]
    for e in errors:
        sys.stderr.write(e)
    print(f"rustc exit {done.returncode}, wall {wall:.3f} s ({'plain' if plain else 'tuned'})")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
