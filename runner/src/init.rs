//! `dylib-dev init`: turns an existing binary package into a dylib-dev project without losing
//! anything; `dylib-dev deinit` undoes it, byte for byte for every file nobody edited since.
//!
//! `init` has two routes. In place (the default) the host's functions become hot where they are,
//! with `#[dylib_dev::hot]`; `--split` is the split layout, a logic crate next to the host.
//! `init`, once nothing it could refuse is left:
//!
//! 1. journals what it is about to change in `init-record.json` (the original bytes of each file it
//!    modifies, the files it creates, `Cargo.lock` as it was): in place in the runtime copy
//!    `dylib-dev-runtime/`, with `--split` in the logic crate `<package>-logic/`;
//! 2. creates the runtime copy `dylib-dev-runtime/` at the workspace root ([`crate::templates`]; a
//!    dependency, excluded from the workspace), and with `--split` the logic crate (a `cdylib`,
//!    where `wrap` puts `<package>-deps`, depending on the crates it wraps);
//! 3. adds the runtime to the host's dependencies (in place as `dylib_dev`, for
//!    `#[dylib_dev::hot]`); with `--split` also the logic crate to the workspace members and
//!    `[workspace.metadata.dylib-dev]` (host, logic);
//! 4. wraps the heavy dependencies with [`crate::wrap`] (the crates named, or those `--auto`
//!    picks), which also links the logic crate (if any) to the deps dylib; that part is in wrap's
//!    own unwrap record;
//! 5. prints what is left for the user (see [`scan`]): in place, which functions of `main.rs` can
//!    take `#[dylib_dev::hot]`; with `--split`, moving functions into the logic crate and
//!    declaring them in `hot_module!`. It never edits code.
//!
//! `deinit` runs `unwrap` when `init` did the wrapping (a wrap from before `init` stays), then
//! restores each modified file: from the journal when it still holds what `init` wrote, otherwise
//! by removing only `init`'s additions and keeping the user's edits. Created files go unless they
//! were edited since (their BLAKE3 hash is in the journal), and `Cargo.lock` gets its old bytes.
//!
//! Here the whole of `init`; [`places`] says where things go, `plan` computes and writes `init`'s
//! own files, `undo` is `deinit`, `guidance` the text it leaves the user, [`scan`] reads `main.rs`.
mod guidance;
pub mod places;
mod plan;
mod report;
pub mod scan;
mod undo;

pub use crate::journal::INIT_RECORD_FILE;
pub use guidance::{guidance, hot_guidance};
pub use places::Places;
pub use report::{Event, InitError, InitFailed};
pub use undo::{DeinitError, Deinited, deinit};

use crate::journal::{GeneratedFile, InitRecord, Record, TouchedFile};
use crate::manifest::Manifest;
use crate::project::{Project, Selector};
use crate::wrap::{self, WrapRequest};
use crate::{fsutil, heavy};
use std::path::PathBuf;

/// What an `init` is asked to do.
#[derive(Debug, Clone)]
pub struct InitRequest {
    /// The package to turn into the host, as cargo names it.
    pub selector: Selector,
    /// Dependencies to put into the deps dylib; none: the heavy ones, as `wrap --auto` picks.
    pub crates: Vec<String>,
    /// Without crates: wrap a dependency whose crate graph has at least this much source (KiB).
    pub min_source_kib: u64,
    /// The split layout (a logic crate next to the host) instead of the in-place route.
    pub split: bool,
}

/// What an `init` did.
#[derive(Debug)]
pub struct Initialized {
    /// Where everything went.
    pub places: Places,
    /// The crates it wrapped.
    pub wrapped: Vec<String>,
    /// What is left for the user (see [`guidance()`]).
    pub guidance: String,
}

