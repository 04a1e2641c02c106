//! [`HotLib`]: the handle a host calls a reloadable library through. Every call pins the running
//! version (the read side of the engine's version lock) for as long as it runs, so a swap happens
//! only between calls; [`LazyHotLib`] is the same handle in a `static`.

use crate::boundary::take_raised;
use crate::builder::Builder;
use crate::engine::{ReloadEvent, Shared};
use crate::symbols::Symbols;
use crate::version::Loaded;
use crate::{Error, Panic};
use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

impl<S: Symbols> Builder<S> {
    /// Copies, loads and resolves the library, and connects to the runner if one is named.
    pub fn open(self) -> Result<HotLib<S>, Error> {
        let (shared, reader) = Shared::open(self)?;
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
        self.shared.loader.copies_dir()
    }

    /// A safe point: swaps in a pending version
    /// ([`SwapPolicy::OnUpdate`](crate::SwapPolicy::OnUpdate)) and returns the newest reload event
    /// not yet returned by `update` or [`HotLib::wait_for_reload`].
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
