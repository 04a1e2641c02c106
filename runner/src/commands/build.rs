//! `dylib-dev build`: a dynamic build.
use super::Outcome;
use super::args::BuildArgs;
use super::args::GlobalArgs;

/// Runs the command.
pub fn run(args: &BuildArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let _ = global;
    // Until the orchestration moves here: the old entry point and its exit code.
    crate::dynamic::build_command(args).map(Outcome::Program)
}
