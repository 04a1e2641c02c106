//! [`HotLib`]: one reloadable library, its current version, and the swap to a new one.
//!
//! A reload has two halves. *Prepare* (copy, hash, `dlopen`, resolve, validate) runs on the
//! control thread while the host keeps calling the old version. *Swap* takes the write side of the
//! lock that every call holds for reading, so it happens only between calls, replaces the version
//! and deletes the old version's copy. The old library stays mapped unless the host opted in to
//! unloading ([`Builder::unload_old_versions`]): code it started (a thread, a hook, a callback)
//! may still run. Any failure in prepare leaves the old version running untouched.

use crate::boundary::{
    Monitor, ensure_panic_hook, recheck_panic_hook, start_watchdog, take_raised,
};
use crate::channel::{Channel, FirstBuild, Handler};
use crate::private_dir::{PrivateDir, default_base};
use crate::protocol::{self, Failed, Hello, SwapTiming, Swapped, ToRunner};
use crate::symbols::{SymbolSource, Symbols};
use crate::{Error, LAYOUT_SYMBOL, Layout, Panic, hash};
use libloading::Library;
use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Prefix of a host's private directory for copies (stale ones are found by it).
const COPIES_PREFIX: &str = "dylib-dev-host-";

/// How long a host whose start-up artifact changed waits for the runner's newest build. The
/// runner answers at once when no build runs, else when the build ends (a first build of heavy
/// dependencies can take minutes).
const FIRST_BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// When a prepared reload becomes the running code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SwapPolicy {
    /// As soon as no call is in flight: the control thread waits for running calls (and held
    /// [`Guard`]s) to end, then swaps. The runner hears "swapped" without the host doing anything.
    #[default]
    WhenIdle,
    /// Only inside [`HotLib::update`] or [`HotLib::wait_for_reload`], at a point the host chose
    /// (e.g. the top of its frame). The new version is loaded in the background meanwhile.
    OnUpdate,
}

/// What happened to a reload request, as [`HotLib::update`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadEvent {
    /// A new version runs.
    Swapped(Swapped),
    /// A version was refused; the previous one runs.
    Failed(Failed),
}

/// A validation hook: runs on each new version before it may replace the old one.
type Validator<S> = Box<dyn Fn(&S) -> Result<(), String> + Send + Sync>;

/// Options for opening a [`HotLib`]; [`Builder::from_env`] fills them the way the runner expects.
pub struct Builder<S> {
    name: String,
    artifact: Option<PathBuf>,
    hash: Option<String>,
    socket: Option<PathBuf>,
    copies_base: Option<PathBuf>,
    policy: SwapPolicy,
    validate: Option<Validator<S>>,
    hang: Option<Duration>,
    unload: bool,
}

impl<S: Symbols> Builder<S> {
    /// Options for library `name` with nothing set: the artifact is searched next to the
    /// executable and nothing reloads.
    pub fn new(name: &str) -> Self {
        Builder {
            name: name.to_string(),
            artifact: None,
            hash: None,
            socket: None,
            copies_base: None,
            policy: SwapPolicy::default(),
            validate: None,
            hang: None,
            unload: false,
        }
    }

    /// Options from the variables the runner sets (see the [crate docs](crate)); without them,
    /// the same as [`Builder::new`].
    pub fn from_env(name: &str) -> Self {
        let var = |key: &str| std::env::var_os(key).filter(|v| !v.is_empty());
        let mut b = Builder::new(name);
        b.artifact = var(&protocol::lib_env_var(name)).map(PathBuf::from);
        b.hash = var(&protocol::hash_env_var(name)).map(|v| v.to_string_lossy().into_owned());
        b.socket = var(protocol::ENV_SOCKET).map(PathBuf::from);
        b.copies_base = var(protocol::ENV_DIR).map(PathBuf::from);
        b.hang = var(protocol::ENV_HANG_MS)
            .and_then(|v| v.to_str()?.parse().ok())
            .map(Duration::from_millis);
        b
    }

