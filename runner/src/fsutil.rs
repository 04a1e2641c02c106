//! File writes that are all-or-nothing: a temp file in the same directory, fsync, rename.
//!
//! Also the test hook for interrupted runs: `DYLIB_DEV_TEST_CRASH_AFTER=<step>` makes the process
//! `SIGKILL` itself right after the named step (as a `kill -9` at that moment would), and
//! `DYLIB_DEV_TEST_CRASH_AFTER=?` prints every step it passes on stderr (`crash point: <step>`).
//! `DYLIB_DEV_TEST_PAUSE_AT=<step>=<file>` holds the process at a step instead ([`PAUSE_VAR`]).
//! Compiled into every build: it costs two environment lookups per step.
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file or directory that could not be read, written or removed: `failed to {action} `{path}``.
#[derive(Debug, thiserror::Error)]
#[error("failed to {action} `{}`", path.display())]
pub struct FileError {
    /// What was being done: `read`, `write`, `remove`, `create`, ...
    pub action: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// A [`FileError`] for `action` on `path`, for a `map_err`.
pub fn file_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FileError {
    let path = path.to_path_buf();
    move |source| FileError {
        action,
        path,
        source,
    }
}

/// The environment variable of the crash hook.
pub const CRASH_VAR: &str = "DYLIB_DEV_TEST_CRASH_AFTER";

/// Prefix and suffix of the temp files of [`write_atomic`].
pub(crate) const TEMP_PREFIX: &str = ".dylib-dev-";
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// The environment variable of the pause hook: `<step>=<file>` makes the process create `<file>`
/// at the named step and wait there until the file is gone (at most two minutes), so a test can
/// start a second run while the first one is in the middle of its writes.
pub const PAUSE_VAR: &str = "DYLIB_DEV_TEST_PAUSE_AT";

/// A named step of a multi-file operation; see the module docs.
pub fn crash_point(step: &str) {
    if let Some(spec) = std::env::var_os(PAUSE_VAR)
        && let Some((at, file)) = spec.to_str().and_then(|s| s.split_once('='))
        && at == step
    {
        let file = Path::new(file);
        let _ = std::fs::write(file, std::process::id().to_string());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while file.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    let Some(wanted) = std::env::var_os(CRASH_VAR) else {
        return;
    };
    if wanted == "?" {
        // The one print of the engine, on purpose (`.ci/layers` lists it): a test hook that only
        // `DYLIB_DEV_TEST_CRASH_AFTER=?` turns on, read by tests, never output for the user.
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

/// A file dylib-dev would have to change has no write permission.
///
/// The mode bits are checked explicitly: root (as in containers and CI) may write any file, but a
/// `0444` file says its owner does not want it changed behind their back.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{path}` is read-only (mode {mode:04o}); `dylib-dev {command}` would have to change it, so it changed nothing\n  help: make it writable (`chmod u+w {path}`) and run `dylib-dev {command}` again"
)]
pub struct ReadOnly {
    /// The file, as the command found it (a symlink's own path).
    pub path: PathBuf,
    /// Its permission bits (of the symlink's target).
    pub mode: u32,
    /// The subcommand, for the message.
    pub command: &'static str,
}

/// The permission bits of the existing file at `path` (through symlinks) when it has no write bit
/// at all; `None` for a writable or missing file.
pub fn read_only_mode(path: &Path) -> Option<u32> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        (mode & 0o222 == 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        meta.permissions().readonly().then_some(0o444)
    }
}

/// Refuses, before anything is written, when any of `paths` exists and is read-only.
pub fn check_writable<'a>(
    paths: impl IntoIterator<Item = &'a Path>,
    command: &'static str,
) -> Result<(), ReadOnly> {
    for path in paths {
        if let Some(mode) = read_only_mode(path) {
            return Err(ReadOnly {
                path: path.to_path_buf(),
                mode,
                command,
            });
        }
    }
    Ok(())
}

/// The file a write to `path` replaces: `path`, or the final target when `path` is a symlink.
///
/// Renaming a temp file over the link itself would turn the link into a regular file (and the file
/// it pointed to would silently stop getting the edits); writing to the target keeps the link.
fn write_target(path: &Path) -> std::io::Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path),
        _ => Ok(path.to_path_buf()),
    }
}

/// The directory where [`write_atomic`] puts its temp file for `path` (that of a symlink's target),
/// for [`remove_stale_temps`] after an interrupted run.
pub fn temp_dir_of(path: &Path) -> Option<PathBuf> {
    write_target(path)
        .ok()?
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

/// Writes `contents` to `path` atomically, keeping the existing file's permissions.
///
/// A crash leaves either the old file or the new one, never a torn mix. A symlink stays a link:
/// its target is replaced (the temp file goes next to the target, so the rename stays on one file
/// system). A read-only file is refused with [`std::io::ErrorKind::PermissionDenied`]; commands
/// check that before their first write ([`check_writable`]), this is the last line of defence.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomic_step(path, contents, None)
}

/// [`write_atomic`], with a crash point `tmp:<step>` between the temp file and the rename.
pub fn write_atomic_step(path: &Path, contents: &[u8], step: Option<&str>) -> std::io::Result<()> {
    let target = write_target(path)?;
    let path = target.as_path();
    if let Some(mode) = read_only_mode(path) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "`{}` is read-only (mode {mode:04o}); dylib-dev does not replace read-only files",
                path.display()
            ),
        ));
    }
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

/// Whether `dir` is a directory with nothing in it (`false` if it cannot be read).
pub fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
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
    fn writes_through_a_symlink_and_refuses_a_read_only_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let target = dir.path().join("real/f.txt");
        std::fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink("real/f.txt", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("real/f.txt"));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temp file left"
        );

        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o444)).unwrap();
        let err = write_atomic(&link, b"newer").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let err = check_writable([link.as_path()], "wrap").unwrap_err();
        assert_eq!(err.mode, 0o444);
        assert!(err.to_string().contains("chmod u+w"), "{err}");
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
