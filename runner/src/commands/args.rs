//! Argument groups several commands share, their translation into the engine's terms, and the
//! output several commands share (a command never calls another command).
use crate::cargo::{BuildOutcome, CargoBuild, CargoStderr};
use anyhow::Context;
use cargo_metadata::Package;
use clap::Args;
use std::path::{Path, PathBuf};

/// Flags every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output (-v debug, -vv trace); `DYLIB_DEV_LOG` overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// When to colour our lines and the compiler's diagnostics, as cargo does: auto (on a
    /// terminal, unless `NO_COLOR` is set), always, never.
    #[arg(
        long,
        value_name = "WHEN",
        global = true,
        value_enum,
        env = "CARGO_TERM_COLOR",
        default_value = "auto",
        hide_env_values = true
    )]
    pub color: Color,
}

/// `--color`'s values: clap's view of [`crate::ui::ColorChoice`], so `ui` names no clap type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Color {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always, also into a file or a pipe.
    Always,
    /// Never.
    Never,
}

impl From<Color> for crate::ui::ColorChoice {
    fn from(color: Color) -> crate::ui::ColorChoice {
        match color {
            Color::Auto => crate::ui::ColorChoice::Auto,
            Color::Always => crate::ui::ColorChoice::Always,
            Color::Never => crate::ui::ColorChoice::Never,
        }
    }
}

impl GlobalArgs {
    /// Locks the workspace at `root` for a command that changes it, saying why it waits (unless
    /// `--quiet`) and warning on a file system without locks.
    pub fn lock_workspace(&self, root: &Path) -> anyhow::Result<crate::lock::WorkspaceLock> {
        let quiet = self.quiet;
        let lock = crate::lock::WorkspaceLock::acquire(root, &mut |notice| match notice {
            crate::lock::LockNotice::Blocking { root } => {
                if !quiet {
                    crate::ui::status(
                        "Blocking",
                        format!(
                            "waiting for the lock on workspace `{}`: another `dylib-dev` wrap, unwrap, init or deinit is changing it",
                            root.display()
                        ),
                    );
                }
            }
            crate::lock::LockNotice::Unlockable { root, error } => crate::ui::warn(format!(
                "could not lock the workspace `{}` ({error}); make sure no other dylib-dev run changes it at the same time",
                root.display()
            )),
        })?;
        Ok(lock)
    }
}

/// Prints lines an engine composed for output several commands share (e.g. what `unwrap` did,
/// which `deinit` shows too).
pub fn show(lines: &[crate::report::Line]) {
    for line in lines {
        match line {
            crate::report::Line::Status(verb, msg) => crate::ui::status(verb, msg),
            crate::report::Line::Warn(msg) => crate::ui::warn(msg),
            crate::report::Line::Note(msg) => crate::ui::note(msg),
        }
    }
}

/// Which package of which workspace, named as cargo names it.
#[derive(Debug, Args, Clone, Default)]
pub struct PackageArgs {
    /// Path to Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Package to work on (default: the package in the current directory, or the only one).
    #[arg(short, long, value_name = "SPEC")]
    pub package: Option<String>,
}

/// Build flags passed through to cargo.
#[derive(Debug, Args, Clone, Default)]
pub struct BuildArgs {
    #[command(flatten)]
    pub package: PackageArgs,
    /// Space or comma separated features to activate (besides `dynamic`).
    #[arg(short = 'F', long, value_name = "FEATURES")]
    pub features: Vec<String>,
    /// Build with the release profile.
    #[arg(long)]
    pub release: bool,
    /// Name of the bin target to build or run.
    #[arg(long, value_name = "NAME")]
    pub bin: Option<String>,
}

impl PackageArgs {
    /// The engine's name for this choice of workspace and package.
    pub fn selector(&self) -> crate::project::Selector {
        crate::project::Selector {
            manifest_path: self.manifest_path.clone(),
            package: self.package.clone(),
        }
    }
}

