//! Invoking cargo and reading its JSON messages: a build driver the commands and the watcher share.
//!
//! [`CargoBuild`] describes one `cargo build`; [`CargoBuild::spawn`] starts it and returns a
//! [`RunningBuild`], whose [`BuildHandle`] can stop it from another thread; [`RunningBuild::wait`]
//! gives the [`BuildOutcome`]: artifacts exactly as cargo reported them (paths are never rebuilt by
//! hand) and the diagnostics, errors first. Nothing here prints; the caller decides what to show.
use cargo_metadata::diagnostic::DiagnosticLevel;
use cargo_metadata::{Artifact, Message, PackageId};
use std::ffi::OsString;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::platform::{self, Stop};

/// Why a build could not be run (a build that ran and failed is a [`BuildOutcome`], not this).
#[derive(Debug, thiserror::Error)]
pub enum CargoError {
    /// cargo could not be started.
    #[error("failed to start `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// Reading cargo's output failed.
    #[error("failed to read the output of cargo")]
    Read(#[source] std::io::Error),
    /// Waiting for cargo failed.
    #[error("failed to wait for cargo to exit")]
    Wait(#[source] std::io::Error),
}

/// What happens to cargo's own stderr (`Compiling ...` lines, resolver and manifest errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CargoStderr {
    /// Straight to our stderr. The one-shot commands use this: a cold build of a heavy crate takes
    /// minutes, and cargo's live progress (and a resolver error the moment it happens) is what
    /// tells the user something is going on; capturing would also lose cargo's terminal detection.
    #[default]
    Inherit,
    /// Kept in [`BuildOutcome::stderr`], for a caller that owns the screen (the watcher).
    Capture,
}

/// One `cargo build`, described builder-style.
#[derive(Debug, Clone)]
pub struct CargoBuild {
    program: OsString,
    current_dir: Option<PathBuf>,
    manifest_path: Option<PathBuf>,
    packages: Vec<String>,
    features: Vec<String>,
    release: bool,
    bins: Vec<String>,
    lib: bool,
    target_dir: Option<PathBuf>,
    rustflags: Vec<String>,
    env: Vec<(OsString, OsString)>,
    color: bool,
    stderr: CargoStderr,
    own_process_group: bool,
}

impl Default for CargoBuild {
    fn default() -> Self {
        Self::new()
    }
}

impl CargoBuild {
    /// A plain `cargo build` with cargo from `$CARGO` (set when we run as `cargo dylib-dev`) or PATH.
    pub fn new() -> Self {
        CargoBuild {
            program: std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            current_dir: None,
            manifest_path: None,
            packages: Vec::new(),
            features: Vec::new(),
            release: false,
            bins: Vec::new(),
            lib: false,
            target_dir: None,
            rustflags: Vec::new(),
            env: Vec::new(),
            color: color_by_default(),
            stderr: CargoStderr::Inherit,
            own_process_group: true,
        }
    }

    /// The cargo program to run.
    pub fn program(mut self, program: impl Into<OsString>) -> Self {
        self.program = program.into();
        self
    }

    /// Working directory of cargo (default: ours; cargo reads `.cargo/config.toml` from there).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// `--manifest-path`.
    pub fn manifest_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.manifest_path = Some(path.into());
        self
    }

    /// Adds `-p <spec>` (once per package to build).
    pub fn package(mut self, spec: impl Into<String>) -> Self {
        self.packages.push(spec.into());
        self
    }

    /// Adds `--features <list>` (space or comma separated, as cargo takes it).
    pub fn feature(mut self, list: impl Into<String>) -> Self {
        self.features.push(list.into());
        self
    }

    /// Adds several `--features`.
    pub fn features<I: IntoIterator<Item = S>, S: Into<String>>(mut self, lists: I) -> Self {
        self.features.extend(lists.into_iter().map(Into::into));
        self
    }

    /// `--release`.
    pub fn release(mut self, release: bool) -> Self {
        self.release = release;
        self
    }

    /// Adds `--bin <name>`.
    pub fn bin(mut self, name: impl Into<String>) -> Self {
        self.bins.push(name.into());
        self
    }

    /// `--lib`.
    pub fn lib(mut self, lib: bool) -> Self {
        self.lib = lib;
        self
    }

