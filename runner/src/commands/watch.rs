//! `dylib-dev watch`: rebuild on change, swap logic into the running host or restart it.
use super::Outcome;
use super::args::BuildArgs;
use super::args::GlobalArgs;
use clap::Args;

/// Arguments of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// `-p` names the host package (default: `[workspace.metadata.dylib-dev] host`, or the only binary).
    #[command(flatten)]
    pub build: BuildArgs,
    /// Trailing debounce of file events in milliseconds, 0 to 10000 (default 30, or `debounce-ms`
    /// in the config).
    #[arg(long, value_name = "MS")]
    pub debounce_ms: Option<u64>,
    /// Always build with cargo, never rustc directly (the fast path for logic-only edits).
    #[arg(long)]
    pub no_fast_path: bool,
    /// Build logic crates with cargo's rustc flags as they are: no `-Zshare-generics=no`, no
    /// link against stubs of the deps dylib (see docs/watch.md).
    #[arg(long)]
    pub plain_rustc: bool,
    /// A call into logic running this long is reported stuck, and a swap that waits this long for
    /// it restarts the host; 100 to 3600000 (default 10000, or `hang-timeout-ms` in the config).
    #[arg(long, value_name = "MS", alias = "reload-timeout-ms")]
    pub hang_timeout_ms: Option<u64>,
    /// Arguments for the host.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<std::ffi::OsString>,
}

/// Runs the command.
pub fn run(args: &WatchArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let _ = global;
    // Until the orchestration moves here: the old entry point and its exit code.
    crate::watch::command(args, global.quiet).map(Outcome::Program)
}
