//! The watch loop: file events in, builds out, the host swapped or restarted.
//!
//! One build at a time. Changes that arrive while a build runs are coalesced and built right
//! after it, instead of cancelling it: a cancelled rustc throws away the work it did, and the
//! typical logic build is done in about a second anyway. If changes are pending when a build
//! ends, its result is not acted on (it is already stale); the follow-up build acts for both.
use super::build::{BuildOptions, Products, products, watch_build};
use super::fs::{Change, FsWatcher, PathFilter};
use super::model::WatchModel;
use super::route::{Route, merge, route_batch};
use crate::cargo::{BuildDiagnostic, BuildHandle, BuildOutcome};
use crate::duration::ms;
use crate::host::{self, HostProcess};
use crate::reload::{HostEvent, Outcome, ReloadServer, SaveOutcome};
use crate::rustc_shim::fastpath::{self, FastOutcome, Invocation};
use crate::signals::Stop;
use crate::toolchain::Toolchain;
use crate::ui;
use anyhow::Context;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;
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
    /// Status lines off.
    pub quiet: bool,
    /// cargo's `package` for `program_command`.
    pub host_package: cargo_metadata::Package,
    /// Loads the model and host package afresh (`cargo metadata`, settings, command-line
    /// overrides): before every build a manifest, lock file or toolchain change asked for, so
    /// `wrap`/`unwrap` in another terminal, a renamed member or edited settings take effect.
    pub reload: Box<dyn Fn() -> anyhow::Result<(WatchModel, cargo_metadata::Package)>>,
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
}

/// A build in flight.
struct InFlight {
    /// What it was started for (route, files, time of the first change).
    pending: Pending,
    /// Stops cargo; the fast path's rustc runs are short and are left to finish.
    handle: Option<BuildHandle>,
    task: tokio::task::JoinHandle<anyhow::Result<Built>>,
}

/// How a finished build went, whichever way it ran.
struct BuildSummary {
    duration: Duration,
    counts: String,
    /// Shown after the time, e.g. " by rustc directly (link 62 ms)"; empty for cargo.
    how: String,
}

/// The running host and what it runs.
struct Running {
    process: HostProcess,
    started: Instant,
    /// A call into logic the host reported stuck and that has not returned: `logic::step`.
    stuck: Option<String>,
}

/// How a swap ended.
enum SwapVerdict {
    /// Every library swapped (or reloads on its own).
    Swapped,
    /// The host must restart with the new build, for this reason.
    Restart(String),
    /// Ctrl-C, SIGTERM or SIGHUP arrived while waiting for the host.
    Interrupted(Stop),
}