/// Turns the package of `light` (loaded without the dependency graph; the caller holds the
/// workspace lock) into a dylib-dev host; `events` hears what happens on the way.
pub fn init(
    light: &Project,
    request: &InitRequest,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Initialized, InitFailed> {
    let places = Places::of(light);
    let bin = plan::host_bin(light.package())?;
    plan::refuse_if_set_up(light, &places, request.split)?;
    let host = Manifest::read(&places.host_manifest)?;
    for name in &request.crates {
        wrap::find_dependency(&host.doc, name, &places.package, &host.path)?;
    }
    let lockfile_before = std::fs::read_to_string(&places.lockfile).ok();
    // Resolving the graph may create Cargo.lock; a refused init must leave nothing behind.
    let result = Project::load(&request.selector, true)
        .map_err(InitFailed::from)
        .and_then(|project| {
            init_resolved(
                request,
                &project,
                &places,
                host,
                lockfile_before.clone(),
                events,
            )
        });
    if result.is_err() && lockfile_before.is_none() {
        let _ = std::fs::remove_file(&places.lockfile);
    }
    let names = result?;
    let main_rs = std::fs::read_to_string(&bin).unwrap_or_default();
    let guidance = if request.split {
        guidance(&places, &bin, &main_rs, &names)
    } else {
        guidance::hot_guidance(&places, &bin, &main_rs)
    };
    Ok(Initialized {
        places,
        wrapped: names,
        guidance,
    })
}

/// Everything after the checks; returns the crates it wrapped.
fn init_resolved(
    request: &InitRequest,
    project: &Project,
    places: &Places,
    host: Manifest,
    lockfile_before: Option<String>,
    events: &mut dyn FnMut(Event<'_>),
) -> Result<Vec<String>, InitFailed> {
    let names: Vec<String> = if request.crates.is_empty() {
        let choices = heavy::assess(project, &host.doc, request.min_source_kib * 1024);
        events(Event::Assessed {
            choices: &choices,
            min_kib: request.min_source_kib,
        });
        choices
            .into_iter()
            .filter(|c| c.wrap)
            .map(|c| c.key)
            .collect()
    } else {
        request.crates.clone()
    };
    let deps_before = Record::load(&places.layout.deps_dir)?.is_some();
    if !names.is_empty() {
        // Everything `wrap` would refuse, asked before anything is written.
        let wrap_plan = wrap::plan(project, host.clone(), &names, lockfile_before.is_some())?;
        fsutil::check_writable(wrap_plan.changed_files(), "init")?;
    }
    let (generated, touched) = plan::plan(project, places, host, &names, request.split)?;
    fsutil::check_writable(
        touched
            .iter()
            .filter(|(_, before, after)| before != after)
            .map(|(path, _, _)| path.as_path()),
        "init",
    )?;

    let mut record = InitRecord {
        format: InitRecord::FORMAT,
        package: places.package.clone(),
        logic_crate: request.split.then(|| places.logic_crate.clone()),
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
    let (record_dir, record_path) = if request.split {
        (&places.logic_dir, &places.record)
    } else {
        (&places.runtime_dir, &places.runtime_record)
    };
    std::fs::create_dir_all(record_dir).map_err(crate::fsutil::file_error("create", record_dir))?;
    record.save(record_path)?;
    let selector = Selector::package_at(places.host_manifest.clone(), places.package.clone());
    let applied = plan::apply(record_path, &mut record, &generated, &touched).and_then(|()| {
        if names.is_empty() {
            return Ok(());
        }
        // With `--split` the project has a logic crate now: `wrap` links it to the deps dylib too.
        let light = Project::load(&selector, false)?;
        let request = WrapRequest {
            selector: selector.clone(),
            crates: names.clone(),
            auto_min_source_kib: None,
            dry_run: false,
        };
        let applied = wrap::wrap(&light, &request, &mut |event| {
            // Quiet, as `init` always ran its `wrap`: only the warnings.
            if let wrap::WrapEvent::Warning(warning) = event {
                events(Event::Warning(warning));
            }
        })?;
        if let wrap::Change::Written {
            lockfile_settled: false,
            ..
        } = applied.change
        {
            events(Event::Warning(
                "could not update Cargo.lock; the next cargo command will".into(),
            ));
        }
        Ok(())
    });
    if let Err(err) = applied {
        // Put everything back as it was; the error is what the user needs to see.
        if record.wrapped && Record::load(&places.layout.deps_dir).is_ok_and(|r| r.is_some()) {
            let undone = Project::load(&selector, false)
                .ok()
                .and_then(|project| crate::unwrap::unwrap(&project).ok());
            for warning in undone.map(|u| u.warnings).unwrap_or_default() {
                events(Event::Warning(warning));
            }
        }
        let _ = undo::undo(places, &record, record_path);
        undo::restore_lockfile(places, &lockfile_before, events);
        return Err(err);
    }
    // cargo would add the new crates to Cargo.lock on its next run; do it now, so `deinit`
    // knows exactly what the lock file looked like when `init` finished.
    if !crate::project::settle_lockfile(&places.root_manifest) {
        events(Event::Warning(
            "could not update Cargo.lock; the next cargo command will".into(),
        ));
    }
    record.lockfile_after = dylib_dev_runtime::hash_file(&places.lockfile).ok();
    record.save(record_path)?;
    Ok(names)
}
