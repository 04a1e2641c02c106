//! What each package of the workspace is to `watch`: the host binary, the reloadable logic
//! crate(s), the deps dylib, shared code; from `cargo metadata` plus
//! `[workspace.metadata.dylib-dev]` / `[package.metadata.dylib-dev]`.
//!
//! Unconfigured, the logic crates are the members whose library is a `cdylib` or `dylib` (other
//! than a generated `<name>-deps` crate) and the host is the one member with a binary. A project
//! with no such library has no logic crate: its hot crates (the host binary and the libraries that
//! depend on dylib-dev-runtime, for `#[dylib_dev::hot]` functions) are patched in place, and
//! without those `watch` runs it in restart mode.
use cargo_metadata::{DependencyKind, Package, TargetKind};
use serde::Deserialize;
use std::path::PathBuf;

/// Settings read from `[workspace.metadata.dylib-dev]`, overridden by the host package's
/// `[package.metadata.dylib-dev]`, overridden by the command line.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Settings {
    /// The host package's name.
    pub host: Option<String>,
    /// The logic packages' names.
    pub logic: Option<Vec<String>>,
    /// Trailing debounce of file events, in milliseconds.
    pub debounce_ms: Option<u64>,
    /// How long a stopping host gets between SIGTERM and SIGKILL, in milliseconds.
    pub stop_timeout_ms: Option<u64>,
    /// How long a call into logic may run before it counts as stuck, in milliseconds.
    pub hang_timeout_ms: Option<u64>,
}

impl Settings {
    /// The `dylib-dev` table of a `metadata` value (`origin`: `workspace` or `package`).
    pub fn from_json(value: &serde_json::Value, origin: &str) -> Result<Settings, RolesError> {
        match value.get("dylib-dev") {
            None | Some(serde_json::Value::Null) => Ok(Settings::default()),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| RolesError::BadSettings {
                origin: origin.to_string(),
                reason: e.to_string(),
            }),
        }
    }
}

/// What a package is to the watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The long-running binary.
    Host,
    /// A library swapped into the running host.
    Logic,
    /// The generated dylib of heavy dependencies.
    Deps,
    /// Any other local package (e.g. types shared by host and logic).
    Shared,
}

/// A local package and its role.
#[derive(Debug, Clone)]
pub struct LocalPackage {
    /// Package name.
    pub name: String,
    /// Directory holding its `Cargo.toml`.
    pub dir: PathBuf,
    /// Its role.
    pub role: Role,
}

/// The packages' roles, resolved.
#[derive(Debug, Clone)]
pub struct Roles {
    /// The host package.
    pub host: String,
    /// The host's binary target.
    pub host_bin: String,
    /// Whether the host has the `dynamic` feature (a wrapped project).
    pub host_has_dynamic: bool,
    /// Logic packages (name, library target name); empty in restart mode (no reloadable library:
    /// every change rebuilds and restarts the host).
    pub logic: Vec<(String, String)>,
    /// Logic packages that have the `dynamic` feature of a wrapped package.
    pub logic_with_dynamic: Vec<String>,
    /// Every local package, with its role.
    pub packages: Vec<LocalPackage>,
    /// Crates whose `#[dylib_dev::hot]` functions are patched in place: the host's binary and
    /// the libraries of local packages that depend on dylib-dev-runtime. Empty when the project
    /// has logic crates (the split layout).
    pub hot: Vec<HotCrate>,
}

/// A crate that may have `#[dylib_dev::hot]` functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotCrate {
    /// Its package.
    pub package: String,
    /// Its crate name as rustc's `--crate-name` has it (`-` as `_`).
    pub crate_name: String,
    /// The host's binary, or a library.
    pub kind: HotKind,
}

/// What a patch of a hot crate is built as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HotKind {
    /// The host's binary crate: a patch is the binary linked as a shared object.
    Bin,
    /// A library crate: a patch is it built as a `cdylib`.
    Lib,
}

