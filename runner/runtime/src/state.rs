//! State hand-off: host state that survives a restart of the host.
//!
//! A restart (host code changed, a layout change refused a swap, a stuck call) starts a new
//! process, and the old one's memory is gone. With the `state` feature, a host keeps the state it
//! wants to carry over in a `Persistent`:
//!
//! ```ignore
//! use dylib_dev_runtime::state::Persistent;
//!
//! #[derive(Default, serde::Serialize, serde::Deserialize)]
//! #[serde(default)] // fields added since the save start from their default
//! struct State { counter: u64, players: Vec<String> }
//!
//! fn main() {
//!     let state = Persistent::<State>::restore_or_default();
//!     loop {
//!         let mut s = state.lock(); // hold it for one frame (or one command), not forever
//!         logic::step(&mut s);
//!     }
//! }
//! ```
//!
//! - **Save**: before it stops the host for a restart, the runner sends `save`; the host's control
//!   thread takes the lock (waiting for the current frame to end, up to the runner's timeout),
//!   writes the state as JSON to the file named in `DYLIB_DEV_STATE` (in the runner's private
//!   directory: temp file, fsync, rename) and answers with its size.
//! - **Restore**: `Persistent::restore_or` reads that file at start and deserializes it. The file
//!   stays until the next save replaces it: a host that panics right after its start, or a fix
//!   that needs several tries, restores the same state again (the runner's private directory, and
//!   the file with it, goes when the runner exits). If it does not fit (the type changed
//!   incompatibly) the host starts from the default, says why on stderr, and keeps a copy of the
//!   file in `DYLIB_DEV_STATE_REJECTED` (the runner sets `<target>/dylib-dev/rejected-state`;
//!   else next to the state file), naming the copy.
//! - Without the runner (`cargo run`), or when nothing was saved, it is just the default value.
//!
//! Not saved: a host that crashed, or one stuck in a call while holding the lock (the runner
//! says so). Serialization is serde_json, so `#[serde(default)]` and `#[serde(skip)]` shape what
//! survives (skip what cannot be serialized, like GPU handles, and rebuild it).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Saves the registered state within the timeout; returns the bytes written.
type Saver = Box<dyn Fn(Duration) -> Result<u64, String> + Send + Sync>;

/// The one state a process hands off, if it registered one.
static SAVER: Mutex<Option<Saver>> = Mutex::new(None);

/// Answers the runner's `save` (on the control thread).
pub(crate) fn save_for_runner(timeout: Duration) -> crate::protocol::ToRunner {
    use crate::protocol::{Saved, ToRunner, Unsaved};
    let start = Instant::now();
    let saver = SAVER.lock().unwrap_or_else(PoisonError::into_inner);
    match saver.as_ref() {
        None => ToRunner::Unsaved(Unsaved {
            reason: "the host keeps no hand-off state (dylib_dev_runtime::state::Persistent)"
                .into(),
        }),
        Some(save) => match save(timeout) {
            Ok(bytes) => ToRunner::Saved(Saved {
                bytes,
                time: start.elapsed(),
            }),
            Err(reason) => ToRunner::Unsaved(Unsaved { reason }),
        },
    }
}

#[cfg(feature = "state")]
pub use persistent::{Persistent, Restored};

