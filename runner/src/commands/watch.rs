//! `dylib-dev watch`: rebuild on change, swap logic into the running host or restart it.
use super::Outcome;
use super::args::BuildArgs;
use super::args::GlobalArgs;
use crate::watch::{build, model, session};
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

/// Runs the command: loads the project, then the session until a signal stops it.
pub fn run(args: &WatchArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let mut package_args = args.build.package.clone();
    let host_override = package_args.package.take();
    // Timings are checked at each load, before anything is built: a value that cannot work is
    // refused.
    let flags = model::TimingFlags {
        debounce_ms: args.debounce_ms,
        hang_timeout_ms: args.hang_timeout_ms,
    };
    // The same steps at the start and after every manifest change.
    let load = move || -> anyhow::Result<(model::WatchModel, cargo_metadata::Package)> {
        let (_, metadata) = crate::project::load_metadata(&package_args.selector(), false)?;
        let model = model::WatchModel::from_metadata_and_flags(
            &metadata,
            host_override.as_deref(),
            &flags,
        )?;
        let host_package = model.host_package(&metadata).clone();
        Ok((model, host_package))
    };
    let (model, host_package) = load()?;
    let session = session::Session {
        model,
        build: build::BuildOptions {
            features: args.build.features.clone(),
            release: args.build.release,
            fast_path: !args.no_fast_path,
            plain_rustc: args.plain_rustc,
        },
        args: args.args.clone(),
        quiet: global.quiet,
        host_package,
        reload: Box::new(load),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(session.run()).map(Outcome::Stopped)
}
