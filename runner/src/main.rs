//! `dylib-dev`: parse the command line, set up logging, dispatch.
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = dylib_dev::cli::Cli::parse();
    dylib_dev::logging::init(cli.global.verbose, cli.global.quiet);
    dylib_dev::cli::exit_code(dylib_dev::cli::run(cli))
}
