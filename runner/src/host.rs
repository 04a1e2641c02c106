//! The host process: started with the right environment, stopped politely then firmly.
//!
//! A host whose stdin is not a terminal runs in its own process group, so a stop reaches every
//! process it started. An interactive host (stdin is a terminal, e.g. a REPL prompt) stays in the
//! terminal's foreground group: a background group would be stopped by SIGTTIN the moment it
//! reads its prompt. Ctrl-C then reaches it directly, as it does under `cargo run`.
//!
//! On Linux the host gets SIGTERM when the runner dies, however it dies (`PR_SET_PDEATHSIG`), and
//! the [guard](crate::guard) kills it (and its group) if it has not exited within the stop
//! timeout: a `kill -9` of the runner leaves no orphan host behind. Elsewhere (untested) an
//! orphaned host keeps running; it only stops receiving reloads.
use crate::platform::{self, Stop};
use crate::toolchain::Toolchain;
use anyhow::Context;
use cargo_metadata::Package;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

/// The directories a program of a dynamic build loads libraries from: the profile dir, its
/// `deps/`, and the toolchain's shared std.
pub fn library_dirs(profile_dir: &Path, toolchain: &Toolchain) -> Vec<PathBuf> {
    vec![
        profile_dir.to_path_buf(),
        profile_dir.join("deps"),
        toolchain.runtime_dir(),
    ]
}

/// The loader variable and its value for a program of a dynamic build whose executable sits in
/// `profile_dir`: [`library_dirs`] in front of the variable's current value.
pub fn library_path_env(
    profile_dir: &Path,
    toolchain: &Toolchain,
) -> anyhow::Result<(&'static str, OsString)> {
    let var = platform::LIBRARY_PATH_VAR;
    let value =
        platform::prepend_search_path(&library_dirs(profile_dir, toolchain), std::env::var_os(var))
            .with_context(|| {
                format!("failed to build {var}: a library directory contains a separator")
            })?;
    Ok((var, value))
}

/// A command that starts `exe` (a program of a dynamic build of `package`) outside cargo: the
/// library search path set, and the variables `cargo run` sets that programs read at run time.
pub fn program_command(
    exe: &Path,
    package: &Package,
    toolchain: &Toolchain,
) -> anyhow::Result<Command> {
    let profile_dir = exe
        .parent()
        .with_context(|| format!("executable `{}` has no parent directory", exe.display()))?;
    let (var, value) = library_path_env(profile_dir, toolchain)?;
    let mut cmd = Command::new(exe);
    cmd.env(var, value);
    let manifest_dir = package
        .manifest_path
        .parent()
        .unwrap_or(&package.manifest_path);
    // Bevy finds its `assets/` through CARGO_MANIFEST_DIR when started by `cargo run`.
    cmd.env("CARGO_MANIFEST_DIR", manifest_dir)
        .env("CARGO_MANIFEST_PATH", &package.manifest_path)
        .env("CARGO_PKG_NAME", package.name.as_str())
        .env("CARGO_PKG_VERSION", package.version.to_string());
    Ok(cmd)
}

/// A running host.
pub struct HostProcess {
    child: tokio::process::Child,
    pid: u32,
    group: bool,
}

impl HostProcess {
    /// Starts `cmd` (stdout and stderr go straight to ours); `grace` is how long it may take to
    /// stop, should the runner die and the guard stop it.
    pub fn start(cmd: std::process::Command, grace: Duration) -> std::io::Result<HostProcess> {
        let mut cmd = tokio::process::Command::from(cmd);
        let group = !std::io::stdin().is_terminal();
        if group {
            cmd.process_group(0);
        }
        cmd.kill_on_drop(true);
        die_with_parent(&mut cmd);
        let child = cmd.spawn()?;
        let pid = child.id().unwrap_or(0);
        // SIGTERM from the kernel may be ignored; the guard follows it with SIGKILL.
        crate::guard::protect(crate::guard::Guarded::Host { pid, group, grace });
        Ok(HostProcess { child, pid, group })
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the host to exit on its own.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// SIGTERM (to its group), then SIGKILL once `grace` has passed; returns how it ended.
    pub async fn stop(mut self, grace: Duration) -> std::io::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            self.reap_group();
            return Ok(status);
        }
        // While the child is unreaped its pid cannot be reused, so the signal hits the right one.
        platform::send_stop(self.pid, self.group, Stop::Terminate)?;
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                tracing::debug!(
                    pid = self.pid,
                    "host ignored SIGTERM for {grace:?}; killing it"
                );
                platform::send_stop(self.pid, self.group, Stop::Kill)?;
                self.child.wait().await?
            }
        };
        self.reap_group();
        Ok(status)
    }

    /// Kills anything the host left behind in its group (its own children).
    fn reap_group(&self) {
        if self.group {
            let _ = platform::send_stop(self.pid, true, Stop::Kill);
        }
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        crate::guard::forget(self.pid);
    }
}

/// Makes the child get SIGTERM when this process dies (Linux).
///
/// The signal is tied to the thread that forks; the watch loop starts hosts from its main thread,
/// which lives as long as the runner.
#[cfg(target_os = "linux")]
pub fn die_with_parent(cmd: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: between fork and exec only async-signal-safe calls: prctl, getppid, raise.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The runner died between fork and prctl: the signal will not come.
            if libc::getppid() as u32 != parent {
                libc::raise(libc::SIGTERM);
            }
            Ok(())
        });
    }
}

/// Untested off Linux: no parent-death signal there.
#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_cmd: &mut tokio::process::Command) {}

/// `exit 0`, `exit 3`, `killed by SIGSEGV`: how a host ended, for status lines.
pub fn describe(status: &ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            let name = match sig {
                1 => "SIGHUP",
                2 => "SIGINT",
                6 => "SIGABRT",
                9 => "SIGKILL",
                11 => "SIGSEGV",
                15 => "SIGTERM",
                _ => "",
            };
            return if name.is_empty() {
                format!("killed by signal {sig}")
            } else {
                format!("killed by {name}")
            };
        }
    }
    status.to_string()
}
