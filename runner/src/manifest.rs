//! Reading and editing `Cargo.toml` with `toml_edit`, keeping the user's comments and layout.
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, Item, Table};

/// A manifest that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("failed to read `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML; `message` carries toml_edit's line and column.
    #[error("`{path}` is not valid TOML; fix it and run again:\n{message}")]
    Parse { path: PathBuf, message: String },
}

/// A parsed manifest together with the exact bytes it was read from.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Where it lives.
    pub path: PathBuf,
    /// The bytes on disk when read.
    pub original: String,
    /// The editable document.
    pub doc: DocumentMut,
}

impl Manifest {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Manifest, ManifestError> {
        let original = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, original)
    }

    /// Parses `text` as the manifest at `path`.
    pub fn parse(path: &Path, original: String) -> Result<Manifest, ManifestError> {
        let doc = original.parse::<DocumentMut>().map_err(|err| ManifestError::Parse {
            path: path.to_path_buf(),
            message: err.to_string().trim_end().to_string(),
        })?;
        Ok(Manifest { path: path.to_path_buf(), original, doc })
    }

    /// The document as it would be written now.
    pub fn render(&self) -> String {
        self.doc.to_string()
    }

    /// Whether editing changed anything.
    pub fn is_changed(&self) -> bool {
        self.render() != self.original
    }
}

/// Returns the table at `key` in `parent`, creating a standard `[table]` (never an inline one).
pub fn table_mut<'a>(parent: &'a mut Table, key: &str) -> &'a mut Table {
    let item = parent.entry(key).or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(false);
        Item::Table(t)
    });
    if let Item::Value(toml_edit::Value::InlineTable(inline)) = item {
        let t = std::mem::take(inline).into_table();
        *item = Item::Table(t);
    }
    item.as_table_mut().expect("just made a table")
}