    /// `--target-dir`.
    pub fn target_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.target_dir = Some(dir.into());
        self
    }

    /// A flag for every rustc invocation, after the user's own `RUSTFLAGS`.
    pub fn rustflag(mut self, flag: impl Into<String>) -> Self {
        self.rustflags.push(flag.into());
        self
    }

    /// An environment variable for cargo (and so for rustc and build scripts).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Whether rendered diagnostics carry ANSI colours (default: [`crate::ui::color`]).
    pub fn color(mut self, color: bool) -> Self {
        self.color = color;
        self
    }

    /// What happens to cargo's own stderr.
    pub fn stderr(mut self, mode: CargoStderr) -> Self {
        self.stderr = mode;
        self
    }

    /// Whether cargo gets its own process group (default: yes).
    ///
    /// In its own group, [`BuildHandle`] stops cargo together with every rustc, linker and build
    /// script it started, but the terminal's Ctrl-C no longer reaches it: a caller that turns
    /// this on must stop the build on Ctrl-C itself (the watcher does). A one-shot command turns
    /// it off so Ctrl-C behaves exactly as with plain cargo.
    pub fn own_process_group(mut self, own: bool) -> Self {
        self.own_process_group = own;
        self
    }

    /// The command that [`Self::spawn`] runs, for logging and tests.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("build");
        let format = if self.color {
            "--message-format=json-diagnostic-rendered-ansi"
        } else {
            "--message-format=json"
        };
        cmd.arg(format);
        // Always explicit: captured, cargo's stderr is a pipe and it would drop colours the user
        // asked for; inherited, our choice (`--color`, `CARGO_TERM_COLOR`) is already made.
        cmd.arg(if self.color {
            "--color=always"
        } else {
            "--color=never"
        });
        if let Some(path) = &self.manifest_path {
            cmd.arg("--manifest-path").arg(path);
        }
        for spec in &self.packages {
            cmd.args(["--package", spec]);
        }
        for list in &self.features {
            cmd.args(["--features", list]);
        }
        if self.release {
            cmd.arg("--release");
        }
        if self.lib {
            cmd.arg("--lib");
        }
        for bin in &self.bins {
            cmd.args(["--bin", bin]);
        }
        if let Some(dir) = &self.target_dir {
            cmd.arg("--target-dir").arg(dir);
        }
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        if !self.rustflags.is_empty() {
            let encoded = combine_rustflags(
                std::env::var("CARGO_ENCODED_RUSTFLAGS").ok().as_deref(),
                std::env::var("RUSTFLAGS").ok().as_deref(),
                &self.rustflags,
            );
            // The encoded form keeps a flag containing spaces in one piece. cargo prefers it over
            // RUSTFLAGS, and we folded the user's RUSTFLAGS into it, so nothing is dropped.
            // Note cargo's precedence: any RUSTFLAGS / CARGO_ENCODED_RUSTFLAGS in the environment
            // replaces `build.rustflags` and `target.<..>.rustflags` from `.cargo/config.toml`
            // entirely; `doctor` (and the dynamic commands) warn when a project has those.
            cmd.env("CARGO_ENCODED_RUSTFLAGS", encoded);
        }
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        cmd.stderr(match self.stderr {
            CargoStderr::Inherit => Stdio::inherit(),
            CargoStderr::Capture => Stdio::piped(),
        });
        if self.own_process_group {
            platform::set_own_process_group(&mut cmd);
        }
        cmd
    }

    /// Starts the build.
    pub fn spawn(&self) -> Result<RunningBuild, CargoError> {
        let mut cmd = self.command();
        tracing::debug!(command = ?cmd, "spawning cargo");
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|source| CargoError::Spawn {
            program: self.program.to_string_lossy().into_owned(),
            source,
        })?;
        // A separate reader for captured stderr: cargo blocks if either pipe fills up.
        let stderr_reader = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut text = String::new();
                pipe.read_to_string(&mut text).map(|_| text)
            })
        });
        if self.own_process_group {
            // Nothing in cargo's own group would notice the runner dying: the guard would.
            crate::guard::protect(crate::guard::Guarded::Build { group: child.id() });
        }
        let handle = BuildHandle {
            shared: Arc::new(Shared {
                pid: child.id(),
                group: self.own_process_group,
                state: Mutex::new(State::default()),
                exited: Condvar::new(),
            }),
        };
        Ok(RunningBuild {
            child,
            stderr_reader,
            handle,
            started,
        })
    }

    /// Runs the build to the end.
    pub fn run(&self) -> Result<BuildOutcome, CargoError> {
        self.spawn()?.wait()
    }
}

