//! `dylib-dev doctor`: is this toolchain (and this project) ready for dynamic builds?
//!
//! Each check is ok, warn or error with a one-line fix. Only errors make the command fail: a
//! warning is something that works but could be better (a slow linker, flags that get ignored).
use crate::project::{Project, ProjectError, Selector};
use crate::toolchain::Toolchain;
use std::path::{Path, PathBuf};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but something is worth changing.
    Warn,
    /// Dynamic builds will fail until it is fixed.
    Error,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    /// How it came out.
    pub level: Level,
    /// What was checked, e.g. `sysroot`.
    pub name: &'static str,
    /// What was found.
    pub detail: String,
    /// What to do about a warning or error.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            level: Level::Ok,
            name,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            level: Level::Warn,
            name,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn error(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            level: Level::Error,
            name,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every check, in the order they are shown.
pub fn run_checks(selector: &Selector) -> Vec<Check> {
    let mut checks = Vec::new();
    let toolchain = match Toolchain::detect() {
        Ok(tc) => {
            checks.push(Check::ok("rustc", &tc.version_line));
            Some(tc)
        }
        Err(err) => {
            checks.push(Check::error(
                "rustc",
                error_chain(&err),
                "install a Rust toolchain with rustup, or point RUSTC at rustc",
            ));
            None
        }
    };
    checks.push(check_cargo());
    if let Some(tc) = &toolchain {
        checks.push(Check::ok("host", &tc.host));
        checks.push(check_sysroot(tc));
        checks.push(check_linker(tc, &path_dirs()));
    }
    checks.push(check_logic_tuning());
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    checks.extend(check_rustflags(&cwd));
    checks.push(check_build_cache(&cwd, &path_dirs()));
    checks.extend(check_project(selector));
    checks
}

/// The rustc wrapper cargo goes through, and for sccache its hit rate: a team or CI shares the
/// first build of heavy dependencies through it (see docs/build-cache.md).
fn check_build_cache(cwd: &Path, path: &[PathBuf]) -> Check {
    use crate::build_cache::{WrapperOrigin, current_wrapper, sccache_stats};
    let Some(wrapper) = current_wrapper(cwd) else {
        let installed = find_program("sccache", path)
            .map(|p| format!("sccache at {} is not in use; ", p.display()))
            .unwrap_or_default();
        return Check::ok(
            "build cache",
            format!(
                "none ({installed}sccache as RUSTC_WRAPPER shares the first build of heavy crates \
                 across clones, teammates and CI: see docs/build-cache.md)"
            ),
        );
    };
    let origin = match &wrapper.origin {
        WrapperOrigin::Env(var) => (*var).to_string(),
        WrapperOrigin::Config(file) => format!("build.rustc-wrapper in {}", file.display()),
    };
    if !wrapper.is_sccache() {
        return Check::ok(
            "build cache",
            format!("rustc wrapper `{}` ({origin})", wrapper.program),
        );
    }
    match sccache_stats(std::process::Command::new(&wrapper.program)) {
        Ok(stats) => {
            let rate = stats
                .hit_rate()
                .map(|r| format!(" ({:.0}% hits)", r * 100.0))
                .unwrap_or_default();
            Check::ok(
                "build cache",
                format!(
                    "sccache ({origin}): {} hits, {} misses{rate}; {}; the deps dylib, binaries \
                     and incremental crates are never cached",
                    stats.hits, stats.misses, stats.location
                ),
            )
        }
        Err(why) => Check::warn(
            "build cache",
            format!("sccache ({origin}) does not answer: {why}"),
            "check that sccache runs (`sccache --show-stats`), or unset RUSTC_WRAPPER",
        ),
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn check_cargo() -> Check {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    match crate::toolchain::output_of(&cargo, &["-V"]) {
        Ok(version) => Check::ok("cargo", version.trim()),
        Err(err) => Check::error(
            "cargo",
            error_chain(&err),
            "install cargo with rustup (it comes with every toolchain)",
        ),
    }
}

fn check_sysroot(tc: &Toolchain) -> Check {
    let dir = tc.runtime_dir();
    match tc.shared_std() {
        Some(std) => Check::ok(
            "sysroot",
            format!(
                "{}; shared std {} found",
                tc.sysroot.display(),
                std.file_name().unwrap_or_default().to_string_lossy()
            ),
        ),
        None => Check::error(
            "sysroot",
            format!(
                "{}; no shared std (libstd-*{}) in {}, which -C prefer-dynamic links against",
                tc.sysroot.display(),
                std::env::consts::DLL_SUFFIX,
                dir.display()
            ),
            format!(
                "use a rustup toolchain, or `rustup component add rust-std --target {}`",
                tc.host
            ),
        ),
    }
}

/// The directories of PATH.
fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default()
}

/// The first `name` (an executable) found in `dirs`.
fn find_program(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    dirs.iter()
        .map(|d| d.join(&file))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

fn check_linker(tc: &Toolchain, path: &[PathBuf]) -> Check {
    let available: Vec<&str> = ["mold", "ld.lld", "clang"]
        .into_iter()
        .filter(|name| find_program(name, path).is_some())
        .collect();
    let available_text = if available.is_empty() {
        "none of mold, ld.lld, clang on PATH".to_string()
    } else {
        format!("on PATH: {}", available.join(", "))
    };
    let linux = tc.host.contains("-linux-");
    // rustc drives the link through `cc` on Linux, also when rust-lld does the linking.
    if linux && find_program("cc", path).is_none() {
        return Check::error(
            "linker",
            format!("no `cc` on PATH, which rustc uses to link on {}", tc.host),
            "install a C toolchain (e.g. `apt-get install build-essential`)",
        );
    }
    let rust_lld_default = tc.host == "x86_64-unknown-linux-gnu"
        && tc.release_version().is_some_and(|v| v >= (1, 90))
        && tc.rust_lld().is_file();
    if rust_lld_default {
        Check::ok(
            "linker",
            format!(
                "rust-lld (rustc's default on x86_64 Linux since 1.90), already the fast choice: a static polars relink measured 5.07 s with it, 5.63 s with mold, 28 s with GNU ld; {available_text}"
            ),
        )
    } else if linux && !available.iter().any(|l| *l == "mold" || *l == "ld.lld") {
        Check::warn(
            "linker",
            format!("the system linker through `cc` (slow for large links); {available_text}"),
            "install mold or lld and add `-C link-arg=-fuse-ld=mold` (or `=lld`) to RUSTFLAGS: a static polars relink measured 28 s with GNU ld, 5.1-5.6 s with lld or mold",
        )
    } else {
        Check::ok("linker", format!("the platform default; {available_text}"))
    }
}

/// What `watch` can do to logic rebuilds here (the fast path and [`crate::rustc_shim`]).
fn check_logic_tuning() -> Check {
    if let Some(theirs) = std::env::var_os("RUSTC_WORKSPACE_WRAPPER") {
        return Check::warn(
            "logic build",
            format!(
                "RUSTC_WORKSPACE_WRAPPER={} is yours, so watch leaves it alone: no direct-rustc fast path, no logic tuning",
                theirs.to_string_lossy()
            ),
            "unset RUSTC_WORKSPACE_WRAPPER for `dylib-dev watch` (a polars logic edit rebuilds in ~0.35 s with both, ~1 s without)",
        );
    }
    let stub = if cfg!(target_os = "linux") {
        if crate::rustc_shim::stub::stub_links_here() {
            ", linked against a stub of the deps dylib"
        } else {
            "; `cc` cannot build a stub shared library here, so logic links read the whole deps dylib (~0.2 s more with polars)"
        }
    } else {
        ""
    };
    Check::ok(
        "logic build",
        format!(
            "rustc directly for logic-only edits, with -Zshare-generics=no{stub} (`watch --plain-rustc` or `--no-fast-path` to compare)"
        ),
    )
}

fn check_rustflags(cwd: &Path) -> Vec<Check> {
    let config = crate::cargo::config_rustflags(cwd);
    if crate::cargo::env_rustflags_set() {
        let shown = std::env::var("CARGO_ENCODED_RUSTFLAGS")
            .map(|v| format!("CARGO_ENCODED_RUSTFLAGS={}", v.replace('\x1f', " ")))
            .or_else(|_| std::env::var("RUSTFLAGS").map(|v| format!("RUSTFLAGS={v}")))
            .unwrap_or_default();
        // Config rustflags are already ignored for the user's own builds: nothing changes.
        return vec![Check::ok(
            "rustflags",
            format!("{shown}; dynamic builds append -C prefer-dynamic"),
        )];
    }
    if config.is_empty() {
        return vec![Check::ok(
            "rustflags",
            "none set; dynamic builds add -C prefer-dynamic",
        )];
    }
    config
        .into_iter()
        .map(|found| {
            Check::warn(
                "rustflags",
                format!("{found} is ignored by dynamic builds (cargo drops config rustflags when RUSTFLAGS is set)"),
                "put those flags in RUSTFLAGS too; dylib-dev keeps them and appends its own",
            )
        })
        .collect()
}

/// The host `watch` would run in this workspace, and a one-line description of the layers.
fn watch_layout(selector: &Selector) -> Result<(String, String), String> {
    let (_, metadata) =
        crate::project::load_metadata(selector, false).map_err(|e| error_chain(&e))?;
    let model = crate::watch::model::WatchModel::from_metadata(&metadata, None)
        .map_err(|e| error_chain(&e))?;
    let logic: Vec<&str> = model
        .roles
        .logic
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    let layout = if logic.is_empty() {
        format!(
            "host `{}`, no logic crate: watch restarts it on every change (`dylib-dev init` adds one)",
            model.roles.host
        )
    } else {
        format!(
            "host `{}`, logic `{}`",
            model.roles.host,
            logic.join("`, `")
        )
    };
    Ok((model.roles.host, layout))
}

fn check_project(selector: &Selector) -> Vec<Check> {
    match crate::project::locate_manifest(selector.manifest_path.as_deref()) {
        Err(ProjectError::NoManifest(dir)) => {
            return vec![Check::ok(
                "project",
                format!(
                    "no Cargo.toml in {} or above; project checks skipped",
                    dir.display()
                ),
            )];
        }
        Err(err) => {
            return vec![Check::error(
                "project",
                error_chain(&err),
                "pass an existing Cargo.toml",
            )];
        }
        Ok(_) => {}
    }
    let mut checks = Vec::new();
    let loaded = match Project::load(selector, false) {
        // A workspace of several packages: the one `watch` would run is the one to check.
        Err(ProjectError::Ambiguous { .. }) => watch_layout(selector).and_then(|(host, layout)| {
            checks.push(Check::ok("watch", layout));
            let mut selector = selector.clone();
            selector.package = Some(host);
            Project::load(&selector, false).map_err(|e| error_chain(&e))
        }),
        other => other.map_err(|e| error_chain(&e)),
    };
    let project = match loaded {
        Ok(project) => project,
        Err(err) => {
            checks.push(Check::error(
                "project",
                err,
                "fix the manifest (cargo metadata must succeed), or pass -p <package>",
            ));
            return checks;
        }
    };
    let package = project.package();
    let deps_crate = crate::deps_crate::Layout::of(&project).deps_crate;
    let has_feature = package.features.contains_key(crate::deps_crate::FEATURE);
    let has_deps = package.dependencies.iter().any(|d| d.name == deps_crate);
    let feature = crate::deps_crate::FEATURE;
    let wrapped = match (has_feature, has_deps) {
        (true, true) => Check::ok(
            "wrapped",
            format!(
                "`{}`: feature `{feature}` links `{deps_crate}`",
                package.name
            ),
        ),
        (false, false) => Check::warn(
            "wrapped",
            format!("`{}` is not wrapped (no `{feature}` feature)", package.name),
            "run `dylib-dev wrap --auto`, or `dylib-dev wrap <CRATE>...`",
        ),
        (true, false) => Check::warn(
            "wrapped",
            format!(
                "`{}` has a `{feature}` feature but no `{deps_crate}` dependency",
                package.name
            ),
            "run `dylib-dev wrap <CRATE>...` to generate and link it",
        ),
        (false, true) => Check::warn(
            "wrapped",
            format!(
                "`{}` depends on `{deps_crate}` but has no `{feature}` feature",
                package.name
            ),
            "run `dylib-dev wrap <CRATE>...` again to restore the feature",
        ),
    };
    checks.extend([
        Check::ok(
            "project",
            format!("`{}` in {}", package.name, project.workspace_root()),
        ),
        wrapped,
        Check::ok("target dir", project.target_dir().to_string()),
        Check::ok(
            "dynamic dir",
            format!("{} (dynamic builds)", project.dynamic_target_dir()),
        ),
    ]);
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toolchain(host: &str, release: &str) -> Toolchain {
        Toolchain {
            rustc: "rustc".into(),
            version_line: format!("rustc {release}"),
            release: release.into(),
            host: host.into(),
            sysroot: PathBuf::from("/nonexistent"),
        }
    }

    /// A directory with fake executables, standing in for PATH.
    fn bin_dir(names: &[&str]) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            let p = dir.path().join(name);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    #[test]
    fn missing_cc_on_linux_is_an_error() {
        let dir = bin_dir(&["mold"]);
        let check = check_linker(
            &toolchain("x86_64-unknown-linux-gnu", "1.95.0"),
            &[dir.path().into()],
        );
        assert_eq!(check.level, Level::Error, "{check:?}");
    }

    #[test]
    fn old_toolchain_without_fast_linker_warns() {
        let dir = bin_dir(&["cc", "clang"]);
        let check = check_linker(
            &toolchain("aarch64-unknown-linux-gnu", "1.95.0"),
            &[dir.path().into()],
        );
        assert_eq!(check.level, Level::Warn, "{check:?}");
        assert!(check.detail.contains("clang"), "{check:?}");
        let dir = bin_dir(&["cc", "mold"]);
        let check = check_linker(
            &toolchain("aarch64-unknown-linux-gnu", "1.95.0"),
            &[dir.path().into()],
        );
        assert_eq!(check.level, Level::Ok, "{check:?}");
    }

    #[test]
    fn real_toolchain_reports_rust_lld_on_x86_64_linux() {
        let tc = Toolchain::detect().unwrap();
        if tc.host != "x86_64-unknown-linux-gnu" {
            return;
        }
        let check = check_linker(&tc, &path_dirs());
        assert!(check.detail.contains("rust-lld"), "{check:?}");
    }
}
