//! Logging to stderr through `tracing`: `DYLIB_DEV_LOG` (an `EnvFilter`) wins over `-v`/`-q`.
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `verbose` counts `-v` flags.
pub fn init(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "dylib_dev=debug,info",
        (false, _) => "trace",
    };
    let filter =
        EnvFilter::try_from_env("DYLIB_DEV_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(crate::ui::color())
        .with_target(false)
        .without_time()
        .try_init();
}
