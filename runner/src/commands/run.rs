//! `dylib-dev run`: a dynamic build, then the program.
use super::Outcome;
use super::args::BuildArgs;
use super::args::GlobalArgs;
use clap::Args;

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Arguments for the program.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<std::ffi::OsString>,
}

/// Runs the command.
pub fn run(args: &RunArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let _ = global;
    // Until the orchestration moves here: the old entry point and its exit code.
    crate::dynamic::run_command(args).map(Outcome::Program)
}
