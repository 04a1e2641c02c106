//! `dylib-dev wrap`.
use std::process::ExitCode;

/// Runs `dylib-dev wrap`.
pub fn command(_args: &crate::cli::WrapArgs, _quiet: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("wrap: in progress")
}
