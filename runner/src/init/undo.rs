//! `deinit`: `init` undone, through the journal's one restore ([`crate::journal::restore`]).
use super::places::Places;
use super::plan::HOT_DEPENDENCY;
use super::report::{Event, InitError};
use crate::fsutil;
use crate::journal::{self, InitRecord, Record, RecordError, Restore, Restored};
use crate::manifest::Manifest;
use crate::project::{Project, ProjectError, Selector};
use crate::templates::RUNTIME_PACKAGE;
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, Item};

/// What `deinit` did with each file, relative to the workspace root.
#[derive(Debug, Default)]
pub struct Undone {
    /// Back to their bytes before `init`.
    pub restored: Vec<String>,
    /// Edited since: only `init`'s additions were taken out.
    pub kept_edits: Vec<String>,
    /// Created by `init` but edited or added to since: left in place.
    pub left: Vec<String>,
}

/// Why a `deinit` stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeinitError {
    /// See [`InitError`].
    #[error(transparent)]
    Init(#[from] InitError),
    /// A journal, or a file it names, could not be read, restored or removed.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A file to restore is read-only: nothing was changed.
    #[error(transparent)]
    ReadOnly(#[from] fsutil::ReadOnly),
    /// See [`ProjectError`].
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// The `unwrap` of the wrap `init` did.
    #[error(transparent)]
    Unwrap(#[from] crate::unwrap::UnwrapError),
}

/// What a `deinit` did.
#[derive(Debug)]
pub struct Deinited {
    /// Where `init` had put everything.
    pub places: Places,
    /// The files.
    pub undone: Undone,
    /// `init` created `Cargo.lock`, but it changed since, so it stays.
    pub kept_lock: bool,
    /// It was an `init --split` (a logic crate), not the in-place route.
    pub split: bool,
}

/// Undoes the `init` of the project's package (the caller holds the workspace lock); `events`
/// hears of the `unwrap` inside and of warnings.
pub fn deinit(
    project: &Project,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Deinited, DeinitError> {
    let places = Places::of(project);
    // The in-place route journals in the runtime copy, `--split` (and every `init` before the
    // in-place route existed) in the logic crate.
    let Some(record_path) = places.existing_record().map(Path::to_path_buf) else {
        return Err(InitError::NotInitialized {
            package: places.package.clone(),
            record: places.runtime_record.clone(),
        }
        .into());
    };
    let Some(record) = InitRecord::load(&record_path)? else {
        return Err(InitError::NotInitialized {
            package: places.package.clone(),
            record: record_path,
        }
        .into());
    };
    let split = record.logic_crate.is_some();
    // Every file this run restores must be writable, checked before the first write.
    let mut to_write = journal::needing_restore(&places.root, &record.touched);
    if record.wrapped
        && let Some(deps) = Record::load(&places.layout.deps_dir)?
    {
        to_write.extend(journal::needing_restore(&places.root, &deps.touched));
    }
    fsutil::check_writable(to_write.iter().map(PathBuf::as_path), "deinit")?;
    let lock_untouched =
        dylib_dev_runtime::hash_file(&places.lockfile).ok() == record.lockfile_after;
    match Record::load(&places.layout.deps_dir)? {
        Some(_) if record.wrapped => {
            let selector =
                Selector::package_at(places.host_manifest.clone(), places.package.clone());
            let host = Project::load(&selector, false)?;
            let unwrapped = crate::unwrap::unwrap(&host)?;
            events(Event::Unwrapped(&unwrapped));
        }
        Some(deps) if split => release_logic_from_wrap(&places, deps)?,
        Some(_) => {}
        None => {}
    }
    let undone = undo(&places, &record, &record_path)?;
    let mut kept_lock = false;
    if lock_untouched {
        restore_lockfile(&places, &record.lockfile_before, events);
    } else {
        // Dependencies changed since: let cargo drop what the restored manifests no longer need.
        // The file stays even if `init` created it: it now holds the user's resolution too.
        if !crate::project::settle_lockfile(&places.root_manifest) {
            events(Event::Warning(
                "could not update Cargo.lock; the next cargo command will".into(),
            ));
        }
        kept_lock = record.lockfile_before.is_none() && places.lockfile.exists();
    }
    Ok(Deinited {
        places,
        undone,
        kept_lock,
        split,
    })
}

/// The project was wrapped before `init`: that wrap stays, but the logic crate leaves its record.
fn release_logic_from_wrap(places: &Places, mut deps: Record) -> Result<(), RecordError> {
    let logic = PathBuf::from(places.rel(&places.logic_dir));
    for touched in deps.touched.iter().filter(|t| t.path.starts_with(&logic)) {
        let path = places.root.join(&touched.path);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(touched.ours.as_str()) {
            fsutil::write_atomic(&path, touched.original.as_bytes()).map_err(|source| {
                RecordError::Io(crate::fsutil::FileError {
                    action: "write",
                    path: path.clone(),
                    source,
                })
            })?;
        }
    }
    deps.touched.retain(|t| !t.path.starts_with(&logic));
    deps.save(&places.layout.deps_dir)?;
    Ok(())
}

/// Restores the modified files and removes the created ones and the journal at `record_path`
/// (see the module docs).
pub fn undo(
    places: &Places,
    record: &InitRecord,
    record_path: &Path,
) -> Result<Undone, RecordError> {
    let mut undone = Undone::default();
    let how = Restore {
        step: None,
        unreadable_is_error: false,
    };
    for touched in &record.touched {
        let path = places.root.join(&touched.path);
        let done = journal::restore(&path, touched, &how, |current| {
            let mut manifest = Manifest::parse(&path, current.to_string())?;
            remove_additions(&mut manifest.doc, places, &touched.original);
            Ok(manifest.render())
        })?;
        let name = touched.path.display().to_string();
        match done {
            Restored::Unchanged => {}
            Restored::Restored => undone.restored.push(name),
            Restored::KeptUserEdits => undone.kept_edits.push(name),
        }
    }
    let mut dirs = Vec::new();
    for file in &record.generated {
        let path = places.root.join(&file.path);
        if !path.exists() {
            continue;
        }
        let ours = match &file.hash {
            Some(hash) => dylib_dev_runtime::hash_file(&path).is_ok_and(|h| &h == hash),
            None => true, // written by an `init` that did not finish
        };
        if ours {
            std::fs::remove_file(&path).map_err(|source| {
                RecordError::Io(crate::fsutil::FileError {
                    action: "remove",
                    path: path.clone(),
                    source,
                })
            })?;
        } else {
            undone.left.push(file.path.display().to_string());
        }
        dirs.extend(path.ancestors().skip(1).map(Path::to_path_buf));
    }
    let _ = std::fs::remove_file(record_path);
    dirs.retain(|d| d.starts_with(&places.logic_dir) || d.starts_with(&places.runtime_dir));
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs.dedup();
    for dir in dirs {
        if std::fs::remove_dir(&dir).is_err()
            && dir.exists()
            && (dir == places.logic_dir || dir == places.runtime_dir)
        {
            undone.left.push(format!("{}/", places.rel(&dir)));
        }
    }
    Ok(undone)
}

/// Takes `init`'s additions out of a manifest the user edited since.
fn remove_additions(doc: &mut DocumentMut, places: &Places, original: &str) {
    let original = original.parse::<DocumentMut>().ok();
    let had = |path: &[&str]| {
        original.as_ref().is_none_or(|d| {
            let mut item = d.as_item();
            path.iter().all(|key| match item.get(key) {
                Some(next) => {
                    item = next;
                    true
                }
                None => false,
            })
        })
    };
    if let Some(deps) = doc
        .get_mut("dependencies")
        .and_then(Item::as_table_like_mut)
    {
        if !had(&["dependencies", RUNTIME_PACKAGE]) {
            deps.remove(RUNTIME_PACKAGE);
        }
        let ours = deps
            .get(HOT_DEPENDENCY)
            .and_then(Item::as_table_like)
            .and_then(|t| t.get("package"))
            .and_then(Item::as_str)
            == Some(RUNTIME_PACKAGE);
        if ours && !had(&["dependencies", HOT_DEPENDENCY]) {
            deps.remove(HOT_DEPENDENCY);
        }
    }
    let logic = places.rel(&places.logic_dir);
    let runtime = places.rel(&places.runtime_dir);
    if let Some(workspace) = doc.get_mut("workspace").and_then(Item::as_table_like_mut) {
        for (key, value) in [("members", &logic), ("exclude", &runtime)] {
            if let Some(array) = workspace.get_mut(key).and_then(Item::as_array_mut) {
                array.retain(|v| v.as_str() != Some(value.as_str()));
                if array.is_empty() && !had(&["workspace", key]) {
                    workspace.remove(key);
                }
            }
        }
        if let Some(metadata) = workspace
            .get_mut("metadata")
            .and_then(Item::as_table_like_mut)
        {
            if !had(&["workspace", "metadata", "dylib-dev"])
                && let Some(ours) = metadata
                    .get_mut("dylib-dev")
                    .and_then(Item::as_table_like_mut)
            {
                ours.remove("host");
                ours.remove("logic");
                if ours.is_empty() {
                    metadata.remove("dylib-dev");
                }
            }
            if metadata.is_empty() && !had(&["workspace", "metadata"]) {
                workspace.remove("metadata");
            }
        }
        if workspace.is_empty() && !had(&["workspace"]) {
            doc.remove("workspace");
        }
    }
    let empty = doc
        .get("dependencies")
        .and_then(Item::as_table_like)
        .is_some_and(|t| t.is_empty());
    if empty && !had(&["dependencies"]) {
        doc.remove("dependencies");
    }
}

/// Puts `Cargo.lock` back to `before` (removes it when there was none).
pub fn restore_lockfile(
    places: &Places,
    before: &Option<String>,
    events: &mut dyn FnMut(Event<'_>),
) {
    let result = match before {
        Some(text) => fsutil::write_atomic(&places.lockfile, text.as_bytes()),
        None => match std::fs::remove_file(&places.lockfile) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    };
    if let Err(e) = result {
        events(Event::Warning(format!(
            "could not restore `{}`: {e}",
            places.lockfile.display()
        )));
    }
}
