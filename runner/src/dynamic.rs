//! Dynamic-mode builds: `dylib-dev build` and `dylib-dev run`.
//!
//! A dynamic build is the user's package with the `dynamic` feature (which links the generated
//! `<package>-deps` dylib) and `-C prefer-dynamic` for every crate (so everything shares one
//! `libstd-*.so`), in its own target dir `<target>/dylib-dev`: changed RUSTFLAGS invalidate cargo's
//! cache, and the user's normal static build must not pay for that. The program it produces needs
//! its libraries at run time; [`crate::host::program_command`] starts it so.
use crate::cargo::{BuildOutcome, CargoBuild, CargoStderr};
use crate::commands::{args::BuildArgs, run::RunArgs};
use crate::project::Project;
use crate::toolchain::Toolchain;
use crate::ui;
use anyhow::Context;
use cargo_metadata::{Package, TargetKind};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// What stops a dynamic build or run before cargo is asked.
#[derive(Debug, thiserror::Error)]
pub enum DynamicError {
    /// The package has no `dynamic` feature.
    #[error(
        "package `{package}` is not wrapped: `{manifest}` has no `{feature}` feature\n  help: run `dylib-dev wrap <CRATE>...` (or `dylib-dev wrap --auto`) first; it makes the heavy dependencies one dylib behind that feature",
        feature = crate::wrap::FEATURE
    )]
    NotWrapped { package: String, manifest: PathBuf },
    /// `run` on a package without binaries.
    #[error("package `{package}` has no bin target to run")]
    NoBin { package: String },
    /// `--bin` names no bin of the package.
    #[error("package `{package}` has no bin target named `{name}`\n  help: its bins are: {bins}")]
    UnknownBin {
        package: String,
        name: String,
        bins: String,
    },
    /// Several bins and nothing says which.
    #[error(
        "package `{package}` has several bin targets; pick one with --bin <NAME> (or set `default-run` in its [package])\n  help: its bins are: {bins}"
    )]
    AmbiguousBin { package: String, bins: String },
    /// The build succeeded but reported no executable for the bin.
    #[error("cargo built `{package}` but reported no executable for bin `{bin}`")]
    NoExecutable { package: String, bin: String },
}

/// Refuses a package that `wrap` has not prepared (no `dynamic` feature).
pub fn ensure_wrapped(package: &Package) -> Result<(), DynamicError> {
    if package.features.contains_key(crate::wrap::FEATURE) {
        Ok(())
    } else {
        Err(DynamicError::NotWrapped {
            package: package.name.to_string(),
            manifest: package.manifest_path.clone().into_std_path_buf(),
        })
    }
}

/// The bin `run` should start: `--bin`, else `default-run`, else the only one.
pub fn select_bin(package: &Package, requested: Option<&str>) -> Result<String, DynamicError> {
    let bins: Vec<&str> = package
        .targets
        .iter()
        .filter(|t| t.is_kind(TargetKind::Bin))
        .map(|t| t.name.as_str())
        .collect();
    let list = || bins.join(", ");
    let package_name = || package.name.to_string();
    if let Some(name) = requested {
        return if bins.contains(&name) {
            Ok(name.to_string())
        } else {
            Err(DynamicError::UnknownBin {
                package: package_name(),
                name: name.to_string(),
                bins: list(),
            })
        };
    }
    if let Some(default) = &package.default_run {
        return Ok(default.clone());
    }
    match bins.as_slice() {
        [] => Err(DynamicError::NoBin {
            package: package_name(),
        }),
        [only] => Ok(only.to_string()),
        _ => Err(DynamicError::AmbiguousBin {
            package: package_name(),
            bins: list(),
        }),
    }
}

/// The `cargo build` of the project's package in dynamic mode, ready for more options
/// (`--bin`, `--lib`, stderr capture) from the caller.
pub fn dynamic_build(project: &Project, features: &[String], release: bool) -> CargoBuild {
    let package = project.package();
    let mut build = CargoBuild::new()
        .manifest_path(package.manifest_path.as_std_path())
        .package(package.name.as_str())
        .feature(crate::wrap::FEATURE)
        .features(features.iter().cloned())
        .release(release)
        .target_dir(project.dynamic_target_dir().as_std_path())
        // Every crate, not only the binary: a dylib can only be linked by crates that take std
        // from the shared library too ("cannot satisfy dependencies so `std` only shows up once").
        .rustflag("-Cprefer-dynamic");
    // The same wrapper as `watch`, so the two share cargo's cache (it fingerprints the wrapper).
    for (key, value) in crate::rustc_shim::fastpath::wrapper_env() {
        build = build.env(key, value);
    }
    build
}

