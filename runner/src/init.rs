//! `dylib-dev init`: turns an existing binary package into a dylib-dev project without losing
//! anything; `dylib-dev deinit` undoes it, byte for byte for every file nobody edited since.
//!
//! `init`, once nothing it could refuse is left:
//!
//! 1. journals what it is about to change in `<package>-logic/init-record.json` (the original
//!    bytes of each file it modifies, the files it creates, `Cargo.lock` as it was);
//! 2. creates the logic crate `<package>-logic` (a `cdylib`, where `wrap` puts `<package>-deps`,
//!    depending on the crates it wraps) and the runtime copy `dylib-dev-runtime/` at the
//!    workspace root ([`crate::templates`]; a dependency, excluded from the workspace);
//! 3. adds the runtime to the host's dependencies, the logic crate to the workspace members and
//!    `[workspace.metadata.dylib-dev]` (host, logic);
//! 4. wraps the heavy dependencies with [`crate::wrap`] (the crates named, or those `--auto`
//!    picks), which also links the logic crate to the deps dylib; that part is in wrap's own
//!    unwrap record;
//! 5. prints what is left for the user: moving functions into the logic crate and declaring them
//!    in `hot_module!` (see [`scan`]). It never moves code.
//!
//! `deinit` runs `unwrap` when `init` did the wrapping (a wrap from before `init` stays), then
//! restores each modified file: from the journal when it still holds what `init` wrote, otherwise
//! by removing only `init`'s additions and keeping the user's edits. Created files go unless they
//! were edited since (their BLAKE3 hash is in the journal), and `Cargo.lock` gets its old bytes.
pub mod scan;

use crate::commands::{
    args::PackageArgs, deinit::DeinitArgs, init::InitArgs, unwrap::UnwrapArgs, wrap::WrapArgs,
};
use crate::manifest::{self, Manifest};
use crate::project::Project;
use crate::record::{Record, TouchedFile};
use crate::templates::{self, RUNTIME_DIR, RUNTIME_PACKAGE};
use crate::wrap::{self, DepTable, Layout, relative_path};
use crate::{fsutil, heavy, ui};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

/// File name of the journal inside the logic crate.
pub const INIT_RECORD_FILE: &str = "init-record.json";

/// Format version of the journal.
const FORMAT: u32 = 1;

/// What `init` and `deinit` refuse; nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The package has no binary to become the host.
    #[error(
        "package `{package}` has no binary target, so it cannot be the host\n  help: `dylib-dev init` turns a binary package into a host; pick one with -p <name>"
    )]
    NoBin { package: String },
    /// Several binaries and no `default-run`.
    #[error(
        "package `{package}` has several binaries ({bins}) and no `default-run`\n  help: set `default-run = \"<bin>\"` in its [package]: that binary becomes the host"
    )]
    AmbiguousBin { package: String, bins: String },
    /// `init` ran here before.
    #[error(
        "`{package}` is set up already: `{record}` exists\n  help: run `dylib-dev watch`; `dylib-dev deinit` undoes `init`"
    )]
    AlreadyInitialized { package: String, record: PathBuf },
    /// A dylib-dev project already (configured by hand or by `new`).
    #[error(
        "`{manifest}` already {what}: this is a dylib-dev project already\n  help: run `dylib-dev watch`"
    )]
    AlreadyConfigured { manifest: PathBuf, what: String },
    /// Something is where `init` puts a crate.
    #[error(
        "`{path}` already exists\n  help: `dylib-dev init` puts the {what} there; move it away first"
    )]
    Taken { path: PathBuf, what: &'static str },
    /// A member already has the logic crate's name.
    #[error(
        "the workspace already has a package named `{name}`, the name `dylib-dev init` gives the logic crate\n  help: rename that package first"
    )]
    NameTaken { name: String },
    /// `deinit` without `init`.
    #[error(
        "`{package}` was not set up by `dylib-dev init`: there is no `{record}`\n  help: nothing to undo; `dylib-dev unwrap` undoes a `dylib-dev wrap`"
    )]
    NotInitialized { package: String, record: PathBuf },
}

