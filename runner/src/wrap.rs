//! `dylib-dev wrap`: a package's heavy dependencies as ONE generated dylib crate, `<package>-deps`,
//! force-linked behind the `dynamic` feature.
//!
//! One combined dylib holds exactly one copy of every transitive crate, which is what keeps
//! serde + serde_json + regex from failing with "cannot satisfy dependencies so `serde` only shows
//! up once" (the diamond that one-wrapper-per-crate tools hit). The user's own dependency entries
//! and `use` lines stay untouched; without the feature the build is exactly what it was.
//!
//! The generated crate's layout and bytes are [`crate::deps_crate`]; here: [`lookup`] (which
//! entries a name means), [`plan`](mod@plan) (every write, computed first) and `apply` (the writes).
mod apply;
pub mod lookup;
pub mod plan;

pub use lookup::{FoundDep, LookupError, find_dependency};
pub use plan::{ApplyError, FileWrite, Plan, WrapError, plan};

use crate::deps_crate::Layout;
use crate::heavy;
use crate::journal::{Record, RecordError};
use crate::manifest::Manifest;
use crate::project::{Project, Selector};

/// What a `wrap` is asked to do.
#[derive(Debug, Clone)]
pub struct WrapRequest {
    /// The package, as cargo names it (the graph is resolved with it).
    pub selector: Selector,
    /// Dependencies to wrap, by their key in `[dependencies]` (or a rename's package name).
    pub crates: Vec<String>,
    /// `--auto`: also the heavy direct dependencies, those with at least this many KiB of source.
    pub auto_min_source_kib: Option<u64>,
    /// Compute the plan, write nothing.
    pub dry_run: bool,
}

/// Something a `wrap` has to say while it works, in the order it happens (so that a wrap that
/// fails later has still said it; the engine prints nothing).
#[derive(Debug)]
pub enum WrapEvent<'a> {
    /// `--auto` assessed the direct dependencies: its verdicts.
    Assessed(&'a [heavy::Choice]),
    /// Worth a warning even with `--quiet` (e.g. a dependency a previous wrap had that the
    /// manifest no longer has, dropped from the deps crate).
    Warning(String),
}

/// What a `wrap` did (or, for a dry run, would do).
#[derive(Debug)]
pub struct Applied {
    /// Names and places of the generated crate.
    pub layout: Layout,
    /// Every dependency the generated crate wraps now.
    pub keys: Vec<String>,
    /// What changed on disk.
    pub change: Change,
}

/// The files a `wrap` writes, relative to the workspace root.
#[derive(Debug)]
pub enum Change {
    /// Every byte was already as the plan wants it.
    Unchanged,
    /// A dry run: these would be created and modified.
    Planned {
        created: Vec<String>,
        modified: Vec<String>,
    },
    /// Written.
    Written {
        created: Vec<String>,
        modified: Vec<String>,
        /// Whether `Cargo.lock` was brought up to date (otherwise the next cargo command does it).
        lockfile_settled: bool,
    },
}

