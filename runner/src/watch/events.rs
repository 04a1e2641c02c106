//! What a watch session reports as it goes, as data: the command renders it as status lines (and
//! a later `--message-format json` serializes it). The session itself prints nothing.
use crate::cargo::{BuildDiagnostic, Severity};
use crate::reload::ReloadError;
use crate::signals::Stop;
use dylib_dev_runtime::protocol;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Receives the session's events, in order, as they happen.
pub type Reporter = Box<dyn FnMut(WatchEvent) + Send>;

/// Errors and warnings among a build's diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Diagnostics of severity error.
    pub errors: usize,
    /// Diagnostics of severity warning.
    pub warnings: usize,
}

impl Counts {
    /// The counts of `diagnostics`.
    pub fn of(diagnostics: &[BuildDiagnostic]) -> Counts {
        let count = |severity| {
            diagnostics
                .iter()
                .filter(|d| d.severity == severity)
                .count()
        };
        Counts {
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
        }
    }

    /// Neither errors nor warnings.
    pub fn is_empty(&self) -> bool {
        self.errors == 0 && self.warnings == 0
    }
}

/// What ran a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltBy {
    /// cargo.
    Cargo,
    /// rustc directly (the fast path); `link` is the linker shim's share when it ran for every
    /// library.
    Rustc {
        /// The links' total duration.
        link: Option<Duration>,
    },
}

/// A successful build, as the status lines describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildInfo {
    /// How long it took.
    pub duration: Duration,
    /// What ran it.
    pub by: BuiltBy,
    /// Its warnings (and errors, none for a successful one).
    pub counts: Counts,
}

/// How a failed build ended, when it left no diagnostics to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildExit {
    /// cargo exited so.
    Cargo(ExitStatus),
    /// rustc (the fast path) failed.
    Rustc,
}

/// Why a swap could not be done and the host restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartCause {
    /// A call into logic was stuck (`lib::function`); it cannot swap until the call returns.
    Stuck {
        /// `lib::function`.
        call: String,
    },
    /// The host refused the new library.
    SwapRefused,
    /// The reload failed (the host did not answer, disconnected, or the task failed).
    SwapFailed,
    /// An edit of a hot crate changed code no hot function reaches (`fn main`): a patch would not
    /// run it.
    Unreached {
        /// What changed, as `fn main`, `const TITLE`.
        items: Vec<String>,
    },
    /// Too much memory of old versions stayed mapped.
    OldVersionsKept {
        /// The library.
        lib: String,
        /// Old versions mapped.
        count: u64,
        /// Their mapped bytes.
        bytes: u64,
    },
}

/// Why the host restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartReason {
    /// A swap could not be done; `rebuilt_in` is the build's duration when the swap was of a
    /// fresh build (not stated when the cause is memory or a failed task).
    Swap {
        /// What went wrong.
        cause: RestartCause,
        /// The build that was to be swapped in.
        rebuilt_in: Option<Duration>,
    },
    /// A build the running host cannot take (host or shared code changed, or a swap of a
    /// rustc-only rebuild could not be done and cargo rebuilt everything: `cause`).
    Rebuilt {
        /// The refused swap that asked for the rebuild, if any.
        cause: Option<RestartCause>,
        /// The build the host restarts with.
        build: BuildInfo,
    },
}

/// What became of the host's hand-off state when it was stopped for a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateHandOff {
    /// Nothing to say: the host has no hand-off state, or did not answer.
    Nothing,
    /// Saved, this many bytes.
    Saved {
        /// Size of the state.
        bytes: u64,
    },
    /// Not asked: a call (`lib::function`) is stuck.
    Stuck {
        /// `lib::function`.
        call: String,
    },
    /// Not saved, and why.
    NotSaved {
        /// The host's or the channel's reason.
        why: String,
    },
}