#[cfg(feature = "state")]
mod persistent {
    use super::*;
    use crate::protocol::ENV_STATE;
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, MutexGuard, TryLockError};

    /// Host state that survives a restart by the runner; see the [module docs](crate::state).
    pub struct Persistent<T> {
        value: Arc<Mutex<T>>,
        restored: Restored,
    }

    /// What [`Persistent::restore_or`] found.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Restored {
        /// The previous host's state, this many bytes of JSON.
        Previous(u64),
        /// Nothing was saved (first start, a crash, or no runner): the default.
        Nothing,
        /// A saved state that does not deserialize into the type any more: the default.
        Incompatible(String),
    }

    impl<T: Serialize + DeserializeOwned + Send + 'static> Persistent<T> {
        /// The state the previous host saved, or `T::default()`.
        pub fn restore_or_default() -> Self
        where
            T: Default,
        {
            Self::restore_or(T::default)
        }

        /// The state the previous host saved, or `init()`; registers it to be saved when the
        /// runner asks. One per process: a second one replaces the first for saving.
        pub fn restore_or(init: impl FnOnce() -> T) -> Self {
            let path = std::env::var_os(ENV_STATE)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from);
            let (value, restored) = match path.as_deref().map(restore::<T>) {
                Some(Ok(Some((value, bytes)))) => (value, Restored::Previous(bytes)),
                Some(Ok(None)) | None => (init(), Restored::Nothing),
                Some(Err(reason)) => {
                    let kept = match path.as_deref().map(keep_rejected) {
                        Some(Ok(copy)) => format!("; it is kept in {}", copy.display()),
                        Some(Err(e)) => format!("; it could not be kept ({e})"),
                        None => String::new(),
                    };
                    eprintln!(
                        "dylib-dev: the saved state does not fit `{}` any more ({reason}); starting from the default{kept}",
                        std::any::type_name::<T>()
                    );
                    (init(), Restored::Incompatible(reason))
                }
            };
            if let Restored::Previous(bytes) = restored {
                let age = path
                    .as_deref()
                    .and_then(|p| std::fs::metadata(p).ok()?.modified().ok()?.elapsed().ok())
                    .map(|a| format!(", saved {} s ago", a.as_secs()))
                    .unwrap_or_default();
                eprintln!("dylib-dev: restored the previous host's state ({bytes} bytes{age})");
            }
            let value = Arc::new(Mutex::new(value));
            if let Some(path) = path {
                let weak = Arc::downgrade(&value);
                let saver: Saver = Box::new(move |timeout| match weak.upgrade() {
                    Some(value) => save(&value, &path, timeout),
                    None => Err("the hand-off state was dropped".into()),
                });
                *SAVER.lock().unwrap_or_else(PoisonError::into_inner) = Some(saver);
            }
            Persistent { value, restored }
        }

        /// The state, locked: hold the guard for one frame or command, so a save can happen in
        /// between. A guard kept for the whole program blocks the save (the runner says so).
        pub fn lock(&self) -> MutexGuard<'_, T> {
            // A panic while it was locked leaves it as the panic left it: still the best state.
            self.value.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// What the start found.
        pub fn restored(&self) -> &Restored {
            &self.restored
        }
    }

    /// Reads the saved file: `Ok(None)` when there is none. It is not removed: until a save
    /// replaces it, it is the newest state there is (a host that dies before its first save
    /// must not take it with it).
    fn restore<T: DeserializeOwned>(path: &Path) -> Result<Option<(T, u64)>, String> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        serde_json::from_slice(&bytes)
            .map(|value| Some((value, bytes.len() as u64)))
            .map_err(|e| e.to_string())
    }

    /// Copies a state file that does not deserialize to where it outlives the runner: the
    /// directory in `DYLIB_DEV_STATE_REJECTED`, else next to it. Returns the copy's path.
    fn keep_rejected(path: &Path) -> std::io::Result<PathBuf> {
        let dir = std::env::var_os(crate::protocol::ENV_STATE_REJECTED)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| path.parent().unwrap_or(Path::new(".")).to_path_buf());
        std::fs::create_dir_all(&dir)?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let copy = dir.join(format!("state-{stamp}-{}.json", std::process::id()));
        // A copy, not a move: the default state's first save replaces the original.
        std::fs::copy(path, &copy)?;
        Ok(copy)
    }

    fn save<T: Serialize>(value: &Mutex<T>, path: &Path, timeout: Duration) -> Result<u64, String> {
        let deadline = Instant::now() + timeout;
        let guard = loop {
            match value.try_lock() {
                Ok(guard) => break guard,
                Err(TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(format!(
                        "the state stayed locked for {} ms (a frame that does not end?)",
                        timeout.as_millis()
                    ));
                }
            }
        };
        let json = serde_json::to_vec(&*guard).map_err(|e| format!("cannot serialize: {e}"))?;
        drop(guard);
        write_atomic(path, &json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(json.len() as u64)
    }

    fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".state-")
            .tempfile_in(dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        struct V1 {
            counter: u64,
        }

        #[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        struct V2 {
            counter: u64,
            extra: String,
        }

        #[test]
        fn saved_state_restores_into_a_grown_type_once() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.json");
            let value = Mutex::new(V1 { counter: 41 });
            let bytes = save(&value, &path, Duration::from_secs(1)).unwrap();
            assert_eq!(bytes, std::fs::read(&path).unwrap().len() as u64);

            let (restored, n) = restore::<V2>(&path).unwrap().unwrap();
            assert_eq!(restored.counter, 41);
            assert_eq!(restored.extra, "");
            assert_eq!(n, bytes);
            let (again, _) = restore::<V2>(&path).unwrap().unwrap();
            assert_eq!(again.counter, 41, "kept until a save replaces it");

            std::fs::write(&path, b"{\"counter\": \"not a number\"}").unwrap();
            assert!(restore::<V1>(&path).is_err());
        }

        #[test]
        fn a_locked_state_times_out() {
            let dir = tempfile::tempdir().unwrap();
            let value = Mutex::new(V1::default());
            let _held = value.lock().unwrap();
            let err = save(&value, &dir.path().join("s"), Duration::from_millis(20)).unwrap_err();
            assert!(err.contains("stayed locked"), "{err}");
        }
    }
}
