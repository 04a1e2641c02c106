//! Hot functions in place: what `#[dylib_dev::hot]` expands to calls into this module.
//!
//! Every hot function has a *slot* (the pointer its calls go through) and an *entry* in the
//! `dylib_dev_hot` link section of the image it is linked into (the host executable, or a patch:
//! the crate rebuilt by the runner as a shared object from its own rustc invocation). The entry
//! gives the function's path (`crate::module::name`), its signature as rustc resolves it, the size
//! and alignment of what it takes and returns, its slot and its body.
//!
//! At the first call of any hot function the runtime starts ([`start`]): it points every slot of
//! the host at its body and, under `dylib-dev watch`, connects to the runner once per crate that
//! has hot functions. A `reload` for a crate is a patch of it: the runtime copies and verifies it,
//! `dlopen`s it (never `dlclose`: values a version made, such as boxed closures and `&'static str`,
//! can outlive its calls), matches its entries to the host's by path, and then either refuses the
//! whole patch, changing nothing (a function whose signature changed, a type it takes or returns
//! whose size or alignment changed, a function the patch no longer has: the runner restarts the
//! host), or repoints the slots, in the host and in every patch loaded before, so every image
//! calls the newest body. A call already running finishes in the body it started in; a swap is a
//! pointer store, so it never tears a call.

use std::sync::atomic::{AtomicPtr, Ordering};

/// Magic number of an [`Entry`] of this layout (the section may hold entries of another runtime).
pub const MAGIC: u64 = 0x6479_6c69_6268_6f74; // "dylibhot"

/// The pointer a hot function's calls go through: one Acquire load, one indirect call.
#[repr(transparent)]
pub struct Slot(AtomicPtr<()>);

impl Slot {
    /// A slot pointing at `f`.
    pub const fn new(f: *mut ()) -> Slot {
        Slot(AtomicPtr::new(f))
    }

    /// The function to call.
    #[inline(always)]
    pub fn load(&self) -> *mut () {
        self.0.load(Ordering::Acquire)
    }

    /// At a function's first call: its body, unless the runtime repointed the slot already.
    pub fn first_call(&self, first: *mut (), body: *mut ()) {
        let _ = self
            .0
            .compare_exchange(first, body, Ordering::AcqRel, Ordering::Acquire);
    }

    fn store(&self, f: *mut ()) {
        self.0.store(f, Ordering::Release)
    }
}

/// Size and alignment of a type a hot function takes or returns (or points to).
#[repr(C)]
pub struct TypeSize {
    /// The type as written.
    pub name: &'static str,
    /// `size_of`.
    pub size: usize,
    /// `align_of`.
    pub align: usize,
}

/// One hot function, as `#[hot]` registers it in the `dylib_dev_hot` section.
#[repr(C)]
pub struct Entry {
    /// [`MAGIC`].
    pub magic: u64,
    /// `crate::module::name`: host and patch entries are matched by it.
    pub path: &'static str,
    /// `type_name` of the function's pointer type: argument and result types resolved.
    pub signature: fn() -> &'static str,
    /// What the arguments and result are or point to.
    pub types: &'static [TypeSize],
    /// Where calls go.
    pub slot: &'static Slot,
    /// The body in this image.
    pub inner: *const (),
}

// Read-only after linking; the pointers are functions.
unsafe impl Sync for Entry {}

/// Starts the runtime for hot functions, once per process: every host slot to its body, and
/// under the runner a connection per crate with hot functions. Called by the first call of any
/// hot function.
pub fn start() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(imp::start);
}

/// Why a patch is refused, for the runner's `failed` answer (every reason, `; `-separated).
fn refusals(host: &[&Entry], patch: &[&Entry], krate: &str) -> Vec<String> {
    let mut refused = Vec::new();
    for h in host.iter().filter(|e| in_crate(e.path, krate)) {
        let Some(p) = patch.iter().find(|p| p.path == h.path) else {
            refused.push(format!(
                "`{}` is not in the new build (removed, renamed or no longer #[hot])",
                h.path
            ));
            continue;
        };
        let (old, new) = ((h.signature)(), (p.signature)());
        if old != new {
            refused.push(format!(
                "the signature of `{}` changed from `{old}` to `{new}`",
                h.path
            ));
            continue;
        }
        for (a, b) in h.types.iter().zip(p.types) {
            if (a.size, a.align) != (b.size, b.align) {
                refused.push(format!(
                    "the layout of `{}` (taken or returned by `{}`) changed: {} bytes aligned to {} \
                     before, {} aligned to {} now",
                    b.name, h.path, a.size, a.align, b.size, b.align
                ));
            }
        }
    }
    refused
}