/// One thing that happened in a watch session.
#[derive(Debug)]
pub enum WatchEvent {
    /// The project has no logic crate: every change rebuilds and restarts the host. `heavy` is
    /// what `wrap --auto` would move into a deps dylib (key, Rust source bytes), empty when the
    /// project is wrapped or has nothing heavy.
    RestartMode {
        /// Dependencies worth wrapping.
        heavy: Vec<(String, u64)>,
    },
    /// Said once at the start when the project has `#[dylib_dev::hot]` functions and no logic
    /// crate: edits of these crates are patched into the running host.
    HotMode {
        /// The hot crates (`app (binary)`, `game (library)`).
        crates: Vec<String>,
    },
    /// A build started: rustc directly (`fast`) or cargo.
    BuildStarted {
        /// The fast path.
        fast: bool,
    },
    /// A build failed; its diagnostics (or, without any, its other output) say why.
    BuildFailed {
        /// rustc's diagnostics, rendered.
        diagnostics: Vec<BuildDiagnostic>,
        /// Other output (cargo's stderr, rustc's non-JSON output).
        output: String,
        /// How it ended.
        exit: BuildExit,
        /// Whether a host runs the last good build meanwhile.
        host_running: bool,
    },
    /// cargo succeeded but reported no host binary or logic library.
    NoProducts,
    /// A library built by rustc could not be copied to where cargo puts it.
    UpliftFailed {
        /// rustc's output.
        artifact: PathBuf,
        /// cargo's place for it.
        dest: PathBuf,
        /// The I/O error.
        error: String,
    },
    /// The project (manifests, settings) did not load after a change; nothing was built.
    ProjectLoadFailed {
        /// Why.
        error: anyhow::Error,
        /// Whether a host runs the last good build meanwhile.
        host_running: bool,
    },
    /// The project loaded afresh with another host or other logic.
    ProjectReloaded {
        /// The host package.
        host: String,
        /// The logic packages.
        logic: Vec<String>,
    },
    /// File events were lost; everything is rebuilt.
    EventsLost,
    /// The host started after a build (`first`: the session's first host).
    HostStarted {
        /// Its process id.
        pid: u32,
        /// The session's first start (else a start after the host had exited).
        first: bool,
        /// The build it runs.
        build: BuildInfo,
    },
    /// The host exited on its own.
    HostExited {
        /// Its process id.
        pid: u32,
        /// How, or why waiting for it failed.
        status: Result<ExitStatus, String>,
    },
    /// The host was stopped and started again with a new build.
    Restarted {
        /// The old host's process id.
        old_pid: u32,
        /// How it ended.
        old_status: ExitStatus,
        /// The new host's process id.
        pid: u32,
        /// Why.
        reason: RestartReason,
        /// What became of its state.
        state: StateHandOff,
    },
    /// A library swapped into the running host.
    Swapped {
        /// The library.
        lib: String,
        /// The reload's number.
        version: u64,
        /// The build swapped in; `None` when the host catches up on an earlier one.
        build: Option<BuildInfo>,
        /// The swap as the host measured it.
        swap: Duration,
        /// From the first change to now (with `build`).
        since_edit: Option<Duration>,
        /// Old versions the host keeps mapped.
        lingering: u64,
        /// Their mapped bytes.
        lingering_bytes: u64,
    },
    /// Old versions of a library stay mapped (said once, at the first); the host restarts past
    /// `limit_bytes` of them.
    OldVersionsMapped {
        /// The library.
        lib: String,
        /// The restart threshold.
        limit_bytes: u64,
        /// `lib` is a crate with `#[dylib_dev::hot]` functions: its versions are patches, which
        /// the runtime never unloads.
        patches: bool,
    },
    /// A library was rebuilt for a host that is not connected: it reloads the file on its own,
    /// or gets it when it opens the library.
    ReloadsOnItsOwn {
        /// The library.
        lib: String,
        /// The build; `None` when catching up on an earlier one.
        build: Option<BuildInfo>,
        /// The library is a hot crate's patch: the host has not called a hot function of it yet
        /// and gets the patch when it does.
        hot: bool,
    },
    /// The host refused a reload; it restarts.
    SwapRefused {
        /// The library.
        lib: String,
        /// The reload's number.
        version: u64,
        /// The host's reason.
        reason: String,
    },
    /// A reload failed; the host restarts.
    SwapFailed {
        /// The library.
        lib: String,
        /// The reload's number.
        version: u64,
        /// What went wrong.
        error: ReloadError,
    },
    /// The task running a reload failed; the host restarts.
    SwapTaskFailed {
        /// The task's error.
        error: String,
    },
    /// A call into logic panicked in the host.
    Panicked(protocol::Panicked),
    /// A call into logic has not returned for the hang threshold.
    Stuck(protocol::Stuck),
    /// A call reported stuck returned.
    Resumed(protocol::Resumed),
    /// A signal stopped the session (builds and host stopped).
    Stopped(Stop),
}
