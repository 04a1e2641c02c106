//! `dylib-dev unwrap`: the project back as it was before `wrap`.
use super::Outcome;
use super::args::GlobalArgs;
use super::args::PackageArgs;
use crate::project::Project;
use crate::ui;
use crate::unwrap::{self, UnwrapError};
use clap::Args;

/// Arguments of `unwrap`.
#[derive(Debug, Args)]
pub struct UnwrapArgs {
    #[command(flatten)]
    pub package: PackageArgs,
}

/// Runs the command: locks the workspace, unwraps, says what it restored.
pub fn run(args: &UnwrapArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let project = Project::load(&args.package.selector(), false)?;
    let _lock = global.lock_workspace(project.workspace_root().as_std_path())?;
    let undone = match unwrap::unwrap(&project) {
        Ok(undone) => undone,
        Err(UnwrapError::NotWrapped(not_wrapped)) => {
            for warning in &not_wrapped.warnings {
                ui::warn(warning);
            }
            return Err(not_wrapped.into());
        }
        Err(err) => return Err(err.into()),
    };
    for warning in &undone.warnings {
        ui::warn(warning);
    }
    if !global.quiet {
        super::args::show(&undone.lines());
    }
    Ok(Outcome::Success)
}
