//! `dylib-dev deinit`: `init` undone.
use super::Outcome;
use super::args::GlobalArgs;
use super::args::PackageArgs;
use clap::Args;

/// Arguments of `deinit`.
#[derive(Debug, Args)]
pub struct DeinitArgs {
    #[command(flatten)]
    pub package: PackageArgs,
}

/// Runs the command.
pub fn run(args: &DeinitArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let _ = global;
    // Until the orchestration moves here: the old entry point and its exit code.
    crate::init::deinit_command(args, global.quiet).map(Outcome::Program)
}
