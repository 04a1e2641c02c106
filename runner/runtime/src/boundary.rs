//! The call boundary: what happens around every call into a library.
//!
//! - **Panics** are caught here ([`call_boundary`]), reported to the runner once per version and
//!   place, and handed to the host as a [`Panic`]: re-raised by the plain wrappers, returned by
//!   [`HotLib::try_call`](crate::HotLib::try_call). Host, logic and deps share one `libstd` under
//!   `-C prefer-dynamic`, so a panic in logic unwinds into the host like any other.
//! - **Hangs**: every thread notes when its outermost call into a library began; a watchdog
//!   thread per reloadable library reports a call that runs past the hang threshold as
//!   [`Stuck`](crate::protocol::Stuck), and [`Resumed`](crate::protocol::Resumed) if it returns
//!   after all.
//!
//! What a call costs on top of the indirect call: a few relaxed atomic operations on a
//! thread-local slot; `catch_unwind` is free until something panics.

use crate::channel::Channel;
use crate::protocol::{Panicked, Stuck, ToRunner};
use std::any::Any;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

/// A call into a library panicked; the panic was caught at the call boundary.
///
/// Everything in it is owned by the host: the library that panicked may be unloaded by the time
/// the host looks at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panic {
    /// The library's name.
    pub lib: String,
    /// The function the host called.
    pub function: &'static str,
    /// The version that panicked.
    pub version: u64,
    /// The panic message (`"Box<dyn Any>"` for a payload that is not a string).
    pub message: String,
    /// `file:line:column` of the `panic!`, when the runtime's panic hook saw it.
    pub location: Option<String>,
    /// The calling thread's name.
    pub thread: String,
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}::{}` panicked", self.lib, self.function)?;
        if let Some(location) = &self.location {
            write!(f, " at {location}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for Panic {}

/// Where a generated wrapper calls: one `static` per declared function.
#[derive(Debug)]
pub struct CallSite {
    function: &'static str,
}

impl CallSite {
    /// The site of function `function`.
    pub const fn new(function: &'static str) -> Self {
        CallSite { function }
    }
}

/// What a version's functions need at the boundary: who to report to and which version they are.
///
/// Made by the runtime for each loaded version ([`SymbolSource::context`](crate::SymbolSource::context))
/// and kept in the generated `Symbols`.
#[derive(Clone)]
pub struct CallContext {
    monitor: Arc<Monitor>,
    version: u64,
}

impl fmt::Debug for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallContext")
            .field("lib", &self.monitor.lib)
            .field("version", &self.version)
            .finish()
    }
}

impl CallContext {
    pub(crate) fn new(monitor: Arc<Monitor>, version: u64) -> Self {
        CallContext { monitor, version }
    }
}

/// Per library: the connection to the runner and what has been reported on it.
pub(crate) struct Monitor {
    pub(crate) lib: String,
    pub(crate) channel: Option<Channel>,
    /// (version, place) of every panic reported so far; pruned on each swap.
    reported: Mutex<HashSet<(u64, String)>>,
    hang: Duration,
    closing: AtomicBool,
}

impl Monitor {
    pub(crate) fn new(lib: String, channel: Option<Channel>, hang: Duration) -> Self {
        Monitor {
            lib,
            channel,
            reported: Mutex::new(HashSet::new()),
            hang,
            closing: AtomicBool::new(false),
        }
    }

    pub(crate) fn send(&self, msg: &ToRunner) {
        if let Some(channel) = &self.channel {
            channel.send(msg);
        }
    }

    /// Whether a panic of `version` at `place` is new (and notes it).
    fn first_panic(&self, version: u64, place: &str) -> bool {
        self.reported
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((version, place.to_string()))
    }

    /// Forgets the panics of versions other than `version` (which now runs).
    pub(crate) fn swapped_to(&self, version: u64) {
        self.reported
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(v, _)| *v == version);
    }

    /// Stops the watchdog.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    fn id(&self) -> usize {
        self as *const Monitor as usize
    }
}

// ---------------------------------------------------------------------------------------------
// Thread slots: which thread is in which call since when.

/// Milliseconds since the first watchdog started, advanced by the watchdogs. Calls read it (one
/// relaxed load) instead of the clock.
static TICK: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn advance_tick() -> u64 {
    let now = EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64;
    TICK.fetch_max(now, Ordering::Relaxed).max(now)
}

/// One thread's outermost call, as the watchdogs see it.
struct Slot {
    thread: String,
    depth: AtomicU32,
    /// Counts outermost calls, so a watchdog tells "still the same call" from "a new one".
    call: AtomicU64,
    since: AtomicU64,
    monitor: AtomicUsize,
    version: AtomicU64,
    site: AtomicUsize,
}

static SLOTS: Mutex<Vec<Weak<Slot>>> = Mutex::new(Vec::new());

/// The innermost call of this thread, for the panic hook.
#[derive(Clone, Copy)]
struct Current {
    monitor: *const Monitor,
    version: u64,
}

/// What the panic hook saw of the latest panic inside a call on this thread.
struct Seen {
    message: String,
    location: Option<String>,
    first: bool,
}

/// A panic re-raised by a plain wrapper, so [`HotLib::try_call`](crate::HotLib::try_call) can
/// recover it: the address of the payload and the panic.
type Raised = (usize, Panic);

struct ThreadState {
    slot: Arc<Slot>,
    current: Cell<Option<Current>>,
    seen: Cell<Option<Seen>>,
    raised: Cell<Option<Raised>>,
    /// Inside the runtime's panic hook.
    in_hook: Cell<bool>,
}

thread_local! {
    static THREAD: ThreadState = {
        let current = std::thread::current();
        let thread = match current.name() {
            Some(name) => name.to_string(),
            None => format!("{:?}", current.id()),
        };
        let slot = Arc::new(Slot {
            thread,
            depth: AtomicU32::new(0),
            call: AtomicU64::new(0),
            since: AtomicU64::new(0),
            monitor: AtomicUsize::new(0),
            version: AtomicU64::new(0),
            site: AtomicUsize::new(0),
        });
        let mut slots = SLOTS.lock().unwrap_or_else(PoisonError::into_inner);
        slots.retain(|s| s.strong_count() > 0);
        slots.push(Arc::downgrade(&slot));
        ThreadState {
            slot,
            current: Cell::new(None),
            seen: Cell::new(None),
            raised: Cell::new(None),
            in_hook: Cell::new(false),
        }
    };
}

/// Runs one call into a library: catches a panic and reports it, and marks the thread as inside
/// the library for the hang watchdog. Every generated call passes here.
#[doc(hidden)]
#[inline]
pub fn call_boundary<R>(
    ctx: &CallContext,
    site: &'static CallSite,
    call: impl FnOnce() -> R,
) -> Result<R, Panic> {
    if !HOOK_CHECKED.load(Ordering::Relaxed) {
        check_panic_hook();
    }
    let outer = THREAD
        .try_with(|t| {
            let slot = &t.slot;
            if slot.depth.fetch_add(1, Ordering::Relaxed) == 0 {
                slot.monitor.store(ctx.monitor.id(), Ordering::Relaxed);
                slot.version.store(ctx.version, Ordering::Relaxed);
                slot.site
                    .store(site as *const CallSite as usize, Ordering::Relaxed);
                slot.since
                    .store(TICK.load(Ordering::Relaxed), Ordering::Relaxed);
                slot.call.fetch_add(1, Ordering::Release);
            }
            t.current.replace(Some(Current {
                monitor: Arc::as_ptr(&ctx.monitor),
                version: ctx.version,
            }))
        })
        .ok();
    let result = std::panic::catch_unwind(AssertUnwindSafe(call));
    let seen = THREAD
        .try_with(|t| {
            if let Some(outer) = outer {
                t.current.set(outer);
            }
            t.slot.depth.fetch_sub(1, Ordering::Relaxed);
            if result.is_err() { t.seen.take() } else { None }
        })
        .ok()
        .flatten();
    match result {
        Ok(value) => Ok(value),
        Err(payload) => Err(caught(ctx, site, payload, seen)),
    }
}

/// Turns a caught payload into a [`Panic`] and reports it.
#[cold]
fn caught(
    ctx: &CallContext,
    site: &'static CallSite,
    payload: Box<dyn Any + Send>,
    seen: Option<Seen>,
) -> Panic {
    let from_payload = payload_message(&*payload);
    // The payload's data, vtable or drop glue may live in the library: drop it now, while the
    // version is still pinned. A payload whose drop panics is leaked instead.
    if let Err(again) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
    // The hook's record belongs to this panic unless the library caught that one itself and
    // unwound with another payload later (`resume_unwind` skips the hook).
    let seen = seen.filter(|s| from_payload.as_deref().is_none_or(|m| m == s.message));
    if seen.is_none() {
        // The runtime's hook did not see it: another hook may have replaced it.
        recheck_panic_hook();
    }
    let message = from_payload
        .or_else(|| seen.as_ref().map(|s| s.message.clone()))
        .unwrap_or_else(|| "Box<dyn Any>".to_string());
    let location = seen.as_ref().and_then(|s| s.location.clone());
    let thread = THREAD
        .try_with(|t| t.slot.thread.clone())
        .unwrap_or_else(|_| "<exiting>".into());
    let first = match &seen {
        Some(s) => s.first,
        None => ctx
            .monitor
            .first_panic(ctx.version, location.as_deref().unwrap_or(&message)),
    };
    let panic = Panic {
        lib: ctx.monitor.lib.clone(),
        function: site.function,
        version: ctx.version,
        message,
        location,
        thread,
    };
    if first {
        ctx.monitor.send(&ToRunner::Panicked(Panicked {
            lib: panic.lib.clone(),
            version: panic.version,
            function: panic.function.to_string(),
            thread: panic.thread.clone(),
            message: panic.message.clone(),
            location: panic.location.clone(),
        }));
    }
    panic
}

fn payload_message(payload: &(dyn Any + Send)) -> Option<String> {
    if let Some(s) = payload.downcast_ref::<&str>() {
        Some((*s).to_string())
    } else {
        payload.downcast_ref::<String>().cloned()
    }
}

/// Continues a caught panic in the host, as a plain wrapper does: the payload is the message as
/// a `String`, as `panic!("{message}")` would give.
#[doc(hidden)]
#[cold]
pub fn resume_panic(panic: Panic) -> ! {
    let payload: Box<dyn Any + Send> = Box::new(panic.message.clone());
    let address = &*payload as *const (dyn Any + Send) as *const () as usize;
    let _ = THREAD.try_with(|t| t.raised.set(Some((address, panic))));
    std::panic::resume_unwind(payload)
}

/// The [`Panic`] behind a payload that [`resume_panic`] raised on this thread, if it is one.
pub(crate) fn take_raised(payload: &(dyn Any + Send)) -> Option<Panic> {
    let address = payload as *const (dyn Any + Send) as *const () as usize;
    THREAD
        .try_with(|t| match t.raised.take() {
            Some((a, panic)) if a == address => Some(panic),
            _ => None,
        })
        .ok()
        .flatten()
}

// ---------------------------------------------------------------------------------------------
// The panic hook.

/// The runtime's hook as last installed and still alive: its data address (to know it among
/// others) and its number. Cleared when std drops it, so a later hook of the host that happens to
/// get the same address is not mistaken for it.
static OUR_HOOK: Mutex<Option<(usize, u64)>> = Mutex::new(None);
/// Whether the runtime's hook is known to be the current one. Cleared at every swap and when a
/// panic inside a call bypassed it; the next call then checks (see [`ensure_panic_hook`]).
static HOOK_CHECKED: AtomicBool = AtomicBool::new(false);

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

fn hook_address(hook: &Hook) -> usize {
    &**hook as *const (dyn Fn(&PanicHookInfo<'_>) + Sync + Send) as *const () as usize
}

/// Makes the runtime's panic hook the current one, chained in front of whatever hook is current
/// now. The hook, for panics inside a library call, records the message and location for the
/// [`Panic`] and passes the panic on to the hook it chains only the first time a version panics
/// at a place: a panic in every frame does not flood the terminal. Panics elsewhere go to the
/// chained hook untouched.
///
/// A host may install its own hook later (`color_eyre::install()`, `std::panic::set_hook`), which
/// would drop the runtime's. So this runs again at safe moments: at the first call after the
/// library opened, the first call after every swap, and the call after a panic the hook did not
/// see; each checks, by address, whether the current hook is the runtime's and chains a new one
/// in front of the host's if not. (A panic on another thread in the instant between taking and
/// setting the hook goes to std's default hook.)
pub(crate) fn ensure_panic_hook() {
    // `take_hook` panics on a panicking thread; the next call checks again.
    if std::thread::panicking() {
        return;
    }
    static CHECKING: Mutex<()> = Mutex::new(());
    let _one = CHECKING.lock().unwrap_or_else(PoisonError::into_inner);
    let current = std::panic::take_hook();
    let ours = *OUR_HOOK.lock().unwrap_or_else(PoisonError::into_inner);
    if ours.is_some_and(|(address, _)| address == hook_address(&current)) {
        std::panic::set_hook(current);
    } else {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let hook = runtime_hook(current, Installed(id));
        *OUR_HOOK.lock().unwrap_or_else(PoisonError::into_inner) = Some((hook_address(&hook), id));
        std::panic::set_hook(hook);
    }
    HOOK_CHECKED.store(true, Ordering::Relaxed);
}

/// Owned by the runtime's hook number `.0`: forgets it when std drops the hook.
struct Installed(u64);

impl Drop for Installed {
    fn drop(&mut self) {
        let mut ours = OUR_HOOK.lock().unwrap_or_else(PoisonError::into_inner);
        if ours.is_some_and(|(_, id)| id == self.0) {
            *ours = None;
        }
    }
}

/// Makes the next call check that the runtime's hook is still the current one.
pub(crate) fn recheck_panic_hook() {
    HOOK_CHECKED.store(false, Ordering::Relaxed);
}

#[cold]
#[inline(never)]
fn check_panic_hook() {
    ensure_panic_hook();
}

/// The runtime's hook, in front of `previous`.
fn runtime_hook(previous: Hook, installed: Installed) -> Hook {
    // Never zero-sized (it owns `previous`), so its address tells it from any live hook.
    Box::new(move |info: &PanicHookInfo<'_>| {
        let _owned = &installed;
        let current = THREAD.try_with(|t| t.current.get()).ok().flatten();
        // A host hook that chains an older hook of ours: only the outermost one records.
        let nested = THREAD.try_with(|t| t.in_hook.replace(true)).unwrap_or(true);
        let Some(current) = current.filter(|_| !nested) else {
            previous(info);
            if !nested {
                let _ = THREAD.try_with(|t| t.in_hook.set(false));
            }
            return;
        };
        let message = payload_message(info.payload()).unwrap_or_else(|| "Box<dyn Any>".to_string());
        // Copied: `file()` may point into the library.
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        // SAFETY: `current` is set only for the duration of a call, and the call's `Symbols`
        // hold an `Arc` of the monitor, so it is alive while this thread is in the call.
        let monitor = unsafe { &*current.monitor };
        let first = monitor.first_panic(current.version, location.as_deref().unwrap_or(&message));
        let _ = THREAD.try_with(|t| {
            t.seen.set(Some(Seen {
                message,
                location,
                first,
            }))
        });
        if first {
            previous(info);
        }
        let _ = THREAD.try_with(|t| t.in_hook.set(false));
    })
}

// ---------------------------------------------------------------------------------------------
// The hang watchdog.

/// Starts the thread that reports calls into `monitor`'s library running past its hang threshold.
pub(crate) fn start_watchdog(monitor: &Arc<Monitor>) {
    let weak = Arc::downgrade(monitor);
    let hang = monitor.hang;
    let period = (hang / 8).clamp(Duration::from_millis(5), Duration::from_millis(250));
    let name = format!("dylib-dev-watchdog-{}", monitor.lib);
    advance_tick();
    let spawned = std::thread::Builder::new()
        .name(name)
        .spawn(move || watch(weak, hang, period));
    if let Err(e) = spawned {
        eprintln!("dylib-dev: no hang watchdog ({e})");
    }
}

/// A call reported as stuck.
struct Reported {
    call: u64,
    since: u64,
    version: u64,
    function: &'static str,
    thread: String,
}

fn watch(monitor: Weak<Monitor>, hang: Duration, period: Duration) {
    let hang_ms = hang.as_millis() as u64;
    let mut reported: HashMap<usize, Reported> = HashMap::new();
    loop {
        std::thread::sleep(period);
        let Some(monitor) = monitor.upgrade() else {
            return;
        };
        if monitor.closing.load(Ordering::Relaxed) {
            return;
        }
        let now = advance_tick();
        let slots: Vec<Arc<Slot>> = SLOTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let send = |verb: fn(Stuck) -> ToRunner, r: &Reported, ms: u64| {
            monitor.send(&verb(Stuck {
                lib: monitor.lib.clone(),
                version: r.version,
                function: r.function.to_string(),
                thread: r.thread.clone(),
                elapsed: Duration::from_millis(ms),
            }));
        };
        // Threads that ended (their slot is gone) are out of their calls too.
        reported.retain(|key, r| {
            let alive = slots.iter().any(|s| Arc::as_ptr(s) as usize == *key);
            if !alive {
                send(ToRunner::Resumed, r, now.saturating_sub(r.since));
            }
            alive
        });
        for slot in &slots {
            let key = Arc::as_ptr(slot) as usize;
            let call = slot.call.load(Ordering::Acquire);
            let busy = slot.depth.load(Ordering::Relaxed) > 0
                && slot.monitor.load(Ordering::Relaxed) == monitor.id();
            if let Some(r) = reported.get(&key)
                && (!busy || call != r.call)
            {
                send(ToRunner::Resumed, r, now.saturating_sub(r.since));
                reported.remove(&key);
            }
            if !busy || reported.contains_key(&key) {
                continue;
            }
            let since = slot.since.load(Ordering::Relaxed);
            // A call that began before the first tick has `since` 0: count from the first tick.
            if now.saturating_sub(since) < hang_ms {
                continue;
            }
            let site = slot.site.load(Ordering::Relaxed) as *const CallSite;
            // SAFETY: sites are `static`s of the host (generated by `hot_module!`), never freed.
            let function = unsafe { site.as_ref() }.map_or("?", |s| s.function);
            let r = Reported {
                call,
                since,
                version: slot.version.load(Ordering::Relaxed),
                function,
                thread: slot.thread.clone(),
            };
            send(ToRunner::Stuck, &r, now.saturating_sub(since));
            reported.insert(key, r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(lib: &str) -> CallContext {
        CallContext::new(
            Arc::new(Monitor::new(lib.into(), None, Duration::from_secs(10))),
            3,
        )
    }

    static SITE: CallSite = CallSite::new("step");

    #[test]
    fn a_panic_is_caught_with_message_location_and_thread() {
        ensure_panic_hook();
        let ctx = ctx("logic");
        assert_eq!(call_boundary(&ctx, &SITE, || 7), Ok(7));
        let line = line!() + 1;
        let err = call_boundary(&ctx, &SITE, || -> u32 { panic!("boom {}", 42) }).unwrap_err();
        assert_eq!(err.message, "boom 42");
        assert_eq!(
            (err.lib.as_str(), err.function, err.version),
            ("logic", "step", 3)
        );
        let location = err.location.as_deref().expect("the hook saw the location");
        assert!(
            location.contains(&format!("boundary.rs:{line}:")),
            "{location}"
        );
        assert_eq!(
            err.to_string(),
            format!("`logic::step` panicked at {location}: boom 42")
        );
        // Not a string payload.
        let err = call_boundary(&ctx, &SITE, || std::panic::panic_any(5u8)).unwrap_err();
        assert_eq!(err.message, "Box<dyn Any>");
    }

    #[test]
    fn the_same_panic_is_reported_once_per_version() {
        let monitor = Monitor::new("l".into(), None, Duration::from_secs(1));
        assert!(monitor.first_panic(1, "a.rs:1:1"));
        assert!(!monitor.first_panic(1, "a.rs:1:1"));
        assert!(monitor.first_panic(1, "a.rs:2:1"));
        assert!(monitor.first_panic(2, "a.rs:1:1"));
        monitor.swapped_to(2);
        assert!(
            monitor.first_panic(1, "a.rs:1:1"),
            "older versions forgotten"
        );
        assert!(!monitor.first_panic(2, "a.rs:1:1"));
    }

    #[test]
    fn a_reraised_panic_is_recognised_by_its_payload() {
        let ctx = ctx("logic");
        let panic = call_boundary(&ctx, &SITE, || -> () { panic!("x") }).unwrap_err();
        let caught = std::panic::catch_unwind(|| resume_panic(panic.clone())).unwrap_err();
        assert_eq!(
            caught.downcast_ref::<String>().map(String::as_str),
            Some("x")
        );
        assert_eq!(take_raised(&*caught), Some(panic));
        assert_eq!(take_raised(&*caught), None, "taken once");
        let other: Box<dyn Any + Send> = Box::new(String::from("x"));
        assert_eq!(take_raised(&*other), None);
    }

    #[test]
    fn nested_calls_restore_the_outer_context() {
        let (outer, inner) = (ctx("outer"), ctx("inner"));
        let result = call_boundary(&outer, &SITE, || {
            let err = call_boundary(&inner, &SITE, || -> () { panic!("inner") }).unwrap_err();
            assert_eq!(err.lib, "inner");
            THREAD.with(|t| t.slot.depth.load(Ordering::Relaxed))
        });
        assert_eq!(result, Ok(1));
        THREAD.with(|t| {
            assert_eq!(t.slot.depth.load(Ordering::Relaxed), 0);
            assert!(t.current.get().is_none());
        });
    }
}
