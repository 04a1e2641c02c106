//! Dynamic-mode builds, for `dylib-dev build`, `dylib-dev run`, `watch` and `bench`.
//!
//! A dynamic build is the user's package with the `dynamic` feature (which links the generated
//! `<package>-deps` dylib) and `-C prefer-dynamic` for every crate (so everything shares one
//! `libstd-*.so`), in its own target dir `<target>/dylib-dev`: changed RUSTFLAGS invalidate cargo's
//! cache, and the user's normal static build must not pay for that. The program it produces needs
//! its libraries at run time; [`crate::host::program_command`] starts it so.
use crate::cargo::CargoBuild;
use crate::project::Project;
use cargo_metadata::{Package, TargetKind};
use std::path::PathBuf;

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
    for (key, value) in crate::rustc_shim::fastpath::wrapper_env() {
        build = build.env(key, value);
    }
    build
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
