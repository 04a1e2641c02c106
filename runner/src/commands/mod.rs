//! The subcommands: each owns its clap arguments, its orchestration and all it prints; they call
//! the engine below them, never each other.
pub mod args;
pub mod bench;
pub mod build;
pub mod completions;
pub mod deinit;
pub mod doctor;
pub mod init;
pub mod new;
pub mod run;
pub mod unwrap;
pub mod watch;
pub mod wrap;

/// How a command ended; `cli` turns it into the process's exit code.
#[derive(Debug)]
pub enum Outcome {
    /// Done as asked.
    Success,
    /// Done, and what it reports failed (its lines say what).
    Failure,
    /// Stopped by a signal before it was done.
    Stopped(crate::signals::Stop),
    /// The program it ran ended so; its code is passed on.
    Program(std::process::ExitCode),
}
