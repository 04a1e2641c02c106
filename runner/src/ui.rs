//! What the user reads: errors, warnings and status lines on stderr, coloured as cargo colours
//! them: `--color auto|always|never` (or `CARGO_TERM_COLOR`), and with `auto` only on a terminal
//! and without `NO_COLOR`.
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};

/// When to use colours, as cargo's `--color` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always, also into a file or a pipe.
    Always,
    /// Never.
    Never,
}

/// The process-wide choice; [`set_color`] sets it once at start-up.
static CHOICE: AtomicU8 = AtomicU8::new(ColorChoice::Auto as u8);

/// Sets when colours are used, for our own lines and the compiler diagnostics we show.
pub fn set_color(choice: ColorChoice) {
    CHOICE.store(choice as u8, Ordering::Relaxed);
}

/// Whether what goes to stderr is coloured (our lines, and rustc's diagnostics that we print).
pub fn color() -> bool {
    let choice = match CHOICE.load(Ordering::Relaxed) {
        x if x == ColorChoice::Always as u8 => ColorChoice::Always,
        x if x == ColorChoice::Never as u8 => ColorChoice::Never,
        _ => ColorChoice::Auto,
    };
    resolve(
        choice,
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// `auto` means a terminal and no `NO_COLOR` (which counts only when not empty, per no-color.org).
fn resolve(choice: ColorChoice, terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && no_color.is_none_or(|v| v.is_empty()),
    }
}

fn paint(code: &str, text: &str) -> String {
    if color() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn auto_colours_only_a_terminal_without_no_color() {
        assert!(resolve(ColorChoice::Auto, true, None));
        assert!(!resolve(ColorChoice::Auto, false, None));
        assert!(!resolve(ColorChoice::Auto, true, Some(OsStr::new("1"))));
        // An empty NO_COLOR does not count.
        assert!(resolve(ColorChoice::Auto, true, Some(OsStr::new(""))));
        // An explicit choice wins over both, as with cargo.
        assert!(resolve(ColorChoice::Always, false, Some(OsStr::new("1"))));
        assert!(!resolve(ColorChoice::Never, true, None));
    }
}