/// Whether `path` is an item of crate `krate` (`-` and `_` alike).
fn in_crate(path: &str, krate: &str) -> bool {
    path.split("::")
        .next()
        .is_some_and(|c| crate::protocol::same_lib(c, krate))
}

#[cfg(target_os = "linux")]
mod imp {
    use super::{Entry, MAGIC, in_crate, refusals};
    use crate::channel::{Channel, Handler};
    use crate::private_dir::{PrivateDir, default_base};
    use crate::protocol::{self, Failed, Hello, Reload, SwapTiming, Swapped, ToRunner};
    use std::ffi::{CStr, CString, c_char, c_int, c_void};
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::Instant;

    /// Prefix of the private directory holding this process's patch copies.
    const COPIES_PREFIX: &str = "dylib-dev-hot-";

    /// Every image's entries: the host's first, then each loaded patch's, in load order.
    static IMAGES: Mutex<Vec<&'static [Entry]>> = Mutex::new(Vec::new());
    /// The connections (one per crate); kept for the process's life.
    static CRATES: Mutex<Vec<Arc<HotCrate>>> = Mutex::new(Vec::new());

    pub(super) fn start() {
        let host = match host_entries() {
            Ok(entries) => entries,
            Err(why) => {
                eprintln!("dylib-dev: hot functions run without reloading: {why}");
                return;
            }
        };
        // No patch can arrive before `connect` below: every slot to its body.
        for e in live(host) {
            e.slot.store(e.inner as *mut ());
        }
        IMAGES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(host);
        let Some(socket) = std::env::var_os(protocol::ENV_SOCKET) else {
            return;
        };
        if let Err(why) = connect(host, Path::new(&socket)) {
            eprintln!("dylib-dev: hot functions run without reloading: {why}");
        }
    }

