#!/bin/sh
# RUSTC_WORKSPACE_WRAPPER: record each workspace crate's rustc invocation (cwd, env, args).
# $1 is rustc; the rest its args. One file per crate name.
name=""
prev=""
for a in "$@"; do
  if [ "$prev" = "--crate-name" ]; then name="$a"; fi
  prev="$a"
done
if [ -n "$name" ] && [ -n "$HOT_REC_DIR" ]; then
  mkdir -p "$HOT_REC_DIR"
  f="$HOT_REC_DIR/$name"
  pwd > "$f.cwd"
  env -0 > "$f.env"
  printf '%s\0' "$@" > "$f.args"
fi
exec "$@"