/// Whether diagnostics should be coloured: we print them to stderr, as our own lines.
fn color_by_default() -> bool {
    crate::ui::color()
}

/// The user's rustflags (as cargo would read them from the environment) followed by `extra`,
/// in `CARGO_ENCODED_RUSTFLAGS` form (separated by 0x1f).
///
/// Mirrors cargo: `CARGO_ENCODED_RUSTFLAGS`, when set, wins over `RUSTFLAGS`, and `RUSTFLAGS`
/// is split on spaces.
pub fn combine_rustflags(encoded: Option<&str>, plain: Option<&str>, extra: &[String]) -> String {
    let mut flags: Vec<&str> = match (encoded, plain) {
        (Some(""), _) => Vec::new(),
        (Some(encoded), _) => encoded.split('\x1f').collect(),
        (None, Some(plain)) => plain
            .split(' ')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect(),
        (None, None) => Vec::new(),
    };
    flags.extend(extra.iter().map(String::as_str));
    flags.join("\x1f")
}

/// Whether the environment carries rustflags, which make cargo ignore config-file rustflags.
pub fn env_rustflags_set() -> bool {
    std::env::var_os("CARGO_ENCODED_RUSTFLAGS").is_some() || std::env::var_os("RUSTFLAGS").is_some()
}

/// Rustflags from cargo configuration, which any RUSTFLAGS in the environment replaces entirely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRustflags {
    /// The config file, or `None` for an environment variable (`CARGO_BUILD_RUSTFLAGS`).
    pub file: Option<PathBuf>,
    /// `build.rustflags`, `target.<key>.rustflags`, or the variable's name.
    pub key: String,
    /// The value as written.
    pub value: String,
}

impl std::fmt::Display for ConfigRustflags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            Some(file) => write!(f, "`{} = {}` in `{}`", self.key, self.value, file.display()),
            None => write!(f, "`{}={}` in the environment", self.key, self.value),
        }
    }
}

/// Every rustflags setting cargo would read from configuration when run in `cwd`: the
/// `.cargo/config.toml` files of `cwd` and its ancestors, `$CARGO_HOME/config.toml`, and the
/// `CARGO_BUILD_RUSTFLAGS` / `CARGO_TARGET_<triple>_RUSTFLAGS` variables.
///
/// Files that do not parse are skipped: cargo itself reports those better than we could.
pub fn config_rustflags(cwd: &Path) -> Vec<ConfigRustflags> {
    let mut files: Vec<PathBuf> = cwd
        .ancestors()
        .flat_map(|dir| [dir.join(".cargo/config.toml"), dir.join(".cargo/config")])
        .collect();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(home) = cargo_home {
        files.extend([home.join("config.toml"), home.join("config")]);
    }
    let mut seen = Vec::new();
    let mut found = Vec::new();
    for file in files {
        let Ok(canonical) = file.canonicalize() else {
            continue;
        };
        if seen.contains(&canonical) {
            continue;
        }
        seen.push(canonical);
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else {
            continue;
        };
        let mut push = |key: String, item: &toml_edit::Item| {
            let value = item.to_string().trim().to_string();
            found.push(ConfigRustflags {
                file: Some(file.clone()),
                key,
                value,
            });
        };
        if let Some(item) = doc.get("build").and_then(|b| b.get("rustflags")) {
            push("build.rustflags".into(), item);
        }
        if let Some(targets) = doc.get("target").and_then(|t| t.as_table_like()) {
            for (name, table) in targets.iter() {
                if let Some(item) = table.get("rustflags") {
                    push(format!("target.{name}.rustflags"), item);
                }
            }
        }
    }
    let mut vars: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
        .filter(|(k, _)| {
            k == "CARGO_BUILD_RUSTFLAGS"
                || (k.starts_with("CARGO_TARGET_") && k.ends_with("_RUSTFLAGS"))
        })
        .collect();
    vars.sort();
    found.extend(vars.into_iter().map(|(key, value)| ConfigRustflags {
        file: None,
        key,
        value,
    }));
    found
}

