//! `dylib-dev wrap`: heavy dependencies into one deps dylib.
use super::Outcome;
use super::args::GlobalArgs;
use super::args::PackageArgs;
use crate::deps_crate::FEATURE;
use crate::project::Project;
use crate::wrap::{self, Change, WrapError, WrapEvent, WrapRequest};
use crate::{heavy, ui};
use clap::Args;

/// Arguments of `wrap`.
#[derive(Debug, Args)]
pub struct WrapArgs {
    #[command(flatten)]
    pub package: PackageArgs,
    /// Dependencies to wrap, by the name in `[dependencies]` (or the package name of a rename).
    #[arg(value_name = "CRATE")]
    pub crates: Vec<String>,
    /// Choose the heavy direct dependencies automatically (measured as this host links them) and
    /// say why.
    #[arg(long)]
    pub auto: bool,
    /// With --auto: wrap a dependency whose crate graph has at least this much Rust source (KiB).
    #[arg(long, value_name = "KIB", default_value_t = crate::heavy::DEFAULT_MIN_SOURCE_KIB, requires = "auto")]
    pub min_source_kib: u64,
    /// Show what would change, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs the command: locks the workspace, wraps, says what changed.
pub fn run(args: &WrapArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    if args.crates.is_empty() && !args.auto {
        return Err(WrapError::NothingNamed.into());
    }
    let selector = args.package.selector();
    // A light first load (no resolve, writes nothing) finds the workspace to lock.
    let light = Project::load(&selector, false)?;
    // Everything from here on reads what another run may be writing: one run at a time.
    let _lock = global.lock_workspace(light.workspace_root().as_std_path())?;
    let request = WrapRequest {
        selector,
        crates: args.crates.clone(),
        auto_min_source_kib: args.auto.then_some(args.min_source_kib),
        dry_run: args.dry_run,
    };
    let quiet = global.quiet;
    let applied = wrap::wrap(&light, &request, &mut |event| match event {
        WrapEvent::Assessed(choices) => {
            if !quiet {
                eprint!("{}", heavy::table(choices, args.min_source_kib));
            }
        }
        WrapEvent::Warning(warning) => ui::warn(warning),
    })?;
    let layout = &applied.layout;
    let keys = applied.keys.join(", ");
    match &applied.change {
        Change::Unchanged => {
            if !quiet {
                ui::status(
                    "Unchanged",
                    format!("`{}` already wraps {keys}", layout.deps_crate),
                );
            }
        }
        Change::Planned { created, modified } => {
            ui::status("Would wrap", format!("{keys} into `{}`", layout.deps_crate));
            for (verb, files) in [("Would create", created), ("Would modify", modified)] {
                if !files.is_empty() {
                    ui::status(verb, files.join(", "));
                }
            }
        }
        Change::Written {
            created,
            modified,
            lockfile_settled,
        } => {
            if !lockfile_settled {
                ui::warn("could not update Cargo.lock; the next cargo command will");
            }
            if !quiet {
                ui::status(
                    "Wrapped",
                    format!("{keys} into `{}` (one dylib)", layout.deps_crate),
                );
                for (verb, files) in [("Created", created), ("Modified", modified)] {
                    if !files.is_empty() {
                        ui::status(verb, files.join(", "));
                    }
                }
                ui::note(format!(
                    "`dylib-dev build` and `dylib-dev run` link them dynamically (feature `{FEATURE}`); plain `cargo build` stays static; `dylib-dev unwrap` undoes this"
                ));
            }
        }
    }
    Ok(Outcome::Success)
}
