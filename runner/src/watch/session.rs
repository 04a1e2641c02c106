//! The watch loop: file events in, builds out, the host swapped or restarted.
//!
//! One build at a time. Changes that arrive while a build runs are coalesced and built right
//! after it, instead of cancelling it: a cancelled rustc throws away the work it did, and the
//! typical logic build is done in about a second anyway. If changes are pending when a build
//! ends, its result is not acted on (it is already stale); the follow-up build acts for both.
//!
//! The session prints nothing: what happens goes to its [`Reporter`] as [`WatchEvent`]s.
use super::build::{BuildOptions, Products, products, watch_build};
use super::events::{
    BuildExit, BuildInfo, BuiltBy, Counts, Reporter, RestartCause, RestartReason, StateHandOff,
    WatchEvent,
};
use super::fs::{Change, FsWatcher, PathFilter};
use super::model::WatchModel;
use super::route::{Route, merge, route_batch};
use crate::cargo::{BuildDiagnostic, BuildHandle, BuildOutcome};
use crate::host::HostProcess;
use crate::reload::{HostEvent, Outcome, ReloadServer, SaveOutcome};
use crate::roles::HotKind;
use crate::rustc_shim::fastpath::{self, FastOutcome, Invocation};
use crate::rustc_shim::patch;
use crate::signals::{Signals, Stop};
use crate::toolchain::Toolchain;
use anyhow::Context;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Everything a watch session needs.
pub struct Session {
    /// Host, logic, deps.
    pub model: WatchModel,
    /// Features and profile.
    pub build: BuildOptions,
    /// Arguments for the host.
    pub args: Vec<OsString>,
    /// cargo's `package` for `program_command`.
    pub host_package: cargo_metadata::Package,
    /// Loads the model and host package afresh (`cargo metadata`, settings, command-line
    /// overrides): before every build a manifest, lock file or toolchain change asked for, so
    /// `wrap`/`unwrap` in another terminal, a renamed member or edited settings take effect.
    pub reload: Box<dyn Fn() -> anyhow::Result<(WatchModel, cargo_metadata::Package)>>,
    /// Where the events go. A `RefCell`: the session's steps borrow it shared, one at a time.
    pub reporter: RefCell<Reporter>,
}

/// How long after its start a host may take to connect to the control socket before a swap. A
/// host that has not connected by then is taken for one without dylib-dev-runtime (e.g.
/// hot-lib-reloader's `#[hot_module]`, which watches the library file itself): the runner only
/// rebuilds for it.
const HELLO_GRACE: Duration = Duration::from_secs(2);

/// How long notify's debouncer groups the events of one path. Short: the real trailing-edge
/// debounce over a whole burst of saves (`debounce`, 30 ms by default) is the session's, since the
/// debouncer emits each event once it is that old, so a longer burst would come out in pieces.
const EVENT_GROUPING: Duration = Duration::from_millis(10);

/// Mapped bytes of old library versions a host may keep before the runner restarts it to give
/// their memory back.
const LINGERING_LIMIT: u64 = 256 << 20;

/// A batch of changes and when its first event was seen.
struct Pending {
    route: Route,
    since: Instant,
    /// The changed files; empty means "whatever changed", which always goes through cargo.
    paths: BTreeSet<PathBuf>,
}

impl Pending {
    /// Both batches as one.
    fn merge(self, other: Pending) -> Pending {
        let mut paths = self.paths;
        paths.extend(other.paths);
        Pending {
            route: merge(self.route, other.route),
            since: self.since.min(other.since),
            paths,
        }
    }
}

/// What a build produced.
enum Built {
    /// cargo ran.
    Cargo(BuildOutcome),
    /// rustc ran directly for these logic libraries (the fast path).
    Fast(Vec<(String, FastOutcome)>),
    /// The hot crates' patches were built once from the host's own sources, to fill their
    /// incremental caches: nothing to swap.
    Warm,
}

/// How a build may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BuildPath {
    /// cargo, always.
    Cargo,
    /// rustc directly if only recorded logic sources changed, else cargo.
    FastIfPossible,
}

/// A build in flight.
struct InFlight {
    /// What it was started for (route, files, time of the first change).
    pending: Pending,
    /// Stops cargo; the fast path's rustc runs are short and are left to finish.
    handle: Option<BuildHandle>,
    /// The hot crates' sources as this build read them (when their invocations were recorded).
    sources: BTreeMap<PathBuf, String>,
    task: tokio::task::JoinHandle<anyhow::Result<Built>>,
}

/// The running host and what it runs.
struct Running {
    process: HostProcess,
    started: Instant,
    /// A call into logic the host reported stuck and that has not returned: `logic::step`.
    stuck: Option<String>,
}

/// A swap that cannot be done: why, and the build it was for (when the reason names it).
struct SwapRestart {
    cause: RestartCause,
    rebuilt_in: Option<Duration>,
}

/// How a swap ended.
enum SwapVerdict {
    /// Every library swapped (or reloads on its own).
    Swapped,
    /// The host must restart with the new build.
    Restart(SwapRestart),
    /// Ctrl-C, SIGTERM or SIGHUP arrived while waiting for the host.
    Interrupted(Stop),
}

/// What the loop waits on, apart from the state.
struct Inputs {
    /// What hosts report unasked.
    events: mpsc::UnboundedReceiver<HostEvent>,
    /// Changed files.
    files: mpsc::UnboundedReceiver<Change>,
    /// Kept alive: dropping it stops the file events.
    _watcher: FsWatcher,
}

