//! `dylib-dev doctor`: what a dynamic build and `watch` need, checked.
use super::Outcome;
use super::args::GlobalArgs;
use super::args::PackageArgs;
use clap::Args;

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub package: PackageArgs,
}

/// Runs the command.
pub fn run(args: &DoctorArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let _ = global;
    // Until the orchestration moves here: the old entry point and its exit code.
    crate::doctor::command(args).map(Outcome::Program)
}
