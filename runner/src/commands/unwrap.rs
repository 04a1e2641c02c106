//! `dylib-dev unwrap`: the project back as it was before `wrap`.
use super::Outcome;
use super::args::GlobalArgs;
use super::args::PackageArgs;
use clap::Args;

/// Arguments of `unwrap`.
#[derive(Debug, Args)]
pub struct UnwrapArgs {
    #[command(flatten)]
    pub package: PackageArgs,
}

/// Runs the command.
pub fn run(args: &UnwrapArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let _ = global;
    // Until the orchestration moves here: the old entry point and its exit code.
    crate::unwrap::command(args, global.quiet).map(Outcome::Program)
}
