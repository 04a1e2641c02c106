//! The reload engine of one library: the running version, the swap to a new one, and what the
//! host and the runner hear about it. The [`HotLib`](crate::HotLib) handle and the control thread
//! share it.
//!
//! A reload has two halves. *Prepare* (copy, hash, `dlopen`, resolve, validate; see
//! `version.rs`) runs on the control thread while the host keeps calling the old version.
//! *Swap* takes the write side of the lock that every call holds for reading, so it happens only
//! between calls, replaces the version and deletes the old version's copy. The old library stays
//! mapped unless the host opted in to unloading
//! ([`Builder::unload_old_versions`](crate::Builder::unload_old_versions)): code it started (a
//! thread, a hook, a callback) may still run. Any failure in prepare leaves the old version
//! running untouched.

use crate::Error;
use crate::boundary::{Monitor, ensure_panic_hook, recheck_panic_hook, start_watchdog};
use crate::builder::{Builder, SwapPolicy, locate};
use crate::channel::{Channel, FirstBuild, Handler};
use crate::private_dir::{PrivateDir, default_base};
use crate::protocol::{self, Failed, Hello, SwapTiming, Swapped, ToRunner};
use crate::symbols::Symbols;
use crate::version::{Loaded, Loader, Prepared};
#[cfg(not(target_os = "linux"))]
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Prefix of a host's private directory for copies (stale ones are found by it).
const COPIES_PREFIX: &str = "dylib-dev-host-";

/// How long a host whose start-up artifact changed waits for the runner's newest build. The
/// runner answers at once when no build runs, else when the build ends (a first build of heavy
/// dependencies can take minutes).
const FIRST_BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// What happened to a reload request, as [`HotLib::update`](crate::HotLib::update) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadEvent {
    /// A new version runs.
    Swapped(Swapped),
    /// A version was refused; the previous one runs.
    Failed(Failed),
}

/// Reload bookkeeping shared by the control thread and the host's threads.
pub(crate) struct State<S> {
    /// Prepared under [`SwapPolicy::OnUpdate`], waiting for `update`.
    pub(crate) pending: Option<Prepared<S>>,
    /// The newest event and its sequence number; `seen` is the last one `update` returned.
    pub(crate) latest: Option<ReloadEvent>,
    pub(crate) seq: u64,
    pub(crate) seen: u64,
}

impl<S> Default for State<S> {
    fn default() -> Self {
        State {
            pending: None,
            latest: None,
            seq: 0,
            seen: 0,
        }
    }
}

/// An opened library's engine and its control thread (none without a runner).
pub(crate) type Opened<S> = (Arc<Shared<S>>, Option<JoinHandle<()>>);

/// Everything a [`HotLib`](crate::HotLib) and its control thread share.
pub(crate) struct Shared<S> {
    /// The library's name, its connection to the runner, what was reported on it.
    pub(crate) monitor: Arc<Monitor>,
    policy: SwapPolicy,
    /// The running version, readable without the lock.
    pub(crate) version: AtomicU64,
    /// `None` only while opening.
    current: Option<RwLock<Loaded<S>>>,
    /// Old versions not closed, and their file size (where `/proc/self/maps` cannot tell).
    #[cfg(not(target_os = "linux"))]
    lingering: AtomicU64,
    #[cfg(not(target_os = "linux"))]
    lingering_bytes: AtomicU64,
    state: Mutex<State<S>>,
    pub(crate) changed: Condvar,
    // Last: its private directory goes after every library in it is closed.
    pub(crate) loader: Loader<S>,
}