/// The journal: everything `deinit` needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InitRecord {
    /// Layout version of this file.
    pub format: u32,
    /// The package that became the host.
    pub package: String,
    /// The logic crate `init` created.
    pub logic_crate: String,
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
    fn load(path: &Path) -> anyhow::Result<Option<InitRecord>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("failed to read `{}`", path.display()));
            }
        };
        let record: InitRecord = serde_json::from_str(&text).with_context(|| {
            format!(
                "`{}` is not a dylib-dev init record; restore the project from version control",
                path.display()
            )
        })?;
        anyhow::ensure!(
            record.format == FORMAT,
            "`{}` was written by another dylib-dev version (format {})",
            path.display(),
            record.format
        );
        Ok(Some(record))
    }

    fn save(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self).expect("a record always serializes");
        text.push('\n');
        fsutil::write_atomic(path, text.as_bytes())
            .with_context(|| format!("failed to write `{}`", path.display()))
    }
}

/// Where everything goes, for the selected package.
#[derive(Debug, Clone)]
pub struct Places {
    /// The package that becomes (or became) the host.
    pub package: String,
    /// The workspace root.
    pub root: PathBuf,
    /// The package's directory.
    pub package_dir: PathBuf,
    /// The package's manifest.
    pub host_manifest: PathBuf,
    /// The workspace's root manifest (the same file for a lone package).
    pub root_manifest: PathBuf,
    /// `<package>-logic`.
    pub logic_crate: String,
    /// `<package>_logic`: the library `hot_module!` names.
    pub logic_lib: String,
    /// Where the logic crate goes: where `wrap` puts the deps crate, under the logic crate's name.
    pub logic_dir: PathBuf,
    /// The runtime copy.
    pub runtime_dir: PathBuf,
    /// The journal.
    pub record: PathBuf,
    /// `Cargo.lock`.
    pub lockfile: PathBuf,
    /// The deps crate's place, from [`Layout`].
    pub layout: Layout,
}

impl Places {
    /// The places for the project's selected package.
    pub fn of(project: &Project) -> Places {
        let layout = Layout::of(project);
        let package = layout.package.clone();
        let logic_crate = format!("{package}-logic");
        let logic_dir = layout.deps_dir.with_file_name(&logic_crate);
        let root = layout.workspace_root.clone();
        Places {
            logic_lib: logic_crate.replace('-', "_"),
            record: logic_dir.join(INIT_RECORD_FILE),
            runtime_dir: root.join(RUNTIME_DIR),
            lockfile: root.join("Cargo.lock"),
            root_manifest: root.join("Cargo.toml"),
            host_manifest: project.package().manifest_path.clone().into_std_path_buf(),
            package_dir: layout.package_dir.clone(),
            package,
            logic_crate,
            logic_dir,
            root,
            layout,
        }
    }

    /// `path` relative to the workspace root, `/`-separated, for manifests and the journal.
    fn rel(&self, path: &Path) -> String {
        relative_path(path, &self.root)
            .to_string_lossy()
            .replace('\\', "/")
    }
}

/// Runs `dylib-dev init`.
pub fn command(args: &InitArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let light = Project::load(&args.package.selector(), false)?;
    // Held through the `wrap` inside (the lock is re-entrant within one process).
    let _lock = crate::lock::WorkspaceLock::acquire(light.workspace_root().as_std_path(), quiet)?;
    let places = Places::of(&light);
    let bin = host_bin(light.package())?;
    refuse_if_set_up(&light, &places)?;
    let host = Manifest::read(&places.host_manifest)?;
    for name in &args.crates {
        wrap::find_dependency(&host.doc, name, &places.package, &host.path)?;
    }
    let lockfile_before = std::fs::read_to_string(&places.lockfile).ok();
    // Resolving the graph may create Cargo.lock; a refused init must leave nothing behind.
    let result = Project::load(&args.package.selector(), true)
        .map_err(anyhow::Error::from)
        .and_then(|project| {
            init(
                args,
                &project,
                &places,
                host,
                lockfile_before.clone(),
                quiet,
            )
        });
    if result.is_err() && lockfile_before.is_none() {
        let _ = std::fs::remove_file(&places.lockfile);
    }
    let names = result?;
    if !quiet {
        ui::status(
            "Initialized",
            format!(
                "`{}` as the host of a dylib-dev project: logic crate `{}` in {}/, runtime copy in {}/",
                places.package,
                places.logic_crate,
                places.rel(&places.logic_dir),
                places.rel(&places.runtime_dir),
            ),
        );
        if names.is_empty() {
            ui::note(
                "nothing was wrapped; `dylib-dev wrap <crate>...` puts heavy dependencies into one dylib later",
            );
        } else {
            ui::status(
                "Wrapped",
                format!(
                    "{} into `{}`, linked by the host and the logic crate",
                    names.join(", "),
                    places.layout.deps_crate
                ),
            );
        }
    }
    let main_rs = std::fs::read_to_string(&bin).unwrap_or_default();
    print!("{}", guidance(&places, &bin, &main_rs, &names));
    Ok(ExitCode::SUCCESS)
}