    /// Reports a call into the library that runs longer than `threshold` to the runner as stuck
    /// (default: `DYLIB_DEV_HANG_MS`, else 10 s). Only with a runner connected.
    pub fn hang_after(mut self, threshold: Duration) -> Self {
        self.hang = Some(threshold);
        self
    }

    /// Closes (`dlclose`) each old version once it is swapped out, so its memory can go back,
    /// instead of keeping it mapped for the life of the process (the default).
    ///
    /// Only for logic that is self-contained: nothing of a version may run or be reached after
    /// the swap. A thread it started (`std::thread::spawn`, rayon, tokio), a panic hook or logger
    /// it installed, `tracing` callsites it registered, or a `Box<dyn Trait>`, closure or
    /// `&'static str` it handed the host point into its code or data, and the host dies with
    /// SIGSEGV when they are next used. Libraries that share `libstd` and have thread-locals of
    /// their own stay mapped anyway (glibc would unmap them under pending thread-local
    /// destructors), and a library the loader keeps mapped despite `dlclose` (checked in
    /// `/proc/self/maps`) is still counted in [`Swapped::lingering`].
    pub fn unload_old_versions(mut self, unload: bool) -> Self {
        self.unload = unload;
        self
    }

    /// Loads this artifact instead of searching for one.
    pub fn artifact(mut self, path: impl Into<PathBuf>) -> Self {
        self.artifact = Some(path.into());
        self
    }

    /// Refuses the initial artifact unless its hash (`blake3:<hex>`, see
    /// [`hash_file`](crate::hash_file)) is this.
    pub fn hash(mut self, hash: impl Into<String>) -> Self {
        self.hash = Some(hash.into());
        self
    }

