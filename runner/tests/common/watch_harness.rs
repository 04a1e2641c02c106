//! A running `dylib-dev watch` for end-to-end tests: its stdout (the host's) and stderr (the
//! watcher's) collected line by line, waits with deadlines, and the signals a test sends it.
//!
//! Used by `faults.rs` (`#[path]`-included, so `common/mod.rs` stays as it is).
#![allow(dead_code)]

use super::common::Fixture;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Builds of one fixture write the same artifact names into the shared target dir, so two watch
/// sessions of a test binary must not run at once.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Generous: the first build of a fresh copy compiles the fixture's crates.
pub const START: Duration = Duration::from_secs(240);
/// For a rebuild and a swap or restart.
pub const CHANGE: Duration = Duration::from_secs(60);

/// Lines a stream produced so far.
#[derive(Default)]
pub struct Lines {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

/// A running `dylib-dev watch`.
pub struct Watch {
    pub child: Child,
    out: Arc<Lines>,
    err: Arc<Lines>,
}

impl Watch {
    /// `dylib-dev watch` in the fixture, with extra environment variables (for the host too).
    pub fn start(fx: &Fixture, envs: &[(&str, &str)]) -> Watch {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dylib-dev"));
        cmd.current_dir(fx.path())
            .arg("watch")
            .env("CARGO_TARGET_DIR", super::common::shared_target_dir())
            .env("DYLIB_DEV_LOG", "dylib_dev::watch=debug")
            .env("NO_COLOR", "1")
            // The standard panic report once, without a backtrace, keeps the logs short.
            .env("RUST_BACKTRACE", "0")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start dylib-dev watch");
        let out = collect(child.stdout.take().unwrap(), "host");
        let err = collect(child.stderr.take().unwrap(), "watch");
        Watch { child, out, err }
    }

    /// Waits for a stdout line matching `pred` at index >= `from`; returns (index, line).
    pub fn wait_out(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> (usize, String) {
        wait(&self.out, from, timeout, &pred).unwrap_or_else(|| self.fail("no matching host line"))
    }

    /// Waits for a stderr line matching `pred` at index >= `from`; returns (index, line).
    pub fn wait_err(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> (usize, String) {
        wait(&self.err, from, timeout, &pred)
            .unwrap_or_else(|| self.fail("no matching watcher line"))
    }

    pub fn out_len(&self) -> usize {
        self.out.lines.lock().unwrap().len()
    }

    pub fn err_len(&self) -> usize {
        self.err.lines.lock().unwrap().len()
    }

    pub fn out_since(&self, from: usize) -> Vec<String> {
        self.out.lines.lock().unwrap()[from..].to_vec()
    }

    pub fn err_since(&self, from: usize) -> Vec<String> {
        self.err.lines.lock().unwrap()[from..].to_vec()
    }

    pub fn fail(&self, what: &str) -> ! {
        let tail = |l: &Lines| {
            let lines = l.lines.lock().unwrap();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        panic!(
            "{what}\n--- host stdout (tail)\n{}\n--- watcher stderr (tail)\n{}",
            tail(&self.out),
            tail(&self.err)
        );
    }

    /// Sends `signal` to the watcher.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill() with a pid we own and a valid signal has no memory effects.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
    }

    /// Waits (at most 30 s) for the watcher to exit.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "watcher did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal(libc::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

fn collect(stream: impl std::io::Read + Send + 'static, tag: &'static str) -> Arc<Lines> {
    let lines = Arc::new(Lines::default());
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if std::env::var_os("DYLIB_DEV_TEST_ECHO").is_some() {
                eprintln!("[{tag}] {line}");
            }
            sink.lines.lock().unwrap().push(line);
            sink.grew.notify_all();
        }
    });
    lines
}

fn wait(
    lines: &Lines,
    from: usize,
    timeout: Duration,
    pred: &dyn Fn(&str) -> bool,
) -> Option<(usize, String)> {
    let deadline = Instant::now() + timeout;
    let mut guard = lines.lines.lock().unwrap();
    loop {
        if let Some(i) = (from..guard.len()).find(|&i| pred(&guard[i])) {
            return Some((i, guard[i].clone()));
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        guard = lines.grew.wait_timeout(guard, left).unwrap().0;
    }
}

/// `{"counter":12,"host":"v1","pid":4242} flogic=v1 ...` -> (pid, counter).
pub fn pid_and_counter(line: &str) -> (u32, u64) {
    let json = &line[..line.find('}').expect("json prefix") + 1];
    let v: serde_json::Value = serde_json::from_str(json).expect("valid json");
    (
        v["pid"].as_u64().unwrap() as u32,
        v["counter"].as_u64().unwrap(),
    )
}

/// Replaces `from` (which must occur) by `to` in a file of the fixture.
pub fn edit(fx: &Fixture, rel: &str, from: &str, to: &str) {
    let text = fx.read(rel);
    assert!(text.contains(from), "{rel} has no {from:?}");
    fx.write(rel, &text.replace(from, to));
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// Waits up to `timeout` for process `pid` to be gone.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Processes whose command line or working directory mentions `needle` (Linux /proc).
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let cwd = std::fs::read_link(entry.path().join("cwd"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let zombie =
            std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|s| s.contains(") Z "));
        if !zombie && (cmdline.contains(needle) || cwd.starts_with(needle)) {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

/// The entries of `dir` whose name starts with `prefix`.
pub fn entries_with_prefix(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