/// A build in progress. Dropping it without [`Self::wait`] kills the build.
#[derive(Debug)]
pub struct RunningBuild {
    child: Child,
    stderr_reader: Option<std::thread::JoinHandle<std::io::Result<String>>>,
    handle: BuildHandle,
    started: Instant,
}

impl RunningBuild {
    /// A handle that stops this build from any thread.
    pub fn handle(&self) -> BuildHandle {
        self.handle.clone()
    }

    /// Reads cargo's messages until it exits, then collects the outcome.
    pub fn wait(mut self) -> Result<BuildOutcome, CargoError> {
        let stdout = self
            .child
            .stdout
            .take()
            .expect("stdout is piped in `command`");
        let collected = collect(Message::parse_stream(BufReader::new(stdout)));
        if collected.is_err() {
            // Nobody reads stdout any more: cargo would block on a full pipe and never exit.
            let _ = self.handle.kill();
        }
        // Even if reading failed, the child must be waited for, or it stays a zombie.
        let exit = self.wait_child();
        let collected = collected.map_err(CargoError::Read)?;
        let status = exit?;
        let stderr = match self.stderr_reader.take() {
            Some(reader) => Some(
                reader
                    .join()
                    .unwrap_or_else(|_| Ok(String::new()))
                    .map_err(CargoError::Read)?,
            ),
            None => None,
        };
        let cancelled = self
            .handle
            .shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cancelled;
        Ok(BuildOutcome {
            success: status.success() && collected.finished != Some(false) && !cancelled,
            cancelled,
            status,
            artifacts: collected.artifacts,
            diagnostics: collected.diagnostics,
            stderr,
            duration: self.started.elapsed(),
        })
    }

    fn wait_child(&mut self) -> Result<ExitStatus, CargoError> {
        // Exited but not reaped: mark it so, then reap, so a concurrent stop never signals a
        // process id that the system has already given to someone else.
        platform::wait_exit_without_reaping(self.child.id()).map_err(CargoError::Wait)?;
        {
            let mut state = self
                .handle
                .shared
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            state.exited = true;
            self.handle.shared.exited.notify_all();
        }
        if self.handle.shared.group {
            crate::guard::forget(self.child.id());
        }
        self.child.wait().map_err(CargoError::Wait)
    }
}

impl Drop for RunningBuild {
    fn drop(&mut self) {
        if !self.handle.is_finished() {
            // A build nobody waits for must not keep compiling (or linger as a zombie).
            let _ = self.handle.kill();
            let _ = self.wait_child();
        }
    }
}

/// Stops a running build from another thread (cheap to clone).
#[derive(Debug, Clone)]
pub struct BuildHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    pid: u32,
    group: bool,
    state: Mutex<State>,
    exited: Condvar,
}

#[derive(Debug, Default)]
struct State {
    exited: bool,
    cancelled: bool,
}

impl BuildHandle {
    /// Sends SIGTERM to cargo and everything it started (when it has its own process group).
    pub fn terminate(&self) -> std::io::Result<()> {
        self.send(Stop::Terminate)
    }

    /// Sends SIGKILL to cargo and everything it started (when it has its own process group).
    pub fn kill(&self) -> std::io::Result<()> {
        self.send(Stop::Kill)
    }

    /// Terminates, and kills if cargo has not exited after `grace`. Returns once cargo has exited
    /// (or right after the kill).
    pub fn cancel(&self, grace: Duration) -> std::io::Result<()> {
        self.terminate()?;
        let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let (state, _) = self
            .shared
            .exited
            .wait_timeout_while(state, grace, |s| !s.exited)
            .unwrap_or_else(|e| e.into_inner());
        if !state.exited {
            drop(state);
            self.kill()?;
        }
        Ok(())
    }

    /// Whether cargo has exited.
    pub fn is_finished(&self) -> bool {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .exited
    }

