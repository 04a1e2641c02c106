//! Writing a [`Plan`]: journal first, generated crate staged and renamed into place, user files
//! one atomic write each, everything rolled back if a write fails.
use super::plan::{ApplyError, FileWrite, Plan};
use crate::fsutil;
use crate::journal::RecordError;
use std::path::Path;

/// One write of an apply that failed (before the roll-back).
#[derive(Debug, thiserror::Error)]
enum WriteError {
    /// A file or directory could not be written.
    #[error(transparent)]
    Io(#[from] crate::fsutil::FileError),
    /// The record could not be written.
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// The error and its causes on one line, `: `-separated (as the note after it reads best).
fn one_line(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl Plan {
    /// Whether running it would change any byte.
    pub fn is_noop(&self) -> bool {
        self.generated
            .iter()
            .chain(&self.touched)
            .all(|w| w.before.as_deref() == Some(w.after.as_str()))
    }

    /// The existing files this plan changes.
    pub fn changed_files(&self) -> impl Iterator<Item = &Path> {
        self.generated
            .iter()
            .chain(&self.touched)
            .filter(|w| w.before.is_some() && w.before.as_deref() != Some(w.after.as_str()))
            .map(|w| w.path.as_path())
    }

    /// Writes everything: the record first (a journal), then the generated crate, then user files.
    ///
    /// A first wrap builds the whole generated crate, record included, in a staging directory
    /// (`<workspace>/.dylib-dev-*.tmp`) and renames it into place: a glob of workspace members
    /// never sees the directory without its `Cargo.toml`. A crash (or `kill -9`) at any point
    /// leaves every file whole: the project builds, and `unwrap` (or another `wrap`) finishes the
    /// job. A write that fails (read-only or full disk) rolls back what this run wrote; if even
    /// that fails, the record still lets `unwrap` restore the project.
    pub fn apply(&self) -> Result<(), ApplyError> {
        fsutil::check_writable(self.changed_files(), "wrap")?;
        let deps_dir = &self.layout.deps_dir;
        let src_dir = deps_dir.join("src");
        for dir in [
            self.layout.workspace_root.clone(),
            deps_dir.clone(),
            src_dir.clone(),
        ]
        .into_iter()
        .chain(
            self.touched
                .iter()
                .filter_map(|w| fsutil::temp_dir_of(&w.path)),
        ) {
            fsutil::remove_stale_temps(&dir);
        }
        let fresh = !deps_dir.exists() || fsutil::is_empty_dir(deps_dir);
        let record_path = deps_dir.join(crate::journal::RECORD_FILE);
        let previous_record = std::fs::read(&record_path).ok();
        let mut done: Vec<&FileWrite> = Vec::new();
        let result = (|| -> Result<(), WriteError> {
            let mut generated: Vec<&FileWrite> = self.generated.iter().collect();
            if fresh {
                self.stage_generated_crate()?;
                generated.clear();
            } else {
                self.record.save(deps_dir)?;
                fsutil::crash_point("record");
            }
            for write in generated.into_iter().chain(&self.touched) {
                if write.before.as_deref() == Some(write.after.as_str()) {
                    continue;
                }
                let rel = self.layout.rel(&write.path).display().to_string();
                fsutil::write_atomic_step(&write.path, write.after.as_bytes(), Some(&rel))
                    .map_err(crate::fsutil::file_error("write", &write.path))?;
                done.push(write);
                fsutil::crash_point(&format!("write:{rel}"));
            }
            Ok(())
        })();
        let Err(err) = result else {
            return Ok(());
        };
        let undo = self.roll_back(&done, fresh, previous_record.as_deref(), &record_path);
        Err(match undo {
            Ok(()) => ApplyError::RolledBack {
                error: one_line(&err),
            },
            Err(why) => ApplyError::NotRolledBack {
                error: one_line(&err),
                why,
                record: record_path,
            },
        })
    }

    /// Writes the generated crate and the record into a staging directory and renames it to the
    /// crate's place (which is missing or empty).
    fn stage_generated_crate(&self) -> Result<(), WriteError> {
        let deps_dir = &self.layout.deps_dir;
        let root = &self.layout.workspace_root;
        let staging = tempfile::Builder::new()
            .prefix(fsutil::TEMP_PREFIX)
            .suffix(fsutil::TEMP_SUFFIX)
            .tempdir_in(root)
            .map_err(crate::fsutil::file_error(
                "create a staging directory in",
                root,
            ))?;
        let in_staging = |path: &Path| {
            staging
                .path()
                .join(path.strip_prefix(deps_dir).unwrap_or(path))
        };
        std::fs::create_dir_all(staging.path().join("src"))
            .map_err(crate::fsutil::file_error("write", staging.path()))?;
        self.record.save(staging.path())?;
        for write in &self.generated {
            let path = in_staging(&write.path);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(crate::fsutil::file_error("create", dir))?;
            }
            fsutil::write_atomic(&path, write.after.as_bytes())
                .map_err(crate::fsutil::file_error("write", &path))?;
        }
        fsutil::crash_point("staged");
        // An empty directory in the way (`rename` replaces only an empty directory anyway).
        let _ = std::fs::remove_dir(deps_dir.join("src"));
        let _ = std::fs::remove_dir(deps_dir);
        if let Some(parent) = deps_dir.parent() {
            std::fs::create_dir_all(parent).map_err(crate::fsutil::file_error("create", parent))?;
        }
        let staged = staging.keep();
        if let Err(e) = std::fs::rename(&staged, deps_dir) {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(crate::fsutil::file_error("create", deps_dir)(e).into());
        }
        if let Ok(dir) = std::fs::File::open(root) {
            let _ = dir.sync_all();
        }
        fsutil::crash_point("record");
        Ok(())
    }

    /// Undoes the writes of a failed [`Plan::apply`], newest first.
    fn roll_back(
        &self,
        done: &[&FileWrite],
        fresh: bool,
        previous_record: Option<&[u8]>,
        record_path: &Path,
    ) -> Result<(), String> {
        let mut failed = Vec::new();
        for write in done.iter().rev() {
            let undone = match &write.before {
                Some(before) => fsutil::write_atomic(&write.path, before.as_bytes()),
                None => std::fs::remove_file(&write.path),
            };
            if let Err(e) = undone {
                failed.push(format!("`{}`: {e}", write.path.display()));
            }
        }
        let deps_dir = &self.layout.deps_dir;
        if fresh {
            // All of it is this run's.
            if deps_dir.exists()
                && let Err(e) = std::fs::remove_dir_all(deps_dir)
            {
                failed.push(format!("`{}`: {e}", deps_dir.display()));
            }
        } else if let Some(bytes) = previous_record
            && let Err(e) = fsutil::write_atomic(record_path, bytes)
        {
            failed.push(format!("`{}`: {e}", record_path.display()));
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps_crate::Layout;
    use crate::journal::Record;
    use std::path::PathBuf;

    /// A plan that generates one file and modifies `a.txt` then `b`, where `b` is a directory: the
    /// second user file cannot be written.
    fn failing_plan(root: &Path) -> Plan {
        std::fs::write(root.join("a.txt"), "A").unwrap();
        std::fs::create_dir(root.join("b")).unwrap();
        std::fs::write(root.join("b/inside"), "x").unwrap();
        let deps_dir = root.join("app-deps");
        let write = |path: PathBuf, before: Option<&str>, after: &str| FileWrite {
            path,
            before: before.map(str::to_string),
            after: after.to_string(),
        };
        Plan {
            layout: Layout {
                package: "app".into(),
                deps_crate: "app-deps".into(),
                deps_lib: "app_deps".into(),
                deps_dir: deps_dir.clone(),
                workspace_root: root.to_path_buf(),
                package_dir: root.to_path_buf(),
            },
            wrapped: Vec::new(),
            dropped: Vec::new(),
            record: Record::new("app", "app-deps", true),
            generated: vec![write(deps_dir.join("Cargo.toml"), None, "[package]")],
            touched: vec![
                write(root.join("a.txt"), Some("A"), "A2"),
                write(root.join("b"), Some("B"), "B2"),
            ],
        }
    }

    #[test]
    fn a_failed_write_rolls_back_every_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let plan = failing_plan(dir.path());
        let err = plan.apply().unwrap_err().to_string();
        assert!(
            err.contains("failed to write `") && err.contains("nothing was changed"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
            "A"
        );
        assert!(
            !dir.path().join("app-deps").exists(),
            "the generated crate is gone"
        );
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["a.txt", "b"], "no staging or temp files left");
    }
}