/// The session's state between wake-ups.
struct State {
    server: Arc<Mutex<ReloadServer>>,
    toolchain: Toolchain,
    signals: Signals,
    /// Changes not built yet.
    pending: Option<Pending>,
    /// The trailing edge: the next build starts once no change came for `debounce`.
    quiet_at: Option<tokio::time::Instant>,
    host: Option<Running>,
    /// The last reload's number.
    version: u64,
    /// No host was started yet.
    first: bool,
    /// The host that exited last, whose late reports are still shown.
    exited_pid: Option<u32>,
    /// Why the host restarts after the cargo build a refused fast-path swap asked for.
    restart_cause: Option<RestartCause>,
    /// Products of the last cargo build: what a fast-path rebuild updates.
    last: Option<Products>,
    /// The hot crates' sources as the running program has them (patched or started with), for
    /// telling edits a patch cannot apply ([`super::reach`]).
    snapshot: BTreeMap<PathBuf, String>,
    /// The sources the build being acted on read.
    built_sources: BTreeMap<PathBuf, String>,
    in_flight: Option<InFlight>,
}

/// What woke the loop.
enum Wake {
    /// The debounce ran out.
    Quiet,
    /// Ctrl-C, SIGTERM or SIGHUP.
    Signal(Stop),
    /// A host reported something.
    Host(HostEvent),
    /// Files changed.
    Change(Change),
    /// The host exited.
    HostExited(std::io::Result<ExitStatus>),
    /// The build ended.
    BuildDone(Result<anyhow::Result<Built>, tokio::task::JoinError>),
}

/// What the loop does after a wake-up.
enum Step {
    /// Start the pending build if it is due.
    Go,
    /// Wait for the next wake-up first.
    Skip,
    /// Stopped by this signal.
    Stop(Stop),
}

