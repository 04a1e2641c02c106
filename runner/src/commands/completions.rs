//! `dylib-dev completions <shell>`: a completion script for bash, zsh, fish, elvish or PowerShell.
use super::Outcome;
use clap::Args;
use clap_complete::Shell;
use std::io::Write;

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// Writes the script for `cli` (the whole command line, as `cli.rs` defines it) to stdout.
pub fn run(args: &CompletionsArgs, cli: &mut clap::Command) -> anyhow::Result<Outcome> {
    let name = cli.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, cli, name.clone(), &mut script);
    if args.shell == Shell::Bash {
        script = fix_bash_arms(&script, &name);
    }
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is the reader's choice, not an error worth a message.
    match out.write_all(&script).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("failed to write the completion script"))
        }
        _ => Ok(Outcome::Success),
    }
}

/// clap_complete (4.6.12) spells a subcommand's `case` arm for a hyphenated program name
/// differently from the state its loop computes (`dylib__subcmd__dev__subcmd__watch` against
/// `dylib__dev__subcmd__watch`), so no flag after a subcommand ever completes
/// (clap-rs/clap#6421): spell the arms as the loop does.
fn fix_bash_arms(script: &[u8], name: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(script);
    let wrong = format!("{}__subcmd__", name.replace('-', "__subcmd__"));
    let right = format!("{}__subcmd__", name.replace('-', "__"));
    text.replace(&wrong, &right).into_bytes()
}