    /// Connects to the runner's control socket, which makes the library reloadable.
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket = Some(path.into());
        self
    }

    /// Makes the private directory for copies under `dir` (default: `$XDG_RUNTIME_DIR` or the
    /// system temp directory).
    pub fn copies_in(mut self, dir: impl Into<PathBuf>) -> Self {
        self.copies_base = Some(dir.into());
        self
    }

    /// Chooses when reloads take effect.
    pub fn policy(mut self, policy: SwapPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Runs `check` on every new version before the swap; an `Err` refuses it (e.g. a layout
    /// fingerprint exported by the library that differs from the host's).
    pub fn validate(
        mut self,
        check: impl Fn(&S) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.validate = Some(Box::new(check));
        self
    }

    /// Copies, loads and resolves the library, and connects to the runner if one is named.
    pub fn open(self) -> Result<HotLib<S>, Error> {
        let artifact = match self.artifact {
            Some(path) => path,
            None => locate(&self.name)?,
        };
        let base = self.copies_base.unwrap_or_else(default_base);
        let copies = PrivateDir::create(&base, COPIES_PREFIX)
            .map_err(|source| Error::PrivateDir { base, source })?;
        let channel = match &self.socket {
            Some(path) => Some(Channel::connect(path)?),
            None => None,
        };
        let hang = self
            .hang
            .unwrap_or(Duration::from_millis(protocol::DEFAULT_HANG_MS));
        let monitor = Arc::new(Monitor::new(self.name, channel, hang));
        ensure_panic_hook();
        // The host may install a hook of its own before its first call: that call checks.
        recheck_panic_hook();
        let mut shared = Shared {
            monitor,
            policy: self.policy,
            unload: self.unload,
            validate: self.validate,
            next_copy: AtomicU64::new(0),
            version: AtomicU64::new(0),
            current: None,
            running_layout: Mutex::new(None),
            #[cfg(not(target_os = "linux"))]
            lingering: AtomicU64::new(0),
            #[cfg(not(target_os = "linux"))]
            lingering_bytes: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            copies,
        };
        let (mut first, answer) = match shared.prepare(&artifact, self.hash.as_deref(), 0) {
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
        *shared
            .running_layout
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = first.loaded.layout.clone();
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
        Ok(HotLib { shared, reader })
    }
}

/// A reloadable library: the version that runs now, and the machinery to swap in the next.
///
/// Calls go through [`HotLib::call`] or a [`Guard`] from [`HotLib::lock`]; both hold a read lock,
/// and a swap takes the write lock, so no call ever runs on a library being closed.
pub struct HotLib<S: Symbols> {
    shared: Arc<Shared<S>>,
    reader: Option<JoinHandle<()>>,
}

impl<S: Symbols> HotLib<S> {
    /// Options for library `name`, to change before [`Builder::open`].
    pub fn builder(name: &str) -> Builder<S> {
        Builder::new(name)
    }

    /// Opens library `name` the way the runner says (environment), or, when the host was not
    /// started by the runner, from `lib<name>.so` next to the executable, without reloading.
    pub fn from_env(name: &str) -> Result<Self, Error> {
        Builder::from_env(name).open()
    }

    /// Runs `f` with the current version's functions (pinned for the duration of `f`).
    ///
    /// Every call into the library, through here or a [`Guard`], goes through a generated
    /// [`Symbols`] method and so through [`call_boundary`](crate::call_boundary).
    #[inline]
    pub fn call<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.lock())
    }

    /// Like [`HotLib::call`], but a panic in the library comes back as `Err` instead of unwinding
    /// into the host (it was reported to the runner already). The version keeps running: the host
    /// decides what a failed call means (skip the frame, show the error, wait for a fix with
    /// [`HotLib::wait_for_reload`]). A panic of the host's own code inside `f` unwinds as usual.
    pub fn try_call<R>(&self, f: impl FnOnce(&S) -> R) -> Result<R, Panic> {
        let guard = self.lock();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&guard))) {
            Ok(value) => Ok(value),
            Err(payload) => match take_raised(&*payload) {
                Some(panic) => Err(panic),
                None => std::panic::resume_unwind(payload),
            },
        }
    }

    /// Pins the current version until the guard drops: several calls on one version, e.g. for
    /// a whole frame. A pending swap waits for it, so do not keep it across a blocking wait, and
    /// do not take a second guard (or call [`HotLib::call`]) on the same thread while holding
    /// one: with a swap waiting, that deadlocks.
    #[inline]
    pub fn lock(&self) -> Guard<'_, S> {
        Guard(
            self.shared
                .current()
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The library's name.
    pub fn name(&self) -> &str {
        self.shared.name()
    }

    /// The running version: 0 for the first, then the runner's number of each swap.
    pub fn version(&self) -> u64 {
        // Not through the lock: safe to ask while this thread holds a `Guard`.
        self.shared.version.load(Ordering::Acquire)
    }

    /// Whether a runner is connected, i.e. reloads can happen at all.
    pub fn is_reloadable(&self) -> bool {
        self.shared.monitor.channel.is_some()
    }

    /// The private directory holding this library's copies.
    pub fn copies_dir(&self) -> &Path {
        self.shared.copies.path()
    }

    /// A safe point: swaps in a pending version ([`SwapPolicy::OnUpdate`]) and returns the newest
    /// reload event not yet returned by `update` or [`HotLib::wait_for_reload`].
    pub fn update(&self) -> Option<ReloadEvent> {
        let pending = self.shared.state().pending.take();
        if let Some(prepared) = pending {
            let swapped = self.shared.swap(prepared);
            self.shared.finish(ReloadEvent::Swapped(swapped));
        }
        let mut state = self.shared.state();
        if state.seq > state.seen {
            state.seen = state.seq;
            state.latest.clone()
        } else {
            None
        }
    }

    /// Blocks until a reload happens (or fails), at most `timeout`; for hosts that wait anyway,
    /// like a REPL between inputs. Swaps a pending version like [`HotLib::update`].
    pub fn wait_for_reload(&self, timeout: Duration) -> Option<ReloadEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(event) = self.update() {
                return Some(event);
            }
            let state = self.shared.state();
            // Re-checked under the lock, so a notification between `update` and here is not lost.
            if state.pending.is_some() || state.seq > state.seen {
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            drop(self.shared.changed.wait_timeout(state, left));
        }
    }
}

