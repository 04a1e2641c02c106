//! `dylib-dev new`: a project from a template.
use super::Outcome;
use super::args::GlobalArgs;
use crate::new::{self, NewError};
use crate::templates::{self, RUNTIME_DIR};
use crate::ui;
use clap::Args;
use clap::builder::PossibleValue;
use std::io::Write as _;
use std::path::PathBuf;

/// Arguments of `new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Directory to create (it may exist if it is empty); its name names the packages.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// The template to start from.
    #[arg(long, value_name = "NAME", default_value = crate::templates::DEFAULT_TEMPLATE,
          value_parser = clap::builder::PossibleValuesParser::new(template_values()))]
    pub template: String,
    /// Package name of the host (default: the directory's name); logic and shared crates are
    /// named after it.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// Runs the command: writes the project, says how to run it.
pub fn run(args: &NewArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let template = templates::find(&args.template).ok_or_else(|| NewError::UnknownTemplate {
        name: args.template.clone(),
        known: templates::names().join(", "),
    })?;
    let created = new::create(&args.path, args.name.as_deref(), &template)?;
    for warning in &created.warnings {
        ui::warn(warning);
    }
    if !global.quiet {
        ui::status(
            "Created",
            format!(
                "`{}` from the `{}` template: host `{}`, logic {}, runtime copy in {RUNTIME_DIR}/",
                created.names.name,
                template.name,
                created.host,
                created
                    .logic
                    .iter()
                    .map(|l| format!("`{l}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        );
    }
    let cwd = std::env::current_dir().ok();
    let cd = if cwd.as_deref().map(new::normalize).as_deref() == Some(created.root.as_path()) {
        String::new()
    } else {
        format!("cd {} && ", shell_quote(&args.path.display().to_string()))
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "Run it:\n\n    {cd}dylib-dev watch\n")?;
    if let Some(edit) = &template.settings.edit {
        let hint = template
            .settings
            .hint
            .as_deref()
            .map(|h| format!(": {h}"))
            .unwrap_or_default();
        writeln!(out, "then edit {edit}{hint}.")?;
    }
    if !template.settings.wrap.is_empty() {
        writeln!(
            out,
            "\nThe first `dylib-dev watch` builds {} into the deps dylib once (minutes); after that an edit rebuilds in well under a second.",
            template.settings.wrap.join(", ")
        )?;
    }
    Ok(Outcome::Success)
}

/// `--template`'s values, each with its description for `--help`.
fn template_values() -> Vec<PossibleValue> {
    templates::all()
        .into_iter()
        .zip(templates::names())
        .map(|(t, name)| PossibleValue::new(name).help(t.settings.description))
        .collect()
}

/// `text` as one shell word.
fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./~+@%:,".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("../my-app"), "../my-app");
        assert_eq!(shell_quote("my app"), "'my app'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
