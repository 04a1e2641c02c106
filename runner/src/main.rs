//! `dylib-dev`: everything is in the library's [`dylib_dev::cli::main`].
use std::process::ExitCode;

fn main() -> ExitCode {
    dylib_dev::cli::main(std::env::args_os())
}