impl<S: Symbols> Drop for HotLib<S> {
    fn drop(&mut self) {
        self.shared.monitor.close();
        if let Some(channel) = &self.shared.monitor.channel {
            channel.shutdown();
        }
        if let Some(reader) = self.reader.take() {
            // The shutdown ends its read; a reload it is handling needs no guard of ours, since
            // none can outlive `self`.
            let _ = reader.join();
        }
    }
}

/// The current version of a [`HotLib`], pinned: dereferences to its [`Symbols`].
pub struct Guard<'a, S>(RwLockReadGuard<'a, Loaded<S>>);

impl<S> Guard<'_, S> {
    /// The pinned version's number.
    pub fn version(&self) -> u64 {
        self.0.version
    }
}

impl<S> Deref for Guard<'_, S> {
    type Target = S;

    #[inline]
    fn deref(&self) -> &S {
        &self.0.symbols
    }
}

/// A [`HotLib`] in a `static`, opened on first use; what [`hot_module!`](crate::hot_module) uses.
pub struct LazyHotLib<S: Symbols> {
    name: &'static str,
    cell: OnceLock<HotLib<S>>,
    opening: Mutex<()>,
}

impl<S: Symbols> LazyHotLib<S> {
    /// An unopened library named `name`.
    pub const fn new(name: &'static str) -> Self {
        LazyHotLib {
            name,
            cell: OnceLock::new(),
            opening: Mutex::new(()),
        }
    }

    /// The library, opened with [`HotLib::from_env`] on first use.
    ///
    /// # Panics
    ///
    /// If it cannot be opened: a host cannot run without its logic.
    pub fn get(&self) -> &HotLib<S> {
        if let Some(lib) = self.cell.get() {
            return lib;
        }
        match self.init(Builder::from_env(self.name)) {
            Ok(lib) => lib,
            Err(e) => panic!("dylib-dev: failed to open the `{}` library: {e}", self.name),
        }
    }

    /// Opens the library with `builder`, unless it is open already.
    pub fn init(&self, builder: Builder<S>) -> Result<&HotLib<S>, Error> {
        // One opener at a time: two racing first calls must not load (and connect) twice.
        let _opening = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lib) = self.cell.get() {
            return Ok(lib);
        }
        let lib = builder.open()?;
        Ok(self.cell.get_or_init(|| lib))
    }
}

/// One loaded version: its functions, the library they point into, and its copy on disk.
///
/// A version that ran is never closed unless the host opted in ([`Builder::unload_old_versions`])
/// and the library may be (`stay_mapped` is false); one that never ran (refused, superseded) is.
struct Loaded<S> {
    // Declared first: nothing below may go while the pointers can still be reached.
    symbols: S,
    version: u64,
    hash: String,
    /// The layout the library exports (`layout!`), if it does.
    layout: Option<Layout>,
    /// Must never be closed once it ran, even with unloading on (see [`crate::elf`]).
    stay_mapped: bool,
    /// The host opted in to unloading old versions.
    unload: bool,
    /// The copy's number: its file name starts with `<n>-`.
    copy_no: u64,
    /// It became the running version (a refused or superseded one never ran any code).
    ran: bool,
    lib: Option<Library>,
    /// Held for its `Drop`, which deletes the file.
    _copy: CopyFile,
}

impl<S> Drop for Loaded<S> {
    fn drop(&mut self) {
        // Close before the copy is deleted (field drop, after this); the copy's name stays unique.
        if let Some(lib) = self.lib.take() {
            if self.ran && (self.stay_mapped || !self.unload) {
                // Threads, hooks, thread-local destructors or values it handed out may still
                // point into it: never unmap it (the file goes; the mapping stays valid).
                std::mem::forget(lib);
            } else {
                let _ = lib.close();
            }
        }
    }
}

/// A copy of an artifact in the private directory, deleted on drop.
struct CopyFile(PathBuf);

impl Drop for CopyFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A version that is loaded and resolved, waiting to be swapped in.
struct Prepared<S> {
    loaded: Loaded<S>,
    copy: Duration,
    load: Duration,
}

