//! `dylib-dev doctor`.
use std::process::ExitCode;

/// Runs `dylib-dev doctor`.
pub fn command(_args: &crate::cli::DoctorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("doctor: in progress")
}
