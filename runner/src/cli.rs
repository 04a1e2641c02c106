//! The command line: clap definitions and dispatch to the library's commands.
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Hot-reload development runner for Rust.
#[derive(Debug, Parser)]
#[command(name = "dylib-dev", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

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

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Wrap heavy dependencies into one `<package>-deps` dylib, linked behind the `dynamic` feature.
    Wrap(WrapArgs),
    /// Undo `wrap`: restore every touched file and remove the generated crate.
    Unwrap(UnwrapArgs),
    /// Build the package in dynamic mode (the `dynamic` feature, `-C prefer-dynamic`, own target dir).
    Build(BuildArgs),
    /// Build in dynamic mode and run the binary with the library search path set.
    Run(RunArgs),
    /// Report the toolchain, linker and what a dynamic build needs.
    Doctor(DoctorArgs),
    /// Run the host; on every change rebuild, swap logic into it or restart it.
    Watch(WatchArgs),
    /// Measure edit-to-new-output latency with real edits of the project.
    Bench(BenchArgs),
    /// Create a new dylib-dev project (host, logic, shared types) from a template.
    New(NewArgs),
    /// Turn an existing binary package into a dylib-dev project (`deinit` undoes it).
    Init(InitArgs),
    /// Undo `init`: restore every file it touched and remove what it created.
    Deinit(DeinitArgs),
}

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

/// An edit-build-run loop that `bench` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchLoop {
    /// `cargo build` of host and logic, then a fresh host.
    Static,
    /// The same in dynamic mode (deps dylib, `-C prefer-dynamic`), then a fresh host.
    Dynamic,
    /// `dylib-dev watch`: logic swapped into the running host.
    Hot,
}

impl BenchLoop {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BenchLoop::Static => "static",
            BenchLoop::Dynamic => "dynamic",
            BenchLoop::Hot => "hot",
        }
    }

    /// A row title for reports.
    pub fn title(self) -> &'static str {
        match self {
            BenchLoop::Static => "static: cargo build + restart",
            BenchLoop::Dynamic => "dynamic: deps dylib + restart",
            BenchLoop::Hot => "hot: dylib-dev watch swap",
        }
    }
}

/// Arguments of `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// `-p` names the binary package to turn into the host.
    #[command(flatten)]
    pub package: PackageArgs,
    /// Dependencies to put into the deps dylib (default: the heavy ones, as `wrap --auto` picks).
    #[arg(value_name = "CRATE")]
    pub crates: Vec<String>,
    /// Without CRATEs: wrap a dependency whose crate graph has at least this much Rust source (KiB).
    #[arg(long, value_name = "KIB", default_value_t = crate::heavy::DEFAULT_MIN_SOURCE_KIB)]
    pub min_source_kib: u64,
}

/// Arguments of `deinit`.
#[derive(Debug, Args)]
pub struct DeinitArgs {
    #[command(flatten)]
    pub package: PackageArgs,
}

/// Arguments of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// `-p` names the host package, as for `watch`.
    #[command(flatten)]
    pub package: PackageArgs,
    /// Number of timed edits per loop.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub edits: usize,
    /// Which loops to time, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "static,dynamic,hot"
    )]
    pub loops: Vec<BenchLoop>,
    /// Source file to edit (default: `file` in `[workspace.metadata.dylib-dev.bench]`).
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// A literal in that file that appears in the host's output (default: `marker` in the config).
    #[arg(long, value_name = "TEXT")]
    pub marker: Option<String>,
    /// Pause before each edit, so each one is timed on its own.
    #[arg(long, value_name = "MS", default_value_t = 300)]
    pub pause_ms: u64,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run `watch --no-fast-path`: every rebuild through cargo.
    #[arg(long)]
    pub no_fast_path: bool,
    /// Run `watch --plain-rustc` (and build the dynamic loop so): logic built with cargo's flags as they are.
    #[arg(long)]
    pub plain_rustc: bool,
    /// Instead: swap two builds of the logic library into one host N times and report its memory
    /// and mapped library copies (a soak, not a latency measurement).
    #[arg(long, value_name = "N")]
    pub soak: Option<u64>,
    /// Arguments for the host.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<std::ffi::OsString>,
}

/// Arguments of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// `-p` names the host package (default: `[workspace.metadata.dylib-dev] host`, or the only binary).
    #[command(flatten)]
    pub build: BuildArgs,
    /// Trailing debounce of file events in milliseconds, 0 to 10000 (default 30, or `debounce-ms`
    /// in the config).
    #[arg(long, value_name = "MS")]
    pub debounce_ms: Option<u64>,
    /// Always build with cargo, never rustc directly (the fast path for logic-only edits).
    #[arg(long)]
    pub no_fast_path: bool,
    /// Build logic crates with cargo's rustc flags as they are: no `-Zshare-generics=no`, no
    /// link against stubs of the deps dylib (see docs/watch.md).
    #[arg(long)]
    pub plain_rustc: bool,
    /// A call into logic running this long is reported stuck, and a swap that waits this long for
    /// it restarts the host; 100 to 3600000 (default 10000, or `hang-timeout-ms` in the config).
    #[arg(long, value_name = "MS", alias = "reload-timeout-ms")]
    pub hang_timeout_ms: Option<u64>,
    /// Arguments for the host.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<std::ffi::OsString>,
}

/// Arguments of `wrap`.
#[derive(Debug, Args)]
pub struct WrapArgs {
    #[command(flatten)]
    pub package: PackageArgs,
    /// Dependencies to wrap, by the name in `[dependencies]` (or the package name of a rename).
    #[arg(value_name = "CRATE")]
    pub crates: Vec<String>,
    /// Choose the heavy direct dependencies automatically (measured as this host links them) and
    /// say why.
    #[arg(long)]
    pub auto: bool,
    /// With --auto: wrap a dependency whose crate graph has at least this much Rust source (KiB).
    #[arg(long, value_name = "KIB", default_value_t = crate::heavy::DEFAULT_MIN_SOURCE_KIB, requires = "auto")]
    pub min_source_kib: u64,
    /// Show what would change, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `unwrap`.
#[derive(Debug, Args)]
pub struct UnwrapArgs {
    #[command(flatten)]
    pub package: PackageArgs,
}

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Arguments for the program.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<std::ffi::OsString>,
}

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub package: PackageArgs,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let quiet = cli.global.quiet;
    match cli.command {
        Command::Wrap(args) => crate::wrap::command(&args, quiet),
        Command::Unwrap(args) => crate::unwrap::command(&args, quiet),
        Command::Build(args) => crate::dynamic::build_command(&args),
        Command::Run(args) => crate::dynamic::run_command(&args),
        Command::Doctor(args) => crate::doctor::command(&args),
        Command::Watch(args) => crate::watch::command(&args, quiet),
        Command::Bench(args) => crate::bench::command(&args),
        Command::New(args) => crate::new::command(&args, quiet),
        Command::Init(args) => crate::init::command(&args, quiet),
        Command::Deinit(args) => crate::init::deinit_command(&args, quiet),
    }
}

/// Prints an error chain the way cargo does and turns the result into an exit code.
pub fn exit_code(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            crate::ui::error(&err);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