    fn live(entries: &'static [Entry]) -> impl Iterator<Item = &'static Entry> {
        entries.iter().filter(|e| e.magic == MAGIC)
    }

    fn connect(host: &'static [Entry], socket: &Path) -> Result<(), String> {
        let mut crates: Vec<String> = live(host)
            .filter_map(|e| e.path.split("::").next())
            .map(str::to_string)
            .collect();
        crates.sort();
        crates.dedup();
        let base = std::env::var_os(protocol::ENV_DIR)
            .map(PathBuf::from)
            .unwrap_or_else(default_base);
        let copies = Arc::new(PrivateDir::create(&base, COPIES_PREFIX).map_err(|e| {
            format!(
                "cannot create a directory for patches under {}: {e}",
                base.display()
            )
        })?);
        let runner_protocol = std::env::var(protocol::ENV_PROTOCOL)
            .ok()
            .and_then(|v| v.parse::<u32>().ok());
        for name in crates {
            let channel = Channel::connect(socket).map_err(|e| e.to_string())?;
            if let Some(runner) = runner_protocol.filter(|&r| r != protocol::PROTOCOL_VERSION) {
                crate::engine::refuse_runner(channel, &name, runner);
                continue;
            }
            channel.send(&ToRunner::Hello(Hello {
                protocol: protocol::PROTOCOL_VERSION,
                pid: std::process::id(),
                lib: name.clone(),
                version: 0,
                // Not empty (that would mean "waiting for a first build"): the executable's own
                // code, which no build of the runner's equals.
                hash: "executable".into(),
                save: true,
            }));
            let krate = Arc::new(HotCrate {
                name,
                channel,
                copies: Arc::clone(&copies),
            });
            krate
                .channel
                .spawn_reader(Arc::downgrade(&krate))
                .map_err(|e| e.to_string())?;
            CRATES
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(krate);
        }
        Ok(())
    }

    /// One crate's connection: its patches arrive here.
    struct HotCrate {
        name: String,
        channel: Channel,
        copies: Arc<PrivateDir>,
    }

    impl Handler for HotCrate {
        fn name(&self) -> &str {
            &self.name
        }

        fn reload(&self, req: &Reload) {
            let msg = match self.load(req) {
                Ok(timing) => {
                    let old = crate::maps::lingering(self.copies.path(), req.version);
                    ToRunner::Swapped(Swapped {
                        lib: self.name.clone(),
                        version: req.version,
                        timing,
                        lingering: old.versions,
                        lingering_bytes: old.bytes,
                    })
                }
                Err(reason) => ToRunner::Failed(Failed {
                    lib: self.name.clone(),
                    version: req.version,
                    reason,
                }),
            };
            self.channel.send(&msg);
        }

        fn send(&self, msg: &ToRunner) {
            self.channel.send(msg);
        }
    }

    impl HotCrate {
        /// Copies, verifies, loads and matches the patch, then repoints the slots.
        fn load(&self, req: &Reload) -> Result<SwapTiming, String> {
            let started = Instant::now();
            let file = req
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("{}.so", self.name));
            let copy = self.copies.path().join(format!("{}-{file}", req.version));
            std::fs::copy(&req.path, &copy)
                .map_err(|e| format!("cannot copy {}: {e}", req.path.display()))?;
            if let Some(expected) = &req.hash {
                let got = crate::hash_file(&copy)
                    .map_err(|e| format!("cannot hash {}: {e}", copy.display()))?;
                if &got != expected {
                    return Err(format!(
                        "the copy of {} is not the build the runner announced (it changed meanwhile)",
                        req.path.display()
                    ));
                }
            }
            let copied = started.elapsed();
            let loading = Instant::now();
            let patch = open(&copy)?;
            let host: Vec<&Entry> = {
                let images = IMAGES.lock().unwrap_or_else(PoisonError::into_inner);
                live(images[0]).collect()
            };
            let new: Vec<&Entry> = live(patch).collect();
            let refused = refusals(&host, &new, &self.name);
            if !refused.is_empty() {
                // The patch stays mapped (nothing of it ran) until the restart this asks for.
                return Err(format!("restart needed: {}", refused.join("; ")));
            }
            let mut images = IMAGES.lock().unwrap_or_else(PoisonError::into_inner);
            // The patch's other slots start where the host's are (the newest bodies of other
            // crates' functions it carries copies of); functions only it has, at its own bodies.
            for p in &new {
                match host.iter().find(|h| h.path == p.path) {
                    Some(h) => p.slot.store(h.slot.load()),
                    None => p.slot.store(p.inner as *mut ()),
                }
            }
            images.push(patch);
            for p in new.iter().filter(|p| in_crate(p.path, &self.name)) {
                for image in images.iter() {
                    for e in live(image).filter(|e| e.path == p.path) {
                        e.slot.store(p.inner as *mut ());
                    }
                }
            }
            Ok(SwapTiming {
                copy: copied,
                load: loading.elapsed(),
                ..SwapTiming::default()
            })
        }
    }