impl Session {
    /// Runs until Ctrl-C, SIGTERM or SIGHUP; returns which one stopped it.
    pub async fn run(mut self) -> anyhow::Result<Stop> {
        let mut toolchain = Toolchain::detect()?;
        let mut reload_server =
            ReloadServer::start().context("failed to create the reload channel")?;
        reload_server.set_hang_threshold(self.model.hang_timeout);
        let (event_tx, mut events) = mpsc::unbounded_channel::<HostEvent>();
        reload_server.on_event(move |e| {
            let _ = event_tx.send(e);
        });
        let server = Arc::new(Mutex::new(reload_server));
        let (tx, mut files) = mpsc::unbounded_channel::<Change>();
        let filter = PathFilter::new(
            &self.model.workspace_root,
            std::slice::from_ref(&self.model.target_dir),
        );
        let roots: Vec<PathBuf> = vec![self.model.workspace_root.clone()];
        let _watcher = FsWatcher::start(&roots, filter, EVENT_GROUPING, move |change| {
            let _ = tx.send(change);
        })
        .context("failed to watch the workspace")?;
        let mut signals = crate::signals::Signals::new()?;

        let mut pending: Option<Pending> = None;
        // The trailing edge: the next build starts once no change came for `debounce`.
        let mut quiet_at: Option<tokio::time::Instant> = None;
        let mut host: Option<Running> = None;
        let mut version: u64 = 0;
        let mut first = true;
        // The host that exited last, whose late reports are still shown.
        let mut exited_pid: Option<u32> = None;
        // Why the host restarts after the cargo build a refused fast-path swap asked for.
        let mut restart_reason: Option<String> = None;
        // Products of the last cargo build: what a fast-path rebuild updates.
        let mut last: Option<Products> = None;
        let start = Pending {
            route: Route::Rebuild,
            since: Instant::now(),
            paths: BTreeSet::new(),
        };
        let mut in_flight = Some(self.start_build(start, None, true)?);

        loop {
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
                () = quiet => {}
                signal = signals.recv() => {
                    if let Some(b) = in_flight.take() {
                        if let Some(handle) = &b.handle {
                            let _ = handle.cancel(Duration::from_millis(500));
                        }
                        let _ = b.task.await;
                    }
                    return Ok(self.stop(host.take(), signal).await);
                }
                Some(event) = events.recv() => {
                    let catch_up = match (&event, host.as_ref(), last.as_ref()) {
                        // A host that opened its library after a build (it was busy loading
                        // data) runs an older one, or none: it gets the newest now. A build in
                        // flight or due hands it the newest when it ends.
                        (HostEvent::Connected { pid, .. }, Some(running), Some(made))
                            if *pid == running.process.pid() && in_flight.is_none() && pending.is_none() =>
                        {
                            Some(made.clone())
                        }
                        _ => None,
                    };
                    if matches!(event, HostEvent::Connected { .. }) {
                        // Serves the host's connection, refuses any other's now (a process
                        // waiting for its first build must hear so, not wait).
                        server.lock().unwrap_or_else(|e| e.into_inner()).accept_pending();
                    }
                    if let Some(made) = catch_up {
                        if let Some(stop) = self.catch_up(&server, &mut host, &toolchain, made, &mut version, &mut signals).await? {
                            return Ok(stop);
                        }
                        continue;
                    }
                    match host.as_mut() {
                        Some(running) => self.host_event(running.process.pid(), Some(running), event),
                        // What a host said just before it exited (e.g. the panic that ended it).
                        None => if let Some(pid) = exited_pid {
                            self.host_event(pid, None, event);
                        },
                    }
                }
                Some(change) = files.recv() => {
                    let (route, batch) = match change {
                        Change::Paths(batch) => (route_batch(&self.model, batch.iter().map(PathBuf::as_path)), batch),
                        Change::Rescan => {
                            // No paths: whatever changed goes through cargo, and everything restarts.
                            ui::warn("file events were lost (the kernel's event queue overflowed, or the watcher failed); rebuilding everything");
                            (Route::Rebuild, Vec::new())
                        }
                    };
                    tracing::debug!(?route, files = batch.len(), "change");
                    if route != Route::Ignore {
                        let batch = Pending { route, since: Instant::now() - EVENT_GROUPING, paths: batch.into_iter().collect() };
                        quiet_at = Some(tokio::time::Instant::now() + self.model.debounce);
                        pending = Some(match pending.take() {
                            Some(p) => p.merge(batch),
                            None => batch,
                        });
                    }
                }
                status = host_exit => {
                    let mut h = host.take().expect("a host was running");
                    let pid = h.process.pid();
                    // Its last reports (a panic that ended it) are still on their way: show them
                    // before the exit.
                    let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
                    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
                        self.host_event(pid, Some(&mut h), event);
                    }
                    exited_pid = Some(pid);
                    let how = status.map(|s| host::describe(&s)).unwrap_or_else(|e| e.to_string());
                    self.status("Exited", format!("host (pid {}, {how}); waiting for a change", h.process.pid()));
                    server.lock().unwrap_or_else(|e| e.into_inner()).forget_hosts();
                }
                done = build_done => {
                    let flight = in_flight.take().expect("a build was running");
                    let built = done.context("build task panicked")??;
                    if let Some(p) = pending.take() {
                        // Newer edits are waiting: build them, acting for both batches at once.
                        pending = Some(flight.pending.merge(p));
                    } else {
                        let (outcome, made) = match built {
                            Built::Cargo(outcome) => {
                                let made = if outcome.success { products(&self.model, &outcome) } else { None };
                                if outcome.success && made.is_none() {
                                    ui::warn("the build succeeded but cargo reported no host binary or logic library; is the project layout right?");
                                }
                                if made.is_some() {
                                    last.clone_from(&made);
                                }
                                let summary = BuildSummary { duration: outcome.duration, counts: outcome.counts(), how: String::new() };
                                if !outcome.success {
                                    self.report_failure(&outcome.diagnostics, outcome.stderr.as_deref().unwrap_or(""), &format!("cargo {}", outcome.status), host.is_some());
                                }
                                (summary, made)
                            }
                            Built::Fast(results) => {
                                let diagnostics: Vec<BuildDiagnostic> = results.iter().flat_map(|(_, o)| o.diagnostics.iter().cloned()).collect();
                                let success = results.iter().all(|(_, o)| o.success);
                                let errors = diagnostics.iter().any(|d| d.severity == crate::cargo::Severity::Error);
                                if !success && !errors {
                                    // Not the user's code: the recorded invocation no longer fits
                                    // (e.g. `cargo clean`). cargo builds it and records it afresh.
                                    let why: String = results.iter().map(|(_, o)| o.other_output.as_str()).collect();
                                    tracing::debug!("direct rustc failed without diagnostics ({why}); building with cargo");
                                    let mut retry = flight.pending;
                                    retry.paths.clear();
                                    pending = Some(retry);
                                    continue;
                                }
                                let links: Vec<Duration> = results.iter().filter_map(|(_, o)| o.link).collect();
                                let link = if links.len() == results.len() { format!(" (link {})", ms(links.iter().sum())) } else { String::new() };
                                let summary = BuildSummary {
                                    duration: results.iter().map(|(_, o)| o.duration).sum(),
                                    counts: crate::cargo::count_text(&diagnostics),
                                    how: format!(" by rustc directly{link}"),
                                };
                                if !success {
                                    let other: String = results.iter().map(|(_, o)| o.other_output.as_str()).collect();
                                    self.report_failure(&diagnostics, &other, "rustc failed", host.is_some());
                                }
                                // Put each library where cargo would (hosts that watch the file,
                                // like hot-lib-reloader, look there); the paths stay the same.
                                let mut made = success.then(|| last.clone()).flatten();
                                for (lib, outcome) in &results {
                                    let slot = made.as_ref().and_then(|m| m.libs.iter().find(|(l, _)| l == lib));
                                    if let (Some((_, dest)), Some(artifact)) = (slot, &outcome.artifact)
                                        && let Err(e) = fastpath::uplift(artifact, dest) {
                                            ui::warn(format!("could not copy `{}` to `{}`: {e}", artifact.display(), dest.display()));
                                            made = None;
                                        }
                                }
                                (summary, made)
                            }
                        };
                        if let Some(made) = made {
                            let built = outcome.duration;
                            let warn = if outcome.counts.is_empty() { String::new() } else { format!(" ({})", outcome.counts) };
                            let warn = format!("{}{warn}", outcome.how);
                            match (&flight.pending.route, host.as_ref()) {
                                (Route::Swap(_), Some(running)) => {
                                    version += 1;
                                    match self.swap(&server, running, &made, version, Some(built), &warn, flight.pending.since, &mut signals).await {
                                        SwapVerdict::Swapped => {}
                                        SwapVerdict::Restart(why) if !outcome.how.is_empty() => {
                                            // rustc rebuilt only the logic library: a host that
                                            // depends on the logic crate (its types) is stale.
                                            // cargo builds everything, then the host restarts; the
                                            // old host keeps running its old code meanwhile.
                                            tracing::debug!("{why}: rebuilding with cargo before the restart");
                                            restart_reason = Some(why.split("; rebuilt in").next().unwrap_or(&why).to_string());
                                            pending = Some(Pending { route: Route::Restart, since: flight.pending.since, paths: BTreeSet::new() });
                                        }
                                        SwapVerdict::Restart(why) => {
                                            let old = host.take().expect("running");
                                            host = Some(self.restart(old, &server, &toolchain, made, &why).await?);
                                        }
                                        SwapVerdict::Interrupted(signal) => {
                                            return Ok(self.stop(host.take(), signal).await);
                                        }
                                    }
                                }
                                (_, Some(_)) => {
                                    let old = host.take().expect("running");
                                    let why = match restart_reason.take() {
                                        Some(reason) => format!("{reason}; rebuilt in {}{warn}", ms(built)),
                                        None => format!("rebuilt in {}{warn}", ms(built)),
                                    };
                                    host = Some(self.restart(old, &server, &toolchain, made, &why).await?);
                                }
                                (_, None) => {
                                    let verb = if first { "Started" } else { "Restarted" };
                                    let running = self.start_host(&server, &toolchain, made)?;
                                    self.status(verb, format!("host (pid {}) after a build of {}{warn}", running.process.pid(), ms(built)));
                                    host = Some(running);
                                }
                            }
                            first = false;
                        } else if pending.is_none() && let Some(made) = last.clone() {
                            // The build failed: a host that waits for its first build (its
                            // artifact changed before it opened it) gets the last good one.
                            if let Some(stop) = self.catch_up(&server, &mut host, &toolchain, made, &mut version, &mut signals).await? {
                                return Ok(stop);
                            }
                        }
                    }
                }
            }
            let settled = quiet_at.is_none_or(|at| at <= tokio::time::Instant::now());
            if in_flight.is_none()
                && settled
                && let Some(p) = pending.take()
            {
                if p.route == Route::Rebuild
                    && let Err(e) = self.reload_model(&server, &mut toolchain)
                {
                    // Like a failed build: the host keeps running, the next change tries again.
                    ui::error(&e);
                    let keep = if host.is_some() {
                        "the host keeps running the last good build"
                    } else {
                        "waiting for a fix"
                    };
                    ui::error(&anyhow::anyhow!(
                        "build failed (the project does not load); {keep}"
                    ));
                    continue;
                }
                let fast_ok = host.is_some() && last.is_some();
                in_flight = Some(self.start_build(p, fast_ok.then_some(()), false)?);
            }
        }
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
        if model.host != self.model.host || model.logic != self.model.logic {
            let logic: Vec<&str> = model.logic.iter().map(|(p, _)| p.as_str()).collect();
            self.status(
                "Reloaded",
                format!("project: host {}, logic {}", model.host, logic.join(", ")),
            );
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

    /// Starts the build for `pending`: rustc directly when `fast` allows it and only recorded
    /// logic sources changed, cargo otherwise.
    fn start_build(
        &self,
        pending: Pending,
        fast: Option<()>,
        show_progress: bool,
    ) -> anyhow::Result<InFlight> {
        if let (Some(()), Some(plan)) = (fast, self.fast_plan(&pending)) {
            tracing::debug!(route = ?pending.route, "build started (rustc directly)");
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
            });
        }
        tracing::debug!(route = ?pending.route, "build started");
        let build = watch_build(&self.model, &self.build, show_progress);
        let running = build.spawn().context("failed to start cargo")?;
        let handle = running.handle();
        let task = tokio::task::spawn_blocking(move || {
            Ok(Built::Cargo(running.wait().context("failed to run cargo")?))
        });
        Ok(InFlight {
            pending,
            handle: Some(handle),
            task,
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
        let mut plan = Vec::new();
        let mut covered = BTreeSet::new();
        for (_, lib) in &self.model.logic {
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

    /// Shows what host `host_pid` reported unasked (`running`: it still runs).
    fn host_event(&self, host_pid: u32, running: Option<&mut Running>, event: HostEvent) {
        match event {
            HostEvent::Panicked { pid, panic } if pid == host_pid => {
                let at = panic
                    .location
                    .as_deref()
                    .map(|l| format!(" at {l}"))
                    .unwrap_or_default();
                self.status(
                    "Panicked",
                    format!(
                        "{}::{} (reload {}, thread {}){at}: {}",
                        panic.lib, panic.function, panic.version, panic.thread, panic.message
                    ),
                );
            }
            HostEvent::Stuck { pid, stuck } if pid == host_pid => {
                let call = format!("{}::{}", stuck.lib, stuck.function);
                ui::warn(format!(
                    "`{call}` has not returned for {} (thread {}, reload {}; an endless loop?); the next build restarts the host",
                    ms(stuck.elapsed),
                    stuck.thread,
                    stuck.version
                ));
                if let Some(running) = running {
                    running.stuck = Some(call);
                }
            }
            HostEvent::Resumed { pid, resumed } if pid == host_pid => {
                self.status(
                    "Resumed",
                    format!(
                        "`{}::{}` returned after {}",
                        resumed.lib,
                        resumed.function,
                        ms(resumed.elapsed)
                    ),
                );
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
    async fn catch_up(
        &self,
        server: &Arc<Mutex<ReloadServer>>,
        host: &mut Option<Running>,
        toolchain: &Toolchain,
        last: Products,
        version: &mut u64,
        signals: &mut crate::signals::Signals,
    ) -> anyhow::Result<Option<Stop>> {
        let Some(running) = host.as_ref() else {
            return Ok(None);
        };
        let stale: Vec<(String, PathBuf)> = {
            let mut server = server.lock().unwrap_or_else(|e| e.into_inner());
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
        *version += 1;
        let made = Products {
            libs: stale,
            ..last.clone()
        };
        let verdict = self
            .swap(
                server,
                running,
                &made,
                *version,
                None,
                "",
                Instant::now(),
                signals,
            )
            .await;
        match verdict {
            SwapVerdict::Swapped => {}
            SwapVerdict::Restart(why) => {
                let old = host.take().expect("running");
                *host = Some(self.restart(old, server, toolchain, last, &why).await?);
            }
            SwapVerdict::Interrupted(signal) => {
                return Ok(Some(self.stop(host.take(), signal).await));
            }
        }
        Ok(None)
    }

    /// Sends every logic library to the host; says whether the host must restart instead.
    #[allow(clippy::too_many_arguments)]
    async fn swap(
        &self,
        server: &Arc<Mutex<ReloadServer>>,
        running: &Running,
        made: &Products,
        version: u64,
        built: Option<Duration>,
        warn: &str,
        since: Instant,
        signals: &mut crate::signals::Signals,
    ) -> SwapVerdict {
        // What the status lines say of the build: `None` when the host catches up on an earlier one.
        let rebuilt = |lib: &str| match built {
            Some(built) => format!("{lib} rebuilt in {}{warn}", ms(built)),
            None => format!("{lib}'s newest build (the host opened an older one)"),
        };
        let rebuilt_in = built.map_or_else(String::new, |b| format!("; rebuilt in {}", ms(b)));
        if let Some(call) = &running.stuck {
            // It cannot swap until the call returns, and it has not for the whole hang timeout.
            return SwapVerdict::Restart(format!("`{call}` was stuck{rebuilt_in}"));
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
                let what = match built {
                    Some(built) => format!("{lib} in {}{warn}", ms(built)),
                    None => format!("{lib}'s newest build"),
                };
                self.status(
                    "Rebuilt",
                    format!("{what}; the host reloads it on its own (or gets it when it opens the library)"),
                );
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
                        let mib =
                            |bytes: u64| format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20));
                        let kept = match report.lingering {
                            0 => String::new(),
                            1 => {
                                format!("; 1 old version mapped ({})", mib(report.lingering_bytes))
                            }
                            n => format!(
                                "; {n} old versions mapped ({})",
                                mib(report.lingering_bytes)
                            ),
                        };
                        let edit = match built {
                            Some(_) => format!("; {} since the edit", ms(since.elapsed())),
                            None => String::new(),
                        };
                        self.status(
                            "Swapped",
                            format!(
                                "{}, swapped in {} (reload {version}{edit}{kept})",
                                rebuilt(lib),
                                ms(timing.total()),
                            ),
                        );
                        if report.lingering_bytes > LINGERING_LIMIT {
                            return SwapVerdict::Restart(format!(
                                "{} old versions of {lib} were kept mapped ({})",
                                report.lingering,
                                mib(report.lingering_bytes)
                            ));
                        }
                        if report.lingering == 1 {
                            ui::note(format!(
                                "old versions of {lib} stay mapped: threads, hooks or values they left behind may still use their code; the host is restarted past {} of them (a host whose logic is self-contained can unload them: `Builder::unload_old_versions(true)`)",
                                mib(LINGERING_LIMIT)
                            ));
                        }
                    }
                    Outcome::Failed(reason) => {
                        ui::warn(format!(
                            "the host refused reload {version} of {lib}: {reason}; restarting it"
                        ));
                        return SwapVerdict::Restart(format!("swap refused{rebuilt_in}"));
                    }
                },
                Ok(Err(e)) => {
                    ui::warn(format!(
                        "reload {version} of {lib} failed: {e}; restarting the host"
                    ));
                    return SwapVerdict::Restart(format!("swap failed{rebuilt_in}"));
                }
                Err(e) => {
                    ui::warn(format!("reload task failed: {e}"));
                    return SwapVerdict::Restart("swap failed".into());
                }
            }
        }
        SwapVerdict::Swapped
    }

    /// Asks the host to save its hand-off state before it is stopped; what to add to the status.
    async fn save_state(&self, server: &Arc<Mutex<ReloadServer>>, running: &Running) -> String {
        if let Some(call) = &running.stuck {
            return format!("; state not saved (`{call}` is stuck)");
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
            Ok(Some(Ok(SaveOutcome::Saved(bytes)))) => {
                format!("; state handed off ({bytes} bytes)")
            }
            // A host without hand-off state: nothing to say.
            Ok(Some(Ok(SaveOutcome::Unsaved(why)))) if why.contains("no hand-off state") => {
                String::new()
            }
            Ok(Some(Ok(SaveOutcome::Unsaved(why)))) => format!("; state not saved ({why})"),
            Ok(Some(Err(e))) => format!("; state not saved ({e})"),
            Ok(None) | Err(_) => String::new(),
        }
    }

    async fn restart(
        &self,
        old: Running,
        server: &Arc<Mutex<ReloadServer>>,
        toolchain: &Toolchain,
        made: Products,
        why: &str,
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
        self.status(
            "Restarted",
            format!(
                "host: pid {old_pid} ({}) -> pid {}; {why}{state}",
                host::describe(&status),
                running.process.pid()
            ),
        );
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

    fn report_failure(
        &self,
        diagnostics: &[BuildDiagnostic],
        other: &str,
        exit: &str,
        host_running: bool,
    ) {
        use std::io::Write;
        let mut err = std::io::stderr().lock();
        for d in diagnostics {
            let _ = err.write_all(d.rendered.as_bytes());
        }
        if diagnostics.is_empty() {
            let _ = err.write_all(other.as_bytes());
        }
        drop(err);
        let counts = crate::cargo::count_text(diagnostics);
        let what = if counts.is_empty() {
            exit.to_string()
        } else {
            counts
        };
        let keep = if host_running {
            "the host keeps running the last good build"
        } else {
            "waiting for a fix"
        };
        ui::error(&anyhow::anyhow!("build failed ({what}); {keep}"));
    }

    /// Stops the host after a signal (the build was cancelled already); returns that signal.
    async fn stop(&self, host: Option<Running>, signal: Stop) -> Stop {
        if let Some(h) = host {
            let _ = h.process.stop(self.model.stop_timeout).await;
        }
        // After a hang-up the terminal is gone: a line written to it would fail.
        if signal != Stop::HangUp {
            self.status("Stopped", "watcher, host and builds");
        }
        signal
    }

    fn status(&self, verb: &str, msg: impl std::fmt::Display) {
        if !self.quiet {
            ui::status(verb, msg);
        }
    }
}