/// The package name of the runtime whose `#[hot]` makes a crate hot.
pub const RUNTIME_PACKAGE: &str = "dylib-dev-runtime";

/// The project cannot be mapped onto host + logic.
#[derive(Debug, thiserror::Error)]
pub enum RolesError {
    /// Settings do not parse.
    #[error("invalid [{origin}.metadata.dylib-dev]: {reason}")]
    BadSettings { origin: String, reason: String },
    /// A configured name is not a member.
    #[error(
        "[workspace.metadata.dylib-dev] names `{name}` as the {what}, but no workspace member is called that\n  help: members are: {members}"
    )]
    UnknownMember {
        name: String,
        what: &'static str,
        members: String,
    },
    /// Cannot tell which package is which.
    #[error(
        "cannot tell {what} in `{root}`: {why}\n  help: say it in the workspace's Cargo.toml:\n\n    [workspace.metadata.dylib-dev]\n    host = \"<binary package>\"\n    logic = [\"<reloadable library package>\"]\n"
    )]
    Ambiguous {
        what: &'static str,
        root: String,
        why: String,
    },
}

impl Roles {
    /// Resolves the roles; `host_override` is `-p` on the command line.
    pub fn from_metadata(
        meta: &cargo_metadata::Metadata,
        host_override: Option<&str>,
    ) -> Result<Roles, RolesError> {
        let host = host_package(meta, host_override)?;
        let workspace = Settings::from_json(&meta.workspace_metadata, "workspace")?;
        let package = Settings::from_json(&host.metadata, "package")?;
        let members: Vec<&Package> = meta.workspace_packages();
        let root = meta.workspace_root.to_string();
        // The host package's list wins over the workspace's.
        let logic = package.logic.or(workspace.logic);
        let deps_name = format!("{}-deps", host.name);

        let logic_pkgs: Vec<&Package> = match &logic {
            Some(names) => names
                .iter()
                .map(|n| find_member(meta, n, "logic crate"))
                .collect::<Result<_, _>>()?,
            None => members
                .iter()
                .copied()
                .filter(|p| p.name.as_str() != deps_name && p.name != host.name && is_reloadable(p))
                .collect(),
        };
        // No reloadable library (or `logic = []`): restart mode, every change rebuilds and
        // restarts the host.
        let mut logic = Vec::new();
        for pkg in &logic_pkgs {
            let lib = pkg
                .targets
                .iter()
                .find(|t| is_reloadable_target(&t.kind))
                .ok_or_else(|| RolesError::Ambiguous {
                    what: "the logic crate",
                    root: root.clone(),
                    why: format!("`{}` has no `cdylib` or `dylib` library target", pkg.name),
                })?;
            logic.push((pkg.name.to_string(), lib.name.clone()));
        }
        let host_bin = host
            .default_run
            .clone()
            .or_else(|| {
                host.targets
                    .iter()
                    .find(|t| t.is_bin())
                    .map(|t| t.name.clone())
            })
            .unwrap_or_else(|| host.name.to_string());
        let packages = members
            .iter()
            .map(|p| LocalPackage {
                name: p.name.to_string(),
                dir: p
                    .manifest_path
                    .parent()
                    .expect("manifest has a dir")
                    .as_std_path()
                    .to_path_buf(),
                role: if p.name == host.name {
                    Role::Host
                } else if logic.iter().any(|(n, _)| n == p.name.as_str()) {
                    Role::Logic
                } else if p.name.as_str() == deps_name {
                    Role::Deps
                } else {
                    Role::Shared
                },
            })
            .collect();
        let hot = if logic.is_empty() {
            hot_crates(&members, &host.name, &host_bin, &deps_name)
        } else {
            Vec::new()
        };
        Ok(Roles {
            hot,
            host: host.name.to_string(),
            host_bin,
            host_has_dynamic: host.features.contains_key(crate::deps_crate::FEATURE),
            logic_with_dynamic: logic_pkgs
                .iter()
                .filter(|p| p.features.contains_key(crate::deps_crate::FEATURE))
                .map(|p| p.name.to_string())
                .collect(),
            logic,
            packages,
        })
    }
}