    fn send(&self, stop: Stop) -> std::io::Result<()> {
        // Holding the lock while signalling: `wait_child` cannot mark the child exited and reap
        // it in between, so the pid is still ours.
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.exited {
            return Ok(());
        }
        state.cancelled = true;
        platform::send_stop(self.shared.pid, self.shared.group, stop)
    }
}

/// How serious a diagnostic is; the order is the order they are shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// An error (or an internal compiler error).
    Error,
    /// A warning.
    Warning,
    /// Notes such as "For more information about this error, try `rustc --explain`".
    Note,
}

/// One compiler diagnostic as rustc rendered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildDiagnostic {
    /// Error, warning or note.
    pub severity: Severity,
    /// The package being compiled.
    pub package_id: PackageId,
    /// The target being compiled (e.g. the bin name).
    pub target: String,
    /// The one-line message.
    pub message: String,
    /// The full text rustc would print (with ANSI colours if asked for).
    pub rendered: String,
    /// The diagnostic as rustc sent it: the `message` object of cargo's `compiler-message`,
    /// with `rendered` (for `watch --message-format json`).
    pub json: cargo_metadata::diagnostic::Diagnostic,
}

/// The result of a build that ran to the end (or was cancelled).
#[derive(Debug)]
pub struct BuildOutcome {
    /// cargo exited successfully and said the build finished.
    pub success: bool,
    /// It was stopped through a [`BuildHandle`].
    pub cancelled: bool,
    /// cargo's exit status.
    pub status: ExitStatus,
    /// Every `compiler-artifact` message, in order.
    pub artifacts: Vec<Artifact>,
    /// Diagnostics, errors first, then warnings, then notes; each in the order cargo sent them.
    pub diagnostics: Vec<BuildDiagnostic>,
    /// cargo's stderr, when captured.
    pub stderr: Option<String>,
    /// From spawn to exit.
    pub duration: Duration,
}

impl BuildOutcome {
    /// Number of diagnostics of this severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    }

    /// The executable cargo built for bin target `name` of `package`.
    pub fn executable(&self, package: &PackageId, name: &str) -> Option<&Path> {
        self.artifacts
            .iter()
            .filter(|a| &a.package_id == package && a.target.name == name)
            .find_map(|a| a.executable.as_deref())
            .map(|p| p.as_std_path())
    }

    /// Writes every diagnostic as rustc rendered it, errors before warnings.
    pub fn write_diagnostics(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        for diagnostic in &self.diagnostics {
            out.write_all(diagnostic.rendered.as_bytes())?;
        }
        out.flush()
    }

    /// `1 error, 2 warnings` (empty when there are none).
    pub fn counts(&self) -> String {
        count_text(&self.diagnostics)
    }
}

/// `1 error, 2 warnings` for a list of diagnostics (empty when there are none).
pub fn count_text(diagnostics: &[BuildDiagnostic]) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let count = |severity| {
        diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    };
    let mut parts = Vec::new();
    for (n, word) in [
        (count(Severity::Error), "error"),
        (count(Severity::Warning), "warning"),
    ] {
        if n > 0 {
            parts.push(plural(n, word));
        }
    }
    parts.join(", ")
}

/// Whether a diagnostic is rustc's closing summary (`aborting due to 1 previous error; 1 warning
/// emitted`, `2 warnings emitted`), which restates the counts: counted, it turns one error into
/// two. cargo leaves it out of its JSON messages; rustc run directly (the fast path) sends it.
pub fn is_rustc_summary(message: &str, has_spans: bool) -> bool {
    !has_spans
        && (message.starts_with("aborting due to")
            || message.ends_with(" warning emitted")
            || message.ends_with(" warnings emitted"))
}

/// What the JSON stream said.
#[derive(Debug, Default)]
struct Collected {
    artifacts: Vec<Artifact>,
    diagnostics: Vec<BuildDiagnostic>,
    finished: Option<bool>,
}

