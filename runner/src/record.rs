//! The unwrap record: what `wrap` created and the original bytes of every file it modified.
//!
//! It is written *before* any user file changes (a journal), so `unwrap` can restore the project
//! even after a crash in the middle of `wrap`.
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File name of the record inside the generated deps crate.
pub const RECORD_FILE: &str = "unwrap-record.json";

/// Format version, bumped when the layout changes.
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
    #[error("failed to {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a record we understand.
    #[error(
        "`{path}` is not a dylib-dev unwrap record ({reason}); restore it from version control or delete the generated crate by hand"
    )]
    Corrupt { path: PathBuf, reason: String },
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
                return Err(RecordError::Io {
                    action: "read",
                    path,
                    source,
                });
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
        crate::fsutil::write_atomic(&path, text.as_bytes()).map_err(|source| RecordError::Io {
            action: "write",
            path,
            source,
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
