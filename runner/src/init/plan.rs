//! What `init` writes before `wrap`: checks first, then every file computed, then the writes.
use super::places::Places;
use super::report::{InitError, InitFailed};
use crate::deps_crate::{self, DepTable, relative_path};
use crate::fsutil;
use crate::journal::InitRecord;
use crate::manifest::{self, Manifest};
use crate::project::Project;
use crate::templates::{self, RUNTIME_PACKAGE};
use std::path::{Path, PathBuf};
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

/// The host's binary: its crate root.
pub fn host_bin(package: &cargo_metadata::Package) -> Result<PathBuf, InitError> {
    let bins: Vec<&cargo_metadata::Target> =
        package.targets.iter().filter(|t| t.is_bin()).collect();
    let chosen = match (bins.as_slice(), &package.default_run) {
        ([], _) => None,
        ([one], _) => Some(*one),
        (many, Some(name)) => many.iter().copied().find(|t| &t.name == name),
        (many, None) => {
            return Err(InitError::AmbiguousBin {
                package: package.name.to_string(),
                bins: many
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };
    chosen
        .map(|t| t.src_path.clone().into_std_path_buf())
        .ok_or_else(|| InitError::NoBin {
            package: package.name.to_string(),
        })
}

/// Refuses a project that already has what `init` would add (either route).
pub fn refuse_if_set_up(project: &Project, places: &Places, split: bool) -> Result<(), InitFailed> {
    if let Some(record) = places.existing_record() {
        return Err(InitError::AlreadyInitialized {
            package: places.package.clone(),
            record: record.to_path_buf(),
        }
        .into());
    }
    let root = Manifest::read(&places.root_manifest)?;
    if root
        .doc
        .get("workspace")
        .and_then(|w| w.get("metadata"))
        .and_then(|m| m.get("dylib-dev"))
        .is_some()
    {
        return Err(InitError::AlreadyConfigured {
            manifest: places.root_manifest.clone(),
            what: "has [workspace.metadata.dylib-dev]".into(),
        }
        .into());
    }
    let host = Manifest::read(&places.host_manifest)?;
    if let Some(key) = runtime_dependency_key(&host.doc) {
        return Err(InitError::AlreadyConfigured {
            manifest: places.host_manifest.clone(),
            what: if key == RUNTIME_PACKAGE {
                format!("depends on `{RUNTIME_PACKAGE}`")
            } else {
                format!("depends on `{RUNTIME_PACKAGE}` (as `{key}`)")
            },
        }
        .into());
    }
    if split && project.member(&places.logic_crate).is_some() {
        return Err(InitError::NameTaken {
            name: places.logic_crate.clone(),
        }
        .into());
    }
    let mut dirs = vec![(&places.runtime_dir, "runtime copy")];
    if split {
        dirs.insert(0, (&places.logic_dir, "logic crate"));
    }
    for (dir, what) in dirs {
        if dir.exists() {
            return Err(InitError::Taken {
                path: dir.clone(),
                what,
            }
            .into());
        }
    }
    Ok(())
}

/// The key under which `[dependencies]` names the runtime (its own name, or any other name with
/// `package = "dylib-dev-runtime"`), if it does.
pub fn runtime_dependency_key(doc: &DocumentMut) -> Option<String> {
    let deps = doc.get("dependencies")?.as_table_like()?;
    deps.iter()
        .find(|(key, item)| {
            *key == RUNTIME_PACKAGE
                || item
                    .as_table_like()
                    .and_then(|t| t.get("package"))
                    .and_then(Item::as_str)
                    == Some(RUNTIME_PACKAGE)
        })
        .map(|(key, _)| key.to_string())
}

/// The name the in-place route gives the runtime in the host: `#[dylib_dev::hot]`.
pub const HOT_DEPENDENCY: &str = "dylib_dev";

/// A file to create: (absolute path, bytes).
pub type NewFile = (PathBuf, Vec<u8>);
/// A file to modify: (absolute path, bytes before, bytes after).
pub type Edit = (PathBuf, String, String);

/// Every file `init` creates and modifies (before `wrap`), computed before anything is written:
/// with `split`, the logic crate and `[workspace.metadata.dylib-dev]` too.
pub fn plan(
    project: &Project,
    places: &Places,
    host: Manifest,
    wrapped: &[String],
    split: bool,
) -> Result<(Vec<NewFile>, Vec<Edit>), InitFailed> {
    if split {
        plan_split(project, places, host, wrapped)
    } else {
        plan_in_place(places, host, !wrapped.is_empty())
    }
}

/// The in-place route: the runtime copy and the host's `dylib_dev` dependency, nothing else
/// (the runtime copy leaves the workspace when there is one, or when `wrap` will make one).
fn plan_in_place(
    places: &Places,
    mut host: Manifest,
    wrapping: bool,
) -> Result<(Vec<NewFile>, Vec<Edit>), InitFailed> {
    let generated: Vec<NewFile> = templates::runtime_files()
        .into_iter()
        .map(|(rel, bytes)| (places.runtime_dir.join(rel), bytes))
        .collect();
    add_hot_dependency(&mut host.doc, places);
    let mut touched = Vec::new();
    let same = places.host_manifest == places.root_manifest;
    let mut root = if same {
        host
    } else {
        touched.push((
            places.host_manifest.clone(),
            host.original.clone(),
            host.render(),
        ));
        Manifest::read(&places.root_manifest)?
    };
    if wrapping || root.doc.get("workspace").is_some() {
        exclude_runtime(&mut root.doc, places);
    }
    if root.render() != root.original {
        touched.insert(0, (root.path.clone(), root.original.clone(), root.render()));
    }
    Ok((generated, touched))
}

/// `dylib_dev = { package = "dylib-dev-runtime", path = "...", version = "=X" }` in the host's
/// `[dependencies]`, for `#[dylib_dev::hot]`.
fn add_hot_dependency(doc: &mut DocumentMut, places: &Places) {
    let mut entry = InlineTable::new();
    entry.insert("package", Value::from(RUNTIME_PACKAGE));
    let path = relative_path(&places.runtime_dir, &places.package_dir);
    entry.insert(
        "path",
        Value::from(path.to_string_lossy().replace('\\', "/")),
    );
    entry.insert(
        "version",
        Value::from(format!("={}", templates::runtime_version())),
    );
    let deps = manifest::table_mut(doc.as_table_mut(), "dependencies");
    deps.insert(HOT_DEPENDENCY, toml_edit::value(entry));
    if let Some(mut key) = deps.key_mut(HOT_DEPENDENCY) {
        key.leaf_decor_mut().set_prefix(
            "# Added by `dylib-dev init`: `#[dylib_dev::hot]` functions are patched into the running\n\
             # program by `dylib-dev watch`. A copy of the runtime this dylib-dev speaks to; a later\n\
             # release depends on it from crates.io.\n",
        );
    }
}

/// The split route: the logic crate, the runtime copy, `[workspace.metadata.dylib-dev]`.
fn plan_split(
    project: &Project,
    places: &Places,
    mut host: Manifest,
    wrapped: &[String],
) -> Result<(Vec<NewFile>, Vec<Edit>), InitFailed> {
    let pkg = project.package();
    let mut generated: Vec<NewFile> = vec![
        (
            places.logic_dir.join("Cargo.toml"),
            logic_manifest(places, &pkg.edition.to_string(), &host.doc, wrapped)?.into_bytes(),
        ),
        (
            places.logic_dir.join("src").join("lib.rs"),
            logic_lib(places).into_bytes(),
        ),
    ];
    for (rel, bytes) in templates::runtime_files() {
        generated.push((places.runtime_dir.join(rel), bytes));
    }

    add_runtime_dependency(&mut host.doc, places);
    let mut touched = Vec::new();
    let same = places.host_manifest == places.root_manifest;
    let mut root = if same {
        host
    } else {
        touched.push((
            places.host_manifest.clone(),
            host.original.clone(),
            host.render(),
        ));
        Manifest::read(&places.root_manifest)?
    };
    deps_crate::register_member(
        &mut root.doc,
        &root.path,
        &places.logic_dir,
        &places.root,
        same,
    )?;
    configure_workspace(&mut root.doc, places);
    touched.insert(0, (root.path.clone(), root.original.clone(), root.render()));
    Ok((generated, touched))
}

/// `dylib-dev-runtime = { path = "...", version = "=X" }` in the host's `[dependencies]`.
fn add_runtime_dependency(doc: &mut DocumentMut, places: &Places) {
    let mut entry = InlineTable::new();
    let path = relative_path(&places.runtime_dir, &places.package_dir);
    entry.insert(
        "path",
        Value::from(path.to_string_lossy().replace('\\', "/")),
    );
    entry.insert(
        "version",
        Value::from(format!("={}", templates::runtime_version())),
    );
    let deps = manifest::table_mut(doc.as_table_mut(), "dependencies");
    deps.insert(RUNTIME_PACKAGE, toml_edit::value(entry));
    if let Some(mut key) = deps.key_mut(RUNTIME_PACKAGE) {
        key.leaf_decor_mut().set_prefix(
            "# Added by `dylib-dev init`: loads the logic crate and swaps it on every save. A copy of\n\
             # the runtime this dylib-dev speaks to; a later release depends on it from crates.io.\n",
        );
    }
}

/// The runtime copy out of the workspace (`[workspace] exclude`).
fn exclude_runtime(doc: &mut DocumentMut, places: &Places) {
    let workspace = manifest::table_mut(doc.as_table_mut(), "workspace");
    let exclude = workspace
        .entry("exclude")
        .or_insert_with(|| toml_edit::value(Array::new()));
    if let Some(array) = exclude.as_array_mut() {
        manifest::push_formatted(array, &places.rel(&places.runtime_dir));
    }
}

/// The runtime copy out of the workspace, and `[workspace.metadata.dylib-dev]`.
fn configure_workspace(doc: &mut DocumentMut, places: &Places) {
    exclude_runtime(doc, places);
    let workspace = manifest::table_mut(doc.as_table_mut(), "workspace");
    let metadata = workspace.entry("metadata").or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    if let Some(metadata) = metadata.as_table_mut() {
        let ours = manifest::table_mut(metadata, "dylib-dev");
        ours.decor_mut().set_prefix(
            "\n# What `dylib-dev watch` runs (added by `dylib-dev init`; `dylib-dev deinit` removes it).\n",
        );
        ours.insert("host", toml_edit::value(&places.package));
        ours.insert(
            "logic",
            toml_edit::value(Array::from_iter([places.logic_crate.as_str()])),
        );
    }
}

/// The logic crate's manifest: a `cdylib` with the wrapped crates as the host has them.
fn logic_manifest(
    places: &Places,
    edition: &str,
    host: &DocumentMut,
    wrapped: &[String],
) -> Result<String, InitFailed> {
    let mut doc = DocumentMut::new();
    doc.decor_mut().set_prefix(format!(
        "# The reloadable logic of `{}`, added by `dylib-dev init`: `dylib-dev watch` rebuilds it on\n\
         # every save and swaps it into the running host. Add what the code you move here needs.\n",
        places.package
    ));
    let package = manifest::table_mut(doc.as_table_mut(), "package");
    package.insert("name", toml_edit::value(&places.logic_crate));
    package.insert("version", toml_edit::value("0.1.0"));
    package.insert("edition", toml_edit::value(edition));
    package.insert("publish", toml_edit::value(false));
    let lib = manifest::table_mut(doc.as_table_mut(), "lib");
    lib.insert("crate-type", toml_edit::value(Array::from_iter(["cdylib"])));
    let deps = manifest::table_mut(doc.as_table_mut(), "dependencies");
    for name in wrapped {
        let found =
            crate::wrap::find_dependency(host, name, &places.package, &places.host_manifest)?;
        for entry in found.entries.iter().filter(|e| e.table == DepTable::Normal) {
            let value =
                deps_crate::deps_entry(&entry.item, false, &places.package_dir, &places.logic_dir);
            deps.insert(&found.key, toml_edit::value(value));
        }
    }
    Ok(doc.to_string())
}

fn logic_lib(places: &Places) -> String {
    format!(
        "//! The reloadable logic of `{}`, added by `dylib-dev init`. `dylib-dev watch` rebuilds this\n\
         //! crate on every save and swaps it into the running host: move here the functions you\n\
         //! iterate on, each as `#[unsafe(no_mangle)] pub fn`, and declare them in the host's\n\
         //! `dylib_dev_runtime::hot_module!` (`dylib-dev init` printed how).\n",
        places.package
    )
}

/// Writes the planned files, journalling the hash of each created one.
pub fn apply(
    record_path: &Path,
    record: &mut InitRecord,
    generated: &[NewFile],
    touched: &[Edit],
) -> Result<(), InitFailed> {
    for ((path, bytes), entry) in generated.iter().zip(record.generated.iter_mut()) {
        fsutil::write_new(path, bytes).map_err(crate::fsutil::file_error("write", path))?;
        entry.hash = Some(hash(path)?);
    }
    record.save(record_path)?;
    for (path, _, after) in touched {
        fsutil::write_atomic(path, after.as_bytes())
            .map_err(crate::fsutil::file_error("write", path))?;
    }
    Ok(())
}

fn hash(path: &Path) -> Result<String, InitFailed> {
    Ok(dylib_dev_runtime::hash_file(path).map_err(crate::fsutil::file_error("read", path))?)
}