/// Everything after the checks; returns the crates it wrapped.
fn init(
    args: &InitArgs,
    project: &Project,
    places: &Places,
    host: Manifest,
    lockfile_before: Option<String>,
    quiet: bool,
) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = if args.crates.is_empty() {
        let choices = heavy::assess(project, &host.doc, args.min_source_kib * 1024);
        if !quiet {
            heavy::print(&choices, args.min_source_kib);
        }
        choices
            .into_iter()
            .filter(|c| c.wrap)
            .map(|c| c.key)
            .collect()
    } else {
        args.crates.clone()
    };
    let deps_before = Record::load(&places.layout.deps_dir)?.is_some();
    if !names.is_empty() {
        // Everything `wrap` would refuse, asked before anything is written.
        let wrap_plan = wrap::plan(project, host.clone(), &names, lockfile_before.is_some())?;
        fsutil::check_writable(wrap_plan.changed_files(), "init")?;
    }
    let (generated, touched) = plan(project, places, host, &names)?;
    fsutil::check_writable(
        touched
            .iter()
            .filter(|(_, before, after)| before != after)
            .map(|(path, _, _)| path.as_path()),
        "init",
    )?;

    let mut record = InitRecord {
        format: FORMAT,
        package: places.package.clone(),
        logic_crate: places.logic_crate.clone(),
        wrapped: !deps_before && !names.is_empty(),
        lockfile_before: lockfile_before.clone(),
        lockfile_after: None,
        generated: generated
            .iter()
            .map(|(path, _)| GeneratedFile {
                path: PathBuf::from(places.rel(path)),
                hash: None,
            })
            .collect(),
        touched: touched
            .iter()
            .map(|(path, before, after)| TouchedFile {
                path: PathBuf::from(places.rel(path)),
                original: before.clone(),
                ours: after.clone(),
            })
            .collect(),
    };
    std::fs::create_dir_all(&places.logic_dir)
        .with_context(|| format!("failed to create `{}`", places.logic_dir.display()))?;
    record.save(&places.record)?;
    let applied = apply(places, &mut record, &generated, &touched).and_then(|()| {
        if names.is_empty() {
            return Ok(());
        }
        let args = WrapArgs {
            package: PackageArgs {
                manifest_path: Some(places.host_manifest.clone()),
                package: Some(places.package.clone()),
            },
            crates: names.clone(),
            auto: false,
            min_source_kib: args.min_source_kib,
            dry_run: false,
        };
        wrap::command(&args, true).map(|_| ())
    });
    if let Err(err) = applied {
        // Put everything back as it was; the error is what the user needs to see.
        if record.wrapped && Record::load(&places.layout.deps_dir).is_ok_and(|r| r.is_some()) {
            let unwrap = UnwrapArgs {
                package: PackageArgs {
                    manifest_path: Some(places.host_manifest.clone()),
                    package: Some(places.package.clone()),
                },
            };
            let _ = crate::unwrap::command(&unwrap, true);
        }
        let _ = undo(places, &record);
        restore_lockfile(places, &lockfile_before);
        return Err(err);
    }
    // cargo would add the new crates to Cargo.lock on its next run; do it now, so `deinit`
    // knows exactly what the lock file looked like when `init` finished.
    if !crate::project::settle_lockfile(&places.root_manifest) {
        ui::warn("could not update Cargo.lock; the next cargo command will");
    }
    record.lockfile_after = dylib_dev_runtime::hash_file(&places.lockfile).ok();
    record.save(&places.record)?;
    Ok(names)
}

