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
use crate::fastpath::arg_after;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

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

/// Flags that make undefined symbols a link error even in a shared library: no stubs then.
const NO_UNDEFINED: [&str; 4] = ["-z,defs", "-zdefs", "--no-undefined,", "-z defs"];

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

/// In linker mode (rustc ran dylib-dev as `-C linker`): link with stubs, or as asked if that
/// fails. `None` when not in linker mode.
pub fn run_as_linker() -> Option<ExitCode> {
    let linker = std::env::var_os(ENV_LINKER)?;
    let started = std::time::Instant::now();
    // `<microseconds> stubbed|full`: the second word says which link succeeded (tests read it).
    let timed = |code: ExitCode, how: &str| {
        if let Some(file) = std::env::var_os(ENV_LINK_TIME) {
            let _ = std::fs::write(file, format!("{} {how}", started.elapsed().as_micros()));
        }
        code
    };
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let libs = std::env::var(ENV_STUB_LIBS).unwrap_or_default();
    let stub_dir = std::env::var_os(ENV_STUB_DIR).map(PathBuf::from);
    let linker_cmd = |args: &[OsString]| {
        let mut cmd = Command::new(&linker);
        cmd.args(args)
            .env_remove(ENV_LINKER)
            .env_remove(ENV_STUB_LIBS)
            .env_remove(ENV_STUB_DIR)
            .env_remove(ENV_LINK_TIME);
        cmd
    };
    let stubbed = stub_dir.and_then(|dir| with_stubs(&args, &libs, &dir, &linker));
    if let Some(stubbed) = stubbed {
        // Quiet: if it fails, the link below reports what the user's own link would.
        let ok = linker_cmd(&stubbed)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(timed(ExitCode::SUCCESS, "stubbed"));
        }
    }
    let code = match linker_cmd(&args).status() {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!(
                "dylib-dev: failed to run the linker `{}`: {e}",
                linker.to_string_lossy()
            );
            1
        }
    };
    Some(timed(
        ExitCode::from(u8::try_from(code).unwrap_or(1)),
        "full",
    ))
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

/// `args` with each listed dylib replaced by its stub, kept `NEEDED` even under `--as-needed`
/// (nothing is resolved from an empty stub). `None` when nothing is replaced or stubs cannot work.
fn with_stubs(args: &[OsString], libs: &str, dir: &Path, linker: &OsStr) -> Option<Vec<OsString>> {
    let libs: Vec<&str> = libs.lines().filter(|l| !l.is_empty()).collect();
    let strict = args.iter().any(|a| {
        let a = a.to_string_lossy();
        NO_UNDEFINED.iter().any(|f| a.contains(f)) || a.ends_with("--no-undefined")
    });
    if libs.is_empty() || strict {
        return None;
    }
    let mut out = Vec::with_capacity(args.len() + 2 * libs.len());
    let mut replaced = false;
    for arg in args {
        let path = arg.to_string_lossy();
        if libs.contains(&path.as_ref()) {
            let soname = Path::new(path.as_ref()).file_name()?.to_string_lossy();
            let stub = stub(dir, &soname, linker)?;
            out.push("-Wl,--push-state,--no-as-needed".into());
            out.push(stub.into_os_string());
            out.push("-Wl,--pop-state".into());
            replaced = true;
        } else {
            out.push(arg.clone());
        }
    }
    replaced.then_some(out)
}

/// An empty shared library whose `SONAME` is `soname` (rustc names a dylib's `SONAME` after its
/// file), built once per name with the same linker.
fn stub(dir: &Path, soname: &str, linker: &OsStr) -> Option<PathBuf> {
    let path = dir.join(soname);
    if path.is_file() {
        return Some(path);
    }
    std::fs::create_dir_all(dir).ok()?;
    let tmp = dir.join(format!(".{soname}.{}.tmp", std::process::id()));
    let ok = Command::new(linker)
        .args(["-shared", "-nostdlib", "-x", "c", "/dev/null", "-o"])
        .arg(&tmp)
        .arg(format!("-Wl,-soname,{soname}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let _ = std::fs::remove_file(&tmp);
        return None;
    }
    std::fs::rename(&tmp, &path).ok()?;
    Some(path)
}

/// Whether `cc` builds a stub here (what `doctor` reports).
pub fn stub_links_here() -> bool {
    tempfile::tempdir().is_ok_and(|dir| stub(dir.path(), "libprobe.so", OsStr::new("cc")).is_some())
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

    #[cfg(target_os = "linux")]
    #[test]
    fn stub_names_the_real_library() {
        let dir = tempfile::tempdir().unwrap();
        let stub = stub(dir.path(), "libapp_deps.so", OsStr::new("cc")).expect("cc builds a stub");
        let out = Command::new("readelf")
            .arg("-d")
            .arg(&stub)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Library soname: [libapp_deps.so]"), "{text}");
        // Built once: a second call returns the same file.
        assert_eq!(
            super::stub(dir.path(), "libapp_deps.so", OsStr::new("false")),
            Some(stub)
        );
    }

    #[test]
    fn strict_links_get_no_stubs() {
        let args: Vec<OsString> = ["a.o", "/t/libapp_deps.so", "-Wl,-z,defs"]
            .map(OsString::from)
            .to_vec();
        let dir = tempfile::tempdir().unwrap();
        assert!(with_stubs(&args, "/t/libapp_deps.so", dir.path(), OsStr::new("cc")).is_none());
    }
}