/// Gathers artifacts and diagnostics from cargo's messages; diagnostics sorted errors first.
fn collect(messages: impl Iterator<Item = std::io::Result<Message>>) -> std::io::Result<Collected> {
    let mut out = Collected::default();
    for message in messages {
        match message? {
            Message::CompilerArtifact(artifact) => out.artifacts.push(artifact),
            Message::CompilerMessage(msg) => {
                if is_rustc_summary(&msg.message.message, !msg.message.spans.is_empty()) {
                    continue;
                }
                let Some(rendered) = msg.message.rendered.clone() else {
                    continue;
                };
                let severity = match msg.message.level {
                    DiagnosticLevel::Error | DiagnosticLevel::Ice => Severity::Error,
                    DiagnosticLevel::Warning => Severity::Warning,
                    _ => Severity::Note,
                };
                let diagnostic = BuildDiagnostic {
                    severity,
                    package_id: msg.package_id,
                    target: msg.target.name,
                    message: msg.message.message.clone(),
                    rendered,
                    json: msg.message,
                };
                // The same lint can arrive once per target (lib and bin of one package).
                if !out
                    .diagnostics
                    .iter()
                    .any(|d| d.rendered == diagnostic.rendered)
                {
                    out.diagnostics.push(diagnostic);
                }
            }
            Message::BuildFinished(finished) => out.finished = Some(finished.success),
            Message::TextLine(line) if !line.trim().is_empty() => {
                tracing::debug!("cargo stdout: {line}");
            }
            _ => {}
        }
    }
    // Stable: within one severity, cargo's order (which follows the build order) is kept.
    out.diagnostics.sort_by_key(|d| d.severity);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from `cargo build --message-format=json` on the `prewrapped` fixture with a
    /// warning in `app-deps` and a borrow error plus a warning in `app`.
    const ERROR_STREAM: &str = include_str!("../tests/data/build-error.jsonl");
    /// Captured from a successful `--message-format=json-diagnostic-rendered-ansi` build of it.
    const OK_STREAM: &str = include_str!("../tests/data/build-ok.jsonl");

    fn parse(text: &str) -> Collected {
        collect(Message::parse_stream(text.as_bytes())).unwrap()
    }

    #[test]
    fn errors_come_before_warnings_and_notes() {
        let collected = parse(ERROR_STREAM);
        let order: Vec<(Severity, &str)> = collected
            .diagnostics
            .iter()
            .map(|d| (d.severity, d.message.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                (Severity::Error, "borrow of moved value: `s`"),
                (Severity::Warning, "unused variable: `unused`"),
                (Severity::Warning, "unused variable: `unused`"),
                (
                    Severity::Note,
                    "For more information about this error, try `rustc --explain E0382`."
                ),
            ]
        );
        // Warnings keep cargo's order: the dependency's first.
        assert!(
            collected.diagnostics[1]
                .rendered
                .contains("app-deps/src/lib.rs")
        );
        assert!(collected.diagnostics[2].rendered.contains("src/main.rs"));
        assert_eq!(collected.finished, Some(false));
    }

    #[test]
    fn rendered_text_is_kept_verbatim() {
        let collected = parse(ERROR_STREAM);
        let error = &collected.diagnostics[0];
        assert!(
            error
                .rendered
                .starts_with("error[E0382]: borrow of moved value: `s`\n --> src/main.rs:8:16\n")
        );
        assert_eq!(error.target, "app");
    }

    #[test]
    fn artifacts_come_from_the_json() {
        let collected = parse(OK_STREAM);
        assert_eq!(collected.finished, Some(true));
        let names: Vec<&str> = collected
            .artifacts
            .iter()
            .map(|a| a.target.name.as_str())
            .collect();
        assert_eq!(names, ["itoa", "app_deps", "app"]);
        let app = &collected.artifacts[2];
        assert_eq!(
            app.executable.as_deref().map(|p| p.as_str()),
            Some("/tmp/pwt/debug/app")
        );
        let deps = &collected.artifacts[1];
        // cargo reports the uplifted copy in the profile dir, not the one in deps/.
        let deps_files: Vec<&str> = deps.filenames.iter().map(|f| f.as_str()).collect();
        assert_eq!(deps_files, ["/tmp/pwt/debug/libapp_deps.so"]);
        assert!(collected.diagnostics.is_empty());
    }

    #[test]
    fn identical_diagnostics_are_shown_once() {
        let line = ERROR_STREAM
            .lines()
            .find(|l| l.contains("\"level\":\"error\""))
            .unwrap();
        let collected = parse(&format!("{line}\n{line}\n"));
        assert_eq!(collected.diagnostics.len(), 1);
    }

    #[test]
    fn rustflags_are_appended_never_dropped() {
        let extra = ["-Cprefer-dynamic".to_string()];
        assert_eq!(combine_rustflags(None, None, &extra), "-Cprefer-dynamic");
        assert_eq!(
            combine_rustflags(None, Some(" -C  target-cpu=native "), &extra),
            "-C\x1ftarget-cpu=native\x1f-Cprefer-dynamic"
        );
        // The encoded form wins over RUSTFLAGS, as in cargo, and keeps spaces inside a flag.
        assert_eq!(
            combine_rustflags(Some("-Clink-arg=/a b/c"), Some("-Dwarnings"), &extra),
            "-Clink-arg=/a b/c\x1f-Cprefer-dynamic"
        );
        assert_eq!(
            combine_rustflags(Some(""), Some("-Dwarnings"), &extra),
            "-Cprefer-dynamic"
        );
    }

    #[test]
    fn command_line_matches_the_description() {
        let build = CargoBuild::new()
            .program("cargo")
            .manifest_path("/p/Cargo.toml")
            .package("app")
            .feature("dynamic")
            .features(["a b"])
            .release(true)
            .bin("app")
            .lib(true)
            .target_dir("/t/dylib-dev")
            .color(false);
        let cmd = build.command();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args.join(" "),
            "build --message-format=json --color=never --manifest-path /p/Cargo.toml \
             --package app --features dynamic --features a b --release --lib --bin app \
             --target-dir /t/dylib-dev"
        );
        // No rustflags asked for: the environment is left alone.
        assert!(cmd.get_envs().all(|(k, _)| k != "CARGO_ENCODED_RUSTFLAGS"));
        let colored = CargoBuild::new()
            .color(true)
            .stderr(CargoStderr::Capture)
            .command();
        let args: Vec<String> = colored
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "build",
                "--message-format=json-diagnostic-rendered-ansi",
                "--color=always"
            ]
        );
        // Passed through to our stderr, cargo still colours as we decided (`--color always`
        // into a pipe), not by its own look at the terminal.
        let inherited = CargoBuild::new().color(true).command();
        assert!(inherited.get_args().any(|a| a == "--color=always"));
    }

    #[test]
    fn finds_config_rustflags_in_ancestors() {
        let dir = tempfile::tempdir().unwrap();
        let cargo_dir = dir.path().join(".cargo");
        std::fs::create_dir_all(&cargo_dir).unwrap();
        std::fs::write(
            cargo_dir.join("config.toml"),
            "[build]\nrustflags = [\"-Ctarget-cpu=native\"]\n\n\
             [target.x86_64-unknown-linux-gnu]\nlinker = \"clang\"\nrustflags = \"-Clink-arg=-fuse-ld=mold\"\n",
        )
        .unwrap();
        let sub = dir.path().join("crates/app");
        std::fs::create_dir_all(&sub).unwrap();
        let ours: Vec<String> = config_rustflags(&sub)
            .into_iter()
            .filter(|f| f.file.as_deref().is_some_and(|p| p.starts_with(dir.path())))
            .map(|f| format!("{} = {}", f.key, f.value))
            .collect();
        assert_eq!(
            ours,
            [
                "build.rustflags = [\"-Ctarget-cpu=native\"]",
                "target.x86_64-unknown-linux-gnu.rustflags = \"-Clink-arg=-fuse-ld=mold\"",
            ]
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn dropping_a_running_build_kills_its_process_group() {
        use std::os::unix::fs::PermissionsExt;
        // Stands in for cargo only as a process tree: a parent that waits on a sleeping child.
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-cargo");
        let pid_file = dir.path().join("sleep.pid");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nsleep 30 &\necho $! > '{}'\nwait\n",
                pid_file.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let running = CargoBuild::new().program(&script).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let sleep_pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "the fake build never started");
            std::thread::sleep(Duration::from_millis(10));
        };
        let handle = running.handle();
        drop(running);
        assert!(handle.is_finished());
        // The orphaned sleep is dead (maybe a zombie until someone reaps it).
        let alive = || {
            let stat =
                std::fs::read_to_string(format!("/proc/{sleep_pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, None | Some('Z' | 'X'))
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(), "sleep {sleep_pid} survived the drop");
    }
}