/// The host's binary: its crate root.
fn host_bin(package: &cargo_metadata::Package) -> Result<PathBuf, InitError> {
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

/// Refuses a project that already has what `init` would add.
fn refuse_if_set_up(project: &Project, places: &Places) -> anyhow::Result<()> {
    if places.record.exists() {
        return Err(InitError::AlreadyInitialized {
            package: places.package.clone(),
            record: places.record.clone(),
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
    if host
        .doc
        .get("dependencies")
        .and_then(|d| d.get(RUNTIME_PACKAGE))
        .is_some()
    {
        return Err(InitError::AlreadyConfigured {
            manifest: places.host_manifest.clone(),
            what: format!("depends on `{RUNTIME_PACKAGE}`"),
        }
        .into());
    }
    if project.member(&places.logic_crate).is_some() {
        return Err(InitError::NameTaken {
            name: places.logic_crate.clone(),
        }
        .into());
    }
    for (dir, what) in [
        (&places.logic_dir, "logic crate"),
        (&places.runtime_dir, "runtime copy"),
    ] {
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

/// A file to create: (absolute path, bytes).
type NewFile = (PathBuf, Vec<u8>);
/// A file to modify: (absolute path, bytes before, bytes after).
type Edit = (PathBuf, String, String);

/// Every file `init` creates and modifies (before `wrap`), computed before anything is written.
fn plan(
    project: &Project,
    places: &Places,
    mut host: Manifest,
    wrapped: &[String],
) -> anyhow::Result<(Vec<NewFile>, Vec<Edit>)> {
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
    wrap::register_member(
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

/// The runtime copy out of the workspace, and `[workspace.metadata.dylib-dev]`.
fn configure_workspace(doc: &mut DocumentMut, places: &Places) {
    let workspace = manifest::table_mut(doc.as_table_mut(), "workspace");
    let exclude = workspace
        .entry("exclude")
        .or_insert_with(|| toml_edit::value(Array::new()));
    if let Some(array) = exclude.as_array_mut() {
        manifest::push_formatted(array, &places.rel(&places.runtime_dir));
    }
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
) -> anyhow::Result<String> {
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
        let found = wrap::find_dependency(host, name, &places.package, &places.host_manifest)?;
        for entry in found.entries.iter().filter(|e| e.table == DepTable::Normal) {
            let value =
                wrap::deps_entry(&entry.item, false, &places.package_dir, &places.logic_dir);
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
fn apply(
    places: &Places,
    record: &mut InitRecord,
    generated: &[NewFile],
    touched: &[Edit],
) -> anyhow::Result<()> {
    for ((path, bytes), entry) in generated.iter().zip(record.generated.iter_mut()) {
        fsutil::write_new(path, bytes)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        entry.hash = Some(hash(path)?);
    }
    record.save(&places.record)?;
    for (path, _, after) in touched {
        fsutil::write_atomic(path, after.as_bytes())
            .with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    Ok(())
}

fn hash(path: &Path) -> anyhow::Result<String> {
    dylib_dev_runtime::hash_file(path)
        .with_context(|| format!("failed to read `{}`", path.display()))
}

/// What `deinit` did with each file.
#[derive(Debug, Default)]
struct Undone {
    restored: Vec<String>,
    kept_edits: Vec<String>,
    left: Vec<String>,
}

/// Runs `dylib-dev deinit`.
pub fn deinit_command(args: &DeinitArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let project = Project::load(&args.package.selector(), false)?;
    let _lock = crate::lock::WorkspaceLock::acquire(project.workspace_root().as_std_path(), quiet)?;
    let places = Places::of(&project);
    let Some(record) = InitRecord::load(&places.record)? else {
        return Err(InitError::NotInitialized {
            package: places.package.clone(),
            record: places.record.clone(),
        }
        .into());
    };
    // Every file this run restores must be writable, checked before the first write.
    let mut to_write = crate::record::needing_restore(&places.root, &record.touched);
    if record.wrapped
        && let Some(deps) = Record::load(&places.layout.deps_dir)?
    {
        to_write.extend(crate::record::needing_restore(&places.root, &deps.touched));
    }
    fsutil::check_writable(to_write.iter().map(PathBuf::as_path), "deinit")?;
    let lock_untouched =
        dylib_dev_runtime::hash_file(&places.lockfile).ok() == record.lockfile_after;
    match Record::load(&places.layout.deps_dir)? {
        Some(_) if record.wrapped => {
            let unwrap = UnwrapArgs {
                package: PackageArgs {
                    manifest_path: Some(places.host_manifest.clone()),
                    package: Some(places.package.clone()),
                },
            };
            crate::unwrap::command(&unwrap, quiet)?;
        }
        Some(deps) => release_logic_from_wrap(&places, deps)?,
        None => {}
    }
    let undone = undo(&places, &record)?;
    let mut kept_lock = false;
    if lock_untouched {
        restore_lockfile(&places, &record.lockfile_before);
    } else {
        // Dependencies changed since: let cargo drop what the restored manifests no longer need.
        // The file stays even if `init` created it: it now holds the user's resolution too.
        if !crate::project::settle_lockfile(&places.root_manifest) {
            ui::warn("could not update Cargo.lock; the next cargo command will");
        }
        kept_lock = record.lockfile_before.is_none() && places.lockfile.exists();
    }
    if !quiet {
        let what = if undone.left.is_empty() {
            format!("removed `{}` and the runtime copy", places.logic_crate)
        } else {
            "removed every file it created that nobody edited since".to_string()
        };
        ui::status(
            "Undid",
            format!("`dylib-dev init` of `{}`: {what}", places.package),
        );
        if !undone.restored.is_empty() {
            ui::status("Restored", undone.restored.join(", "));
        }
        for file in &undone.kept_edits {
            ui::warn(format!(
                "`{file}` was edited after `init`: kept your edits and removed only dylib-dev's additions"
            ));
        }
        for file in &undone.left {
            ui::warn(format!(
                "`{file}` was edited or added after `init`: left it in place"
            ));
        }
        if kept_lock {
            ui::note(
                "kept `Cargo.lock`: `init` created it, but it changed since (`cargo add`, `cargo update`, ...); only dylib-dev's crates were taken out of it",
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The project was wrapped before `init`: that wrap stays, but the logic crate leaves its record.
fn release_logic_from_wrap(places: &Places, mut deps: Record) -> anyhow::Result<()> {
    let logic = PathBuf::from(places.rel(&places.logic_dir));
    for touched in deps.touched.iter().filter(|t| t.path.starts_with(&logic)) {
        let path = places.root.join(&touched.path);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(touched.ours.as_str()) {
            fsutil::write_atomic(&path, touched.original.as_bytes())
                .with_context(|| format!("failed to write `{}`", path.display()))?;
        }
    }
    deps.touched.retain(|t| !t.path.starts_with(&logic));
    deps.save(&places.layout.deps_dir)?;
    Ok(())
}

/// Restores the modified files and removes the created ones (see the module docs).
fn undo(places: &Places, record: &InitRecord) -> anyhow::Result<Undone> {
    let mut undone = Undone::default();
    for touched in &record.touched {
        let path = places.root.join(&touched.path);
        let Ok(current) = std::fs::read_to_string(&path) else {
            continue; // deleted since: nothing of ours is left in it
        };
        if current == touched.original {
            continue;
        }
        let write = |text: &str| {
            fsutil::write_atomic(&path, text.as_bytes())
                .with_context(|| format!("failed to write `{}`", path.display()))
        };
        let name = touched.path.display().to_string();
        if current == touched.ours {
            write(&touched.original)?;
            undone.restored.push(name);
            continue;
        }
        let mut manifest = Manifest::parse(&path, current.clone())?;
        remove_additions(&mut manifest.doc, places, &touched.original);
        let surgical = manifest.render();
        if surgical != current {
            write(&surgical)?;
        }
        if surgical == touched.original {
            undone.restored.push(name);
        } else {
            undone.kept_edits.push(name);
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
            std::fs::remove_file(&path)
                .with_context(|| format!("failed to remove `{}`", path.display()))?;
        } else {
            undone.left.push(file.path.display().to_string());
        }
        dirs.extend(path.ancestors().skip(1).map(Path::to_path_buf));
    }
    let _ = std::fs::remove_file(&places.record);
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
    if !had(&["dependencies", RUNTIME_PACKAGE])
        && let Some(deps) = doc
            .get_mut("dependencies")
            .and_then(Item::as_table_like_mut)
    {
        deps.remove(RUNTIME_PACKAGE);
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
fn restore_lockfile(places: &Places, before: &Option<String>) {
    let result = match before {
        Some(text) => fsutil::write_atomic(&places.lockfile, text.as_bytes()),
        None => match std::fs::remove_file(&places.lockfile) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    };
    if let Err(e) = result {
        ui::warn(format!(
            "could not restore `{}`: {e}",
            places.lockfile.display()
        ));
    }
}

/// What is left for the user after `init`, exactly: which functions to move and how to call them.
pub fn guidance(places: &Places, bin: &Path, main_rs: &str, wrapped: &[String]) -> String {
    let cwd = std::env::current_dir().unwrap_or_else(|_| places.root.clone());
    let show = |p: &Path| relative_path(p, &cwd).display().to_string();
    let main = show(bin);
    let lib = show(&places.logic_dir.join("src").join("lib.rs"));
    let logic_manifest = show(&places.logic_dir.join("Cargo.toml"));
    let candidates = scan::scan(main_rs);
    let movable: Vec<&scan::Candidate> = candidates
        .iter()
        .filter(|c| c.declaration.is_some())
        .collect();
    let mut out = String::new();
    out.push_str("What is left for you (dylib-dev moves no code):\n\n");
    out.push_str(&format!(
        "1. Move the functions you want to change while the program runs from {main}\n   \
         into {lib}, each as `#[unsafe(no_mangle)] pub fn`.\n"
    ));
    if candidates.is_empty() {
        out.push_str(&format!(
            "   {main} has no top-level function besides `main`: first put the code you iterate\n   \
             on into a function (e.g. `fn step(state: &mut State) -> String`), then move that.\n\n"
        ));
    } else {
        out.push_str(&format!("   The top-level functions of {main}:\n\n"));
        for c in &candidates {
            let note = match &c.problem {
                Some(problem) => format!("    <- not as it is: {problem}"),
                None => String::new(),
            };
            out.push_str(&format!("       {}{note}\n", c.signature));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "2. Declare them in {main} and call each as `logic::<name>(...)`:\n\n"
    ));
    let declarations: Vec<String> = if movable.is_empty() {
        vec!["pub fn step(state: &mut State) -> String;".to_string()]
    } else {
        movable
            .iter()
            .filter_map(|c| c.declaration.clone())
            .collect()
    };
    out.push_str(&format!(
        "       dylib_dev_runtime::hot_module! {{\n           mod logic(\"{}\") {{\n               unsafe extern \"Rust\" {{\n",
        places.logic_lib
    ));
    for declaration in &declarations {
        out.push_str(&format!("                   {declaration}\n"));
    }
    out.push_str("               }\n           }\n       }\n\n");
    let mut host_types: Vec<&str> = candidates
        .iter()
        .flat_map(|c| c.host_types.iter().map(String::as_str))
        .collect();
    host_types.sort_unstable();
    host_types.dedup();
    let mut step = 3;
    if !host_types.is_empty() {
        out.push_str(&format!(
            "{step}. {} defined in {main}: host and logic must share one definition, so move\n   \
             {} into a library crate both depend on (the logic cannot depend on a binary).\n",
            host_types
                .iter()
                .map(|t| format!("`{t}` is"))
                .collect::<Vec<_>>()
                .join(", "),
            if host_types.len() == 1 { "it" } else { "them" }
        ));
        step += 1;
    }
    let deps = if wrapped.is_empty() {
        String::new()
    } else {
        format!(
            "\n   It already depends on {}, linked from the deps dylib.",
            wrapped.join(", ")
        )
    };
    out.push_str(&format!(
        "{step}. Add what the moved code uses to {logic_manifest}.{deps}\n\n"
    ));
    out.push_str(&format!(
        "Then run `dylib-dev watch` and edit {lib}:\n\
         each save is swapped into the running host. `dylib-dev deinit` undoes `init`\n\
         (move your code back first to get every file back as it was).\n"
    ));
    out
}
