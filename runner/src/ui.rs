//! What the user reads: errors, warnings and status lines on stderr, coloured only on a terminal.
use std::io::IsTerminal;

fn paint(code: &str, text: &str) -> String {
    if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Prints `error: <msg>` and each cause on its own line, as cargo does.
pub fn error(err: &anyhow::Error) {
    eprintln!("{} {err}", paint("1;31", "error:"));
    for cause in err.chain().skip(1) {
        eprintln!("  {} {cause}", paint("1", "caused by:"));
    }
}

/// Prints `warning: <msg>`.
pub fn warn(msg: impl std::fmt::Display) {
    eprintln!("{} {msg}", paint("1;33", "warning:"));
}

/// Prints a right-aligned green verb and a message, like cargo's `   Compiling foo`.
pub fn status(verb: &str, msg: impl std::fmt::Display) {
    eprintln!("{} {msg}", paint("1;32", &format!("{verb:>12}")));
}

/// Prints a plain note line.
pub fn note(msg: impl std::fmt::Display) {
    eprintln!("{} {msg}", paint("1;36", "note:"));
}
