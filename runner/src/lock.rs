//! One project-editing run at a time per workspace: `wrap`, `unwrap`, `init` and `deinit` (and
//! `new`, through its `wrap`) hold an exclusive lock on the workspace from before they read the
//! manifests until their last write.
//!
//! Without it, two runs (two terminals, a script over the members) each plan from the manifests
//! as they were: the last writer's `[workspace] members` drops the other's crate, and each run's
//! sweep of stale temp files deletes the other's staging directory.
//!
//! The lock is `flock` on the workspace root *directory* itself, not a lock file in it:
//! - it is per workspace by construction: every spelling of the path (symlinks, `--manifest-path`,
//!   a member's directory, any `CARGO_TARGET_DIR`) reaches the same directory;
//! - nothing is written into the user's project, so there is no lock file for `unwrap`'s byte-exact
//!   restore to leave behind, for git to ignore, or for a read-only project to fail on;
//! - the kernel releases it when the process ends, however it ends (`kill -9` leaves no stale lock).
//!
//! A second run waits, as cargo waits for its own locks, and says once that it does. Within one
//! process the lock is re-entrant: `init` runs `wrap` and `deinit` runs `unwrap` while holding it.
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::ThreadId;

/// A lock this process holds.
struct Held {
    root: PathBuf,
    /// Re-entry is for the thread that took it; another thread waits like another process would.
    thread: ThreadId,
    /// Closing it releases the lock.
    _handle: File,
    /// Guards sharing it.
    count: usize,
}

/// The locks this process holds.
static HELD: Mutex<Vec<Held>> = Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<Held>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// The workspace could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// What stands for the workspace could not be opened.
    #[error("failed to open {what}`{path}`{to_lock}")]
    Open {
        /// `the lock file ` or nothing (the directory itself).
        what: &'static str,
        path: PathBuf,
        /// ` to lock it` for the directory.
        to_lock: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the lock failed.
    #[error("failed to lock the workspace `{root}`")]
    Lock {
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the caller may want to tell the user while taking the lock (the engine prints nothing).
#[derive(Debug)]
pub enum LockNotice<'a> {
    /// Another run holds the workspace `root`: this one waits for it.
    Blocking { root: &'a Path },
    /// The file system cannot lock (some network mounts): going on without the lock, as before
    /// locks existed.
    Unlockable {
        root: &'a Path,
        error: &'a std::io::Error,
    },
}

/// Held while a command changes a workspace; dropping the last guard releases the lock.
#[must_use = "the workspace is unlocked as soon as the guard is dropped"]
#[derive(Debug)]
pub struct WorkspaceLock {
    root: PathBuf,
    /// Not `Send`: the re-entry count belongs to the thread that took the lock.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl WorkspaceLock {
    fn new(root: PathBuf) -> WorkspaceLock {
        WorkspaceLock {
            root,
            _not_send: std::marker::PhantomData,
        }
    }

    /// Locks the workspace whose root directory is `root`, waiting while another dylib-dev run
    /// holds it; `notice` hears of the wait (before it) and of a file system without locks.
    pub fn acquire(
        root: &Path,
        notice: &mut dyn FnMut(LockNotice<'_>),
    ) -> Result<WorkspaceLock, LockError> {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let thread = std::thread::current().id();
        if let Some(entry) = held()
            .iter_mut()
            .find(|h| h.root == root && h.thread == thread)
        {
            entry.count += 1;
            return Ok(WorkspaceLock::new(root));
        }
        // Not under the mutex: waiting here must not hold up other threads' locks.
        let handle = open_handle(&root)?;
        match handle.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                notice(LockNotice::Blocking { root: &root });
                handle.lock().map_err(|source| LockError::Lock {
                    root: root.clone(),
                    source,
                })?;
            }
            // A file system without locks (some network mounts): carry on, as before locks.
            Err(TryLockError::Error(e)) => notice(LockNotice::Unlockable {
                root: &root,
                error: &e,
            }),
        }
        held().push(Held {
            root: root.clone(),
            thread,
            _handle: handle,
            count: 1,
        });
        Ok(WorkspaceLock::new(root))
    }
}

impl Drop for WorkspaceLock {
    fn drop(&mut self) {
        let thread = std::thread::current().id();
        let mut held = held();
        if let Some(i) = held
            .iter()
            .position(|h| h.root == self.root && h.thread == thread)
        {
            held[i].count -= 1;
            if held[i].count == 0 {
                // Closing the handle releases the lock.
                held.remove(i);
            }
        }
    }
}

/// What gets locked for `root`: the directory itself (see the module docs).
#[cfg(unix)]
fn open_handle(root: &Path) -> Result<File, LockError> {
    File::open(root).map_err(|source| LockError::Open {
        what: "",
        path: root.to_path_buf(),
        to_lock: " to lock it",
        source,
    })
}

/// What gets locked for `root`: Windows cannot open a directory as a `File`, so a lock file in the
/// temp directory named after the root stands for it (untested: CI runs on Linux only).
#[cfg(not(unix))]
fn open_handle(root: &Path) -> Result<File, LockError> {
    let name: String = root
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let tail = &name[name.len().saturating_sub(180)..];
    let path = std::env::temp_dir().join(format!("dylib-dev-{tail}.lock"));
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| LockError::Open {
            what: "the lock file ",
            path: path.clone(),
            to_lock: "",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reentrant_in_one_process_and_exclusive_against_another_handle() {
        let dir = tempfile::tempdir().unwrap();
        let outer = WorkspaceLock::acquire(dir.path(), &mut |_| {}).unwrap();
        let inner = WorkspaceLock::acquire(dir.path(), &mut |_| {}).unwrap();
        // Another open file description (as another process has) cannot take it.
        let other = File::open(dir.path()).unwrap();
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        drop(inner);
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        // Another thread of this process waits too, rather than re-entering.
        let path = dir.path().to_path_buf();
        let from_thread = std::thread::spawn(move || {
            let guard = WorkspaceLock::acquire(&path, &mut |_| {}).unwrap();
            drop(guard);
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            !from_thread.is_finished(),
            "another thread re-entered the lock"
        );
        drop(outer);
        from_thread.join().unwrap();
        other.try_lock().expect("released with the last guard");
    }
}