/// Reload bookkeeping shared by the control thread and the host's threads.
struct State<S> {
    /// Prepared under [`SwapPolicy::OnUpdate`], waiting for `update`.
    pending: Option<Prepared<S>>,
    /// The newest event and its sequence number; `seen` is the last one `update` returned.
    latest: Option<ReloadEvent>,
    seq: u64,
    seen: u64,
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

/// Everything a [`HotLib`] and its control thread share.
pub(crate) struct Shared<S> {
    /// The library's name, its connection to the runner, what was reported on it.
    monitor: Arc<Monitor>,
    policy: SwapPolicy,
    /// [`Builder::unload_old_versions`].
    unload: bool,
    validate: Option<Validator<S>>,
    next_copy: AtomicU64,
    /// The running version, readable without the lock.
    version: AtomicU64,
    /// `None` only while opening.
    current: Option<RwLock<Loaded<S>>>,
    /// The running version's exported layout, readable without the version lock.
    running_layout: Mutex<Option<Layout>>,
    /// Old versions not closed, and their file size (where `/proc/self/maps` cannot tell).
    #[cfg(not(target_os = "linux"))]
    lingering: AtomicU64,
    #[cfg(not(target_os = "linux"))]
    lingering_bytes: AtomicU64,
    state: Mutex<State<S>>,
    changed: Condvar,
    // Last: the directory goes after every library in it is closed.
    copies: PrivateDir,
}

impl<S: Symbols> Shared<S> {
    fn current(&self) -> &RwLock<Loaded<S>> {
        self.current
            .as_ref()
            .expect("set before `Shared` is shared")
    }

    fn state(&self) -> MutexGuard<'_, State<S>> {
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
        let start = Instant::now();
        let file_name = artifact
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{}.so", self.name()));
        // A counter, not the runner's version: names must stay unique whatever the runner sends.
        let n = self.next_copy.fetch_add(1, Ordering::Relaxed);
        let copy = CopyFile(self.copies.path().join(format!("{n}-{file_name}")));
        let actual = hash::copy_hashed(artifact, &copy.0).map_err(|source| Error::Copy {
            from: artifact.to_path_buf(),
            to: copy.0.clone(),
            source,
        })?;
        if let Some(expected) = expected_hash
            && !expected.eq_ignore_ascii_case(&actual)
        {
            return Err(Error::HashMismatch {
                path: artifact.to_path_buf(),
                expected: expected.to_string(),
                actual,
            });
        }
        let copied = start.elapsed();

