//! `dylib-dev bench`: edit-to-output latency of the loops, measured with real edits.
use super::Outcome;
use super::args::GlobalArgs;
use super::args::PackageArgs;
use clap::Args;
use std::path::PathBuf;

/// An edit-build-run loop that `bench` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchLoop {
    /// `cargo build` of host and logic, then a fresh host.
    Static,
    /// The same in dynamic mode (deps dylib, `-C prefer-dynamic`), then a fresh host.
    Dynamic,
    /// `dylib-dev watch`: logic swapped into the running host.
    Hot,
}

impl BenchLoop {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BenchLoop::Static => "static",
            BenchLoop::Dynamic => "dynamic",
            BenchLoop::Hot => "hot",
        }
    }

    /// A row title for reports.
    pub fn title(self) -> &'static str {
        match self {
            BenchLoop::Static => "static: cargo build + restart",
            BenchLoop::Dynamic => "dynamic: deps dylib + restart",
            BenchLoop::Hot => "hot: dylib-dev watch swap",
        }
    }
}

/// Arguments of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// `-p` names the host package, as for `watch`.
    #[command(flatten)]
    pub package: PackageArgs,
    /// Number of timed edits per loop.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub edits: usize,
    /// Which loops to time, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "static,dynamic,hot"
    )]
    pub loops: Vec<BenchLoop>,
    /// Source file to edit (default: `file` in `[workspace.metadata.dylib-dev.bench]`).
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// A literal in that file that appears in the host's output (default: `marker` in the config).
    #[arg(long, value_name = "TEXT")]
    pub marker: Option<String>,
    /// Pause before each edit, so each one is timed on its own.
    #[arg(long, value_name = "MS", default_value_t = 300)]
    pub pause_ms: u64,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run `watch --no-fast-path`: every rebuild through cargo.
    #[arg(long)]
    pub no_fast_path: bool,
    /// Run `watch --plain-rustc` (and build the dynamic loop so): logic built with cargo's flags as they are.
    #[arg(long)]
    pub plain_rustc: bool,
    /// Instead: swap two builds of the logic library into one host N times and report its memory
    /// and mapped library copies (a soak, not a latency measurement).
    #[arg(long, value_name = "N")]
    pub soak: Option<u64>,
    /// Arguments for the host.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<std::ffi::OsString>,
}

/// Runs the command.
pub fn run(args: &BenchArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let _ = global;
    // Until the orchestration moves here: the old entry point and its exit code.
    crate::bench::command(args).map(Outcome::Program)
}
