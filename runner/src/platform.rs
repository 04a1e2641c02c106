//! What differs between operating systems, in one place: the dynamic loader's search path, where
//! the toolchain keeps its shared std, and process groups and signals for stoppable child processes.
//!
//! Only Linux is tested here. The macOS and Windows branches follow those platforms' documented
//! rules (and what cargo itself does) but have never run.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable the dynamic loader searches for shared libraries.
#[cfg(target_os = "macos")]
pub const LIBRARY_PATH_VAR: &str = "DYLD_FALLBACK_LIBRARY_PATH";
/// The environment variable the dynamic loader searches for shared libraries.
#[cfg(windows)]
pub const LIBRARY_PATH_VAR: &str = "PATH";
/// The environment variable the dynamic loader searches for shared libraries.
#[cfg(not(any(target_os = "macos", windows)))]
pub const LIBRARY_PATH_VAR: &str = "LD_LIBRARY_PATH";

/// The toolchain directory holding the shared std (`libstd-*.so`) that `-C prefer-dynamic` links.
pub fn toolchain_runtime_dir(sysroot: &Path, host: &str) -> PathBuf {
    if cfg!(windows) {
        // rustup puts the std DLL next to rustc.exe, not in rustlib.
        sysroot.join("bin")
    } else {
        sysroot.join("lib").join("rustlib").join(host).join("lib")
    }
}

/// Whether `file_name` is the shared std library (`libstd-<hash>.so`, `.dylib`, `std-<hash>.dll`).
pub fn is_shared_std(file_name: &str) -> bool {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    file_name
        .strip_prefix(DLL_PREFIX)
        .and_then(|rest| rest.strip_prefix("std-"))
        .is_some()
        && file_name.ends_with(DLL_SUFFIX)
}

/// `dirs` in front of `existing` (a search-path value such as the current `LD_LIBRARY_PATH`).
pub fn prepend_search_path(
    dirs: &[PathBuf],
    existing: Option<OsString>,
) -> Result<OsString, std::env::JoinPathsError> {
    let mut all: Vec<PathBuf> = dirs.to_vec();
    match existing {
        Some(value) if !value.is_empty() => all.extend(std::env::split_paths(&value)),
        _ => all.extend(default_search_path_tail()),
    }
    std::env::join_paths(all)
}

/// What the loader searches when the variable is unset, which setting it would otherwise lose.
fn default_search_path_tail() -> Vec<PathBuf> {
    if cfg!(target_os = "macos") {
        // dyld's fallback list applies only while DYLD_FALLBACK_LIBRARY_PATH is unset; cargo
        // appends the same defaults when it sets the variable.
        let mut dirs = Vec::new();
        if let Some(home) = std::env::var_os("HOME") {
            dirs.push(PathBuf::from(home).join("lib"));
        }
        dirs.extend([PathBuf::from("/usr/local/lib"), PathBuf::from("/usr/lib")]);
        dirs
    } else {
        Vec::new()
    }
}

/// A signal to stop a child: the polite one first, the forced one after a grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: lets cargo and rustc clean up (remove half-written files).
    Terminate,
    /// SIGKILL: cannot be ignored.
    Kill,
}

/// Makes `cmd` start in a new process group whose id is the child's pid.
#[cfg(unix)]
pub fn set_own_process_group(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
}

/// Makes `cmd` start in a new process group (Windows: a new console process group).
#[cfg(windows)]
pub fn set_own_process_group(cmd: &mut Command) {
    use std::os::windows::process::CommandExt;
    const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
    cmd.creation_flags(CREATE_NEW_PROCESS_GROUP);
}

/// Sends `stop` to the process `pid`, or to its whole process group when `group` is set.
///
/// The caller guarantees `pid` is not reaped yet (see [`wait_exit_without_reaping`]), so the id
/// cannot have been reused by an unrelated process.
#[cfg(unix)]
pub fn send_stop(pid: u32, group: bool, stop: Stop) -> std::io::Result<()> {
    let signal = match stop {
        Stop::Terminate => libc::SIGTERM,
        Stop::Kill => libc::SIGKILL,
    };
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: kill/killpg take plain integers and have no memory effects.
    let rc = unsafe {
        if group {
            libc::killpg(pid, signal)
        } else {
            libc::kill(pid, signal)
        }
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    // ESRCH: everything in the group is gone already, which is what we wanted.
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

/// Stops the process tree of `pid` with `taskkill` (Windows has no process-group signals).
#[cfg(windows)]
pub fn send_stop(pid: u32, _group: bool, stop: Stop) -> std::io::Result<()> {
    let mut cmd = Command::new("taskkill");
    cmd.args(["/PID", &pid.to_string(), "/T"]);
    if stop == Stop::Kill {
        cmd.arg("/F");
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    Ok(())
}

/// Blocks until `pid` (our child) has exited, leaving it a zombie so its id stays reserved.
///
/// Signalling a process id after it was reaped could hit an unrelated process that reused it;
/// waiting with `WNOWAIT` lets the caller mark the child finished first and reap it after.
#[cfg(unix)]
pub fn wait_exit_without_reaping(pid: u32) -> std::io::Result<()> {
    let id = libc::id_t::from(pid);
    loop {
        // SAFETY: an all-zero siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t for the duration of the call.
        let rc = unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Windows keeps a process id reserved while a handle to the process is open, and `Child` holds
/// one, so there is nothing to wait for here.
#[cfg(windows)]
pub fn wait_exit_without_reaping(_pid: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_shared_std() {
        assert!(is_shared_std("libstd-d1237ef7159db0a2.so"));
        assert!(!is_shared_std("libstd-d1237ef7159db0a2.rlib"));
        assert!(!is_shared_std("libstd_detect-1234.so"));
        assert!(!is_shared_std("libtest-1234.so"));
    }

    #[test]
    fn prepends_to_existing_value() {
        let joined = prepend_search_path(
            &[PathBuf::from("/a"), PathBuf::from("/b")],
            Some("/c:/d".into()),
        )
        .unwrap();
        let parts: Vec<PathBuf> = std::env::split_paths(&joined).collect();
        assert_eq!(parts, ["/a", "/b", "/c", "/d"].map(PathBuf::from));
    }

    #[test]
    fn unset_value_gives_just_the_dirs_on_linux() {
        let joined = prepend_search_path(&[PathBuf::from("/a")], None).unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(joined, "/a");
        }
    }

    #[cfg(unix)]
    #[test]
    fn stops_a_process_group_and_waits_without_reaping() {
        let mut cmd = Command::new("sh");
        // The sleeping grandchild is in the group too: killing the group must reach it.
        cmd.args(["-c", "sleep 30 & wait"]);
        set_own_process_group(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let started = std::time::Instant::now();
        send_stop(child.id(), true, Stop::Terminate).unwrap();
        wait_exit_without_reaping(child.id()).unwrap();
        // Still a zombie, so signalling it again is harmless and the id is still ours.
        send_stop(child.id(), true, Stop::Kill).unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}