/// A one-shot dynamic build of `project` (`build`, `run`): the first-build lines around a cold
/// build of the deps dylib (unless `quiet`), then [`build_and_report`].
pub fn one_shot_build(
    build: CargoBuild,
    project: &crate::project::Project,
    release: bool,
    quiet: bool,
) -> anyhow::Result<BuildOutcome> {
    let cold = cold_deps(project, release, quiet);
    if let Some(cold) = &cold {
        announce_cold_deps(cold, "`build`, `run` and `watch` reuse it");
    }
    let start = std::time::SystemTime::now();
    let outcome = build_and_report(build, project.package())?;
    if let Some(cold) = &cold {
        report_cold_deps(cold, start);
    }
    Ok(outcome)
}

/// Runs the build with cargo's stderr passed through, then prints the diagnostics (errors
/// first) and fails with a one-line summary if the build failed.
pub fn build_and_report(build: CargoBuild, package: &Package) -> anyhow::Result<BuildOutcome> {
    // Our own process group would keep the terminal's Ctrl-C from reaching cargo; a one-shot
    // build should stop on Ctrl-C exactly like plain cargo.
    let build = build.stderr(CargoStderr::Inherit).own_process_group(false);
    let outcome = build.run().context("failed to run the dynamic build")?;
    outcome
        .write_diagnostics(&mut std::io::stderr().lock())
        .context("failed to write diagnostics")?;
    let counts = outcome.counts();
    if !outcome.success {
        let detail = if counts.is_empty() {
            format!("cargo exited with {}", outcome.status)
        } else {
            counts
        };
        anyhow::bail!("dynamic build of `{}` failed ({detail})", package.name);
    }
    // cargo's own `Finished ... in 0.5s` line already went by on the inherited stderr.
    if !counts.is_empty() {
        crate::ui::warn(format_args!(
            "`{}` (dynamic build) generated {counts}",
            package.name
        ));
    }
    Ok(outcome)
}

/// Warns when `.cargo/config.toml` rustflags would be silently ignored by our RUSTFLAGS.
pub fn warn_about_config_rustflags() {
    if crate::cargo::env_rustflags_set() {
        // The user's environment already overrides config rustflags for their own builds too.
        return;
    }
    let Ok(cwd) = std::env::current_dir() else {
        return;
    };
    for found in crate::cargo::config_rustflags(&cwd) {
        crate::ui::warn(format_args!(
            "{found} is ignored by dynamic builds: cargo drops config rustflags when RUSTFLAGS is set, and dylib-dev sets it for `-C prefer-dynamic`\n  help: put those flags in RUSTFLAGS as well; dylib-dev keeps them and appends its own"
        ));
    }
}

/// Before a build that compiles the deps dylib for the first time: what the user waits for, and
/// that it happens once. `after` says what is quick afterwards.
pub fn announce_cold_deps(cold: &crate::first_build::ColdDeps, after: &str) {
    let crates = if cold.crates.is_empty() {
        "the wrapped crates".to_string()
    } else {
        cold.crates.join(", ")
    };
    crate::ui::status(
        "Building",
        format_args!(
            "{crates} into the deps dylib `{}` once (the long part); after that {after}",
            cold.deps_crate
        ),
    );
}

/// After that build: how long the deps dylib took, now that it is cached.
pub fn report_cold_deps(cold: &crate::first_build::ColdDeps, start: std::time::SystemTime) {
    if let Some(took) = cold.built_after(start) {
        crate::ui::status(
            "Cached",
            format_args!(
                "deps dylib `{}` (built in {}); later builds reuse it",
                cold.deps_crate,
                crate::duration::ms(took)
            ),
        );
    }
}

/// The project's deps dylib if the coming dynamic build compiles it for the first time (never
/// with `--quiet`: then nothing is said about it).
pub fn cold_deps(
    project: &crate::project::Project,
    release: bool,
    quiet: bool,
) -> Option<crate::first_build::ColdDeps> {
    if quiet {
        return None;
    }
    let layout = crate::deps_crate::Layout::of(project);
    let profile =
        crate::first_build::profile_dir(project.dynamic_target_dir().as_std_path(), release);
    crate::first_build::cold_deps(&layout.deps_crate, &layout.deps_dir, &profile)
}