/// Wraps what `request` names in the package of `light` (loaded without the dependency graph;
/// the caller holds the workspace lock); `events` hears what happens on the way.
///
/// A refused wrap, and a dry run, leave no `Cargo.lock` behind that resolving the graph created.
pub fn wrap(
    light: &Project,
    request: &WrapRequest,
    events: &mut dyn FnMut(WrapEvent<'_>),
) -> Result<Applied, WrapError> {
    if request.crates.is_empty() && request.auto_min_source_kib.is_none() {
        return Err(WrapError::NothingNamed);
    }
    let lockfile = light
        .workspace_root()
        .join("Cargo.lock")
        .into_std_path_buf();
    let lock_before = LockBefore {
        existed: lockfile.exists(),
        hash: dylib_dev_runtime::hash_file(&lockfile).ok(),
    };
    let lockfile_existed = lock_before.existed;
    // Questions that need no graph are answered before resolving it (which may write).
    let user = Manifest::read(light.package().manifest_path.as_std_path())?;
    for name in &request.crates {
        find_dependency(&user.doc, name, &light.package().name, &user.path)?;
    }
    // Resolving the graph may create Cargo.lock; a refused wrap must leave nothing behind.
    let result = Project::load(&request.selector, true)
        .map_err(WrapError::from)
        .and_then(|project| plan_and_apply(request, &project, user, &lock_before, events));
    // A dry run writes nothing either.
    if (result.is_err() || request.dry_run) && !lockfile_existed && lockfile.exists() {
        let _ = std::fs::remove_file(&lockfile);
    }
    result
}

/// `Cargo.lock` as this run found it, before anything (cargo included) could change it.
struct LockBefore {
    existed: bool,
    /// Its `blake3:<hex>`, if it could be read.
    hash: Option<String>,
}

fn plan_and_apply(
    request: &WrapRequest,
    project: &Project,
    user: Manifest,
    lock_before: &LockBefore,
    events: &mut dyn FnMut(WrapEvent<'_>),
) -> Result<Applied, WrapError> {
    let lockfile_existed = lock_before.existed;
    let mut names = request.crates.clone();
    if let Some(min_kib) = request.auto_min_source_kib {
        let choices = heavy::assess(project, &user.doc, min_kib * 1024);
        events(WrapEvent::Assessed(&choices));
        names.extend(choices.into_iter().filter(|c| c.wrap).map(|c| c.key));
    }
    let plan = plan(project, user, &names, lockfile_existed)?;
    let rel = |w: &FileWrite| plan.layout.rel(&w.path).display().to_string();
    let keys: Vec<String> = plan.wrapped.iter().map(|w| w.key.clone()).collect();
    for dropped in &plan.dropped {
        events(WrapEvent::Warning(format!(
            "`{dropped}` is no longer a dependency of `{}`; dropped it from `{}`",
            plan.layout.package, plan.layout.deps_crate
        )));
    }
    let done = |change| Applied {
        layout: plan.layout.clone(),
        keys,
        change,
    };
    if plan.is_noop() {
        // A run interrupted before it settled the lock file leaves that for this one.
        let lock = plan.layout.workspace_root.join("Cargo.lock");
        if std::fs::read_to_string(&lock)
            .is_ok_and(|t| !t.contains(&format!("name = \"{}\"", plan.layout.deps_crate)))
        {
            crate::project::settle_lockfile(&plan.layout.workspace_root.join("Cargo.toml"));
        }
        note_lockfile_owner(&plan.layout, lock_before)?;
        return Ok(done(Change::Unchanged));
    }
    let changed = |new: bool| -> Vec<String> {
        plan.generated
            .iter()
            .chain(&plan.touched)
            .filter(|w| w.before.is_none() == new && w.before.as_deref() != Some(w.after.as_str()))
            .map(rel)
            .collect()
    };
    let (created, modified) = (changed(true), changed(false));
    if request.dry_run {
        return Ok(done(Change::Planned { created, modified }));
    }
    plan.apply()?;
    crate::fsutil::crash_point("applied");
    // cargo would add the new crate to Cargo.lock on its next run; do it now, so that a second
    // `wrap` finds nothing to change and `unwrap` knows exactly what to take back out (and, for a
    // lock file this wrap created, exactly which bytes are ours).
    let lockfile_settled =
        crate::project::settle_lockfile(&plan.layout.workspace_root.join("Cargo.toml"));
    note_lockfile_owner(&plan.layout, lock_before)?;
    Ok(done(Change::Written {
        created,
        modified,
        lockfile_settled,
    }))
}

/// Records whether `Cargo.lock` is still the one `wrap` created (see [`Record::lockfile_ours`]).
///
/// A project without a lock file before the first `wrap` gets one from cargo's resolve. While
/// it holds exactly what the last `wrap` left, it is ours and `unwrap` may remove it; once anything
/// else changed it (`cargo add`, `cargo update`, an edit), it is the user's from then on.
fn note_lockfile_owner(layout: &Layout, before: &LockBefore) -> Result<(), RecordError> {
    let Some(mut record) = Record::load(&layout.deps_dir)? else {
        return Ok(());
    };
    if record.lockfile_existed {
        return Ok(());
    }
    let still_ours = !before.existed
        || (before.hash.is_some() && before.hash.as_deref() == record.lockfile_ours.as_deref());
    let now = if still_ours {
        dylib_dev_runtime::hash_file(&layout.workspace_root.join("Cargo.lock")).ok()
    } else {
        None
    };
    if record.lockfile_ours != now {
        record.lockfile_ours = now;
        record.save(&layout.deps_dir)?;
    }
    Ok(())
}
