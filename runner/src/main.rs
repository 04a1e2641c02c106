//! `dylib-dev`: parse the command line, set up logging, dispatch.
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Started by a runner to stop what it started should it die (see `guard`).
    if let Some(code) = dylib_dev::guard::run_as_guard() {
        return code;
    }
    dylib_dev::guard::enable();
    // Started by cargo as rustc's wrapper during a watch build: record, then become rustc.
    if let Some(code) = dylib_dev::fastpath::run_as_rustc_wrapper() {
        return code;
    }
    // Started by a tuned rustc as its linker: link the logic library against stubs.
    if let Some(code) = dylib_dev::tuning::run_as_linker() {
        return code;
    }
    let cli = dylib_dev::cli::Cli::parse();
    // Before logging: log lines are coloured by the same choice.
    dylib_dev::ui::set_color(cli.global.color);
    dylib_dev::logging::init(cli.global.verbose, cli.global.quiet);
    dylib_dev::cli::exit_code(dylib_dev::cli::run(cli))
}
