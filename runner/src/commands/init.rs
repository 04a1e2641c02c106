//! `dylib-dev init`: an existing binary package turned into a dylib-dev project.
use super::Outcome;
use super::args::GlobalArgs;
use super::args::PackageArgs;
use crate::init::{self, Event, InitRequest};
use crate::project::Project;
use crate::{heavy, ui};
use clap::Args;

/// Arguments of `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// `-p` names the binary package to turn into the host.
    #[command(flatten)]
    pub package: PackageArgs,
    /// Dependencies to put into the deps dylib (default: the heavy ones, as `wrap --auto` picks).
    #[arg(value_name = "CRATE")]
    pub crates: Vec<String>,
    /// Without CRATEs: wrap a dependency whose crate graph has at least this much Rust source (KiB).
    #[arg(long, value_name = "KIB", default_value_t = crate::heavy::DEFAULT_MIN_SOURCE_KIB)]
    pub min_source_kib: u64,
    /// The split layout: host and logic as separate crates (a `<package>-logic` cdylib that
    /// `watch` swaps into the running host, declared in `hot_module!`). Without it, `init` only
    /// adds the runtime dependency, and functions become hot in place with `#[dylib_dev::hot]`.
    #[arg(long)]
    pub split: bool,
}

/// Runs the command: locks the workspace, sets the package up, says what is left to do.
pub fn run(args: &InitArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let selector = args.package.selector();
    let light = Project::load(&selector, false)?;
    // Held through the `wrap` inside (the lock is re-entrant within one process).
    let _lock = global.lock_workspace(light.workspace_root().as_std_path())?;
    let request = InitRequest {
        selector,
        crates: args.crates.clone(),
        min_source_kib: args.min_source_kib,
        split: args.split,
    };
    let quiet = global.quiet;
    let done = init::init(&light, &request, &mut |event| match event {
        Event::Assessed { choices, min_kib } => {
            if !quiet {
                eprint!("{}", heavy::table(choices, min_kib));
            }
        }
        Event::Warning(warning) => ui::warn(warning),
        // Only `deinit` unwraps.
        Event::Unwrapped(_) => {}
    })?;
    let places = &done.places;
    if !quiet {
        let what = if args.split {
            format!(
                "`{}` as the host of a dylib-dev project: logic crate `{}` in {}/, runtime copy in {}/",
                places.package,
                places.logic_crate,
                places.rel(&places.logic_dir),
                places.rel(&places.runtime_dir),
            )
        } else {
            format!(
                "`{}` for `#[dylib_dev::hot]` functions: the dependency `dylib_dev`, runtime copy in {}/",
                places.package,
                places.rel(&places.runtime_dir),
            )
        };
        ui::status("Initialized", what);
        if done.wrapped.is_empty() {
            ui::note(
                "nothing was wrapped; `dylib-dev wrap <crate>...` puts heavy dependencies into one dylib later",
            );
        } else {
            ui::status(
                "Wrapped",
                format!(
                    "{} into `{}`, linked by the host{}",
                    done.wrapped.join(", "),
                    places.layout.deps_crate,
                    if args.split {
                        " and the logic crate"
                    } else {
                        ""
                    }
                ),
            );
        }
    }
    print!("{}", done.guidance);
    Ok(Outcome::Success)
}