/// Runs `dylib-dev build`.
pub fn build_command(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let project = Project::load(&args.package.selector(), false)?;
    let package = project.package();
    ensure_wrapped(package)?;
    warn_about_config_rustflags();
    let mut build = dynamic_build(&project, &args.features, args.release);
    if let Some(bin) = &args.bin {
        build = build.bin(bin);
    }
    let outcome = build_and_report(build, package)?;
    for artifact in outcome
        .artifacts
        .iter()
        .filter(|a| a.package_id == package.id)
    {
        if let Some(exe) = &artifact.executable {
            ui::status("Built", exe);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `dylib-dev run`.
pub fn run_command(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let project = Project::load(&args.build.package.selector(), false)?;
    let package = project.package();
    ensure_wrapped(package)?;
    let bin = select_bin(package, args.build.bin.as_deref())?;
    // Before the build, so a broken toolchain fails in a second, not after minutes of compiling.
    let toolchain = Toolchain::detect()?;
    warn_about_config_rustflags();
    let build = dynamic_build(&project, &args.build.features, args.build.release).bin(&bin);
    let outcome = build_and_report(build, package)?;
    let exe = outcome
        .executable(&package.id, &bin)
        .ok_or_else(|| DynamicError::NoExecutable {
            package: package.name.to_string(),
            bin: bin.clone(),
        })?;
    let mut cmd = crate::host::program_command(exe, package, &toolchain)?;
    cmd.args(&args.args);
    ui::status("Running", shell_words(exe, &args.args));
    run_program(cmd, exe)
}

/// Runs the build with cargo's stderr passed through, then prints the diagnostics (errors
/// first) and fails with a one-line summary if the build failed.
fn build_and_report(build: CargoBuild, package: &Package) -> anyhow::Result<BuildOutcome> {
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
        ui::warn(format_args!(
            "`{}` (dynamic build) generated {counts}",
            package.name
        ));
    }
    Ok(outcome)
}

/// Warns when `.cargo/config.toml` rustflags would be silently ignored by our RUSTFLAGS.
fn warn_about_config_rustflags() {
    if crate::cargo::env_rustflags_set() {
        // The user's environment already overrides config rustflags for their own builds too.
        return;
    }
    let Ok(cwd) = std::env::current_dir() else {
        return;
    };
    for found in crate::cargo::config_rustflags(&cwd) {
        ui::warn(format_args!(
            "{found} is ignored by dynamic builds: cargo drops config rustflags when RUSTFLAGS is set, and dylib-dev sets it for `-C prefer-dynamic`\n  help: put those flags in RUSTFLAGS as well; dylib-dev keeps them and appends its own"
        ));
    }
}

/// Starts the program in place of this process (Unix): its exit code and signals are the user's
/// to see directly, and no parent is left to forward Ctrl-C.
#[cfg(unix)]
fn run_program(mut cmd: Command, exe: &Path) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    Err(err).with_context(|| format!("failed to run `{}`", exe.display()))
}

/// Runs the program and exits with its exit code.
#[cfg(not(unix))]
fn run_program(mut cmd: Command, exe: &Path) -> anyhow::Result<ExitCode> {
    let status = cmd
        .status()
        .with_context(|| format!("failed to run `{}`", exe.display()))?;
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// `exe a b` for the status line, quoting arguments that need it.
fn shell_words(exe: &Path, args: &[OsString]) -> String {
    std::iter::once(exe.as_os_str())
        .chain(args.iter().map(OsString::as_os_str))
        .map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c)) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(json: serde_json::Value) -> Package {
        serde_json::from_value(json).unwrap()
    }

    fn fake_package(bins: &[&str], default_run: Option<&str>, features: &[&str]) -> Package {
        let targets: Vec<_> = bins
            .iter()
            .map(|name| {
                serde_json::json!({
                    "kind": ["bin"], "crate_types": ["bin"], "name": name,
                    "src_path": format!("/p/src/bin/{name}.rs"), "edition": "2024",
                    "doctest": false, "test": true, "doc": true
                })
            })
            .collect();
        let features: serde_json::Map<_, _> = features
            .iter()
            .map(|f| (f.to_string(), serde_json::json!([])))
            .collect();
        package(serde_json::json!({
            "name": "app", "version": "0.1.0", "id": "path+file:///p#app@0.1.0",
            "dependencies": [], "targets": targets, "features": features,
            "manifest_path": "/p/Cargo.toml", "default_run": default_run,
        }))
    }

    #[test]
    fn bin_selection_follows_cargo_run() {
        let one = fake_package(&["app"], None, &[]);
        assert_eq!(select_bin(&one, None).unwrap(), "app");
        let two = fake_package(&["app", "tool"], None, &[]);
        let err = select_bin(&two, None).unwrap_err().to_string();
        assert!(err.contains("--bin") && err.contains("app, tool"), "{err}");
        assert_eq!(select_bin(&two, Some("tool")).unwrap(), "tool");
        let err = select_bin(&two, Some("nope")).unwrap_err().to_string();
        assert!(err.contains("no bin target named `nope`"), "{err}");
        let defaulted = fake_package(&["app", "tool"], Some("tool"), &[]);
        assert_eq!(select_bin(&defaulted, None).unwrap(), "tool");
        let none = fake_package(&[], None, &[]);
        assert!(matches!(
            select_bin(&none, None),
            Err(DynamicError::NoBin { .. })
        ));
    }

    #[test]
    fn unwrapped_package_is_refused_with_the_fix() {
        let plain = fake_package(&["app"], None, &[]);
        let err = ensure_wrapped(&plain).unwrap_err().to_string();
        assert!(err.contains("dylib-dev wrap"), "{err}");
        assert!(ensure_wrapped(&fake_package(&["app"], None, &["dynamic"])).is_ok());
    }

    #[test]
    fn status_line_quotes_what_a_shell_would_split() {
        let line = shell_words(Path::new("/t/app"), &["a".into(), "b c".into(), "".into()]);
        assert_eq!(line, "/t/app a 'b c' ''");
    }
}
