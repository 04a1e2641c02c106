//! The rustc shim: what `dylib-dev` does when cargo starts it as rustc's wrapper or a tuned rustc
//! starts it as its linker, and what the watcher uses of that (the fast path's recorded runs).
//!
//! In those roles the executable is a tiny program of its own, run by rustc's toolchain: its
//! lines on stderr are rustc's output, so the two entries below print, and nothing else here does.
pub mod args;
pub mod fastpath;
pub mod patch;
pub mod stub;
pub mod tuning;

use fastpath::{ENV_HOT_PATCHABLE, ENV_WRAPPER, hot_record_key, is_logic_library, record};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use tuning::{ENV_LINK_TIME, ENV_LINKER, ENV_STUB_DIR, ENV_STUB_LIBS};

/// How the shim ends; the command line's exit table turns it into the process's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShimExit {
    /// The program it ran (rustc, the linker) exited with this code, or the stubbed link did.
    Code(u8),
    /// rustc could not be started.
    RustcNotStarted,
}

/// In wrapper mode (started by cargo as `dylib-dev <rustc> <args>`): for a logic library, tune
/// its flags ([`tuning`]) and record the invocation, then become rustc. `None` when not in
/// wrapper mode.
pub fn run_as_rustc_wrapper() -> Option<ShimExit> {
    std::env::var_os(ENV_WRAPPER)?;
    let mut argv = std::env::args_os().skip(1);
    let program = argv.next()?;
    let mut args: Vec<OsString> = argv.collect();
    // Every workspace crate: `#[dylib_dev::hot]` expands to patchable functions.
    let mut extra_env = vec![(ENV_HOT_PATCHABLE.to_string(), "1".to_string())];
    // Arguments that are not UTF-8 leave the invocation as cargo made it.
    let utf8: Option<Vec<String>> = args.iter().map(|a| a.to_str().map(String::from)).collect();
    let hot_key = utf8.as_deref().and_then(hot_record_key);
    if let Some(mut strings) = utf8.clone().filter(|a| is_logic_library(a)) {
        let tuning = std::env::var_os(tuning::ENV_TUNE).is_some();
        if tuning && let Ok(exe) = std::env::current_exe() {
            extra_env.extend(tuning::tune(&mut strings, &exe));
            args = strings.iter().map(OsString::from).collect();
        }
        if let Err(e) = record(&program, strings, &extra_env, tuning, None) {
            // Recording is an optimisation: never fail the build for it.
            eprintln!("dylib-dev: could not record the rustc invocation: {e}");
        }
    } else if let (Some(strings), Some(key)) = (utf8, hot_key) {
        // Patches are tuned when they are built, not the host's own build.
        let tuning = std::env::var_os(tuning::ENV_TUNE).is_some();
        if let Err(e) = record(&program, strings, &extra_env, tuning, Some(&key)) {
            eprintln!("dylib-dev: could not record the rustc invocation: {e}");
        }
    }
    let mut cmd = Command::new(&program);
    cmd.args(&args)
        .envs(extra_env.iter().map(|(k, v)| (k, v)))
        .env_remove(ENV_WRAPPER);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let err = cmd.exec();
        eprintln!(
            "dylib-dev: failed to run {}: {err}",
            program.to_string_lossy()
        );
        Some(ShimExit::RustcNotStarted)
    }
    #[cfg(not(unix))]
    {
        Some(match cmd.status().ok().and_then(|s| s.code()) {
            Some(code) => ShimExit::Code(code as u8),
            None => ShimExit::RustcNotStarted,
        })
    }
}

/// In linker mode (rustc ran dylib-dev as `-C linker`): link with stubs, or as asked if that
/// fails. `None` when not in linker mode.
pub fn run_as_linker() -> Option<ShimExit> {
    let linker = std::env::var_os(ENV_LINKER)?;
    let started = std::time::Instant::now();
    // `<microseconds> stubbed|full`: the second word says which link succeeded (tests read it).
    let timed = |code: u8, how: &str| {
        if let Some(file) = std::env::var_os(ENV_LINK_TIME) {
            let _ = std::fs::write(file, format!("{} {how}", started.elapsed().as_micros()));
        }
        ShimExit::Code(code)
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
    let stubbed = stub_dir.and_then(|dir| stub::with_stubs(&args, &libs, &dir, &linker));
    if let Some(stubbed) = stubbed {
        // Quiet: if it fails, the link below reports what the user's own link would.
        let ok = linker_cmd(&stubbed)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(timed(0, "stubbed"));
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
    Some(timed(u8::try_from(code).unwrap_or(1), "full"))
}