    /// `dlopen`s a patch for good and returns its entries.
    fn open(copy: &Path) -> Result<&'static [Entry], String> {
        let (addr, size) = crate::elf::section(copy, "dylib_dev_hot")
            .map_err(|e| format!("cannot read {}: {e}", copy.display()))?
            .ok_or_else(|| {
                format!(
                    "{} has no hot functions (was it built by dylib-dev as a patch?)",
                    copy.display()
                )
            })?;
        let name = CString::new(copy.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("{} has a NUL byte in its path", copy.display()))?;
        // SAFETY: a patch is the host's own crate, rebuilt; it runs no code when opened but its
        // initializers, as the host did at its start.
        let handle = unsafe { dlopen(name.as_ptr(), RTLD_NOW | RTLD_LOCAL) };
        if handle.is_null() {
            return Err(format!("cannot load {}: {}", copy.display(), dl_error()));
        }
        let bias = load_bias(|n| n == name.as_c_str())
            .ok_or_else(|| format!("{} is loaded but not listed by the loader", copy.display()))?;
        // SAFETY: the section holds `Entry` statics only (`#[hot]` puts them there), in an image
        // that is never unloaded.
        Ok(unsafe { entries_at(bias + addr as usize, size as usize) })
    }

    /// The host executable's entries.
    fn host_entries() -> Result<&'static [Entry], String> {
        let exe = Path::new("/proc/self/exe");
        let Some((addr, size)) = crate::elf::section(exe, "dylib_dev_hot")
            .map_err(|e| format!("cannot read {}: {e}", exe.display()))?
        else {
            return Err("the executable has no `dylib_dev_hot` section".into());
        };
        // The main program is the object the loader lists with an empty name.
        let bias = load_bias(|n| n.is_empty()).ok_or("the loader lists no main program")?;
        // SAFETY: as in `open`; the executable is mapped for the process's life.
        Ok(unsafe { entries_at(bias + addr as usize, size as usize) })
    }

    /// # Safety
    /// `[at, at + size)` must hold `Entry` values for the rest of the process.
    unsafe fn entries_at(at: usize, size: usize) -> &'static [Entry] {
        let n = size / std::mem::size_of::<Entry>();
        if n == 0 || !at.is_multiple_of(std::mem::align_of::<Entry>()) {
            return &[];
        }
        unsafe { std::slice::from_raw_parts(at as *const Entry, n) }
    }

    #[repr(C)]
    struct DlPhdrInfo {
        addr: usize,
        name: *const c_char,
    }

    type Callback = unsafe extern "C" fn(*mut DlPhdrInfo, usize, *mut c_void) -> c_int;

    unsafe extern "C" {
        fn dlopen(filename: *const c_char, flag: c_int) -> *mut c_void;
        fn dlerror() -> *mut c_char;
        fn dl_iterate_phdr(callback: Callback, data: *mut c_void) -> c_int;
    }
    const RTLD_NOW: c_int = 2;
    const RTLD_LOCAL: c_int = 0;

    fn dl_error() -> String {
        // SAFETY: dlerror's string lives until the next dl call on this thread.
        unsafe {
            let e = dlerror();
            if e.is_null() {
                "unknown error".into()
            } else {
                CStr::from_ptr(e).to_string_lossy().into_owned()
            }
        }
    }

    /// The load bias of the first loaded object whose name `matches`.
    fn load_bias(matches: impl Fn(&CStr) -> bool) -> Option<usize> {
        struct Search<'a> {
            matches: &'a dyn Fn(&CStr) -> bool,
            found: Option<usize>,
        }
        unsafe extern "C" fn visit(info: *mut DlPhdrInfo, _: usize, data: *mut c_void) -> c_int {
            // SAFETY: glibc passes a valid `dl_phdr_info` and our `data`.
            unsafe {
                let search = &mut *(data as *mut Search);
                let info = &*info;
                let name = if info.name.is_null() {
                    c""
                } else {
                    CStr::from_ptr(info.name)
                };
                if (search.matches)(name) {
                    search.found = Some(info.addr);
                    return 1;
                }
            }
            0
        }
        let mut search = Search {
            matches: &matches,
            found: None,
        };
        // SAFETY: `visit` only reads what glibc hands it.
        unsafe { dl_iterate_phdr(visit, &mut search as *mut Search as *mut c_void) };
        search.found
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    /// Off Linux hot functions run without reloading: each slot is pointed at its body by its
    /// function's first call.
    pub(super) fn start() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    static A: Slot = Slot::new(std::ptr::null_mut());

    fn entry(
        path: &'static str,
        signature: fn() -> &'static str,
        types: &'static [TypeSize],
    ) -> Entry {
        Entry {
            magic: MAGIC,
            path,
            signature,
            types,
            slot: &A,
            inner: std::ptr::null(),
        }
    }

    #[test]
    fn refuses_changed_signatures_layouts_and_missing_functions() {
        static SMALL: [TypeSize; 1] = [TypeSize {
            name: "State",
            size: 8,
            align: 8,
        }];
        static BIG: [TypeSize; 1] = [TypeSize {
            name: "State",
            size: 16,
            align: 8,
        }];
        let host = [
            entry("app::frame", || "fn(&mut app::State)", &SMALL),
            entry("app::scale", || "fn(i32) -> i32", &[]),
            entry("app::gone", || "fn()", &[]),
            entry("other::f", || "fn()", &[]),
        ];
        let patch = [
            entry("app::frame", || "fn(&mut app::State)", &BIG),
            entry("app::scale", || "fn(i64) -> i64", &[]),
        ];
        let host: Vec<&Entry> = host.iter().collect();
        let patch: Vec<&Entry> = patch.iter().collect();
        let got = refusals(&host, &patch, "app");
        assert_eq!(
            got,
            [
                "the layout of `State` (taken or returned by `app::frame`) changed: 8 bytes aligned to 8 before, 16 aligned to 8 now",
                "the signature of `app::scale` changed from `fn(i32) -> i32` to `fn(i64) -> i64`",
                "`app::gone` is not in the new build (removed, renamed or no longer #[hot])",
            ]
        );
        // Another crate's functions are not this patch's business; an equal patch is accepted.
        assert!(refusals(&host[..1], &host[..1], "app").is_empty());
        assert!(refusals(&host[3..], &patch, "app").is_empty());
    }
}