impl<S: Symbols> Shared<S> {
    /// Copies, loads and resolves the library, connects to the runner if one is named, and starts
    /// the control thread (returned) that handles the runner's requests.
    pub(crate) fn open(builder: Builder<S>) -> Result<Opened<S>, Error> {
        let artifact = match builder.artifact {
            Some(path) => path,
            None => locate(&builder.name)?,
        };
        let base = builder.copies_base.unwrap_or_else(default_base);
        let copies = PrivateDir::create(&base, COPIES_PREFIX)
            .map_err(|source| Error::PrivateDir { base, source })?;
        let channel = match &builder.socket {
            Some(path) => {
                let channel = Channel::connect(path)?;
                match builder.runner_protocol {
                    Some(runner) if runner != protocol::PROTOCOL_VERSION => {
                        refuse_runner(channel, &builder.name, runner);
                        None
                    }
                    _ => Some(channel),
                }
            }
            None => None,
        };
        let hang = builder
            .hang
            .unwrap_or(Duration::from_millis(protocol::DEFAULT_HANG_MS));
        let monitor = Arc::new(Monitor::new(builder.name, channel, hang));
        ensure_panic_hook();
        // The host may install a hook of its own before its first call: that call checks.
        recheck_panic_hook();
        let mut shared = Shared {
            monitor,
            policy: builder.policy,
            version: AtomicU64::new(0),
            current: None,
            #[cfg(not(target_os = "linux"))]
            lingering: AtomicU64::new(0),
            #[cfg(not(target_os = "linux"))]
            lingering_bytes: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            loader: Loader::new(copies, builder.unload, builder.validate),
        };
        let (mut first, answer) = match shared.prepare(&artifact, builder.hash.as_deref(), 0) {
            Err(Error::HashMismatch { .. }) if shared.monitor.channel.is_some() => {
                shared.first_build(&artifact)?
            }
            other => (other?, None),
        };
        first.loaded.ran = true;
        let hello = ToRunner::Hello(Hello {
            protocol: protocol::PROTOCOL_VERSION,
            pid: std::process::id(),
            lib: shared.name().to_string(),
            version: first.loaded.version,
            hash: first.loaded.hash.clone(),
            save: true,
        });
        shared
            .version
            .store(first.loaded.version, Ordering::Release);
        shared
            .loader
            .set_running_layout(first.loaded.layout.clone());
        shared.current = Some(RwLock::new(first.loaded));
        let shared = Arc::new(shared);
        let reader = match &shared.monitor.channel {
            Some(channel) => {
                // After a first build from the runner, it knows this host already: it waits for
                // the answer to its `reload` instead.
                shared.send(&answer.unwrap_or(hello));
                let reader = channel.spawn_reader(Arc::downgrade(&shared))?;
                start_watchdog(&shared.monitor);
                Some(reader)
            }
            None => None,
        };
        Ok((shared, reader))
    }

    /// The running version's lock: calls hold it for reading, a swap for writing.
    pub(crate) fn current(&self) -> &RwLock<Loaded<S>> {
        self.current
            .as_ref()
            .expect("set before `Shared` is shared")
    }

    /// The reload bookkeeping, for `update` and `wait_for_reload`.
    pub(crate) fn state(&self) -> MutexGuard<'_, State<S>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The library's name.
    pub(crate) fn name(&self) -> &str {
        &self.monitor.lib
    }

    /// Copies, verifies, loads, resolves and validates `artifact` as `version`.
    fn prepare(
        &self,
        artifact: &Path,
        expected_hash: Option<&str>,
        version: u64,
    ) -> Result<Prepared<S>, Error> {
        self.loader
            .prepare(&self.monitor, artifact, expected_hash, version)
    }

    /// The host's first load found the artifact changed since the runner started it (the runner
    /// rebuilt it while the host was still busy, e.g. loading its data): says hello with nothing
    /// loaded, and loads the newest build the runner answers with. Returns it with the answer to
    /// send once the library is set up. A process the runner does not serve (a child that
    /// inherited the environment) loads the artifact as it is now and runs it without reloading.
    fn first_build(&self, artifact: &Path) -> Result<(Prepared<S>, Option<ToRunner>), Error> {
        let channel = self
            .monitor
            .channel
            .as_ref()
            .expect("checked by the caller");
        self.send(&ToRunner::Hello(Hello {
            protocol: protocol::PROTOCOL_VERSION,
            pid: std::process::id(),
            lib: self.name().to_string(),
            version: 0,
            hash: String::new(),
            save: true,
        }));
        let req = match channel.wait_for_build(self.name(), FIRST_BUILD_TIMEOUT)? {
            FirstBuild::Reload(req) => req,
            FirstBuild::Refused(reason) => {
                eprintln!(
                    "dylib-dev: `{}` runs without reloading in this process: {reason}",
                    self.name()
                );
                return Ok((self.prepare(artifact, None, 0)?, None));
            }
        };
        match self.prepare(&req.path, req.hash.as_deref(), req.version) {
            Ok(prepared) => {
                let answer = ToRunner::Swapped(Swapped {
                    lib: self.name().to_string(),
                    version: req.version,
                    timing: SwapTiming {
                        copy: prepared.copy,
                        load: prepared.load,
                        ..SwapTiming::default()
                    },
                    lingering: 0,
                    lingering_bytes: 0,
                });
                Ok((prepared, Some(answer)))
            }
            Err(e) => {
                self.send(&ToRunner::Failed(Failed {
                    lib: self.name().to_string(),
                    version: req.version,
                    reason: e.to_string(),
                }));
                Err(e)
            }
        }
    }

