//! The one cargo invocation every watch build uses, and what it produced.
//!
//! Every build names the same packages (host and all logic crates) with the same features, so
//! cargo resolves features identically each time and the deps dylib is the very same artifact the
//! running host has mapped; building `-p logic` alone could unify features differently and
//! rebuild it. cargo skips whatever did not change, so a logic edit still compiles only logic.
use super::model::WatchModel;
use crate::cargo::{BuildOutcome, CargoBuild, CargoStderr};
use cargo_metadata::TargetKind;
use std::path::PathBuf;

/// Build options from the command line.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Extra features (`-F`), applied as cargo applies them.
    pub features: Vec<String>,
    /// `--release`.
    pub release: bool,
    /// Rebuild logic with rustc directly when only its sources changed (`--no-fast-path` turns it off).
    pub fast_path: bool,
    /// Build logic with cargo's rustc flags as they are (`--plain-rustc`): no [`crate::rustc_shim::tuning`].
    pub plain_rustc: bool,
}

/// Where the rustc invocations of logic libraries are recorded (per profile: their flags differ).
pub fn capture_dir(model: &WatchModel, options: &BuildOptions) -> PathBuf {
    let profile = if options.release { "release" } else { "debug" };
    model.target_dir.join("invocations").join(profile)
}

/// Where the patches of hot crates are built (per profile, like the invocations they come from).
pub fn patch_dir(model: &WatchModel, options: &BuildOptions) -> PathBuf {
    let profile = if options.release { "release" } else { "debug" };
    model.target_dir.join("patches").join(profile)
}

/// The build of host and logic in dynamic mode.
pub fn watch_build(model: &WatchModel, options: &BuildOptions, show_progress: bool) -> CargoBuild {
    let mut build = CargoBuild::new()
        .manifest_path(model.workspace_root.join("Cargo.toml"))
        .package(&model.roles.host)
        .target_dir(&model.target_dir)
        .release(options.release)
        // Shared std for host, logic and deps: a panic in logic is then catchable by the host.
        .rustflag("-Cprefer-dynamic")
        .stderr(if show_progress {
            CargoStderr::Inherit
        } else {
            CargoStderr::Capture
        })
        .own_process_group(true);
    for (logic, _) in &model.roles.logic {
        build = build.package(logic);
    }
    if model.roles.host_has_dynamic {
        build = build.feature(format!(
            "{}/{}",
            model.roles.host,
            crate::deps_crate::FEATURE
        ));
    }
    for logic in &model.roles.logic_with_dynamic {
        build = build.feature(format!("{logic}/{}", crate::deps_crate::FEATURE));
    }
    build = build.features(options.features.iter().cloned());
    // dylib-dev as rustc's wrapper records the logic libraries' invocations for the fast path
    // and tunes their flags.
    let wrapper = crate::rustc_shim::fastpath::wrapper_env();
    if !wrapper.is_empty() {
        let crates: Vec<&str> = model
            .roles
            .logic
            .iter()
            .map(|(_, lib)| lib.as_str())
            .collect();
        build = build.env(
            crate::rustc_shim::fastpath::ENV_LOGIC_CRATES,
            crates.join(","),
        );
        let hot: Vec<String> = model
            .roles
            .hot
            .iter()
            .map(|h| {
                let kind = match h.kind {
                    crate::roles::HotKind::Bin => "bin",
                    crate::roles::HotKind::Lib => "lib",
                };
                format!("{}:{kind}", h.crate_name)
            })
            .collect();
        if !hot.is_empty() {
            build = build.env(crate::rustc_shim::fastpath::ENV_HOT_CRATES, hot.join(","));
        }
        if options.fast_path {
            build = build.env(
                crate::rustc_shim::fastpath::ENV_CAPTURE_DIR,
                capture_dir(model, options),
            );
        }
        if !options.plain_rustc {
            build = build.env(crate::rustc_shim::tuning::ENV_TUNE, "1");
        }
    }
    for (key, value) in wrapper {
        build = build.env(key, value);
    }
    build
}

/// What a successful build produced.
#[derive(Debug, Clone)]
pub struct Products {
    /// The host's executable.
    pub host_exe: PathBuf,
    /// Each logic library: (library target name, artifact path).
    pub libs: Vec<(String, PathBuf)>,
}

/// Picks the host executable and logic libraries out of cargo's artifact messages.
pub fn products(model: &WatchModel, outcome: &BuildOutcome) -> Option<Products> {
    let host_exe = outcome
        .artifacts
        .iter()
        .filter(|a| {
            a.target.name == model.roles.host_bin && a.target.kind.contains(&TargetKind::Bin)
        })
        .find_map(|a| a.executable.as_ref())?
        .clone()
        .into_std_path_buf();
    let mut libs = Vec::new();
    for (_, lib) in &model.roles.logic {
        let artifact = outcome.artifacts.iter().find(|a| {
            &a.target.name == lib
                && a.target
                    .kind
                    .iter()
                    .any(|k| matches!(k, TargetKind::CDyLib | TargetKind::DyLib))
        })?;
        let file = artifact.filenames.iter().find(|f| {
            let name = f.file_name().unwrap_or("");
            name.ends_with(std::env::consts::DLL_SUFFIX)
        })?;
        libs.push((lib.clone(), file.clone().into_std_path_buf()));
    }
    Some(Products { host_exe, libs })
}
