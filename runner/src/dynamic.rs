//! Dynamic-mode builds: `dylib-dev build` and `dylib-dev run`.
use std::process::ExitCode;

/// Runs `dylib-dev build`.
pub fn build_command(_args: &crate::cli::BuildArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("build: in progress")
}

/// Runs `dylib-dev run`.
pub fn run_command(_args: &crate::cli::RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("run: in progress")
}
