//! What dylib-dev changes in a logic library's rustc invocation so that a one-line edit rebuilds
//! fast, and the linker shim that goes with it. Measured on a polars logic crate (0.74 s a rebuild
//! as cargo would run it), two costs that do not depend on the edit dominate:
//!
//! - rustc's monomorphization collector asks, for each generic it meets, whether an upstream crate
//!   already has that instance (`share-generics`, on by default at opt-level 0). Answering builds
//!   a table of every generic instance that polars & co. export, on every run: ~0.35 s. With
//!   `-Zshare-generics=no` the logic instantiates the few generics it uses itself (~0.02 s).
//!   It is an unstable flag, so the logic's rustc (and only it) runs with `RUSTC_BOOTSTRAP=1`.
//! - the linker reads the deps dylib's symbol table (300k symbols for polars) to resolve the
//!   logic's references: ~0.2 s. A shared library may leave symbols undefined, so the shim links
//!   against an empty stub with the same `SONAME` instead: the output still names the deps dylib
//!   as `NEEDED` and the loader binds the symbols at `dlopen`, from the copy the host has mapped.
//!   If a link with stubs fails for any reason, the shim links again exactly as rustc asked.
//!
//! Both apply to watch builds of logic libraries only (never the host, the deps or a static
//! build); `watch --plain-rustc` turns them off.
use super::args::arg_after;
use std::path::{Path, PathBuf};

/// Set on cargo by the watcher: tune the logic libraries' rustc invocations.
pub const ENV_TUNE: &str = "DYLIB_DEV_TUNE_LOGIC";
/// Set on a tuned rustc: the linker the shim runs (what `-C linker` was, or `cc`).
pub const ENV_LINKER: &str = "DYLIB_DEV_LINKER";
/// Set on a tuned rustc: the Rust dylibs (one per line) the shim links against stubs of.
pub const ENV_STUB_LIBS: &str = "DYLIB_DEV_STUB_LIBS";
/// Set on a tuned rustc: the directory holding the stubs.
pub const ENV_STUB_DIR: &str = "DYLIB_DEV_STUB_DIR";
/// Set on a tuned rustc: the file the shim writes the link's duration to (microseconds), which
/// the watcher shows as the link's share of a rebuild.
pub const ENV_LINK_TIME: &str = "DYLIB_DEV_LINK_TIME";

/// Rewrites the rustc arguments of a logic library and returns the variables its rustc needs.
/// `exe` is dylib-dev itself, which rustc then runs as its linker.
pub fn tune(args: &mut Vec<String>, exe: &Path) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if !args.iter().any(|a| a.contains("share-generics")) {
        // A choice of the user's (e.g. Bevy's `-Zshare-generics=y` on nightly) wins.
        args.push("-Zshare-generics=no".into());
        if std::env::var_os("RUSTC_BOOTSTRAP").is_none() {
            env.push(("RUSTC_BOOTSTRAP".into(), "1".into()));
        }
    }
    if cfg!(target_os = "linux") {
        let libs = stubbable_dylibs(args);
        if let (false, Some(out_dir)) = (
            libs.is_empty(),
            arg_after(args, "--out-dir").map(String::from),
        ) {
            let linker = take_linker(args).unwrap_or_else(|| "cc".into());
            args.push(format!("-Clinker={}", exe.display()));
            env.push((ENV_LINKER.into(), linker));
            env.push((ENV_STUB_LIBS.into(), libs.join("\n")));
            let stub_dir = Path::new(&out_dir).join("dylib-dev-link-stubs");
            if let Some(name) = arg_after(args, "--crate-name") {
                let file = stub_dir.join(format!("{name}.link-us"));
                env.push((ENV_LINK_TIME.into(), file.display().to_string()));
            }
            env.push((ENV_STUB_DIR.into(), stub_dir.display().to_string()));
        }
    }
    env
}

/// `--extern name=path` dylibs outside the toolchain: the deps dylib (libstd stays as it is).
fn stubbable_dylibs(args: &[String]) -> Vec<String> {
    let suffix = std::env::consts::DLL_SUFFIX;
    args.windows(2)
        .filter(|w| w[0] == "--extern")
        .filter_map(|w| w[1].split_once('=').map(|(_, path)| path.to_string()))
        .filter(|path| path.ends_with(suffix) && !path.contains("/lib/rustlib/"))
        .collect()
}

/// Removes `-C linker=X` (either spelling) from `args` and returns X.
fn take_linker(args: &mut Vec<String>) -> Option<String> {
    let mut found = None;
    let mut i = 0;
    while i < args.len() {
        if let Some(l) = args[i].strip_prefix("-Clinker=") {
            found = Some(l.to_string());
            args.remove(i);
        } else if args[i] == "-C" && args.get(i + 1).is_some_and(|a| a.starts_with("linker=")) {
            found = Some(args[i + 1]["linker=".len()..].to_string());
            args.drain(i..i + 2);
        } else {
            i += 1;
        }
    }
    found
}

/// Where the shim writes the link time of a recorded invocation (from its environment); the fast
/// path removes it before running rustc and reads it after.
pub fn link_time_file(env: &[(String, String)]) -> Option<PathBuf> {
    env.iter()
        .find(|(k, _)| k == ENV_LINK_TIME)
        .map(|(_, v)| PathBuf::from(v))
}

/// Reads a duration the shim wrote.
pub fn read_link_time(file: &Path) -> Option<std::time::Duration> {
    let text = std::fs::read_to_string(file).ok()?;
    let us: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(std::time::Duration::from_micros(us))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn tune_adds_share_generics_and_the_linker_shim() {
        let mut args = strings(
            "--crate-name logic --crate-type cdylib --out-dir /t/debug/deps -C linker=clang \
             --extern polars=/t/debug/deps/libpolars-1.rlib \
             --extern app_deps=/t/debug/deps/libapp_deps.so",
        );
        let env = tune(&mut args, Path::new("/bin/dylib-dev"));
        assert!(args.contains(&"-Zshare-generics=no".to_string()));
        assert!(args.contains(&"-Clinker=/bin/dylib-dev".to_string()));
        assert!(!args.iter().any(|a| a == "linker=clang"), "{args:?}");
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        if cfg!(target_os = "linux") {
            assert_eq!(get(ENV_LINKER), Some("clang"));
            assert_eq!(get(ENV_STUB_LIBS), Some("/t/debug/deps/libapp_deps.so"));
            assert_eq!(
                get(ENV_STUB_DIR),
                Some("/t/debug/deps/dylib-dev-link-stubs")
            );
        }
    }

    #[test]
    fn tune_keeps_the_users_share_generics_and_skips_the_shim_without_dylibs() {
        let mut args = strings(
            "--crate-name logic --out-dir /t/deps -Zshare-generics=y \
             --extern serde=/t/deps/libserde-1.rlib \
             --extern std=/rust/lib/rustlib/x86_64/lib/libstd-1.so",
        );
        let before = args.clone();
        let env = tune(&mut args, Path::new("/bin/dylib-dev"));
        assert_eq!(args, before);
        assert!(env.is_empty(), "{env:?}");
    }
}
