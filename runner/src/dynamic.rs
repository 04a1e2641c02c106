//! Dynamic-mode builds, for `dylib-dev build`, `dylib-dev run`, `watch` and `bench`.
//!
//! A dynamic build is the user's package with the `dynamic` feature (which links the generated
//! `<package>-deps` dylib) and `-C prefer-dynamic` for every crate (so everything shares one
//! `libstd-*.so`), in its own target dir `<target>/dylib-dev`: changed RUSTFLAGS invalidate cargo's
//! cache, and the user's normal static build must not pay for that. The program it produces needs
//! its libraries at run time; [`library_path_env`] says where they are, and the watcher reuses it.
use crate::cargo::CargoBuild;
use crate::platform;
use crate::project::Project;
use crate::toolchain::Toolchain;
use anyhow::Context;
use cargo_metadata::{Package, TargetKind};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What stops a dynamic build or run before cargo is asked.
#[derive(Debug, thiserror::Error)]
pub enum DynamicError {
    /// The package has no `dynamic` feature.
    #[error(
        "package `{package}` is not wrapped: `{manifest}` has no `{feature}` feature\n  help: run `dylib-dev wrap <CRATE>...` (or `dylib-dev wrap --auto`) first; it makes the heavy dependencies one dylib behind that feature",
        feature = crate::deps_crate::FEATURE
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
    if package.features.contains_key(crate::deps_crate::FEATURE) {
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
        .feature(crate::deps_crate::FEATURE)
        .features(features.iter().cloned())
        .release(release)
        .target_dir(project.dynamic_target_dir().as_std_path())
        // Every crate, not only the binary: a dylib can only be linked by crates that take std
        // from the shared library too ("cannot satisfy dependencies so `std` only shows up once").
        .rustflag("-Cprefer-dynamic");
    // The same wrapper as `watch`, so the two share cargo's cache (it fingerprints the wrapper).
    for (key, value) in crate::fastpath::wrapper_env() {
        build = build.env(key, value);
    }
    build
}

/// The directories a program of a dynamic build loads libraries from: the profile dir, its
/// `deps/`, and the toolchain's shared std.
pub fn library_dirs(profile_dir: &Path, toolchain: &Toolchain) -> Vec<PathBuf> {
    vec![
        profile_dir.to_path_buf(),
        profile_dir.join("deps"),
        toolchain.runtime_dir(),
    ]
}

/// The loader variable and its value for a program of a dynamic build whose executable sits in
/// `profile_dir`: [`library_dirs`] in front of the variable's current value.
pub fn library_path_env(
    profile_dir: &Path,
    toolchain: &Toolchain,
) -> anyhow::Result<(&'static str, OsString)> {
    let var = platform::LIBRARY_PATH_VAR;
    let value =
        platform::prepend_search_path(&library_dirs(profile_dir, toolchain), std::env::var_os(var))
            .with_context(|| {
                format!("failed to build {var}: a library directory contains a separator")
            })?;
    Ok((var, value))
}

/// A command that starts `exe` (a program of a dynamic build of `package`) outside cargo: the
/// library search path set, and the variables `cargo run` sets that programs read at run time.
pub fn program_command(
    exe: &Path,
    package: &Package,
    toolchain: &Toolchain,
) -> anyhow::Result<Command> {
    let profile_dir = exe
        .parent()
        .with_context(|| format!("executable `{}` has no parent directory", exe.display()))?;
    let (var, value) = library_path_env(profile_dir, toolchain)?;
    let mut cmd = Command::new(exe);
    cmd.env(var, value);
    let manifest_dir = package
        .manifest_path
        .parent()
        .unwrap_or(&package.manifest_path);
    // Bevy finds its `assets/` through CARGO_MANIFEST_DIR when started by `cargo run`.
    cmd.env("CARGO_MANIFEST_DIR", manifest_dir)
        .env("CARGO_MANIFEST_PATH", &package.manifest_path)
        .env("CARGO_PKG_NAME", package.name.as_str())
        .env("CARGO_PKG_VERSION", package.version.to_string());
    Ok(cmd)
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
}