/// Waits for the next thing to act on.
async fn next_wake(state: &mut State, inputs: &mut Inputs) -> Wake {
    let State {
        pending,
        quiet_at,
        host,
        in_flight,
        signals,
        ..
    } = state;
    let wake = quiet_at.filter(|_| in_flight.is_none() && pending.is_some());
    let quiet = async {
        match wake {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let host_exit = async {
        match host.as_mut() {
            Some(h) => h.process.wait().await,
            None => std::future::pending().await,
        }
    };
    let build_done = async {
        match in_flight.as_mut() {
            Some(b) => (&mut b.task).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = quiet => Wake::Quiet,
        signal = signals.recv() => Wake::Signal(signal),
        Some(event) = inputs.events.recv() => Wake::Host(event),
        Some(change) = inputs.files.recv() => Wake::Change(change),
        status = host_exit => Wake::HostExited(status),
        done = build_done => Wake::BuildDone(done),
    }
}

impl Session {
    /// Runs until Ctrl-C, SIGTERM or SIGHUP; returns which one stopped it.
    pub async fn run(mut self) -> anyhow::Result<Stop> {
        let (mut state, mut inputs) = self.open()?;
        let start = Pending {
            route: Route::Rebuild,
            since: Instant::now(),
            paths: BTreeSet::new(),
        };
        state.in_flight = Some(self.start_build(start, BuildPath::Cargo, true)?);
        loop {
            let step = match next_wake(&mut state, &mut inputs).await {
                Wake::Quiet => Step::Go,
                Wake::Signal(signal) => Step::Stop(self.on_signal(&mut state, signal).await),
                Wake::Host(event) => self.on_host_event(&mut state, event).await?,
                Wake::Change(change) => {
                    self.on_change(&mut state, change);
                    Step::Go
                }
                Wake::HostExited(status) => {
                    self.on_host_exit(&mut state, &mut inputs.events, status)
                        .await;
                    Step::Go
                }
                Wake::BuildDone(done) => self.on_build_done(&mut state, done).await?,
            };
            match step {
                Step::Go => self.start_due_build(&mut state)?,
                Step::Skip => {}
                Step::Stop(signal) => return Ok(signal),
            }
        }
    }

    /// Opens what the session listens to: the reload channel, the file watcher, the signals.
    fn open(&self) -> anyhow::Result<(State, Inputs)> {
        let toolchain = Toolchain::detect()?;
        let mut reload_server =
            ReloadServer::start().context("failed to create the reload channel")?;
        reload_server.set_hang_threshold(self.model.hang_timeout);
        let (event_tx, events) = mpsc::unbounded_channel::<HostEvent>();
        reload_server.on_event(move |e| {
            let _ = event_tx.send(e);
        });
        let server = Arc::new(Mutex::new(reload_server));
        let (tx, files) = mpsc::unbounded_channel::<Change>();
        let filter = PathFilter::new(
            &self.model.workspace_root,
            std::slice::from_ref(&self.model.target_dir),
        );
        let roots: Vec<PathBuf> = vec![self.model.workspace_root.clone()];
        let watcher = FsWatcher::start(&roots, filter, EVENT_GROUPING, move |change| {
            let _ = tx.send(change);
        })
        .context("failed to watch the workspace")?;
        let signals = Signals::new()?;
        let state = State {
            server,
            toolchain,
            signals,
            pending: None,
            quiet_at: None,
            host: None,
            version: 0,
            first: true,
            exited_pid: None,
            restart_cause: None,
            last: None,
            snapshot: BTreeMap::new(),
            built_sources: BTreeMap::new(),
            in_flight: None,
        };
        let inputs = Inputs {
            events,
            files,
            _watcher: watcher,
        };
        Ok((state, inputs))
    }

    fn emit(&self, event: WatchEvent) {
        (self.reporter.borrow_mut())(event);
    }

    /// Cancels the build in flight and stops the host; returns the signal.
    async fn on_signal(&self, state: &mut State, signal: Stop) -> Stop {
        if let Some(b) = state.in_flight.take() {
            if let Some(handle) = &b.handle {
                let _ = handle.cancel(Duration::from_millis(500));
            }
            let _ = b.task.await;
        }
        self.stop(state.host.take(), signal).await
    }

    /// A host's report: a connection (which may need the newest build), or something to show.
    async fn on_host_event(&self, state: &mut State, event: HostEvent) -> anyhow::Result<Step> {
        let catch_up = match (&event, state.host.as_ref(), state.last.as_ref()) {
            // A host that opened its library after a build (it was busy loading data) runs an
            // older one, or none: it gets the newest now. A build in flight or due hands it the
            // newest when it ends.
            (HostEvent::Connected { pid, .. }, Some(running), Some(made))
                if *pid == running.process.pid()
                    && state.in_flight.is_none()
                    && state.pending.is_none() =>
            {
                Some(made.clone())
            }
            _ => None,
        };
        if matches!(event, HostEvent::Connected { .. }) {
            // Serves the host's connection, refuses any other's now (a process waiting for its
            // first build must hear so, not wait).
            state
                .server
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .accept_pending();
        }
        if let Some(made) = catch_up {
            return Ok(match self.catch_up(state, made).await? {
                Some(stop) => Step::Stop(stop),
                None => Step::Skip,
            });
        }
        match state.host.as_mut() {
            Some(running) => self.host_event(running.process.pid(), Some(running), event),
            // What a host said just before it exited (e.g. the panic that ended it).
            None => {
                if let Some(pid) = state.exited_pid {
                    self.host_event(pid, None, event);
                }
            }
        }
        Ok(Step::Go)
    }

    /// Routes changed files and adds them to the pending batch; the debounce starts over.
    fn on_change(&self, state: &mut State, change: Change) {
        let (route, batch) = match change {
            Change::Paths(batch) => (
                route_batch(&self.model, batch.iter().map(PathBuf::as_path)),
                batch,
            ),
            Change::Rescan => {
                // No paths: whatever changed goes through cargo, and everything restarts.
                self.emit(WatchEvent::EventsLost);
                (Route::Rebuild, Vec::new())
            }
        };
        tracing::debug!(?route, files = batch.len(), "change");
        if route != Route::Ignore {
            let batch = Pending {
                route,
                since: Instant::now() - EVENT_GROUPING,
                paths: batch.into_iter().collect(),
            };
            state.quiet_at = Some(tokio::time::Instant::now() + self.model.debounce);
            state.pending = Some(match state.pending.take() {
                Some(p) => p.merge(batch),
                None => batch,
            });
        }
    }

    /// The host exited on its own: its last reports, then the exit; the next change starts it.
    async fn on_host_exit(
        &self,
        state: &mut State,
        events: &mut mpsc::UnboundedReceiver<HostEvent>,
        status: std::io::Result<ExitStatus>,
    ) {
        let mut h = state.host.take().expect("a host was running");
        let pid = h.process.pid();
        // Its last reports (a panic that ended it) are still on their way: show them before the
        // exit.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
            self.host_event(pid, Some(&mut h), event);
        }
        state.exited_pid = Some(pid);
        self.emit(WatchEvent::HostExited {
            pid: h.process.pid(),
            status: status.map_err(|e| e.to_string()),
        });
        state
            .server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget_hosts();
    }

    /// A build ended: act on it (swap, restart, start), unless newer changes make it stale.
    async fn on_build_done(
        &self,
        state: &mut State,
        done: Result<anyhow::Result<Built>, tokio::task::JoinError>,
    ) -> anyhow::Result<Step> {
        let flight = state.in_flight.take().expect("a build was running");
        state.built_sources = flight.sources;
        let built = match done.context("build task panicked")? {
            Ok(built) => built,
            // A warm-up that could not run changes nothing: the first edit builds from scratch.
            Err(e) if flight.pending.route == Route::Ignore => {
                tracing::debug!("warming the patch cache failed: {e:#}");
                Built::Warm
            }
            Err(e) => return Err(e),
        };
        if matches!(built, Built::Warm) {
            // Edits that came meanwhile wait in `pending` and now build incrementally.
            tracing::debug!("patch cache warm");
            if state.pending.is_none()
                && let Some(made) = state.last.clone()
                && let Some(stop) = self.catch_up(state, made).await?
            {
                return Ok(Step::Stop(stop));
            }
            return Ok(Step::Go);
        }
        if let Some(p) = state.pending.take() {
            // Newer edits are waiting: build them, acting for both batches at once.
            state.pending = Some(flight.pending.merge(p));
            return Ok(Step::Go);
        }
        let made = match built {
            // Returned above already.
            Built::Warm => return Ok(Step::Go),
            Built::Cargo(outcome) => self.finish_cargo(state, outcome),
            Built::Fast(results) => match self.finish_fast(state, results) {
                Some(made) => made,
                None => {
                    // Not the user's code: the recorded invocation no longer fits (e.g. `cargo
                    // clean`). cargo builds it and records it afresh.
                    let mut retry = flight.pending;
                    retry.paths.clear();
                    state.pending = Some(retry);
                    return Ok(Step::Skip);
                }
            },
        };
        if let Some((build, made)) = made {
            return self.act_on_build(state, flight.pending, build, made).await;
        }
        if state.pending.is_none()
            && let Some(made) = state.last.clone()
        {
            // The build failed: a host that waits for its first build (its artifact changed
            // before it opened it) gets the last good one.
            if let Some(stop) = self.catch_up(state, made).await? {
                return Ok(Step::Stop(stop));
            }
        }
        Ok(Step::Go)
    }

    /// What cargo built, if it succeeded (it is then the newest good build); reports a failure.
    fn finish_cargo(
        &self,
        state: &mut State,
        outcome: BuildOutcome,
    ) -> Option<(BuildInfo, Products)> {
        let made = if outcome.success {
            products(&self.model, &outcome)
        } else {
            None
        };
        if outcome.success && made.is_none() {
            self.emit(WatchEvent::NoProducts);
        }
        if made.is_some() {
            state.last.clone_from(&made);
        }
        let build = BuildInfo {
            duration: outcome.duration,
            by: BuiltBy::Cargo,
            counts: Counts::of(&outcome.diagnostics),
        };
        if !outcome.success {
            self.emit(WatchEvent::BuildFailed {
                diagnostics: outcome.diagnostics,
                output: outcome.stderr.unwrap_or_default(),
                exit: BuildExit::Cargo(outcome.status),
                host_running: state.host.is_some(),
            });
        }
        made.map(|made| (build, made))
    }

    /// What rustc built directly, if it succeeded; reports a failure. `None` when rustc failed
    /// without a diagnostic: the build goes through cargo instead.
    #[allow(clippy::type_complexity)]
    fn finish_fast(
        &self,
        state: &mut State,
        results: Vec<(String, FastOutcome)>,
    ) -> Option<Option<(BuildInfo, Products)>> {
        let diagnostics: Vec<BuildDiagnostic> = results
            .iter()
            .flat_map(|(_, o)| o.diagnostics.iter().cloned())
            .collect();
        let success = results.iter().all(|(_, o)| o.success);
        let counts = Counts::of(&diagnostics);
        if !success && counts.errors == 0 {
            let why: String = results
                .iter()
                .map(|(_, o)| o.other_output.as_str())
                .collect();
            tracing::debug!("direct rustc failed without diagnostics ({why}); building with cargo");
            return None;
        }
        let links: Vec<Duration> = results.iter().filter_map(|(_, o)| o.link).collect();
        let link = (links.len() == results.len()).then(|| links.iter().sum());
        let build = BuildInfo {
            duration: results.iter().map(|(_, o)| o.duration).sum(),
            by: BuiltBy::Rustc { link },
            counts,
        };
        if !success {
            let output: String = results
                .iter()
                .map(|(_, o)| o.other_output.as_str())
                .collect();
            self.emit(WatchEvent::BuildFailed {
                diagnostics,
                output,
                exit: BuildExit::Rustc,
                host_running: state.host.is_some(),
            });
        }
        // Put each library where cargo would (hosts that watch the file, like hot-lib-reloader,
        // look there); the paths stay the same.
        let mut made = success.then(|| state.last.clone()).flatten();
        if !self.model.roles.hot.is_empty() {
            // Patches are loaded from where rustc wrote them (the host copies each one first).
            // Kept in the last build: a host that has not called a hot function yet (so has not
            // connected) gets them when it does.
            if let Some(made) = made.as_mut() {
                for (lib, outcome) in &results {
                    if let Some(artifact) = &outcome.artifact {
                        made.libs.retain(|(l, _)| l != lib);
                        made.libs.push((lib.clone(), artifact.clone()));
                    }
                }
                state.last = Some(made.clone());
            }
            return Some(made.map(|made| (build, made)));
        }
        for (lib, outcome) in &results {
            let slot = made
                .as_ref()
                .and_then(|m| m.libs.iter().find(|(l, _)| l == lib));
            if let (Some((_, dest)), Some(artifact)) = (slot, &outcome.artifact)
                && let Err(e) = fastpath::uplift(artifact, dest)
            {
                self.emit(WatchEvent::UpliftFailed {
                    artifact: artifact.clone(),
                    dest: dest.clone(),
                    error: e.to_string(),
                });
                made = None;
            }
        }
        Some(made.map(|made| (build, made)))
    }

    /// A good build: swapped into the host, or the host restarted or started with it.
    async fn act_on_build(
        &self,
        state: &mut State,
        pending: Pending,
        build: BuildInfo,
        made: Products,
    ) -> anyhow::Result<Step> {
        match (&pending.route, state.host.as_ref()) {
            (Route::Swap(_), Some(running)) => {
                state.version += 1;
                let verdict = self
                    .swap(
                        &state.server,
                        running,
                        &made,
                        state.version,
                        Some(build),
                        pending.since,
                        &mut state.signals,
                    )
                    .await;
                match verdict {
                    SwapVerdict::Swapped => {}
                    SwapVerdict::Restart(restart) if matches!(build.by, BuiltBy::Rustc { .. }) => {
                        // rustc rebuilt only the logic library: a host that depends on the logic
                        // crate (its types) is stale. cargo builds everything, then the host
                        // restarts; the old host keeps running its old code meanwhile.
                        tracing::debug!(cause = ?restart.cause, "rebuilding with cargo before the restart");
                        state.restart_cause = Some(restart.cause);
                        state.pending = Some(Pending {
                            route: Route::Restart,
                            since: pending.since,
                            paths: BTreeSet::new(),
                        });
                    }
                    SwapVerdict::Restart(restart) => {
                        self.restart_for_swap(state, restart, made).await?;
                    }
                    SwapVerdict::Interrupted(signal) => {
                        return Ok(Step::Stop(self.stop(state.host.take(), signal).await));
                    }
                }
            }
            (_, Some(_)) => {
                let old = state.host.take().expect("running");
                let reason = RestartReason::Rebuilt {
                    cause: state.restart_cause.take(),
                    build,
                };
                let running = self
                    .restart(old, &state.server, &state.toolchain, made, reason)
                    .await?;
                state.host = Some(running);
            }
            (_, None) => {
                let running = self.start_host(&state.server, &state.toolchain, made)?;
                self.emit(WatchEvent::HostStarted {
                    pid: running.process.pid(),
                    first: state.first,
                    build,
                });
                state.host = Some(running);
            }
        }
        state.first = false;
        self.take_snapshot(state);
        if matches!(build.by, BuiltBy::Cargo)
            && state.host.is_some()
            && state.pending.is_none()
            && state.in_flight.is_none()
        {
            state.in_flight = self.start_warm_up();
        }
        Ok(Step::Go)
    }

    /// After cargo built a new host executable: builds its binary crate's patch once from the
    /// same sources, in the background, so the first edit's patch is an incremental build (a
    /// patch has its own incremental directory, and a Bevy game's crate takes many seconds to
    /// build from scratch). Edits made meanwhile wait for it. `None` when nothing is hot.
    fn start_warm_up(&self) -> Option<InFlight> {
        if self.model.roles.hot.is_empty() || !self.build.fast_path {
            return None;
        }
        let records = super::build::capture_dir(&self.model, &self.build);
        let patches = super::build::patch_dir(&self.model, &self.build);
        patch::prepare_dir(&patches).ok()?;
        let tune = if self.build.plain_rustc {
            None
        } else {
            std::env::current_exe().ok()
        };
        let plan: Vec<Invocation> = self
            .model
            .roles
            .hot
            .iter()
            .filter(|hot| hot.kind == HotKind::Bin)
            .filter_map(|hot| {
                let recorded = fastpath::load(&records, &fastpath::hot_key(&hot.crate_name, true))?;
                (recorded.tuning != self.build.plain_rustc)
                    .then(|| patch::invocation(&recorded, hot.kind, &patches, tune.as_deref()).0)
            })
            .collect();
        if plan.is_empty() {
            return None;
        }
        tracing::debug!(crates = plan.len(), "warming the patch cache");
        let task = tokio::task::spawn_blocking(move || {
            for invocation in &plan {
                fastpath::rebuild(invocation).context("failed to run rustc")?;
            }
            Ok(Built::Warm)
        });
        Some(InFlight {
            pending: Pending {
                route: Route::Ignore,
                since: Instant::now(),
                paths: BTreeSet::new(),
            },
            handle: None,
            task,
            sources: BTreeMap::new(),
        })
    }

    /// Starts the pending build once no build runs and the debounce ran out; a batch that asks
    /// for a rebuild loads the project afresh first.
    fn start_due_build(&mut self, state: &mut State) -> anyhow::Result<()> {
        let settled = state
            .quiet_at
            .is_none_or(|at| at <= tokio::time::Instant::now());
        if state.in_flight.is_some() || !settled {
            return Ok(());
        }
        let Some(p) = state.pending.take() else {
            return Ok(());
        };
        if p.route == Route::Rebuild
            && let Err(error) = self.reload_model(&state.server, &mut state.toolchain)
        {
            // Like a failed build: the host keeps running, the next change tries again.
            self.emit(WatchEvent::ProjectLoadFailed {
                error,
                host_running: state.host.is_some(),
            });
            return Ok(());
        }
        let mut p = p;
        if let Some(items) = self.unreached(state, &p) {
            tracing::debug!(?items, "edits no hot function reaches: restarting");
            p.route = Route::Restart;
            state.restart_cause = Some(RestartCause::Unreached { items });
        }
        let path = if state.host.is_some() && state.last.is_some() {
            BuildPath::FastIfPossible
        } else {
            BuildPath::Cargo
        };
        state.in_flight = Some(self.start_build(p, path, false)?);
        Ok(())
    }

    /// The changed items of hot crates that no hot function reaches, if a patch is planned and
    /// there are any.
    fn unreached(&self, state: &State, pending: &Pending) -> Option<Vec<String>> {
        let Route::Swap(packages) = &pending.route else {
            return None;
        };
        if self.model.roles.hot.is_empty() || state.snapshot.is_empty() {
            return None;
        }
        let changed: Vec<(String, String)> = pending
            .paths
            .iter()
            .filter_map(|p| {
                Some((
                    state.snapshot.get(p)?.clone(),
                    std::fs::read_to_string(p).ok()?,
                ))
            })
            .collect();
        let records = super::build::capture_dir(&self.model, &self.build);
        let sources: Vec<String> = packages
            .iter()
            .flat_map(|p| self.model.hot_crates_of(p))
            .flat_map(|hot| self.hot_sources(&records, hot))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect();
        let items = super::reach::unreached(&changed, &sources);
        (!items.is_empty()).then_some(items)
    }

    /// The Rust sources of `hot`'s last recorded build.
    fn hot_sources(&self, records: &Path, hot: &crate::roles::HotCrate) -> Vec<PathBuf> {
        let key = fastpath::hot_key(&hot.crate_name, hot.kind == HotKind::Bin);
        fastpath::load(records, &key)
            .and_then(|r| fastpath::sources(&r))
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect()
    }

    /// Every hot crate's sources, as they are now on disk (none before their first build).
    fn read_hot_sources(&self) -> BTreeMap<PathBuf, String> {
        let records = super::build::capture_dir(&self.model, &self.build);
        self.model
            .roles
            .hot
            .iter()
            .flat_map(|hot| self.hot_sources(&records, hot))
            .filter_map(|p| Some((p.clone(), std::fs::read_to_string(&p).ok()?)))
            .collect()
    }

    /// Remembers the hot crates' sources as the program now runs them: as the build read them,
    /// or (the first build, which recorded where they are) as they are now.
    fn take_snapshot(&self, state: &mut State) {
        if self.model.roles.hot.is_empty() {
            return;
        }
        let built = std::mem::take(&mut state.built_sources);
        state.snapshot = if built.is_empty() {
            self.read_hot_sources()
        } else {
            built
        };
    }

    /// Loads the model, host package and toolchain afresh (a manifest, lock file or toolchain
    /// file changed); on an error nothing changes.
    fn reload_model(
        &mut self,
        server: &Arc<Mutex<ReloadServer>>,
        toolchain: &mut Toolchain,
    ) -> anyhow::Result<()> {
        let (model, host_package) = (self.reload)()?;
        let new_toolchain = Toolchain::detect()?;
        if model.roles.host != self.model.roles.host || model.roles.logic != self.model.roles.logic
        {
            self.emit(WatchEvent::ProjectReloaded {
                host: model.roles.host.clone(),
                logic: model.roles.logic.iter().map(|(p, _)| p.clone()).collect(),
            });
        }
        server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_hang_threshold(model.hang_timeout);
        self.model = model;
        self.host_package = host_package;
        *toolchain = new_toolchain;
        Ok(())
    }

    /// Starts the build for `pending`: rustc directly when `path` allows it and only recorded
    /// logic sources changed, cargo otherwise.
    fn start_build(
        &self,
        pending: Pending,
        path: BuildPath,
        show_progress: bool,
    ) -> anyhow::Result<InFlight> {
        let mut pending = pending;
        // Read before the build reads them: an edit saved while it runs is the next build's.
        let sources = self.read_hot_sources();
        let plan = match path {
            BuildPath::FastIfPossible => self.fast_plan(&pending),
            BuildPath::Cargo => None,
        };
        if plan.is_none()
            && !self.model.roles.hot.is_empty()
            && matches!(pending.route, Route::Swap(_))
        {
            // Hot functions are patched from rustc's recorded runs only; whatever cargo builds
            // (a new file, an invocation not recorded yet) is a new executable: restart.
            pending.route = Route::Restart;
        }
        if let Some(plan) = plan {
            tracing::debug!(route = ?pending.route, "build started (rustc directly)");
            self.emit(WatchEvent::BuildStarted { fast: true });
            let task = tokio::task::spawn_blocking(move || {
                let mut results = Vec::new();
                for (lib, invocation) in plan {
                    results.push((
                        lib,
                        fastpath::rebuild(&invocation).context("failed to run rustc")?,
                    ));
                }
                Ok(Built::Fast(results))
            });
            return Ok(InFlight {
                pending,
                handle: None,
                task,
                sources,
            });
        }
        tracing::debug!(route = ?pending.route, "build started");
        let build = watch_build(&self.model, &self.build, show_progress);
        let running = build.spawn().context("failed to start cargo")?;
        self.emit(WatchEvent::BuildStarted { fast: false });
        let handle = running.handle();
        let task = tokio::task::spawn_blocking(move || {
            Ok(Built::Cargo(running.wait().context("failed to run cargo")?))
        });
        Ok(InFlight {
            pending,
            handle: Some(handle),
            task,
            sources,
        })
    }

    /// The recorded rustc runs that rebuild exactly the changed files, if every changed file is a
    /// source (per rustc's dep-info) of a logic library whose invocation was recorded.
    fn fast_plan(&self, pending: &Pending) -> Option<Vec<(String, Invocation)>> {
        if !matches!(pending.route, Route::Swap(_))
            || pending.paths.is_empty()
            || !self.build.fast_path
        {
            return None;
        }
        let dir = super::build::capture_dir(&self.model, &self.build);
        if !self.model.roles.hot.is_empty() {
            return self.patch_plan(pending, &dir);
        }
        let mut plan = Vec::new();
        let mut covered = BTreeSet::new();
        for (_, lib) in &self.model.roles.logic {
            let Some(invocation) = fastpath::load(&dir, lib) else {
                continue;
            };
            // Recorded under the other `--plain-rustc` setting: cargo rebuilds (the edit changed
            // a source) and records it afresh.
            if invocation.tuning == self.build.plain_rustc {
                return None;
            }
            let sources: BTreeSet<PathBuf> = fastpath::sources(&invocation)?.into_iter().collect();
            let touched: Vec<&PathBuf> = pending
                .paths
                .iter()
                .filter(|p| sources.contains(*p))
                .collect();
            if !touched.is_empty() {
                covered.extend(touched.into_iter().cloned());
                plan.push((lib.clone(), invocation));
            }
        }
        (covered.len() == pending.paths.len() && !plan.is_empty()).then_some(plan)
    }

    /// The patches that rebuild exactly the changed files, if every changed file is a source (per
    /// rustc's dep-info) of a hot crate whose invocation was recorded.
    fn patch_plan(&self, pending: &Pending, records: &Path) -> Option<Vec<(String, Invocation)>> {
        let Route::Swap(packages) = &pending.route else {
            return None;
        };
        let patches = super::build::patch_dir(&self.model, &self.build);
        if let Err(e) = patch::prepare_dir(&patches) {
            tracing::debug!("cannot prepare {}: {e}", patches.display());
            return None;
        }
        let tune = if self.build.plain_rustc {
            None
        } else {
            std::env::current_exe().ok()
        };
        let mut plan = Vec::new();
        let mut covered = BTreeSet::new();
        for hot in packages.iter().flat_map(|p| self.model.hot_crates_of(p)) {
            let key = fastpath::hot_key(&hot.crate_name, hot.kind == HotKind::Bin);
            let recorded = fastpath::load(records, &key)?;
            if recorded.tuning == self.build.plain_rustc {
                return None;
            }
            let sources: BTreeSet<PathBuf> = fastpath::sources(&recorded)?.into_iter().collect();
            let touched: Vec<&PathBuf> = pending
                .paths
                .iter()
                .filter(|p| sources.contains(*p))
                .collect();
            if !touched.is_empty() {
                covered.extend(touched.into_iter().cloned());
                let (invocation, _) =
                    patch::invocation(&recorded, hot.kind, &patches, tune.as_deref());
                plan.push((hot.crate_name.clone(), invocation));
            }
        }
        (covered.len() == pending.paths.len() && !plan.is_empty()).then_some(plan)
    }

    /// Passes on what host `host_pid` reported unasked (`running`: it still runs).
    fn host_event(&self, host_pid: u32, running: Option<&mut Running>, event: HostEvent) {
        match event {
            HostEvent::Panicked { pid, panic } if pid == host_pid => {
                self.emit(WatchEvent::Panicked(panic));
            }
            HostEvent::Stuck { pid, stuck } if pid == host_pid => {
                let call = format!("{}::{}", stuck.lib, stuck.function);
                self.emit(WatchEvent::Stuck(stuck));
                if let Some(running) = running {
                    running.stuck = Some(call);
                }
            }
            HostEvent::Resumed { pid, resumed } if pid == host_pid => {
                self.emit(WatchEvent::Resumed(resumed));
                if let Some(running) = running {
                    running.stuck = None;
                }
            }
            // From a host that was restarted since.
            _ => {}
        }
    }

    /// Sends the newest build of each logic library to a host that runs an older one (it opened
    /// the library after that build, or could not open it at all and waits), restarting the host
    /// if it refuses. `Some(signal)` when Ctrl-C (or SIGTERM, SIGHUP) came meanwhile.
    async fn catch_up(&self, state: &mut State, last: Products) -> anyhow::Result<Option<Stop>> {
        let Some(running) = state.host.as_ref() else {
            return Ok(None);
        };
        let stale: Vec<(String, PathBuf)> = {
            let mut server = state.server.lock().unwrap_or_else(|e| e.into_inner());
            last.libs
                .iter()
                .filter(|(lib, path)| {
                    server.running_hash(lib).is_some_and(|running| {
                        dylib_dev_runtime::hash_file(path).is_ok_and(|newest| newest != running)
                    })
                })
                .cloned()
                .collect()
        };
        if stale.is_empty() {
            return Ok(None);
        }
        state.version += 1;
        let made = Products {
            libs: stale,
            ..last.clone()
        };
        let verdict = self
            .swap(
                &state.server,
                running,
                &made,
                state.version,
                None,
                Instant::now(),
                &mut state.signals,
            )
            .await;
        match verdict {
            SwapVerdict::Swapped => {}
            SwapVerdict::Restart(restart) if !self.model.roles.hot.is_empty() => {
                // The last cargo build's executable predates the patch: cargo builds the edits
                // in, then the host restarts.
                state.restart_cause = Some(restart.cause);
                state.pending = Some(Pending {
                    route: Route::Restart,
                    since: Instant::now(),
                    paths: BTreeSet::new(),
                });
                state.quiet_at = Some(tokio::time::Instant::now());
            }
            SwapVerdict::Restart(restart) => {
                self.restart_for_swap(state, restart, last).await?;
            }
            SwapVerdict::Interrupted(signal) => {
                return Ok(Some(self.stop(state.host.take(), signal).await));
            }
        }
        Ok(None)
    }

    /// Sends every logic library to the host; says whether the host must restart instead.
    /// `build` is `None` when the host catches up on an earlier build.
    #[allow(clippy::too_many_arguments)]
    async fn swap(
        &self,
        server: &Arc<Mutex<ReloadServer>>,
        running: &Running,
        made: &Products,
        version: u64,
        build: Option<BuildInfo>,
        since: Instant,
        signals: &mut Signals,
    ) -> SwapVerdict {
        let rebuilt_in = build.map(|b| b.duration);
        let restart = |cause| SwapVerdict::Restart(SwapRestart { cause, rebuilt_in });
        if let Some(call) = &running.stuck {
            // It cannot swap until the call returns, and it has not for the whole hang timeout.
            return restart(RestartCause::Stuck { call: call.clone() });
        }
        for (lib, path) in &made.libs {
            // A dylib-dev-runtime host says hello when it loads the library (`hot_module!`: at its
            // first call, typically right after the start). A host silent at the end of the grace
            // is taken for one that reloads on its own: waiting the whole reload timeout and then
            // restarting it (what an edit in its first seconds used to do) throws its state away.
            let grace = HELLO_GRACE.saturating_sub(running.started.elapsed());
            let (s, l) = (Arc::clone(server), lib.clone());
            let connected = tokio::task::spawn_blocking(move || {
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .wait_for_host(&l, grace)
                    .is_ok()
            })
            .await
            .unwrap_or(false);
            if !connected {
                // Not connected yet: a dylib-dev-runtime host that is still busy (loading its
                // data) gets this build when it opens the library (`catch_up`); a host without it
                // (e.g. hot-lib-reloader) picks the file up itself.
                self.emit(WatchEvent::ReloadsOnItsOwn {
                    lib: lib.clone(),
                    build,
                    hot: !self.model.roles.hot.is_empty(),
                });
                continue;
            }
            let (server, lib_name, path, timeout) = (
                Arc::clone(server),
                lib.clone(),
                path.clone(),
                self.model.hang_timeout,
            );
            let task = tokio::task::spawn_blocking(move || {
                server
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .reload(&lib_name, version, &path, timeout)
            });
            // The wait is bounded by the hang timeout; Ctrl-C must not wait for it.
            let report = tokio::select! {
                report = task => report,
                signal = signals.recv() => return SwapVerdict::Interrupted(signal),
            };
            match report {
                Ok(Ok(report)) => match report.outcome {
                    Outcome::Swapped(timing) => {
                        self.emit(WatchEvent::Swapped {
                            lib: lib.clone(),
                            version,
                            build,
                            swap: timing.total(),
                            since_edit: build.map(|_| since.elapsed()),
                            lingering: report.lingering,
                            lingering_bytes: report.lingering_bytes,
                        });
                        if report.lingering_bytes > LINGERING_LIMIT {
                            // The memory is the reason, not the build: no build time in it.
                            return SwapVerdict::Restart(SwapRestart {
                                cause: RestartCause::OldVersionsKept {
                                    lib: lib.clone(),
                                    count: report.lingering,
                                    bytes: report.lingering_bytes,
                                },
                                rebuilt_in: None,
                            });
                        }
                        if report.lingering == 1 {
                            self.emit(WatchEvent::OldVersionsMapped {
                                lib: lib.clone(),
                                limit_bytes: LINGERING_LIMIT,
                                patches: self.model.roles.hot.iter().any(|h| &h.crate_name == lib),
                            });
                        }
                    }
                    Outcome::Failed(reason) => {
                        self.emit(WatchEvent::SwapRefused {
                            lib: lib.clone(),
                            version,
                            reason,
                        });
                        return restart(RestartCause::SwapRefused);
                    }
                },
                Ok(Err(error)) => {
                    self.emit(WatchEvent::SwapFailed {
                        lib: lib.clone(),
                        version,
                        error,
                    });
                    return restart(RestartCause::SwapFailed);
                }
                Err(e) => {
                    self.emit(WatchEvent::SwapTaskFailed {
                        error: e.to_string(),
                    });
                    return SwapVerdict::Restart(SwapRestart {
                        cause: RestartCause::SwapFailed,
                        rebuilt_in: None,
                    });
                }
            }
        }
        SwapVerdict::Swapped
    }

    /// Asks the host to save its hand-off state before it is stopped.
    async fn save_state(
        &self,
        server: &Arc<Mutex<ReloadServer>>,
        running: &Running,
    ) -> StateHandOff {
        if let Some(call) = &running.stuck {
            return StateHandOff::Stuck { call: call.clone() };
        }
        let (server, timeout) = (Arc::clone(server), self.model.stop_timeout);
        let saved = tokio::task::spawn_blocking(move || {
            server
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .save_state(timeout)
        })
        .await;
        match saved {
            Ok(Some(Ok(SaveOutcome::Saved(bytes)))) => StateHandOff::Saved { bytes },
            // A host without hand-off state: nothing to say.
            Ok(Some(Ok(SaveOutcome::Unsaved(why)))) if why.contains("no hand-off state") => {
                StateHandOff::Nothing
            }
            Ok(Some(Ok(SaveOutcome::Unsaved(why)))) => StateHandOff::NotSaved { why },
            Ok(Some(Err(e))) => StateHandOff::NotSaved { why: e.to_string() },
            Ok(None) | Err(_) => StateHandOff::Nothing,
        }
    }

    /// Restarts the running host with `made` because a swap could not be done.
    async fn restart_for_swap(
        &self,
        state: &mut State,
        restart: SwapRestart,
        made: Products,
    ) -> anyhow::Result<()> {
        let old = state.host.take().expect("running");
        let reason = RestartReason::Swap {
            cause: restart.cause,
            rebuilt_in: restart.rebuilt_in,
        };
        let running = self
            .restart(old, &state.server, &state.toolchain, made, reason)
            .await?;
        state.host = Some(running);
        Ok(())
    }

    /// Stops the host (its state saved first) and starts it with `made`.
    async fn restart(
        &self,
        old: Running,
        server: &Arc<Mutex<ReloadServer>>,
        toolchain: &Toolchain,
        made: Products,
        reason: RestartReason,
    ) -> anyhow::Result<Running> {
        let old_pid = old.process.pid();
        let state = self.save_state(server, &old).await;
        let status = old
            .process
            .stop(self.model.stop_timeout)
            .await
            .context("failed to stop the host")?;
        server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget_hosts();
        let running = self.start_host(server, toolchain, made)?;
        self.emit(WatchEvent::Restarted {
            old_pid,
            old_status: status,
            pid: running.process.pid(),
            reason,
            state,
        });
        Ok(running)
    }

    fn start_host(
        &self,
        server: &Arc<Mutex<ReloadServer>>,
        toolchain: &Toolchain,
        made: Products,
    ) -> anyhow::Result<Running> {
        let mut cmd = crate::host::program_command(&made.host_exe, &self.host_package, toolchain)?;
        cmd.args(&self.args);
        let libs: Vec<(&str, &std::path::Path)> = made
            .libs
            .iter()
            .map(|(n, p)| (n.as_str(), p.as_path()))
            .collect();
        let env = server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .host_env(&libs)?;
        cmd.envs(env);
        // Outside the private directory: a state the new host cannot read outlives the runner.
        cmd.env(
            dylib_dev_runtime::protocol::ENV_STATE_REJECTED,
            self.model.target_dir.join("rejected-state"),
        );
        let process = HostProcess::start(cmd, self.model.stop_timeout)
            .with_context(|| format!("failed to start `{}`", made.host_exe.display()))?;
        server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .serve_host(process.pid());
        Ok(Running {
            process,
            started: Instant::now(),
            stuck: None,
        })
    }

    /// Stops the host after a signal (the build was cancelled already); returns that signal.
    async fn stop(&self, host: Option<Running>, signal: Stop) -> Stop {
        if let Some(h) = host {
            let _ = h.process.stop(self.model.stop_timeout).await;
        }
        self.emit(WatchEvent::Stopped(signal));
        signal
    }
}