        let start = Instant::now();
        // SAFETY: loading runs the library's initialisers. It is the logic library the user builds
        // for this host, loaded on purpose; that is the premise of the whole crate.
        let lib = unsafe { open_library(&copy.0) }.map_err(|source| {
            let detail = loader_detail(&source);
            Error::Load {
                hint: noexec_hint(&detail),
                path: copy.0.clone(),
                detail,
                source,
            }
        })?;
        let symbols = S::resolve(&SymbolSource {
            lib: &lib,
            path: artifact,
            monitor: &self.monitor,
            version,
        })?;
        let layout = self.check_layout(&lib, artifact)?;
        #[cfg(target_os = "linux")]
        let stay_mapped = crate::elf::must_stay_mapped(&copy.0);
        #[cfg(not(target_os = "linux"))]
        let stay_mapped = false;
        if let Some(check) = &self.validate {
            check(&symbols).map_err(|reason| Error::Rejected {
                path: artifact.to_path_buf(),
                reason,
            })?;
        }
        Ok(Prepared {
            loaded: Loaded {
                symbols,
                version,
                hash: actual,
                layout,
                stay_mapped,
                unload: self.unload,
                copy_no: n,
                ran: false,
                lib: Some(lib),
                _copy: copy,
            },
            copy: copied,
            load: start.elapsed(),
        })
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
    fn swap(&self, mut prepared: Prepared<S>) -> Swapped {
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
            *self
                .running_layout
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = prepared.loaded.layout.clone();
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
            let l = crate::maps::lingering(self.copies.path(), copy_no);
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
    fn finish(&self, event: ReloadEvent) {
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

    /// The layout guard: the new library's exported layout against the host's view (if the host
    /// declares one) and against the running version's (if it exported one).
    fn check_layout(&self, lib: &Library, artifact: &Path) -> Result<Option<Layout>, Error> {
        let exported = exported_layout(lib).map_err(|reason| Error::Rejected {
            path: artifact.to_path_buf(),
            reason,
        })?;
        let running = self
            .running_layout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let empty = Layout::default();
        // The running version first: it lists fields the host may list without.
        for (old, against) in [
            (running, "the running version"),
            (S::layout(), "the host's build"),
        ] {
            let Some(old) = old else { continue };
            let new = exported.as_ref().unwrap_or(&empty);
            if let Some(m) = old.mismatch(new) {
                let changes = if exported.is_none() {
                    "the new build exports no layout: add `dylib_dev_runtime::layout!(...)` to the library".to_string()
                } else {
                    m.changes.join("; ")
                };
                return Err(Error::Layout {
                    ty: m.ty,
                    against,
                    changes,
                });
            }
        }
        Ok(exported)
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

/// The layout a library exports with [`layout!`](crate::layout), if it does.
fn exported_layout(lib: &Library) -> Result<Option<Layout>, String> {
    // SAFETY: `layout!` defines the symbol with exactly this signature.
    let Ok(get) = (unsafe { lib.get::<extern "Rust" fn() -> String>(LAYOUT_SYMBOL) }) else {
        return Ok(None);
    };
    let get = *get;
    let text = std::panic::catch_unwind(get).map_err(|_| format!("`{LAYOUT_SYMBOL}` panicked"))?;
    Layout::decode(&text)
        .map(Some)
        .ok_or_else(|| format!("`{LAYOUT_SYMBOL}` returned no layout: {text:?}"))
}

/// Opens with `RTLD_NOW`: an unresolvable reference fails the reload now, while the old version
/// still runs, instead of crashing the host at the first call that needs it.
#[cfg(unix)]
unsafe fn open_library(path: &Path) -> Result<Library, libloading::Error> {
    use libloading::os::unix::{Library as UnixLibrary, RTLD_LOCAL, RTLD_NOW};
    // SAFETY: forwarded to the caller (initialisers run).
    unsafe { UnixLibrary::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map(Library::from)
}

// Untested: Windows resolves imports at load time anyway.
#[cfg(not(unix))]
unsafe fn open_library(path: &Path) -> Result<Library, libloading::Error> {
    // SAFETY: forwarded to the caller (initialisers run).
    unsafe { Library::new(path) }
}

/// The loader's error and its causes, e.g. `dlopen failed: liblogic.so: undefined symbol: ...`
/// (libloading keeps `dlerror()`'s text in the cause).
fn loader_detail(e: &libloading::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn noexec_hint(detail: &str) -> &'static str {
    if detail.contains("failed to map segment") {
        " (is the copies directory on a noexec mount? set DYLIB_DEV_DIR to another directory)"
    } else {
        ""
    }
}

/// The file name cargo gives library `lib` on this platform, e.g. `liblogic.so`.
pub fn artifact_file_name(lib: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        lib.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

/// Finds the artifact of a host started without the runner: next to the executable, in `deps/`
/// beside it, or one level up when the executable is an example or a test (`examples/`, `deps/`).
fn locate(lib: &str) -> Result<PathBuf, Error> {
    let file = artifact_file_name(lib);
    let mut tried = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .as_deref()
        .and_then(Path::parent)
    {
        tried.push(dir.join(&file));
        tried.push(dir.join("deps").join(&file));
        if matches!(
            dir.file_name().and_then(|n| n.to_str()),
            Some("examples" | "deps")
        ) && let Some(up) = dir.parent()
        {
            tried.push(up.join(&file));
        }
    }
    match tried.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(Error::NotFound {
            lib: lib.to_string(),
            var: protocol::lib_env_var(lib),
            tried,
        }),
    }
}
