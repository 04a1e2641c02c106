//! `dylib-dev new <path>`: a ready dylib-dev project (host, logic, shared types, config and a copy
//! of the runtime crate) from one of the templates embedded in the binary ([`crate::templates`]).
//!
//! Nothing is written unless everything is: the project is built in a temp dir next to the
//! destination, checked with `cargo metadata`, and renamed into place in one step. The destination
//! must not exist or be an empty directory; the names come from its last component (or `--name`).
use crate::project::{Project, Selector};
use crate::templates::{self, InvalidName, Names, RUNTIME_DIR, Template};
use crate::watch::model::WatchModel;
use crate::wrap::WrapRequest;
use crate::{fsutil, lock};
use std::path::{Component, Path, PathBuf};

/// What `new` refuses; nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    /// The destination has files in it.
    #[error(
        "`{path}` already exists and is not empty\n  help: `dylib-dev new` writes only into a new or empty directory; pick another path, or run `dylib-dev init` in an existing package"
    )]
    NotEmpty { path: PathBuf },
    /// The destination is a file.
    #[error("`{path}` already exists and is not a directory\n  help: pick another path")]
    NotADirectory { path: PathBuf },
    /// The path has no last component to take a name from (`/`).
    #[error("cannot take a package name from `{path}`\n  help: pass --name <NAME>")]
    NoName { path: PathBuf },
    /// The name (from the path or `--name`) is not a valid package name.
    #[error("{invalid}\n  help: {help}")]
    InvalidName { invalid: InvalidName, help: String },
    /// A file or directory could not be read or written.
    #[error(transparent)]
    Io(#[from] crate::fsutil::FileError),
    /// Reading the temp dir back failed.
    #[error(transparent)]
    ReadBack(std::io::Error),
    /// The checked project could not be renamed into place.
    #[error("failed to move the new project from `{from}` to `{to}`")]
    Move {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The rendered template is no project cargo or `watch` accepts: a bug of this build.
    #[error("the `{name}` template is broken")]
    BrokenTemplate {
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The template's `wrap` list could not be wrapped.
    #[error("failed to wrap {crates} for the `{name}` template")]
    Wrap {
        crates: String,
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No embedded template by that name.
    #[error("there is no template `{name}`\n  help: the templates are: {known}")]
    UnknownTemplate { name: String, known: String },
}

/// A project `new` wrote.
#[derive(Debug, Clone)]
pub struct Created {
    /// Its root directory (absolute).
    pub root: PathBuf,
    /// Its names.
    pub names: Names,
    /// The host package, as `dylib-dev watch` finds it.
    pub host: String,
    /// The logic packages.
    pub logic: Vec<String>,
    /// Worth a warning (from the template's wrap), in the order they came up.
    pub warnings: Vec<String>,
}

/// Writes `template` as a new project at `path`, named `name` or after the path's last component.
pub fn create(path: &Path, name: Option<&str>, template: &Template) -> Result<Created, NewError> {
    let dest = normalize(path);
    let dest = match std::fs::metadata(&dest) {
        Ok(meta) if !meta.is_dir() => {
            return Err(NewError::NotADirectory {
                path: path.to_path_buf(),
            });
        }
        Ok(_) => {
            let empty = std::fs::read_dir(&dest)
                .map_err(crate::fsutil::file_error("read", path))?
                .next()
                .is_none();
            if !empty {
                return Err(NewError::NotEmpty {
                    path: path.to_path_buf(),
                });
            }
            // A symlink to an empty directory: write into what it points at.
            dest.canonicalize().unwrap_or(dest)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => dest,
        Err(e) => return Err(crate::fsutil::file_error("read", path)(e).into()),
    };
    let names = project_names(path, &dest, name)?;
    let parent = dest
        .parent()
        .ok_or_else(|| NewError::NoName {
            path: path.to_path_buf(),
        })?
        .to_path_buf();
    let created_dirs = create_parents(&parent)?;
    let mut warnings = Vec::new();
    let result = build_and_place(&dest, &parent, &names, template, &mut warnings);
    if result.is_err() {
        // Only directories this call made, innermost first, and only if still empty.
        for dir in created_dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    let (host, logic) = result?;
    Ok(Created {
        root: dest,
        names,
        host,
        logic,
        warnings,
    })
}

/// Renders into a temp dir next to `dest`, checks the result, renames it into place.
fn build_and_place(
    dest: &Path,
    parent: &Path,
    names: &Names,
    template: &Template,
    warnings: &mut Vec<String>,
) -> Result<(String, Vec<String>), NewError> {
    let file_name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}.dylib-dev-new-"))
        .tempdir_in(parent)
        .map_err(crate::fsutil::file_error("create a temp dir in", parent))?;
    let root = tmp.path();
    let runtime = templates::runtime_files()
        .into_iter()
        .map(|(p, bytes)| (format!("{RUNTIME_DIR}/{p}"), bytes));
    for (rel, bytes) in template.render(names).into_iter().chain(runtime) {
        let path = root.join(&rel);
        fsutil::write_new(&path, &bytes).map_err(crate::fsutil::file_error("write", &path))?;
    }
    // The rendered project must make sense to cargo and to `watch` before it lands anywhere.
    let manifest = root.join("Cargo.toml");
    let selector = Selector {
        manifest_path: Some(manifest.clone()),
        package: None,
    };
    let broken = |source: Box<dyn std::error::Error + Send + Sync>| NewError::BrokenTemplate {
        name: template.name.to_string(),
        source,
    };
    let (_, metadata) =
        crate::project::load_metadata(&selector, false).map_err(|e| broken(e.into()))?;
    let model = WatchModel::from_metadata(&metadata, None).map_err(|e| broken(e.into()))?;
    if !template.settings.wrap.is_empty() {
        let selector = Selector::package_at(manifest, model.roles.host.clone());
        let wrapped = wrap_template(&selector, &template.settings.wrap, warnings);
        wrapped.map_err(|source| NewError::Wrap {
            crates: template.settings.wrap.join(", "),
            name: template.name.to_string(),
            source,
        })?;
    }
    if dest.is_dir() {
        // An existing empty directory stays what it is (someone's shell may be in it): the
        // entries move in, and if one cannot, those already moved go back out.
        fill_empty_dir(root, dest)?;
    } else {
        std::fs::rename(root, dest).map_err(|source| NewError::Move {
            from: root.to_path_buf(),
            to: dest.to_path_buf(),
            source,
        })?;
        let _ = tmp.keep(); // it is the project now
    }
    if let Ok(dir) = std::fs::File::open(parent) {
        let _ = dir.sync_all();
    }
    let logic = model
        .roles
        .logic
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    Ok((model.roles.host, logic))
}

/// The template's `wrap` list wrapped in the rendered project, as `dylib-dev wrap` would.
fn wrap_template(
    selector: &Selector,
    crates: &[String],
    warnings: &mut Vec<String>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let light = Project::load(selector, false)?;
    let _lock = lock::WorkspaceLock::acquire(
        light.workspace_root().as_std_path(),
        &mut |notice| {
            if let lock::LockNotice::Unlockable { root, error } = notice {
                warnings.push(format!(
                "could not lock the workspace `{}` ({error}); make sure no other dylib-dev run changes it at the same time",
                root.display()
            ));
            }
        },
    )?;
    let request = WrapRequest {
        selector: selector.clone(),
        crates: crates.to_vec(),
        auto_min_source_kib: None,
        dry_run: false,
    };
    let applied = crate::wrap::wrap(&light, &request, &mut |event| {
        if let crate::wrap::WrapEvent::Warning(warning) = event {
            warnings.push(warning);
        }
    })?;
    if let crate::wrap::Change::Written {
        lockfile_settled: false,
        ..
    } = applied.change
    {
        warnings.push("could not update Cargo.lock; the next cargo command will".into());
    }
    Ok(())
}

/// Moves every entry of `from` into the empty directory `to`, all or none.
fn fill_empty_dir(from: &Path, to: &Path) -> Result<(), NewError> {
    let mut moved = Vec::new();
    for entry in std::fs::read_dir(from).map_err(NewError::ReadBack)? {
        let name = entry.map_err(NewError::ReadBack)?.file_name();
        if let Err(e) = std::fs::rename(from.join(&name), to.join(&name)) {
            for name in moved.iter().rev() {
                let _ = std::fs::rename(to.join(name), from.join(name));
            }
            return Err(crate::fsutil::file_error("write into", to)(e).into());
        }
        moved.push(name);
    }
    if let Ok(dir) = std::fs::File::open(to) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// The names for the project at `dest` (`path` as the user wrote it, for messages).
fn project_names(path: &Path, dest: &Path, name: Option<&str>) -> Result<Names, NewError> {
    let (name, from_dir) = match name {
        Some(name) => (name.to_string(), None),
        None => {
            let dir =
                dest.file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| NewError::NoName {
                        path: path.to_path_buf(),
                    })?;
            (dir.to_string(), Some(dir.to_string()))
        }
    };
    Names::new(&name).map_err(|invalid| {
        let suggestion = suggest(&name);
        let instead = suggestion
            .map(|s| format!(" (e.g. --name {s})"))
            .unwrap_or_default();
        let help = match from_dir {
            Some(dir) => format!(
                "the name comes from the directory `{dir}`; pass --name <NAME> to choose another{instead}"
            ),
            None => format!("pass a different --name{instead}"),
        };
        NewError::InvalidName { invalid, help }
    })
}

/// A valid name close to `name`, if there is an obvious one.
fn suggest(name: &str) -> Option<String> {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let mut s = s.trim_matches('-').to_string();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s = format!("app-{s}");
    }
    (s != name && Names::new(&s).is_ok()).then_some(s)
}

/// Creates `dir` and its missing ancestors; returns those it created, outermost first.
fn create_parents(dir: &Path) -> Result<Vec<PathBuf>, NewError> {
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.exists())
        .map(Path::to_path_buf)
        .collect();
    std::fs::create_dir_all(dir).map_err(crate::fsutil::file_error("create", dir))?;
    Ok(missing.into_iter().rev().collect())
}

/// `path` made absolute, with `.` and `..` resolved lexically.
pub fn normalize(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::TemplateFile;
    use std::borrow::Cow;

    #[test]
    fn suggestions_are_valid_names() {
        assert_eq!(suggest("My App").as_deref(), Some("my-app"));
        assert_eq!(suggest("2048").as_deref(), Some("app-2048"));
        assert_eq!(suggest("fn"), None);
    }

    #[test]
    fn normalizes_lexically() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }

    fn file(path: &str, text: &str) -> TemplateFile {
        TemplateFile {
            path: path.into(),
            contents: Cow::Owned(text.as_bytes().to_vec()),
        }
    }

    /// A broken template fails before anything lands, and the parents `new` made go again.
    #[test]
    fn a_broken_template_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let template = Template::from_files(
            "broken",
            vec![
                file("template.toml", "description = \"x\"\n"),
                file("Cargo.toml", "[workspace]\nmembers = [\"missing\"]\n"),
            ],
        )
        .unwrap();
        let dest = tmp.path().join("a/b/app");
        let err = create(&dest, None, &template).unwrap_err();
        assert!(format!("{err:#}").contains("template is broken"), "{err:#}");
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    /// A template's `wrap` list puts those host dependencies into the deps dylib, and the logic
    /// crate links it too, as `dylib-dev wrap` does.
    #[test]
    fn template_wrap_list_wraps_the_host_and_links_logic() {
        let tmp = tempfile::tempdir().unwrap();
        let template = Template::from_files(
            "wrapped",
            vec![
                file("template.toml", "description = \"x\"\nwrap = [\"itoa\"]\n"),
                file("Cargo.toml", "[workspace]\nresolver = \"3\"\nmembers = [\"host\", \"logic\"]\n"),
                file(
                    "host/Cargo.toml",
                    "[package]\nname = \"{{name}}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\nitoa = \"1\"\n",
                ),
                file("host/src/main.rs", "fn main() {}\n"),
                file(
                    "logic/Cargo.toml",
                    "[package]\nname = \"{{name}}-logic\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nitoa = \"1\"\n",
                ),
                file("logic/src/lib.rs", "//! Logic.\n"),
            ],
        )
        .unwrap();
        let created = create(&tmp.path().join("wrapped-app"), None, &template).unwrap();
        assert_eq!(created.host, "wrapped-app");
        let read = |p: &str| std::fs::read_to_string(created.root.join(p)).unwrap();
        assert!(read("wrapped-app-deps/src/lib.rs").contains("pub use itoa;"));
        assert!(read("host/Cargo.toml").contains("dynamic = [\"dep:wrapped-app-deps\"]"));
        assert!(read("logic/Cargo.toml").contains("dynamic = [\"dep:wrapped-app-deps\"]"));
        assert!(read("logic/src/lib.rs").contains("use wrapped_app_deps as _;"));
        assert!(read("Cargo.toml").contains("\"wrapped-app-deps\""));
    }
}
