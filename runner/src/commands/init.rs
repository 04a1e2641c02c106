//! `dylib-dev init`: an existing binary package turned into a dylib-dev project.
use super::Outcome;
use super::args::GlobalArgs;
use super::args::PackageArgs;
use clap::Args;

/// Arguments of `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// `-p` names the binary package to turn into the host.
    #[command(flatten)]
    pub package: PackageArgs,
    /// Dependencies to put into the deps dylib (default: the heavy ones, as `wrap --auto` picks).
    #[arg(value_name = "CRATE")]
    pub crates: Vec<String>,
    /// Without CRATEs: wrap a dependency whose crate graph has at least this much Rust source (KiB).
    #[arg(long, value_name = "KIB", default_value_t = crate::heavy::DEFAULT_MIN_SOURCE_KIB)]
    pub min_source_kib: u64,
}

/// Runs the command.
pub fn run(args: &InitArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let _ = global;
    // Until the orchestration moves here: the old entry point and its exit code.
    crate::init::command(args, global.quiet).map(Outcome::Program)
}
