//! `dylib-dev build`: a dynamic build.
use super::Outcome;
use super::args::BuildArgs;
use super::args::{GlobalArgs, one_shot_build, warn_about_config_rustflags};
use crate::dynamic::{dynamic_build, ensure_wrapped};
use crate::project::Project;
use crate::ui;

/// Runs the command: the build, then where its executables are.
pub fn run(args: &BuildArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let project = Project::load(&args.package.selector(), false)?;
    let package = project.package();
    ensure_wrapped(package)?;
    warn_about_config_rustflags();
    let mut build = dynamic_build(&project, &args.features, args.release);
    if let Some(bin) = &args.bin {
        build = build.bin(bin);
    }
    let outcome = one_shot_build(build, &project, args.release, global.quiet)?;
    for artifact in outcome
        .artifacts
        .iter()
        .filter(|a| a.package_id == package.id)
    {
        if let Some(exe) = &artifact.executable {
            ui::status("Built", exe);
        }
    }
    Ok(Outcome::Success)
}
