//! Prototype runtime for `#[hot]` functions: the registry (a linker section every `#[hot]`
//! adds one entry to), the per-function slot, and loading a patch (dlopen, never dlclose).
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

pub use hot_macros::hot;

pub const MAGIC: u64 = 0x686f_745f_7631_0001; // "hot_v1"
pub const LAYOUT_SEED: u64 = 0xcbf29ce484222325;

pub const fn mix_layout(h: u64, size: usize, align: usize) -> u64 {
    let h = (h ^ size as u64).wrapping_mul(0x100000001b3);
    (h ^ align as u64).wrapping_mul(0x100000001b3)
}

/// One function pointer; a call is one Acquire load plus an indirect call.
#[repr(transparent)]
pub struct Slot(AtomicPtr<()>);
impl Slot {
    pub const fn new(f: *mut ()) -> Self { Slot(AtomicPtr::new(f)) }
    #[inline(always)]
    pub fn load(&self) -> *mut () { self.0.load(Ordering::Acquire) }
    pub fn store(&self, f: *mut ()) { self.0.store(f, Ordering::Release) }
}

#[repr(C)]
pub struct HotEntry {
    pub magic: u64,
    /// `crate::module::fn`, the key host and patch entries are matched by.
    pub path: &'static str,
    pub sig_hash: u64,
    pub sig_text: &'static str,
    pub layout_hash: u64,
    /// `type_name` of the function pointer type (lifetimes erased): aliases and paths resolved.
    pub sig_type: fn() -> &'static str,
    pub slot: &'static Slot,
    pub inner: *const (),
}
unsafe impl Sync for HotEntry {}

// The sentinel keeps the section (and so `__start_`/`__stop_`) present in every image that
// links this crate, even one with no `#[hot]` function.
#[used]
#[unsafe(link_section = "dylib_dev_hot")]
static SENTINEL: HotEntry = HotEntry {
    magic: 0,
    path: "",
    sig_hash: 0,
    sig_text: "",
    layout_hash: 0,
    sig_type: || "",
    slot: &SENTINEL_SLOT,
    inner: std::ptr::null(),
};
static SENTINEL_SLOT: Slot = Slot::new(std::ptr::null_mut());

#[allow(improper_ctypes)]
unsafe extern "C" {
    #[link_name = "__start_dylib_dev_hot"]
    static START: HotEntry;
    #[link_name = "__stop_dylib_dev_hot"]
    static STOP: HotEntry;
}

/// The entries of the image (executable or patch) this copy of the crate is linked into.
pub fn local_entries() -> &'static [HotEntry] {
    let _ = &SENTINEL;
    unsafe {
        let start = &raw const START;
        let stop = &raw const STOP;
        let n = (stop as usize - start as usize) / std::mem::size_of::<HotEntry>();
        std::slice::from_raw_parts(start, n)
    }
}

/// The one symbol a patch exports for the runner: its registry. Unmangled so that `dlsym`
/// finds it without knowing the crate hash; versioned by name.
#[allow(improper_ctypes_definitions)]
#[unsafe(no_mangle)]
pub extern "C" fn dylib_dev_hot_registry_v1(len: *mut usize) -> *const HotEntry {
    let e = local_entries();
    unsafe { *len = e.len() };
    e.as_ptr()
}