    /// Makes `prepared` the running version once no call is in flight, then drops the old one
    /// (closed only if allowed, see [`Loaded`]) and counts the old versions still mapped.
    pub(crate) fn swap(&self, mut prepared: Prepared<S>) -> Swapped {
        let version = prepared.loaded.version;
        let copy_no = prepared.loaded.copy_no;
        prepared.loaded.ran = true;
        let start = Instant::now();
        let old = {
            let mut current = self
                .current()
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            self.version.store(version, Ordering::Release);
            self.loader
                .set_running_layout(prepared.loaded.layout.clone());
            std::mem::replace(&mut *current, prepared.loaded)
        };
        self.monitor.swapped_to(version);
        recheck_panic_hook();
        let wait = start.elapsed();
        // Outside the lock: callers run the new version while the old one closes.
        let start = Instant::now();
        #[cfg(not(target_os = "linux"))]
        if !(old.unload && !old.stay_mapped) {
            self.lingering.fetch_add(1, Ordering::Relaxed);
            let size = fs::metadata(&old._copy.0).map_or(0, |m| m.len());
            self.lingering_bytes.fetch_add(size, Ordering::Relaxed);
        }
        drop(old);
        let unload = start.elapsed();
        // What is really still mapped, whatever `dlclose` did: every older copy, once per swap.
        #[cfg(target_os = "linux")]
        let (lingering, lingering_bytes) = {
            let l = crate::maps::lingering(self.loader.copies_dir(), copy_no);
            (l.versions, l.bytes)
        };
        #[cfg(not(target_os = "linux"))]
        let (lingering, lingering_bytes) = {
            let _ = copy_no;
            (
                self.lingering.load(Ordering::Relaxed),
                self.lingering_bytes.load(Ordering::Relaxed),
            )
        };
        Swapped {
            lib: self.name().to_string(),
            version,
            timing: SwapTiming {
                copy: prepared.copy,
                load: prepared.load,
                wait,
                unload,
            },
            lingering,
            lingering_bytes,
        }
    }

    /// Handles a reload request from the runner (on the control thread).
    fn handle_reload(&self, req: &protocol::Reload) {
        let prepared = match self.prepare(&req.path, req.hash.as_deref(), req.version) {
            Ok(prepared) => prepared,
            Err(e) => {
                return self.finish(ReloadEvent::Failed(Failed {
                    lib: self.name().to_string(),
                    version: req.version,
                    reason: e.to_string(),
                }));
            }
        };
        match self.policy {
            SwapPolicy::WhenIdle => {
                let swapped = self.swap(prepared);
                self.finish(ReloadEvent::Swapped(swapped));
            }
            SwapPolicy::OnUpdate => {
                let superseded = {
                    let mut state = self.state();
                    let old = state.pending.replace(prepared);
                    self.changed.notify_all();
                    old
                };
                if let Some(old) = superseded {
                    let version = old.loaded.version;
                    drop(old);
                    self.finish(ReloadEvent::Failed(Failed {
                        lib: self.name().to_string(),
                        version,
                        reason: format!(
                            "superseded by version {} before the host's update()",
                            req.version
                        ),
                    }));
                }
            }
        }
    }

    /// Records `event` for `update`, wakes waiters and tells the runner.
    pub(crate) fn finish(&self, event: ReloadEvent) {
        let msg = match &event {
            ReloadEvent::Swapped(s) => ToRunner::Swapped(s.clone()),
            ReloadEvent::Failed(f) => ToRunner::Failed(f.clone()),
        };
        // Sent and recorded under one lock: a host woken by the event cannot exit before the
        // runner was told, and the runner cannot ask the host before the event is recorded.
        let mut state = self.state();
        self.send(&msg);
        state.seq += 1;
        state.latest = Some(event);
        self.changed.notify_all();
    }

    fn send(&self, msg: &ToRunner) {
        self.monitor.send(msg);
    }
}

/// The control thread's requests, handled by the engine.
impl<S: Symbols> Handler for Shared<S> {
    fn name(&self) -> &str {
        Shared::name(self)
    }

    fn reload(&self, req: &protocol::Reload) {
        self.handle_reload(req);
    }

    fn send(&self, msg: &ToRunner) {
        Shared::send(self, msg);
    }
}

/// A runner that speaks protocol `runner`, not this crate's: says hello all the same (a runner
/// checks the hello and reports the mismatch on its side too), hangs up, and says why the library
/// runs without reloading.
pub(crate) fn refuse_runner(channel: Channel, lib: &str, runner: u32) {
    channel.send(&ToRunner::Hello(Hello {
        protocol: protocol::PROTOCOL_VERSION,
        pid: std::process::id(),
        lib: lib.to_string(),
        version: 0,
        hash: String::new(),
        // It will not answer a `save`.
        save: false,
    }));
    channel.shutdown();
    eprintln!(
        "dylib-dev: `{lib}` runs without reloading in this process: {}",
        protocol::runner_protocol_mismatch(runner)
    );
}
