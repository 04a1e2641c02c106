//! The guard: a small process that stops what the runner started when the runner dies without
//! cleaning up (`kill -9`, a crash, the OOM killer).
//!
//! cargo runs in a process group of its own, so that a cancel reaches every rustc and build
//! script it started; nothing in that group learns that the runner died, so a runner killed
//! during a 17-minute first build would leave the build running. The host gets `SIGTERM` from the
//! kernel when the runner dies (`PR_SET_PDEATHSIG`), which a host may ignore.
//!
//! The guard is the runner's own executable started with [`ENV_GUARD`] set, in a session of its
//! own (no terminal: Ctrl-C or a closed terminal never reaches it). The runner tells it over a
//! pipe which process groups to look after and forgets them when they ended normally. When the
//! pipe reaches end-of-file, the runner is gone, however it died: the guard kills every build
//! group still listed and stops every host (`SIGTERM`, then `SIGKILL` after its grace), then exits.
//! A runner that exits normally has forgotten everything by then, and the guard just exits.
//!
//! Unix only; elsewhere (untested) nothing is guarded.

use std::process::ExitCode;
use std::time::Duration;

/// Set on the guard process; its value is irrelevant.
pub const ENV_GUARD: &str = "DYLIB_DEV_GUARD";

/// What the guard looks after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarded {
    /// A build's process group (cargo, its rustc and build scripts): killed at once.
    Build {
        /// The group's id (cargo's pid).
        group: u32,
    },
    /// A host: `SIGTERM`, then `SIGKILL` after `grace`; its whole group if it has its own.
    Host {
        /// The host's pid.
        pid: u32,
        /// Whether `pid` is also the id of a process group of its own.
        group: bool,
        /// How long it may take to stop.
        grace: Duration,
    },
}

impl Guarded {
    fn id(self) -> u32 {
        match self {
            Guarded::Build { group } => group,
            Guarded::Host { pid, .. } => pid,
        }
    }

    /// One line of the pipe protocol.
    fn encode(self) -> String {
        match self {
            Guarded::Build { group } => format!("build {group}\n"),
            Guarded::Host { pid, group, grace } => {
                format!("host {pid} {} {}\n", u8::from(group), grace.as_millis())
            }
        }
    }

    fn decode(line: &str) -> Option<Guarded> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["build", group] => Some(Guarded::Build {
                group: group.parse().ok()?,
            }),
            ["host", pid, group, grace] => Some(Guarded::Host {
                pid: pid.parse().ok()?,
                group: *group == "1",
                grace: Duration::from_millis(grace.parse().ok()?),
            }),
            _ => None,
        }
    }
}

/// Asks the guard to look after `what` until [`forget`]; starts the guard on first use. Best
/// effort: without a guard (not [enabled](enable), or it could not start) the runner works as
/// before.
pub fn protect(what: Guarded) {
    imp::send(&what.encode());
}

