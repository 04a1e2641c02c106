//! `dylib-dev run`: a dynamic build, then the program.
use super::Outcome;
use super::args::BuildArgs;
use super::args::{GlobalArgs, one_shot_build, warn_about_config_rustflags};
use crate::dynamic::{DynamicError, dynamic_build, ensure_wrapped, select_bin};
use crate::host::program_command;
use crate::project::Project;
use crate::toolchain::Toolchain;
use crate::ui;
use anyhow::Context;
use clap::Args;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitCode};

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Arguments for the program.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<std::ffi::OsString>,
}

/// Runs the command: the build, then the program in place of this process.
pub fn run(args: &RunArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let project = Project::load(&args.build.package.selector(), false)?;
    let package = project.package();
    ensure_wrapped(package)?;
    let bin = select_bin(package, args.build.bin.as_deref())?;
    // Before the build, so a broken toolchain fails in a second, not after minutes of compiling.
    let toolchain = Toolchain::detect()?;
    warn_about_config_rustflags();
    let build = dynamic_build(&project, &args.build.features, args.build.release).bin(&bin);
    let outcome = one_shot_build(build, &project, args.build.release, global.quiet)?;
    let exe = outcome
        .executable(&package.id, &bin)
        .ok_or_else(|| DynamicError::NoExecutable {
            package: package.name.to_string(),
            bin: bin.clone(),
        })?;
    let mut cmd = program_command(exe, package, &toolchain)?;
    cmd.args(&args.args);
    ui::status("Running", shell_words(exe, &args.args));
    run_program(cmd, exe).map(Outcome::Program)
}

/// Starts the program in place of this process (Unix): its exit code and signals are the user's
/// to see directly, and no parent is left to forward Ctrl-C.
#[cfg(unix)]
fn run_program(mut cmd: Command, exe: &Path) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    Err(err).with_context(|| format!("failed to run `{}`", exe.display()))
}

/// Runs the program and exits with its exit code.
#[cfg(not(unix))]
fn run_program(mut cmd: Command, exe: &Path) -> anyhow::Result<ExitCode> {
    let status = cmd
        .status()
        .with_context(|| format!("failed to run `{}`", exe.display()))?;
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// `exe a b` for the status line, quoting arguments that need it.
fn shell_words(exe: &Path, args: &[OsString]) -> String {
    std::iter::once(exe.as_os_str())
        .chain(args.iter().map(OsString::as_os_str))
        .map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c)) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_quotes_what_a_shell_would_split() {
        let line = shell_words(Path::new("/t/app"), &["a".into(), "b c".into(), "".into()]);
        assert_eq!(line, "/t/app a 'b c' ''");
    }
}
