//! `Watch`: a running `dylib-dev watch` whose output tests wait on, and the lock that keeps two
//! watch sessions from writing the same artifacts into the shared target dir at once.
use super::Fixture;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Builds of the `hot` fixture write the same artifact names into the shared target dir
/// (`libhost_deps.so`, `liblogic.so`, `host`), so two watch sessions must not run at once.
pub static SERIAL: Mutex<()> = Mutex::new(());

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

/// A running `dylib-dev watch` with its stdout (the host's) and stderr (ours) collected.
pub struct Watch {
    child: Child,
    out: Arc<Lines>,
    err: Arc<Lines>,
}

impl Watch {
    /// `dylib-dev watch` in the fixture's root.
    pub fn start(fx: &Fixture) -> Watch {
        Watch::start_in(fx.path(), &[])
    }

    /// `dylib-dev watch` in `dir`, with extra environment for the host.
    pub fn start_in(dir: &Path, envs: &[(&str, &str)]) -> Watch {
        Watch::spawn(dir, envs, &[])
    }

    /// `dylib-dev watch -- <host_args>` in `dir`.
    pub fn start_with(dir: &Path, host_args: &[&str]) -> Watch {
        Watch::spawn(dir, &[], host_args)
    }

    /// `dylib-dev watch <watch_args>` in `dir` without `NO_COLOR`: coloured as `watch_args`
    /// (`--color`) and `envs` (`CARGO_TERM_COLOR`) say, and stderr is a pipe.
    pub fn start_colored(dir: &Path, watch_args: &[&str], envs: &[(&str, &str)]) -> Watch {
        Watch::launch(dir, watch_args, envs, &[], false)
    }

    fn spawn(dir: &Path, envs: &[(&str, &str)], host_args: &[&str]) -> Watch {
        Watch::launch(dir, &[], envs, host_args, true)
    }

    /// `dylib-dev watch <watch_args> -- <host_args>` in `dir`, with extra environment for the host.
    pub fn spawn_with(
        dir: &Path,
        watch_args: &[&str],
        envs: &[(&str, &str)],
        host_args: &[&str],
    ) -> Watch {
        Watch::launch(dir, watch_args, envs, host_args, true)
    }

    fn launch(
        dir: &Path,
        watch_args: &[&str],
        envs: &[(&str, &str)],
        host_args: &[&str],
        no_color: bool,
    ) -> Watch {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dylib-dev"));
        for key in super::cargo_test_env() {
            cmd.env_remove(key);
        }
        // A CI's `CARGO_TERM_COLOR=always` would colour the lines tests match.
        cmd.env_remove("CARGO_TERM_COLOR").env_remove("NO_COLOR");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        cmd.current_dir(dir)
            .arg("watch")
            .args(watch_args)
            .env("CARGO_TARGET_DIR", super::shared_target_dir())
            .env("DYLIB_DEV_LOG", "dylib_dev::watch=debug")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !host_args.is_empty() {
            cmd.arg("--").args(host_args);
        }
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

    /// The host's lines from index `from` on.
    pub fn out_since(&self, from: usize) -> Vec<String> {
        self.out.lines.lock().unwrap()[from..].to_vec()
    }

    pub fn err_since(&self, from: usize) -> Vec<String> {
        self.err.lines.lock().unwrap()[from..].to_vec()
    }

    pub fn fail(&self, what: &str) -> ! {
        let tail = |l: &Lines| {
            let lines = l.lines.lock().unwrap();
            lines[lines.len().saturating_sub(30)..].join("\n")
        };
        panic!(
            "{what}\n--- host stdout (tail)\n{}\n--- watcher stderr (tail)\n{}",
            tail(&self.out),
            tail(&self.err)
        );
    }

    /// SIGINT, as Ctrl-C sends; returns once the watcher exited.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill() with a pid we own and a valid signal has no memory effects.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "watcher did not exit after SIGINT"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Watch {
    /// Sends `signal` to the watcher (e.g. SIGKILL, as `kill -9`).
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill() with a pid we own and a valid signal has no memory effects.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
    }

    /// Waits (at most 30 s) for the watcher to exit, however it was told to.
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
            // SAFETY: as in `interrupt`.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
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

/// `{"counter":12,"host":"v1","pid":4242} logic=v1 ...` (the fixtures' host lines) -> (pid, counter).
pub fn pid_and_counter(line: &str) -> (u32, u64) {
    let json = &line[..line.find('}').expect("json prefix") + 1];
    let v: serde_json::Value = serde_json::from_str(json).expect("valid json");
    (
        v["pid"].as_u64().unwrap() as u32,
        v["counter"].as_u64().unwrap(),
    )
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
