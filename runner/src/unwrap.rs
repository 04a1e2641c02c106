//! `dylib-dev unwrap`.
use std::process::ExitCode;

/// Runs `dylib-dev unwrap`.
pub fn command(_args: &crate::cli::UnwrapArgs, _quiet: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("unwrap: in progress")
}
