//! `dylib-dev deinit`: `init` undone.
use super::Outcome;
use super::args::GlobalArgs;
use super::args::PackageArgs;
use crate::init::{self, Event};
use crate::project::Project;
use crate::ui;
use clap::Args;

/// Arguments of `deinit`.
#[derive(Debug, Args)]
pub struct DeinitArgs {
    #[command(flatten)]
    pub package: PackageArgs,
}

/// Runs the command: locks the workspace, undoes `init`, says what it restored.
pub fn run(args: &DeinitArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let project = Project::load(&args.package.selector(), false)?;
    let _lock = global.lock_workspace(project.workspace_root().as_std_path())?;
    let quiet = global.quiet;
    let done = init::deinit(&project, &mut |event| match event {
        Event::Unwrapped(unwrapped) => {
            for warning in &unwrapped.warnings {
                ui::warn(warning);
            }
            if !quiet {
                super::args::show(&unwrapped.lines());
            }
        }
        Event::Warning(warning) => ui::warn(warning),
        Event::Assessed { .. } => {}
    })?;
    if !quiet {
        let (places, undone) = (&done.places, &done.undone);
        let what = if !undone.left.is_empty() {
            "removed every file it created that nobody edited since".to_string()
        } else if done.split {
            format!("removed `{}` and the runtime copy", places.logic_crate)
        } else {
            "removed the runtime copy".to_string()
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
        if done.kept_lock {
            ui::note(
                "kept `Cargo.lock`: `init` created it, but it changed since (`cargo add`, `cargo update`, ...); only dylib-dev's crates were taken out of it",
            );
        }
    }
    Ok(Outcome::Success)
}
