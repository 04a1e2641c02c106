//! `dylib-dev unwrap`: restore every file `wrap` touched, byte for byte, and remove what it generated.
//!
//! A file nobody edited since `wrap` gets its original bytes back from the record. A file the user
//! edited since keeps their edit: only dylib-dev's own additions are taken out.
use crate::deps_crate::{FEATURE, Layout};
use crate::journal::{self, RECORD_FILE, Record, RecordError, Restore, Restored};
use crate::manifest::Manifest;
use crate::project::Project;
use crate::report::Line;
use crate::{fsutil, source_edit};
use std::path::PathBuf;
use toml_edit::{DocumentMut, Item};

/// `unwrap` found nothing to undo.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{package}` is not wrapped: there is no `{record}`\n  help: nothing to undo; `dylib-dev wrap <crate>` wraps dependencies"
)]
pub struct NotWrapped {
    package: String,
    record: String,
    /// What went wrong tidying up what an interrupted run left (shown before the error).
    pub warnings: Vec<String>,
}

/// Why an `unwrap` stopped.
#[derive(Debug, thiserror::Error)]
pub enum UnwrapError {
    /// See [`NotWrapped`].
    #[error(transparent)]
    NotWrapped(#[from] NotWrapped),
    /// The record, or a file it names, could not be read, restored or removed.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A file to restore is read-only: nothing was changed.
    #[error(transparent)]
    ReadOnly(#[from] fsutil::ReadOnly),
}

/// What an `unwrap` did.
#[derive(Debug)]
pub struct Undone {
    /// Names and places of the generated crate (gone now).
    pub layout: Layout,
    /// Files back to their bytes before `wrap`, relative to the workspace root.
    pub restored: Vec<String>,
    /// Files edited since `wrap`: only dylib-dev's lines were taken out.
    pub kept: Vec<String>,
    /// `wrap` created `Cargo.lock`, but it changed since, so it stays.
    pub kept_lock: bool,
    /// Generated files (or directories) edited or added since, left in place.
    pub leftovers: Vec<String>,
    /// Problems with `Cargo.lock` worth a warning even with `--quiet`.
    pub warnings: Vec<String>,
}

impl Undone {
    /// The report of what happened (the warnings excepted), as `unwrap` and `deinit` show it.
    pub fn lines(&self) -> Vec<Line> {
        let layout = &self.layout;
        let mut lines = vec![Line::Status(
            "Unwrapped",
            format!(
                "`{}`: removed `{}`",
                layout.package,
                layout.rel(&layout.deps_dir).display()
            ),
        )];
        if !self.restored.is_empty() {
            lines.push(Line::Status("Restored", self.restored.join(", ")));
        }
        for file in &self.kept {
            lines.push(Line::Warn(format!(
                "`{file}` was edited after `wrap`: kept your edits and removed only dylib-dev's lines"
            )));
        }
        if self.kept_lock {
            lines.push(Line::Note(format!(
                "kept `Cargo.lock`: `wrap` created it, but it changed since (`cargo add`, `cargo update`, ...); only `{}` was taken out of it",
                layout.deps_crate
            )));
        }
        for file in &self.leftovers {
            lines.push(Line::Warn(format!(
                "`{file}` was edited or added after `wrap`: left it in place"
            )));
        }
        lines
    }
}

/// Undoes the `wrap` of the project's package (the caller holds the workspace lock).
pub fn unwrap(project: &Project) -> Result<Undone, UnwrapError> {
    let layout = Layout::of(project);
    let mut warnings = Vec::new();
    let Some(record) = Record::load(&layout.deps_dir)? else {
        // What an interrupted `wrap` or `unwrap` can leave: staging directories, empty
        // directories, a lock file that still lists the generated crate.
        fsutil::remove_stale_temps(&layout.workspace_root);
        let _ = std::fs::remove_dir(layout.deps_dir.join("src"));
        let _ = std::fs::remove_dir(&layout.deps_dir);
        if !layout.deps_dir.exists() {
            restore_lockfile(&layout, None, &mut warnings);
        }
        return Err(NotWrapped {
            package: layout.package.clone(),
            record: layout
                .rel(&layout.deps_dir.join(RECORD_FILE))
                .display()
                .to_string(),
            warnings,
        }
        .into());
    };
    let to_write = journal::needing_restore(&layout.workspace_root, &record.touched);
    fsutil::check_writable(to_write.iter().map(PathBuf::as_path), "unwrap")?;
    // The record goes last (with the generated files): a run interrupted before can be repeated.
    let mut restored = Vec::new();
    let mut kept = Vec::new();
    for touched in &record.touched {
        let path = layout.workspace_root.join(&touched.path);
        if let Some(dir) = fsutil::temp_dir_of(&path) {
            fsutil::remove_stale_temps(&dir);
        }
        let rel = layout.rel(&path).display().to_string();
        let how = Restore {
            step: Some(&rel),
            unreadable_is_error: true,
        };
        let done = journal::restore(&path, touched, &how, |current| {
            Ok(if path.extension().is_some_and(|e| e == "toml") {
                let mut manifest = Manifest::parse(&path, current.to_string())?;
                remove_manifest_additions(&mut manifest.doc, &layout, &touched.original);
                manifest.render()
            } else {
                source_edit::remove(current, &layout.deps_lib)
                    .unwrap_or_else(|| current.to_string())
            })
        })?;
        match done {
            Restored::Unchanged => {}
            Restored::Restored => restored.push(touched.path.display().to_string()),
            Restored::KeptUserEdits => kept.push(touched.path.display().to_string()),
        }
        fsutil::crash_point(&format!("restore:{}", touched.path.display()));
    }
    fsutil::remove_stale_temps(&layout.deps_dir);
    fsutil::remove_stale_temps(&layout.deps_dir.join("src"));
    fsutil::remove_stale_temps(&layout.workspace_root);
    let leftovers = remove_generated(&layout, &record)?;
    fsutil::crash_point("removed");
    let kept_lock = restore_lockfile(&layout, Some(&record), &mut warnings);
    Ok(Undone {
        layout,
        restored,
        kept,
        kept_lock,
        leftovers,
        warnings,
    })
}

/// Takes dylib-dev's additions out of a manifest the user has edited since `wrap`.
fn remove_manifest_additions(doc: &mut DocumentMut, layout: &Layout, original: &str) {
    let ours = format!("dep:{}", layout.deps_crate);
    let forward = format!("{}?/", layout.deps_crate);
    if let Some(deps) = doc
        .get_mut("dependencies")
        .and_then(Item::as_table_like_mut)
    {
        deps.remove(&layout.deps_crate);
    }
    if let Some(features) = doc.get_mut("features").and_then(Item::as_table_like_mut) {
        let only_ours = features
            .get(FEATURE)
            .and_then(Item::as_array)
            .is_some_and(|a| a.iter().all(|v| v.as_str() == Some(&ours)));
        if only_ours {
            features.remove(FEATURE);
        }
        for (_, value) in features.iter_mut() {
            if let Some(array) = value.as_array_mut() {
                array.retain(|v| {
                    !v.as_str()
                        .is_some_and(|s| s.starts_with(&forward) || s == ours)
                });
            }
        }
    }
    let original = original.parse::<DocumentMut>().ok();
    let had = |table: &str| original.as_ref().is_none_or(|d| d.contains_key(table));
    let rel = crate::deps_crate::relative_path(&layout.deps_dir, &layout.workspace_root)
        .to_string_lossy()
        .replace('\\', "/");
    if let Some(workspace) = doc.get_mut("workspace").and_then(Item::as_table_like_mut) {
        if let Some(members) = workspace.get_mut("members").and_then(Item::as_array_mut) {
            members.retain(|v| v.as_str() != Some(rel.as_str()));
        }
        let empty = workspace
            .iter()
            .all(|(k, v)| k == "members" && v.as_array().is_some_and(|a| a.is_empty()));
        if empty && !had("workspace") {
            doc.remove("workspace");
        }
    }
    // Tables `wrap` created and that hold nothing now.
    for table in ["features", "dependencies"] {
        let empty = doc
            .get(table)
            .and_then(Item::as_table_like)
            .is_some_and(|t| t.is_empty());
        if empty && !had(table) {
            doc.remove(table);
        }
    }
}

/// Removes the generated files that still hold what `wrap` wrote; returns those left in place.
fn remove_generated(layout: &Layout, record: &Record) -> Result<Vec<String>, RecordError> {
    let mut left = Vec::new();
    for rel in &record.generated {
        let path = layout.workspace_root.join(rel);
        let Ok(current) = std::fs::read_to_string(&path) else {
            continue;
        };
        if !current.starts_with("# Generated by `dylib-dev wrap`")
            && !current.starts_with("//! Generated by `dylib-dev wrap`")
        {
            left.push(rel.display().to_string());
            continue;
        }
        std::fs::remove_file(&path).map_err(|source| {
            RecordError::Io(crate::fsutil::FileError {
                action: "remove",
                path: path.clone(),
                source,
            })
        })?;
        fsutil::crash_point(&format!("remove:{}", rel.display()));
    }
    let record_path = layout.deps_dir.join(RECORD_FILE);
    std::fs::remove_file(&record_path).map_err(|source| {
        RecordError::Io(crate::fsutil::FileError {
            action: "remove",
            path: record_path.clone(),
            source,
        })
    })?;
    // Only empty directories go; anything the user put there stays.
    for dir in [layout.deps_dir.join("src"), layout.deps_dir.clone()] {
        if std::fs::remove_dir(&dir).is_err() && dir.exists() {
            left.push(format!("{}/", layout.rel(&dir).display()));
        }
    }
    Ok(left)
}

/// Brings `Cargo.lock` back to what the unwrapped project resolves to; `true` when it kept a
/// lock file that `wrap` created (because it changed since).
///
/// cargo added the generated crate to the lock file; a resolve of the restored manifests drops
/// it again and keeps every other locked version, so the file matches its state before `wrap`.
/// A lock file `wrap` created goes only while it holds exactly the bytes `wrap` left in it
/// ([`Record::lockfile_ours`]): once cargo or the user changed it, it records their resolution
/// (a dependency added, a version pinned) and deleting it would lose that.
fn restore_lockfile(layout: &Layout, record: Option<&Record>, warnings: &mut Vec<String>) -> bool {
    let lock = layout.workspace_root.join("Cargo.lock");
    let Ok(text) = std::fs::read_to_string(&lock) else {
        return false;
    };
    let mut kept = false;
    if let Some(record) = record.filter(|r| !r.lockfile_existed) {
        let ours = record.lockfile_ours.is_some()
            && dylib_dev_runtime::hash_file(&lock).ok() == record.lockfile_ours;
        if ours {
            if let Err(e) = std::fs::remove_file(&lock) {
                warnings.push(format!(
                    "could not remove `{}` (it did not exist before `wrap`): {e}",
                    lock.display()
                ));
            }
            return false;
        }
        kept = true;
    }
    if !text.contains(&format!("name = \"{}\"", layout.deps_crate)) {
        return kept;
    }
    if !crate::project::settle_lockfile(&layout.workspace_root.join("Cargo.toml")) {
        warnings.push(format!(
            "`{}` still lists `{}`; the next cargo command removes it",
            lock.display(),
            layout.deps_crate
        ));
    }
    kept
}
