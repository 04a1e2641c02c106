//! Argument groups several commands share, and their translation into the engine's terms.
use clap::Args;
use std::path::PathBuf;

/// Flags every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output (-v debug, -vv trace); `DYLIB_DEV_LOG` overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// When to colour our lines and the compiler's diagnostics, as cargo does: auto (on a
    /// terminal, unless `NO_COLOR` is set), always, never.
    #[arg(
        long,
        value_name = "WHEN",
        global = true,
        value_enum,
        env = "CARGO_TERM_COLOR",
        default_value = "auto",
        hide_env_values = true
    )]
    pub color: crate::ui::ColorChoice,
}

/// Which package of which workspace, named as cargo names it.
#[derive(Debug, Args, Clone, Default)]
pub struct PackageArgs {
    /// Path to Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Package to work on (default: the package in the current directory, or the only one).
    #[arg(short, long, value_name = "SPEC")]
    pub package: Option<String>,
}

/// Build flags passed through to cargo.
#[derive(Debug, Args, Clone, Default)]
pub struct BuildArgs {
    #[command(flatten)]
    pub package: PackageArgs,
    /// Space or comma separated features to activate (besides `dynamic`).
    #[arg(short = 'F', long, value_name = "FEATURES")]
    pub features: Vec<String>,
    /// Build with the release profile.
    #[arg(long)]
    pub release: bool,
    /// Name of the bin target to build or run.
    #[arg(long, value_name = "NAME")]
    pub bin: Option<String>,
}

impl PackageArgs {
    /// The engine's name for this choice of workspace and package.
    pub fn selector(&self) -> crate::project::Selector {
        crate::project::Selector {
            manifest_path: self.manifest_path.clone(),
            package: self.package.clone(),
        }
    }
}
