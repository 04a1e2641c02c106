//! Reading rustc's command line, shared by the fast path and the tuning.

/// The argument after the first `flag` in rustc's `args` (`--out-dir D`, `--crate-name N`).
pub fn arg_after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}
