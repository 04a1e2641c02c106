//! Loading one version of a library: the copy in the private directory, its hash, `dlopen`,
//! the resolved [`Symbols`], the layout guard and the host's validation hook. Nothing here runs
//! a version or decides when it runs (that is the engine's swap).

use crate::boundary::Monitor;
use crate::builder::Validator;
use crate::private_dir::PrivateDir;
use crate::symbols::{SymbolSource, Symbols};
use crate::{Error, LAYOUT_SYMBOL, Layout, hash};
use libloading::Library;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What every version of one library is loaded with, fixed when it opens.
pub(crate) struct Loader<S> {
    /// [`Builder::unload_old_versions`](crate::Builder::unload_old_versions).
    unload: bool,
    validate: Option<Validator<S>>,
    next_copy: AtomicU64,
    /// The running version's exported layout, readable without the version lock.
    running_layout: Mutex<Option<Layout>>,
    // Last: the directory goes after every library in it is closed.
    copies: PrivateDir,
}

impl<S: Symbols> Loader<S> {
    /// Loads versions into `copies`, closing them once swapped out only if `unload`.
    pub(crate) fn new(copies: PrivateDir, unload: bool, validate: Option<Validator<S>>) -> Self {
        Loader {
            unload,
            validate,
            next_copy: AtomicU64::new(0),
            running_layout: Mutex::new(None),
            copies,
        }
    }

    /// The private directory holding the copies.
    pub(crate) fn copies_dir(&self) -> &Path {
        self.copies.path()
    }

    /// Notes the layout of the version that runs now, for the next version's layout guard.
    pub(crate) fn set_running_layout(&self, layout: Option<Layout>) {
        *self
            .running_layout
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = layout;
    }

    /// Copies, verifies, loads, resolves and validates `artifact` as `version`.
    pub(crate) fn prepare(
        &self,
        monitor: &Arc<Monitor>,
        artifact: &Path,
        expected_hash: Option<&str>,
        version: u64,
    ) -> Result<Prepared<S>, Error> {
        let start = Instant::now();
        let file_name = artifact
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{}.so", monitor.lib));
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
            monitor,
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

/// One loaded version: its functions, the library they point into, and its copy on disk.
///
/// A version that ran is never closed unless the host opted in
/// ([`Builder::unload_old_versions`](crate::Builder::unload_old_versions)) and the library may be
/// (`stay_mapped` is false); one that never ran (refused, superseded) is.
pub(crate) struct Loaded<S> {
    // Declared first: nothing below may go while the pointers can still be reached.
    pub(crate) symbols: S,
    pub(crate) version: u64,
    pub(crate) hash: String,
    /// The layout the library exports (`layout!`), if it does.
    pub(crate) layout: Option<Layout>,
    /// Must never be closed once it ran, even with unloading on (see [`crate::elf`]).
    pub(crate) stay_mapped: bool,
    /// The host opted in to unloading old versions.
    pub(crate) unload: bool,
    /// The copy's number: its file name starts with `<n>-`.
    pub(crate) copy_no: u64,
    /// It became the running version (a refused or superseded one never ran any code).
    pub(crate) ran: bool,
    pub(crate) lib: Option<Library>,
    /// Held for its `Drop`, which deletes the file.
    pub(crate) _copy: CopyFile,
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
pub(crate) struct CopyFile(pub(crate) PathBuf);

impl Drop for CopyFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A version that is loaded and resolved, waiting to be swapped in.
pub(crate) struct Prepared<S> {
    pub(crate) loaded: Loaded<S>,
    /// Time to copy and hash the artifact.
    pub(crate) copy: Duration,
    /// Time to `dlopen`, resolve and check it.
    pub(crate) load: Duration,
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
