//! The files `dylib-dev new` and `init` write out, and `embedded.bundle`: a checked-in copy of them
//! that travels in the runner's published package.
//!
//! Shared by `build.rs` (which embeds the files) and `tests/embedded_bundle.rs` (which keeps the
//! bundle in sync with the repository), each through `#[path]`.
//!
//! Why a bundle: `cargo package` takes only files below `runner/` and leaves out every directory
//! holding a `Cargo.toml` (the templates, `runtime/`, `macros/` all do), so neither a plain copy nor
//! a symlink gets them into the package. One length-prefixed text file does, byte for byte.
//!
//! Format: `#` comment lines first, then per file a line `@@ <byte length> <key>`, the bytes, `\n`.
//! Keys are `templates/<template>/<path>`, `runtime/<path>` and `macros/<path>`.
use std::path::{Path, PathBuf};

/// The bundle's file name, in the runner's directory.
pub const BUNDLE: &str = "embedded.bundle";

/// The command that rewrites the bundle from the repository, for messages.
pub const BLESS: &str = "DYLIB_DEV_BLESS=1 cargo test -p dylib-dev --test embedded_bundle";

/// Where the embedded files are read from.
pub struct Sources {
    /// One directory per template.
    pub templates: PathBuf,
    /// The runtime crate (only its `Cargo.toml`, `build.rs` and `src/` are taken).
    pub runtime: PathBuf,
    /// The macros crate (only its `Cargo.toml` and `src/` are taken).
    pub macros: PathBuf,
}

impl Sources {
    /// The repository's own directories, seen from the runner's directory; `None` outside a
    /// checkout (in the unpacked package, `runtime/` and `../templates` are not there).
    pub fn repository(runner: &Path) -> Option<Sources> {
        let sources = Sources {
            templates: runner.parent()?.join("templates"),
            runtime: runner.join("runtime"),
            macros: runner.join("macros"),
        };
        (sources.templates.is_dir() && sources.runtime.join("Cargo.toml").is_file())
            .then_some(sources)
    }

    /// The directories a bundle was extracted to by [`extract`].
    pub fn extracted(dir: &Path) -> Sources {
        Sources {
            templates: dir.join("templates"),
            runtime: dir.join("runtime"),
            macros: dir.join("macros"),
        }
    }

    /// Every template directory, sorted.
    pub fn template_dirs(&self) -> Vec<PathBuf> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.templates)
            .unwrap_or_else(|e| panic!("read `{}`: {e}", self.templates.display()))
            .map(|e| e.expect("read templates/").path())
            .filter(|p| p.is_dir())
            .collect();
        names.sort();
        names
    }

    /// The runtime crate's files as (path relative to the crate, file), the macros crate's under
    /// `macros/` (where the copy in a project carries it).
    pub fn runtime_files(&self) -> Vec<(String, PathBuf)> {
        let mut files = vec![("Cargo.toml".to_string(), self.runtime.join("Cargo.toml"))];
        if self.runtime.join("build.rs").is_file() {
            files.push(("build.rs".to_string(), self.runtime.join("build.rs")));
        }
        walk(&self.runtime, &self.runtime.join("src"), &mut files);
        files.push((
            "macros/Cargo.toml".to_string(),
            self.macros.join("Cargo.toml"),
        ));
        let mut macro_files = Vec::new();
        walk(&self.macros, &self.macros.join("src"), &mut macro_files);
        files.extend(
            macro_files
                .into_iter()
                .map(|(rel, abs)| (format!("macros/{rel}"), abs)),
        );
        files
    }

    /// Every embedded file as (bundle key, file), in bundle order.
    pub fn bundle_files(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        for dir in self.template_dirs() {
            let name = file_name(&dir);
            let mut files = Vec::new();
            walk(&dir, &dir, &mut files);
            out.extend(
                files
                    .into_iter()
                    .map(|(rel, abs)| (format!("templates/{name}/{rel}"), abs)),
            );
        }
        for (rel, abs) in self.runtime_files() {
            // The macros crate has its own key space: it is a directory of its own when extracted.
            let key = match rel.strip_prefix("macros/") {
                Some(rest) => format!("macros/{rest}"),
                None => format!("runtime/{rel}"),
            };
            out.push((key, abs));
        }
        out
    }

    /// The bundle these sources make.
    pub fn bundle(&self) -> Vec<u8> {
        let mut out = format!(
            "# Generated from templates/, runner/runtime/ and runner/macros/: do not edit.\n\
             # The runner builds from it when those are absent (its published package).\n\
             # Rewrite it with: {BLESS}\n"
        )
        .into_bytes();
        for (key, path) in self.bundle_files() {
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("read `{}`: {e}", path.display()));
            out.extend_from_slice(format!("@@ {} {key}\n", bytes.len()).as_bytes());
            out.extend_from_slice(&bytes);
            out.push(b'\n');
        }
        out
    }
}

/// The files of a bundle as (key, bytes).
pub fn parse(bundle: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a line without its end")?;
        let line = std::str::from_utf8(&rest[..end]).map_err(|_| "a header is not UTF-8")?;
        rest = &rest[end + 1..];
        if line.starts_with('#') {
            continue;
        }
        let header = line
            .strip_prefix("@@ ")
            .ok_or_else(|| format!("expected `@@ <length> <key>`, found {line:?}"))?;
        let (len, key) = header
            .split_once(' ')
            .ok_or_else(|| format!("no key in {line:?}"))?;
        let len: usize = len.parse().map_err(|_| format!("bad length in {line:?}"))?;
        if key
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(format!("unsafe key {key:?}"));
        }
        if rest.len() < len + 1 || rest[len] != b'\n' {
            return Err(format!("{key}: truncated"));
        }
        out.push((key.to_string(), rest[..len].to_vec()));
        rest = &rest[len + 1..];
    }
    Ok(out)
}

/// Writes a bundle's files below `dir` (emptied first), to be read as [`Sources::extracted`].
pub fn extract(bundle: &[u8], dir: &Path) -> Result<(), String> {
    let files = parse(bundle)?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("empty `{}`: {e}", dir.display()))?;
    }
    for (key, bytes) in files {
        let path = dir.join(&key);
        std::fs::create_dir_all(path.parent().expect("a key has a directory"))
            .and_then(|()| std::fs::write(&path, bytes))
            .map_err(|e| format!("write `{}`: {e}", path.display()))?;
    }
    Ok(())
}

/// Every file below `dir` as (path relative to `root` with `/`, absolute path), sorted; build
/// output (`target/`) is skipped.
pub fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read `{}`: {e}", dir.display()))
        .map(|e| e.expect("read dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("below root");
            let rel: Vec<&str> = rel.components().map(|c| component(c.as_os_str())).collect();
            out.push((rel.join("/"), path.clone()));
        }
    }
}

/// A directory's name as UTF-8.
pub fn file_name(dir: &Path) -> &str {
    component(dir.file_name().expect("a named directory"))
}

fn component(name: &std::ffi::OsStr) -> &str {
    name.to_str().expect("UTF-8 file name")
}
