//! File writes that are all-or-nothing: a temp file in the same directory, fsync, rename.
//!
//! Also the test hook for interrupted runs: `DYLIB_DEV_TEST_CRASH_AFTER=<step>` makes the process
//! `SIGKILL` itself right after the named step (as a `kill -9` at that moment would), and
//! `DYLIB_DEV_TEST_CRASH_AFTER=?` prints every step it passes on stderr (`crash point: <step>`).
//! Compiled into every build: it costs one environment lookup per step.
use std::io::Write;
use std::path::Path;

/// The environment variable of the crash hook.
pub const CRASH_VAR: &str = "DYLIB_DEV_TEST_CRASH_AFTER";

/// Prefix and suffix of the temp files of [`write_atomic`].
pub(crate) const TEMP_PREFIX: &str = ".dylib-dev-";
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// A named step of a multi-file operation; see the module docs.
pub fn crash_point(step: &str) {
    let Some(wanted) = std::env::var_os(CRASH_VAR) else {
        return;
    };
    if wanted == "?" {
        eprintln!("crash point: {step}");
    } else if wanted == step {
        #[cfg(unix)]
        // SAFETY: signalling ourselves; SIGKILL cannot be caught, so nothing runs after it.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        std::process::abort();
    }
}

/// Removes what an interrupted run left in `dir`: temp files of [`write_atomic`] and staging
/// directories of `wrap` (both named `.dylib-dev-*.tmp`).
pub fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)) {
            continue;
        }
        let _ = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(entry.path()),
            Ok(_) => std::fs::remove_file(entry.path()),
            Err(e) => Err(e),
        };
    }
}

/// Writes `contents` to `path` atomically, keeping the existing file's permissions.
///
/// A crash leaves either the old file or the new one, never a torn mix.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomic_step(path, contents, None)
}

/// [`write_atomic`], with a crash point `tmp:<step>` between the temp file and the rename.
pub fn write_atomic_step(path: &Path, contents: &[u8], step: Option<&str>) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    if let Some(step) = step {
        crash_point(&format!("tmp:{step}"));
    }
    if let Ok(meta) = std::fs::metadata(path) {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is durable only once the directory entry is on disk.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates the file `path` (and its directory), which must not exist yet, with `contents`, and
/// flushes it to disk. Unlike [`write_atomic`] it gets the usual permissions (`0o666` less the
/// umask): it is a new file of the user's project, not a replacement.
pub fn write_new(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_contents_and_keeps_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }

    #[test]
    fn stale_temps_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dylib-dev-abc.tmp"), "x").unwrap();
        std::fs::write(dir.path().join(".dylib-dev-keep"), "x").unwrap();
        std::fs::write(dir.path().join("a.tmp"), "x").unwrap();
        remove_stale_temps(dir.path());
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".dylib-dev-keep", "a.tmp"]);
    }
}
