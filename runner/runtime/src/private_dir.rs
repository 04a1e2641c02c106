//! Private directories (mode 0700, owned by the user) for library copies and the control socket,
//! and removal of the ones a killed process left behind.
//!
//! A directory is *live* while the process that made it holds an exclusive lock on its `lock`
//! file; the kernel drops the lock when the process dies, however it dies. So a sibling whose lock
//! can be taken is stale and is removed when the next process creates its own directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Name of the lock file inside every private directory.
const LOCK_FILE: &str = "lock";

/// A lock file younger than this may belong to a process that has created it but not locked it
/// yet, so it is never judged stale.
const STARTUP_GRACE: Duration = Duration::from_secs(5);

/// Where private directories go by default: `$XDG_RUNTIME_DIR` (per user, 0700, emptied at logout)
/// when set, else the system temp directory (random names, 0700, so nothing predictable there).
pub fn default_base() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir())
        .unwrap_or_else(std::env::temp_dir)
}

/// A directory only the current user can enter, removed (with its contents) on drop.
#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
    /// Held for the directory's whole life: its lock is what marks the directory live.
    _lock: File,
    stale_removed: usize,
}

impl PrivateDir {
    /// Creates `<base>/<prefix><random>` with mode 0700 and removes stale `<prefix>*` siblings.
    pub fn create(base: &Path, prefix: &str) -> io::Result<PrivateDir> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(prefix).rand_bytes(10);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o700));
        }
        // `keep`: the directory's life is tied to `PrivateDir`, which also owns the lock.
        let path = builder.tempdir_in(base)?.keep();
        let made = (|| {
            #[cfg(unix)]
            {
                // mkdir applied the umask; make the mode exact whatever the umask is.
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o700))?;
            }
            let mut lock = OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(path.join(LOCK_FILE))?;
            lock.try_lock().map_err(io::Error::from)?;
            // The pid is for people looking at the directory; liveness is the lock alone.
            writeln!(lock, "{}", std::process::id())?;
            Ok(lock)
        })();
        let lock = match made {
            Ok(lock) => lock,
            Err(e) => {
                let _ = fs::remove_dir_all(&path);
                return Err(e);
            }
        };
        let stale_removed = remove_stale(base, prefix, &path);
        Ok(PrivateDir {
            path,
            _lock: lock,
            stale_removed,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many stale sibling directories [`PrivateDir::create`] removed.
    pub fn stale_removed(&self) -> usize {
        self.stale_removed
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Removes `<base>/<prefix>*` directories of ours (other than `own`) whose lock nobody holds.
fn remove_stale(base: &Path, prefix: &str, own: &Path) -> usize {
    let Ok(entries) = fs::read_dir(base) else {
        return 0;
    };
    let Ok(own_meta) = fs::symlink_metadata(own) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .filter(|e| e.path() != own)
        .filter(|e| is_stale(&e.path(), &own_meta))
        .filter(|e| fs::remove_dir_all(e.path()).is_ok())
        .count()
}

fn is_stale(dir: &Path, own_meta: &fs::Metadata) -> bool {
    // symlink_metadata: a symlink planted under our prefix is never followed, let alone removed.
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return false;
    };
    if !meta.is_dir() || !same_owner(&meta, own_meta) {
        return false;
    }
    let lock_path = dir.join(LOCK_FILE);
    // No lock file: another process may be creating this directory right now; leave it.
    let Ok(lock) = OpenOptions::new().write(true).open(&lock_path) else {
        return false;
    };
    let young = lock
        .metadata()
        .and_then(|m| m.modified())
        .map(|t| t.elapsed().unwrap_or_default() < STARTUP_GRACE)
        .unwrap_or(true);
    // The lock is released when `lock` is dropped; holding it through the removal is not needed
    // since a dead process cannot take it back.
    !young && lock.try_lock().is_ok()
}

#[cfg(unix)]
fn same_owner(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.uid() == b.uid()
}

// Untested: off Unix every directory we can open is treated as ours.
#[cfg(not(unix))]
fn same_owner(_: &fs::Metadata, _: &fs::Metadata) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn private_dir_is_0700_and_removed_on_drop() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create(base.path(), "t-").unwrap();
        let mode = fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o700);
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn live_dirs_are_kept_and_stale_ones_removed() {
        let base = tempfile::tempdir().unwrap();
        let live = PrivateDir::create(base.path(), "t-").unwrap();

        // What a killed process leaves: a directory whose lock file is old and not locked.
        let stale = base.path().join("t-stale");
        fs::create_dir(&stale).unwrap();
        let lock = File::create(stale.join(LOCK_FILE)).unwrap();
        lock.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
            .unwrap();
        drop(lock);
        // Being created right now: no lock file yet.
        let starting = base.path().join("t-starting");
        fs::create_dir(&starting).unwrap();
        // Another prefix is none of our business.
        let other = base.path().join("x-stale");
        fs::create_dir(&other).unwrap();

        let second = PrivateDir::create(base.path(), "t-").unwrap();
        assert_eq!(second.stale_removed(), 1);
        assert!(!stale.exists());
        assert!(live.path().exists() && starting.exists() && other.exists());
    }
}