unsafe extern "C" {
    fn dlopen(filename: *const c_char, flag: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *mut c_char;
}
const RTLD_NOW: c_int = 2;
const RTLD_LOCAL: c_int = 0;

fn dl_error() -> String {
    unsafe {
        let e = dlerror();
        if e.is_null() { "unknown dlerror".into() } else { CStr::from_ptr(e).to_string_lossy().into_owned() }
    }
}

#[derive(Debug)]
pub struct Swapped {
    pub swapped: Vec<&'static str>,
    pub dlopen_us: u128,
    pub total_us: u128,
    /// Patches loaded so far (none is ever closed).
    pub images: usize,
}

/// The registries of every loaded patch. A swap stores the new pointer into the slot of that
/// function in the host *and in every loaded patch*, so each image's calls of a hot function
/// (one load of its own slot) reach the newest version: a binary patch that statically carries
/// an older copy of a library still calls the library's newest hot functions.
static IMAGES: std::sync::Mutex<Vec<&'static [HotEntry]>> = std::sync::Mutex::new(Vec::new());

fn live(entries: &'static [HotEntry]) -> impl Iterator<Item = &'static HotEntry> {
    entries.iter().filter(|e| e.magic == MAGIC)
}

/// Load `path` and repoint every host slot whose function (by path) the patch also has, for
/// functions whose path starts with `crate_prefix` (the crate the patch was built from).
/// Refuses the whole patch, changing nothing, if any of them changed signature or layout.
/// The library is never closed: values made by it (closures, `&'static str`) may outlive a call.
pub fn load_patch(path: &str, crate_prefix: &str) -> Result<Swapped, String> {
    let t0 = std::time::Instant::now();
    let c = CString::new(path).map_err(|e| e.to_string())?;
    let h = unsafe { dlopen(c.as_ptr(), RTLD_NOW | RTLD_LOCAL) };
    if h.is_null() { return Err(format!("dlopen {path}: {}", dl_error())); }
    let dlopen_us = t0.elapsed().as_micros();
    let sym = unsafe { dlsym(h, c"dylib_dev_hot_registry_v1".as_ptr()) };
    if sym.is_null() { return Err(format!("{path} has no hot registry: {}", dl_error())); }
    let reg: extern "C" fn(*mut usize) -> *const HotEntry = unsafe { std::mem::transmute(sym) };
    if reg as *const () as usize == dylib_dev_hot_registry_v1 as *const () as usize {
        return Err("the patch's registry resolved to the host's own (symbol interposition)".into());
    }
    let mut n = 0usize;
    let p = reg(&mut n);
    let patch: &'static [HotEntry] = unsafe { std::slice::from_raw_parts(p, n) };
    let host = local_entries();
    let mut plan = Vec::new();
    let mut refused = Vec::new();
    for he in live(host).filter(|e| e.path.starts_with(crate_prefix)) {
        match live(patch).find(|p| p.path == he.path) {
            None => refused.push(format!("{}: missing from the patch (removed or renamed)", he.path)),
            // The resolved types decide; the token hash is only a cheap first look (a token
            // change such as `State` -> `crate::State` alone is not a change).
            Some(p) if (p.sig_type)() != (he.sig_type)() => refused.push(format!(
                "{}: signature changed from `{}` to `{}`", he.path, (he.sig_type)(), (p.sig_type)())),
            Some(p) if p.layout_hash != he.layout_hash => refused.push(format!(
                "{}: the layout of an argument or result type changed", he.path)),
            Some(p) => plan.push((he, p.inner as *mut ())),
        }
    }
    if !refused.is_empty() {
        // Never closed either: a refused patch costs its mapping until the restart it asks for.
        return Err(format!("swap refused, restart needed: {}", refused.join("; ")));
    }
    let mut images = IMAGES.lock().unwrap();
    // The new patch's other slots (other crates' hot functions, which it carries as static
    // copies) start at the host's current pointers: the newest versions.
    for pe in live(patch) {
        if let Some(he) = live(host).find(|h| h.path == pe.path) {
            pe.slot.store(he.slot.load());
        }
    }
    images.push(patch);
    for (he, new) in &plan {
        he.slot.store(*new);
        for img in images.iter() {
            for e in live(img).filter(|e| e.path == he.path) { e.slot.store(*new); }
        }
    }
    Ok(Swapped { swapped: plan.iter().map(|(h, _)| h.path).collect(), dlopen_us, total_us: t0.elapsed().as_micros(), images: images.len() })
}
