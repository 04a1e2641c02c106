//! `dylib-dev doctor`: what a dynamic build and `watch` need, checked.
use super::Outcome;
use super::args::GlobalArgs;
use super::args::PackageArgs;
use crate::doctor::{self, Level};
use clap::Args;
use std::io::IsTerminal;

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub package: PackageArgs,
}

/// Runs the command: every check, then the report on stdout.
pub fn run(args: &DoctorArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let _ = global;
    let checks = doctor::run_checks(&args.package.selector());
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut out = String::new();
    for check in &checks {
        let (tag, code) = match check.level {
            Level::Ok => ("ok", "32"),
            Level::Warn => ("warn", "33"),
            Level::Error => ("error", "31"),
        };
        let tag = format!("{tag:<5}");
        let tag = if color {
            format!("\x1b[1;{code}m{tag}\x1b[0m")
        } else {
            tag
        };
        out.push_str(&format!("{tag}  {:<13} {}\n", check.name, check.detail));
        if let Some(fix) = &check.fix {
            out.push_str(&format!("{:<5}  {:<13} fix: {fix}\n", "", ""));
        }
    }
    let count = |level| checks.iter().filter(|c| c.level == level).count();
    let (warnings, errors) = (count(Level::Warn), count(Level::Error));
    let plural = |n: usize, word: &str| match n {
        0 => format!("no {word}s"),
        1 => format!("1 {word}"),
        n => format!("{n} {word}s"),
    };
    out.push_str(&format!(
        "\n{} checks: {}, {}\n",
        checks.len(),
        plural(errors, "error"),
        plural(warnings, "warning")
    ));
    print!("{out}");
    Ok(if errors > 0 {
        Outcome::Failure
    } else {
        Outcome::Success
    })
}
