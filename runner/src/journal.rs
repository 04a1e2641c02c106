//! The undo journals of `wrap` and `init`, and the one restore both undo with.
//!
//! `wrap` keeps [`Record`] (`<package>-deps/unwrap-record.json`), `init` keeps [`InitRecord`]
//! (`<package>-logic/init-record.json`): what each created and the original bytes of every file
//! it modified. Each is written *before* any user file changes, so `unwrap` and `deinit` can
//! restore the project even after a crash in the middle. The two files keep their own names and
//! fields (existing projects have them); what they share is [`TouchedFile`] and [`restore`]:
//! untouched since -> the original bytes back; edited by the user -> only dylib-dev's additions
//! taken out; deleted -> nothing to do.
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File name of the record inside the generated deps crate.
pub const RECORD_FILE: &str = "unwrap-record.json";

/// File name of `init`'s journal inside the logic crate.
pub const INIT_RECORD_FILE: &str = "init-record.json";

/// Format version of both records, bumped when a layout changes.
const FORMAT: u32 = 1;

/// Everything `unwrap` needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// Layout version of this file.
    pub format: u32,
    /// The package that was wrapped.
    pub package: String,
    /// Name of the generated crate.
    pub deps_crate: String,
    /// Dependencies wrapped so far, by their key in `[dependencies]`.
    pub wrapped: Vec<String>,
    /// Whether `Cargo.lock` existed before the first `wrap`.
    pub lockfile_existed: bool,
    /// When `wrap` created `Cargo.lock`: the `blake3:<hex>` of the bytes the last `wrap` left in
    /// it, as long as nothing else changed it since. `unwrap` removes the lock file only if it
    /// still holds exactly those bytes; any other lock file is the user's and stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockfile_ours: Option<String>,
    /// Files `wrap` generated, relative to the workspace root.
    pub generated: Vec<PathBuf>,
    /// User files `wrap` modified.
    pub touched: Vec<TouchedFile>,
}

/// A user file that `wrap` modified.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TouchedFile {
    /// Relative to the workspace root.
    pub path: PathBuf,
    /// The bytes before the first `wrap`.
    pub original: String,
    /// The bytes `wrap` wrote last.
    pub ours: String,
}

/// The record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// I/O failure.
    #[error(transparent)]
    Io(#[from] crate::fsutil::FileError),
    /// Not a record we understand.
    #[error(
        "`{path}` is not a dylib-dev unwrap record ({reason}); restore it from version control or delete the generated crate by hand"
    )]
    Corrupt { path: PathBuf, reason: String },
    /// Not an init record we understand.
    #[error("`{path}` is not a dylib-dev init record; restore the project from version control")]
    NotInitRecord {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// An init record of another format.
    #[error("`{path}` was written by another dylib-dev version (format {format})")]
    InitFormat { path: PathBuf, format: u32 },
    /// A file edited since could not be parsed to take dylib-dev's additions out.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
}

impl Record {
    /// A fresh record for `package`.
    pub fn new(package: &str, deps_crate: &str, lockfile_existed: bool) -> Record {
        Record {
            format: FORMAT,
            package: package.to_string(),
            deps_crate: deps_crate.to_string(),
            wrapped: Vec::new(),
            lockfile_existed,
            lockfile_ours: None,
            generated: Vec::new(),
            touched: Vec::new(),
        }
    }

    /// Reads the record in `deps_dir`, `None` if there is none.
    pub fn load(deps_dir: &Path) -> Result<Option<Record>, RecordError> {
        let path = deps_dir.join(RECORD_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(RecordError::Io(crate::fsutil::FileError {
                    action: "read",
                    path,
                    source,
                }));
            }
        };
        let record: Record = serde_json::from_str(&text).map_err(|e| RecordError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if record.format != FORMAT {
            return Err(RecordError::Corrupt {
                path,
                reason: format!(
                    "format {} written by another dylib-dev version",
                    record.format
                ),
            });
        }
        Ok(Some(record))
    }

    /// Writes the record atomically into `deps_dir`.
    pub fn save(&self, deps_dir: &Path) -> Result<(), RecordError> {
        let path = deps_dir.join(RECORD_FILE);
        let mut text = serde_json::to_string_pretty(self).expect("a record always serializes");
        text.push('\n');
        crate::fsutil::write_atomic(&path, text.as_bytes()).map_err(|source| {
            RecordError::Io(crate::fsutil::FileError {
                action: "write",
                path,
                source,
            })
        })
    }

    /// Notes that `path` now holds `ours`; the first time, `original` is kept as the bytes to restore.
    pub fn touch(&mut self, path: &Path, original: &str, ours: &str) {
        match self.touched.iter_mut().find(|t| t.path == path) {
            Some(t) => t.ours = ours.to_string(),
            None => self.touched.push(TouchedFile {
                path: path.to_path_buf(),
                original: original.to_string(),
                ours: ours.to_string(),
            }),
        }
    }
}

/// The files of `touched` (relative to `root`) that a restore must write: those that exist and no
/// longer hold their original bytes.
pub fn needing_restore(root: &Path, touched: &[TouchedFile]) -> Vec<PathBuf> {
    touched
        .iter()
        .map(|t| (root.join(&t.path), t))
        .filter(|(path, t)| std::fs::read_to_string(path).is_ok_and(|now| now != t.original))
        .map(|(path, _)| path)
        .collect()
}