/// Lets [`protect`] start a guard: only a binary that answers [`run_as_guard`] first thing may
/// call this, since the guard is this process's own executable started again (a test binary
/// would instead run its tests again, and start guards of its own).
pub fn enable() {
    imp::ENABLED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The process group or host `id` ended normally: nothing to do for it any more.
pub fn forget(id: u32) {
    imp::send(&format!("forget {id}\n"));
}

/// Runs as the guard if this process was started as one; `None` otherwise.
pub fn run_as_guard() -> Option<ExitCode> {
    std::env::var_os(ENV_GUARD)?;
    imp::serve();
    Some(ExitCode::SUCCESS)
}

#[cfg(unix)]
mod imp {
    use super::{ENV_GUARD, Guarded};
    use crate::platform::{self, Stop};
    use std::io::{BufRead, Write};
    use std::os::unix::process::CommandExt;
    use std::process::{ChildStdin, Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, OnceLock, PoisonError};
    use std::time::{Duration, Instant};

    /// The pipe to the guard, or `None` if it could not be started.
    pub(super) static PIPE: OnceLock<Option<Mutex<ChildStdin>>> = OnceLock::new();

    /// Set by [`super::enable`].
    pub(super) static ENABLED: AtomicBool = AtomicBool::new(false);

    pub(super) fn send(line: &str) {
        if !ENABLED.load(Ordering::Relaxed) {
            return;
        }
        let pipe = PIPE.get_or_init(|| match start() {
            Ok(pipe) => Some(Mutex::new(pipe)),
            Err(e) => {
                tracing::warn!(
                    "cannot start the guard process ({e}); a killed runner may leave builds running"
                );
                None
            }
        });
        if let Some(pipe) = pipe {
            let mut pipe = pipe.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = pipe.write_all(line.as_bytes());
        }
    }

    fn start() -> std::io::Result<ChildStdin> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.env(ENV_GUARD, "1")
            // Holds no project directory open (an unmount, a test looking for leftovers).
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: between fork and exec only async-signal-safe calls: setsid.
        unsafe {
            cmd.pre_exec(|| {
                // A session of its own: no terminal, so neither Ctrl-C nor a hang-up reach it.
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        // Never waited for: it outlives this process on purpose (and is reaped by init then).
        Ok(child.stdin.take().expect("piped"))
    }

    /// The guard's main loop: track what it is told, act on end-of-file.
    pub(super) fn serve() {
        let mut guarded: Vec<Guarded> = Vec::new();
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if let Some(id) = line.strip_prefix("forget ") {
                guarded.retain(|g| Some(g.id()) != id.trim().parse().ok());
            } else if let Some(what) = Guarded::decode(&line) {
                guarded.retain(|g| g.id() != what.id());
                guarded.push(what);
            }
        }
        stop_all(&guarded);
    }

    /// The runner is gone: builds are killed, hosts stopped within their grace.
    fn stop_all(guarded: &[Guarded]) {
        let mut hosts = Vec::new();
        for what in guarded {
            match *what {
                Guarded::Build { group } => {
                    let _ = platform::send_stop(group, true, Stop::Kill);
                }
                Guarded::Host { pid, group, grace } => {
                    let _ = platform::send_stop(pid, group, Stop::Terminate);
                    hosts.push((pid, group, Instant::now() + grace));
                }
            }
        }
        // Not our children: all we can do is look whether they are still there.
        while !hosts.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
            hosts.retain(|&(pid, group, deadline)| {
                if !alive(pid) {
                    if group {
                        let _ = platform::send_stop(pid, true, Stop::Kill);
                    }
                    return false;
                }
                if Instant::now() < deadline {
                    return true;
                }
                let _ = platform::send_stop(pid, group, Stop::Kill);
                false
            });
        }
    }

    fn alive(pid: u32) -> bool {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    }
}

#[cfg(not(unix))]
mod imp {
    pub(super) static ENABLED: std::sync::atomic::AtomicBool =
        std::sync::atomic::AtomicBool::new(false);

    pub(super) fn send(_line: &str) {}

    pub(super) fn serve() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn no_guard_starts_unless_the_binary_enabled_it() {
        // This test binary would run its tests again as the "guard", and so on, without end.
        protect(Guarded::Build { group: 1 });
        forget(1);
        assert!(imp::PIPE.get().is_none(), "a guard was started");
    }

    #[test]
    fn guarded_lines_round_trip() {
        for what in [
            Guarded::Build { group: 4242 },
            Guarded::Host {
                pid: 7,
                group: true,
                grace: Duration::from_millis(3000),
            },
            Guarded::Host {
                pid: 8,
                group: false,
                grace: Duration::ZERO,
            },
        ] {
            assert_eq!(Guarded::decode(&what.encode()), Some(what));
        }
        assert_eq!(Guarded::decode("build x"), None);
        assert_eq!(Guarded::decode("forget 7"), None);
    }
}