/// The workspace member called `name`, which the settings name as the `what`.
fn find_member<'m>(
    meta: &'m cargo_metadata::Metadata,
    name: &str,
    what: &'static str,
) -> Result<&'m Package, RolesError> {
    let members = meta.workspace_packages();
    members
        .iter()
        .copied()
        .find(|p| p.name.as_str() == name)
        .ok_or_else(|| {
            let mut names: Vec<&str> = members.iter().map(|p| p.name.as_str()).collect();
            names.sort_unstable();
            RolesError::UnknownMember {
                name: name.to_string(),
                what,
                members: names.join(", "),
            }
        })
}

/// The host package: `-p`, else the settings' `host`, else the only member with a binary.
pub fn host_package<'m>(
    meta: &'m cargo_metadata::Metadata,
    host_override: Option<&str>,
) -> Result<&'m Package, RolesError> {
    let workspace = Settings::from_json(&meta.workspace_metadata, "workspace")?;
    let root = meta.workspace_root.to_string();
    let host_name = host_override.map(str::to_string).or(workspace.host.clone());
    if let Some(name) = host_name {
        return find_member(meta, &name, "host");
    }
    let bins: Vec<&Package> = meta
        .workspace_packages()
        .into_iter()
        .filter(|p| p.targets.iter().any(|t| t.is_bin()))
        .collect();
    match bins.as_slice() {
        [one] => Ok(*one),
        [] => Err(RolesError::Ambiguous {
            what: "the host",
            root,
            why: "no member has a binary".into(),
        }),
        many => {
            let names: Vec<&str> = many.iter().map(|p| p.name.as_str()).collect();
            Err(RolesError::Ambiguous {
                what: "the host",
                root,
                why: format!("several members have binaries ({})", names.join(", ")),
            })
        }
    }
}

/// The host's binary and the libraries of the members that depend on dylib-dev-runtime.
fn hot_crates(members: &[&Package], host: &str, host_bin: &str, deps: &str) -> Vec<HotCrate> {
    let mut hot = Vec::new();
    for p in members {
        let uses_runtime = p
            .dependencies
            .iter()
            .any(|d| d.name == RUNTIME_PACKAGE && d.kind == DependencyKind::Normal);
        if !uses_runtime || p.name.as_str() == deps || p.name.as_str() == RUNTIME_PACKAGE {
            continue;
        }
        let dir = p.manifest_path.parent().expect("manifest has a dir");
        if !mentions_hot(&dir.join("src").into_std_path_buf()) {
            continue;
        }
        let crate_name = |t: &str| t.replace('-', "_");
        if p.name.as_str() == host {
            hot.push(HotCrate {
                package: p.name.to_string(),
                crate_name: crate_name(host_bin),
                kind: HotKind::Bin,
            });
        }
        if let Some(lib) = p.targets.iter().find(|t| {
            t.kind
                .iter()
                .any(|k| matches!(k, TargetKind::Lib | TargetKind::RLib))
        }) {
            hot.push(HotCrate {
                package: p.name.to_string(),
                crate_name: crate_name(&lib.name),
                kind: HotKind::Lib,
            });
        }
    }
    hot
}

/// Whether a source under `dir` mentions a `hot]` attribute (`#[dylib_dev::hot]`, `#[hot]`): a
/// package that only depends on the runtime has nothing to patch, and its edits restart the host.
fn mentions_hot(dir: &std::path::Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            mentions_hot(&path)
        } else {
            path.extension().is_some_and(|x| x == "rs")
                && std::fs::read_to_string(&path).is_ok_and(|text| text.contains("hot]"))
        }
    })
}

fn is_reloadable_target(kinds: &[TargetKind]) -> bool {
    kinds
        .iter()
        .any(|k| matches!(k, TargetKind::CDyLib | TargetKind::DyLib))
}

fn is_reloadable(pkg: &Package) -> bool {
    pkg.targets.iter().any(|t| is_reloadable_target(&t.kind))
}