/// `init`'s journal: everything `deinit` needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InitRecord {
    /// Layout version of this file.
    pub format: u32,
    /// The package that became the host.
    pub package: String,
    /// The logic crate `init --split` created; `None` for the in-place route (no logic crate).
    /// Records from before the in-place route always name one.
    #[serde(default)]
    pub logic_crate: Option<String>,
    /// Whether `init` wrapped the dependencies (there was no deps crate before): `deinit` unwraps.
    pub wrapped: bool,
    /// `Cargo.lock` before `init` (`None`: there was none).
    pub lockfile_before: Option<String>,
    /// `blake3:<hex>` of `Cargo.lock` when `init` finished: `deinit` puts the old bytes back only
    /// if the file is still exactly that.
    pub lockfile_after: Option<String>,
    /// Files `init` created, relative to the workspace root.
    pub generated: Vec<GeneratedFile>,
    /// Files `init` modified.
    pub touched: Vec<TouchedFile>,
}

/// A file `init` created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Relative to the workspace root.
    pub path: PathBuf,
    /// `blake3:<hex>` of what `init` wrote; `None` while `init` is still writing.
    pub hash: Option<String>,
}

impl InitRecord {
    /// The current format version, for a new record.
    pub const FORMAT: u32 = FORMAT;

    /// Reads the journal at `path`, `None` if there is none.
    pub fn load(path: &Path) -> Result<Option<InitRecord>, RecordError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(RecordError::Io(crate::fsutil::FileError {
                    action: "read",
                    path: path.to_path_buf(),
                    source,
                }));
            }
        };
        let record: InitRecord =
            serde_json::from_str(&text).map_err(|source| RecordError::NotInitRecord {
                path: path.to_path_buf(),
                source,
            })?;
        if record.format != FORMAT {
            return Err(RecordError::InitFormat {
                path: path.to_path_buf(),
                format: record.format,
            });
        }
        Ok(Some(record))
    }

    /// Writes the journal atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<(), RecordError> {
        let mut text = serde_json::to_string_pretty(self).expect("a record always serializes");
        text.push('\n');
        crate::fsutil::write_atomic(path, text.as_bytes()).map_err(|source| {
            RecordError::Io(crate::fsutil::FileError {
                action: "write",
                path: path.to_path_buf(),
                source,
            })
        })
    }
}

/// What [`restore`] did with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// It already held its original bytes, or is gone (the user's edit: nothing of ours is left).
    Unchanged,
    /// It holds its original bytes again.
    Restored,
    /// Edited since: only dylib-dev's additions were taken out, the user's edits stay.
    KeptUserEdits,
}

/// How [`restore`] treats a file.
pub struct Restore<'a> {
    /// The crash-point name of its write (`unwrap` has them, see [`crate::fsutil::crash_point`]);
    /// `None` for none.
    pub step: Option<&'a str>,
    /// Whether a file that cannot be read (other than a missing one) is an error (`unwrap`) or
    /// left alone (`deinit`).
    pub unreadable_is_error: bool,
}

/// The one three-way restore of a file a journal recorded (`path` is `touched` made absolute):
/// untouched since the journal -> its original bytes back; edited by the user -> `remove_ours`
/// takes dylib-dev's additions out of the current text and the user's edits stay; gone -> nothing.
pub fn restore(
    path: &Path,
    touched: &TouchedFile,
    how: &Restore<'_>,
    remove_ours: impl FnOnce(&str) -> Result<String, RecordError>,
) -> Result<Restored, RecordError> {
    let current = match std::fs::read_to_string(path) {
        Ok(text) => text,
        // Deleted by the user since: that is their edit; nothing of ours remains to remove.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound || !how.unreadable_is_error => {
            return Ok(Restored::Unchanged);
        }
        Err(source) => {
            return Err(RecordError::Io(crate::fsutil::FileError {
                action: "read",
                path: path.to_path_buf(),
                source,
            }));
        }
    };
    if current == touched.original {
        return Ok(Restored::Unchanged);
    }
    let write = |text: &str| {
        crate::fsutil::write_atomic_step(path, text.as_bytes(), how.step).map_err(|source| {
            RecordError::Io(crate::fsutil::FileError {
                action: "write",
                path: path.to_path_buf(),
                source,
            })
        })
    };
    if current == touched.ours {
        write(&touched.original)?;
        return Ok(Restored::Restored);
    }
    let surgical = remove_ours(&current)?;
    if surgical != current {
        write(&surgical)?;
    }
    Ok(if surgical == touched.original {
        Restored::Restored
    } else {
        Restored::KeptUserEdits
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_records_from_before_the_in_place_route_still_read() {
        let old = r#"{"format":1,"package":"ticker","logic_crate":"ticker-logic","wrapped":false,
            "lockfile_before":null,"lockfile_after":null,"generated":[],"touched":[]}"#;
        let record: InitRecord = serde_json::from_str(old).unwrap();
        assert_eq!(record.logic_crate.as_deref(), Some("ticker-logic"));
        let in_place = InitRecord {
            logic_crate: None,
            ..record
        };
        let text = serde_json::to_string(&in_place).unwrap();
        assert_eq!(serde_json::from_str::<InitRecord>(&text).unwrap(), in_place);
    }
}
