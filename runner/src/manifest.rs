//! Reading and editing `Cargo.toml` with `toml_edit`, keeping the user's comments and layout.
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, Item, Table};

/// A manifest that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error(transparent)]
    Io(#[from] crate::fsutil::FileError),
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
        let original =
            std::fs::read_to_string(path).map_err(crate::fsutil::file_error("read", path))?;
        Self::parse(path, original)
    }

    /// Parses `text` as the manifest at `path`.
    pub fn parse(path: &Path, original: String) -> Result<Manifest, ManifestError> {
        let doc = original
            .parse::<DocumentMut>()
            .map_err(|err| ManifestError::Parse {
                path: path.to_path_buf(),
                message: err.to_string().trim_end().to_string(),
            })?;
        Ok(Manifest {
            path: path.to_path_buf(),
            original,
            doc,
        })
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

/// Appends `value` to `array` in the array's own style: one per line if it is written that way,
/// leaving a trailing comment with the element it followed.
pub fn push_formatted(array: &mut toml_edit::Array, value: &str) {
    let last_prefix = array
        .iter()
        .last()
        .and_then(|v| v.decor().prefix())
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .to_string();
    // Without a trailing comma, what follows the last element (newline, comment) is its suffix.
    let last_suffix = array
        .iter_mut()
        .last()
        .map(|v| {
            let suffix = v
                .decor()
                .suffix()
                .and_then(|s| s.as_str())
                .unwrap_or("")
                .to_string();
            v.decor_mut().set_suffix("");
            suffix
        })
        .unwrap_or_default();
    let trailing = format!("{last_suffix}{}", array.trailing().as_str().unwrap_or(""));
    let multiline = last_prefix.contains('\n') || trailing.contains('\n');
    if !multiline {
        if let Some(last) = array.iter_mut().last() {
            last.decor_mut().set_suffix(last_suffix);
        }
        array.push(value);
        return;
    }
    let indent = last_prefix.rsplit('\n').next().unwrap_or("    ");
    let comment = trailing.trim_end_matches([' ', '\t', '\n', '\r']);
    let mut v = toml_edit::Value::from(value);
    v.decor_mut().set_prefix(format!("{comment}\n{indent}"));
    array.push_formatted(v);
    array.set_trailing("\n");
    array.set_trailing_comma(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushed(src: &str) -> String {
        let mut doc: DocumentMut = src.parse().unwrap();
        push_formatted(doc["members"].as_array_mut().unwrap(), "new");
        doc.to_string()
    }

    #[test]
    fn push_keeps_array_style() {
        assert_eq!(
            pushed("members = [\"a\", \"b\"]\n"),
            "members = [\"a\", \"b\", \"new\"]\n"
        );
        assert_eq!(
            pushed("members = [\n    \"a\", # why a\n]\n"),
            "members = [\n    \"a\", # why a\n    \"new\",\n]\n"
        );
        assert_eq!(
            pushed("members = [\n  \"a\"\n]\n"),
            "members = [\n  \"a\",\n  \"new\",\n]\n"
        );
    }
}
