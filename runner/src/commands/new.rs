//! `dylib-dev new`: a project from a template.
use super::Outcome;
use super::args::GlobalArgs;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Directory to create (it may exist if it is empty); its name names the packages.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// The template to start from.
    #[arg(long, value_name = "NAME", default_value = crate::templates::DEFAULT_TEMPLATE,
          value_parser = clap::builder::PossibleValuesParser::new(crate::templates::possible_values()))]
    pub template: String,
    /// Package name of the host (default: the directory's name); logic and shared crates are
    /// named after it.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// Runs the command.
pub fn run(args: &NewArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let _ = global;
    // Until the orchestration moves here: the old entry point and its exit code.
    crate::new::command(args, global.quiet).map(Outcome::Program)
}
