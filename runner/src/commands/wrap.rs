//! `dylib-dev wrap`: heavy dependencies into one deps dylib.
use super::Outcome;
use super::args::GlobalArgs;
use super::args::PackageArgs;
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

/// Runs the command.
pub fn run(args: &WrapArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let _ = global;
    // Until the orchestration moves here: the old entry point and its exit code.
    crate::wrap::command(args, global.quiet).map(Outcome::Program)
}
