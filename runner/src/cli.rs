//! The command line: the top-level clap definitions, dispatch to [`crate::commands`], the exit
//! codes, and the one entry both binaries (`dylib-dev`, `cargo-dylib-dev`) call.
use crate::commands::{self, Outcome, args::GlobalArgs};
use clap::{Parser, Subcommand};
use std::ffi::OsString;
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

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Wrap heavy dependencies into one `<package>-deps` dylib, linked behind the `dynamic` feature.
    Wrap(commands::wrap::WrapArgs),
    /// Undo `wrap`: restore every touched file and remove the generated crate.
    Unwrap(commands::unwrap::UnwrapArgs),
    /// Build the package in dynamic mode (the `dynamic` feature, `-C prefer-dynamic`, own target dir).
    Build(commands::args::BuildArgs),
    /// Build in dynamic mode and run the binary with the library search path set.
    Run(commands::run::RunArgs),
    /// Report the toolchain, linker and what a dynamic build needs.
    Doctor(commands::doctor::DoctorArgs),
    /// Run the host; on every change rebuild, swap logic into it or restart it.
    Watch(commands::watch::WatchArgs),
    /// Measure edit-to-new-output latency with real edits of the project.
    Bench(commands::bench::BenchArgs),
    /// Create a new dylib-dev project (host, logic, shared types) from a template.
    New(commands::new::NewArgs),
    /// Turn an existing binary package into a dylib-dev project (`deinit` undoes it).
    Init(commands::init::InitArgs),
    /// Undo `init`: restore every file it touched and remove what it created.
    Deinit(commands::deinit::DeinitArgs),
    /// Print a completion script for a shell (e.g. `dylib-dev completions bash >
    /// ~/.local/share/bash-completion/completions/dylib-dev`).
    Completions(commands::completions::CompletionsArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let global = &cli.global;
    match &cli.command {
        Command::Wrap(args) => commands::wrap::run(args, global),
        Command::Unwrap(args) => commands::unwrap::run(args, global),
        Command::Build(args) => commands::build::run(args, global),
        Command::Run(args) => commands::run::run(args, global),
        Command::Doctor(args) => commands::doctor::run(args, global),
        Command::Watch(args) => commands::watch::run(args, global),
        Command::Bench(args) => commands::bench::run(args, global),
        Command::New(args) => commands::new::run(args, global),
        Command::Init(args) => commands::init::run(args, global),
        Command::Deinit(args) => commands::deinit::run(args, global),
        Command::Completions(args) => {
            commands::completions::run(args, &mut <Cli as clap::CommandFactory>::command())
        }
    }
}

/// The exit codes dylib-dev itself chooses (a program run by `run` exits with its own code).
pub mod exit {
    /// Success.
    pub const SUCCESS: u8 = 0;
    /// An error: printed, with its causes, the way cargo prints one.
    pub const FAILURE: u8 = 1;
    /// Stopped by SIGHUP (the terminal closed): 128 + 1, as a shell reports it.
    pub const HANGUP: u8 = 129;
    /// Stopped by Ctrl-C (SIGINT): 128 + 2.
    pub const INTERRUPT: u8 = 130;
    /// Stopped by SIGTERM: 128 + 15.
    pub const TERMINATE: u8 = 143;
    /// The rustc wrapper could not start rustc: rustc's own code for an internal failure.
    pub const RUSTC_NOT_STARTED: u8 = 101;
}

/// Prints an error chain the way cargo does and turns the result into an exit code: the table.
pub fn exit_code(result: anyhow::Result<Outcome>) -> ExitCode {
    use crate::signals::Stop;
    ExitCode::from(match result {
        Ok(Outcome::Success) => exit::SUCCESS,
        Ok(Outcome::Failure) => exit::FAILURE,
        Ok(Outcome::Stopped(Stop::HangUp)) => exit::HANGUP,
        Ok(Outcome::Stopped(Stop::Interrupt)) => exit::INTERRUPT,
        Ok(Outcome::Stopped(Stop::Terminate)) => exit::TERMINATE,
        Ok(Outcome::Program(code)) => return code,
        Err(err) => {
            crate::ui::error(&err);
            exit::FAILURE
        }
    })
}

/// The exit code of the rustc shim (wrapper or linker).
fn shim_exit(shim: crate::rustc_shim::ShimExit) -> ExitCode {
    use crate::rustc_shim::ShimExit;
    ExitCode::from(match shim {
        ShimExit::Code(code) => code,
        ShimExit::RustcNotStarted => exit::RUSTC_NOT_STARTED,
    })
}

/// The whole program, for both binaries: the roles this executable plays when it is started by
/// another process (guard, rustc wrapper, linker), then the command line.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    // Started by a runner to stop what it started should it die (see `guard`).
    if let Some(code) = crate::guard::run_as_guard() {
        return code;
    }
    crate::guard::enable();
    // Started by cargo as rustc's wrapper during a watch build: record, then become rustc.
    if let Some(shim) = crate::rustc_shim::run_as_rustc_wrapper() {
        return shim_exit(shim);
    }
    // Started by a tuned rustc as its linker: link the logic library against stubs.
    if let Some(shim) = crate::rustc_shim::run_as_linker() {
        return shim_exit(shim);
    }
    let cli = Cli::parse_from(args);
    // Before logging: log lines are coloured by the same choice.
    crate::ui::set_color(cli.global.color.into());
    crate::logging::init(cli.global.verbose, cli.global.quiet);
    exit_code(run(cli))
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
