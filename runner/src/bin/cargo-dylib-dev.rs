//! `cargo dylib-dev ...`: cargo runs `cargo-dylib-dev dylib-dev ...`; drop that first argument.
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "dylib-dev") {
        args.remove(1);
    }
    dylib_dev::cli::main(args)
}
