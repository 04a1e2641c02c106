//! `dylib-dev watch`: rebuild on change, swap logic into the running host, restart it otherwise.
pub mod build;
pub mod fs;
pub mod model;
pub mod route;
pub mod session;

use crate::commands::watch::WatchArgs;
use std::process::ExitCode;

/// Runs `dylib-dev watch`.
pub fn command(args: &WatchArgs, quiet: bool) -> anyhow::Result<ExitCode> {
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
        quiet,
        host_package,
        reload: Box::new(load),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(session.run())
}
