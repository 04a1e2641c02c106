//! What `watch` runs: the host binary, the reloadable logic crate(s) and the deps dylib, from
//! `cargo metadata` plus `[workspace.metadata.dylib-dev]` / `[package.metadata.dylib-dev]`.
//!
//! Unconfigured, the logic crates are the members whose library is a `cdylib` or `dylib` (other
//! than a generated `<name>-deps` crate) and the host is the one member with a binary.
use cargo_metadata::{Package, TargetKind};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    fn from_json(value: &serde_json::Value, origin: &str) -> Result<Settings, ModelError> {
        match value.get("dylib-dev") {
            None | Some(serde_json::Value::Null) => Ok(Settings::default()),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| ModelError::BadSettings {
                origin: origin.to_string(),
                reason: e.to_string(),
            }),
        }
    }
}

/// Timings given on the command line (`watch --debounce-ms`, `--hang-timeout-ms`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TimingFlags {
    /// `--debounce-ms`.
    pub debounce_ms: Option<u64>,
    /// `--hang-timeout-ms`.
    pub hang_timeout_ms: Option<u64>,
}

/// Default trailing debounce: short, so the build starts right after the editor's last write.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(30);
/// Default grace between SIGTERM and SIGKILL.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// Default hang threshold: long enough for a slow query in a REPL, short enough to notice.
pub const DEFAULT_HANG_TIMEOUT: Duration =
    Duration::from_millis(dylib_dev_runtime::protocol::DEFAULT_HANG_MS);

/// The values a timing setting can take, and why the others cannot work.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Its key in `[workspace.metadata.dylib-dev]`.
    pub key: &'static str,
    /// Smallest value that works, in milliseconds.
    pub min: u64,
    /// Largest value that makes sense, in milliseconds (also keeps deadlines from overflowing).
    pub max: u64,
    /// The default.
    pub default: Duration,
    /// What goes wrong below `min`.
    pub too_small: &'static str,
    /// What goes wrong above `max`.
    pub too_large: &'static str,
}

/// `debounce-ms`: 0 is fine (the event grouping still merges one save's writes).
pub const DEBOUNCE_LIMIT: Limit = Limit {
    key: "debounce-ms",
    min: 0,
    max: 10_000,
    default: DEFAULT_DEBOUNCE,
    too_small: "",
    too_large: "a build would start only after that long without a change, so every edit would seem ignored",
};

/// `hang-timeout-ms`: a swap waits for the call in flight (a frame or a query) and for the host
/// to copy and load the library, all within this time.
pub const HANG_LIMIT: Limit = Limit {
    key: "hang-timeout-ms",
    min: 100,
    max: 3_600_000,
    default: DEFAULT_HANG_TIMEOUT,
    too_small: "a swap must copy and load the new library and wait for the call in flight to return within this time, so every swap would time out and restart the host, and ordinary calls would be reported stuck",
    too_large: "a swap would wait that long for a stuck call before restarting the host",
};

/// `stop-timeout-ms`: the host saves its hand-off state and exits within this time.
pub const STOP_LIMIT: Limit = Limit {
    key: "stop-timeout-ms",
    min: 100,
    max: 600_000,
    default: DEFAULT_STOP_TIMEOUT,
    too_small: "a restarting host gets this long to save its hand-off state (waiting for the call in flight to return) and to exit after SIGTERM, so its state would be lost and it would be killed",
    too_large: "stopping a host that ignores SIGTERM would take that long",
};

impl Limit {
    /// `ms` as a duration, or why it cannot work; `origin` says where it was set, e.g.
    /// "in `[workspace.metadata.dylib-dev]` of `/p/Cargo.toml`".
    pub fn check(&self, ms: u64, setting: String, origin: String) -> Result<Duration, ModelError> {
        let why = if ms < self.min {
            self.too_small
        } else if ms > self.max {
            self.too_large
        } else {
            return Ok(Duration::from_millis(ms));
        };
        Err(ModelError::BadTiming {
            setting,
            origin,
            why: why.to_string(),
            min: self.min,
            max: self.max,
            default: self.default.as_millis() as u64,
        })
    }

    /// Checks a value from a manifest's `[<table>.metadata.dylib-dev]`.
    fn check_in(&self, ms: u64, table: &str, manifest: &Path) -> Result<Duration, ModelError> {
        self.check(
            ms,
            format!("{} = {ms}", self.key),
            format!(
                "in `[{table}.metadata.dylib-dev]` of `{}`",
                manifest.display()
            ),
        )
    }

    /// Checks a value given on the command line as `--<key>`.
    pub fn check_flag(&self, ms: u64) -> Result<Duration, ModelError> {
        self.check(
            ms,
            format!("--{} {ms}", self.key),
            "on the command line".into(),
        )
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

/// The three layers, resolved.
#[derive(Debug, Clone)]
pub struct WatchModel {
    /// Workspace root.
    pub workspace_root: PathBuf,
    /// cargo's target dir for dynamic builds.
    pub target_dir: PathBuf,
    /// The host package.
    pub host: String,
    /// The host's binary target.
    pub host_bin: String,
    /// Whether the host has the `dynamic` feature (a wrapped project).
    pub host_has_dynamic: bool,
    /// Logic packages (name, library target name).
    pub logic: Vec<(String, String)>,
    /// Logic packages that have the `dynamic` feature of a wrapped package.
    pub logic_with_dynamic: Vec<String>,
    /// Every local package, with its role.
    pub packages: Vec<LocalPackage>,
    /// Trailing debounce.
    pub debounce: Duration,
    /// SIGTERM-to-SIGKILL grace.
    pub stop_timeout: Duration,
    /// A call into logic running longer is reported stuck; a swap waits at most this long.
    pub hang_timeout: Duration,
}

/// The project cannot be mapped onto host + logic.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Settings do not parse.
    #[error("invalid [{origin}.metadata.dylib-dev]: {reason}")]
    BadSettings { origin: String, reason: String },
    /// A timing setting cannot work.
    #[error(
        "`{setting}` {origin} cannot work: {why}\n  help: use {min} to {max} ms (the default is {default})"
    )]
    BadTiming {
        setting: String,
        origin: String,
        why: String,
        min: u64,
        max: u64,
        default: u64,
    },
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

impl WatchModel {
    /// Builds the model; `host_override` is `-p` on the command line.
    pub fn from_metadata(
        meta: &cargo_metadata::Metadata,
        host_override: Option<&str>,
    ) -> Result<WatchModel, ModelError> {
        WatchModel::from_metadata_and_flags(meta, host_override, &TimingFlags::default())
    }

    /// [`Self::from_metadata`] with the command line's timings, which win over the manifests'.
    pub fn from_metadata_and_flags(
        meta: &cargo_metadata::Metadata,
        host_override: Option<&str>,
        flags: &TimingFlags,
    ) -> Result<WatchModel, ModelError> {
        let members: Vec<&Package> = meta.workspace_packages();
        let member_names = || {
            let mut names: Vec<&str> = members.iter().map(|p| p.name.as_str()).collect();
            names.sort_unstable();
            names.join(", ")
        };
        let workspace = Settings::from_json(&meta.workspace_metadata, "workspace")?;
        let find = |name: &str, what: &'static str| {
            members
                .iter()
                .copied()
                .find(|p| p.name.as_str() == name)
                .ok_or_else(|| ModelError::UnknownMember {
                    name: name.to_string(),
                    what,
                    members: member_names(),
                })
        };
        let root = meta.workspace_root.to_string();

        let host_name = host_override.map(str::to_string).or(workspace.host.clone());
        let host = match host_name {
            Some(name) => find(&name, "host")?,
            None => {
                let bins: Vec<&Package> = members
                    .iter()
                    .copied()
                    .filter(|p| p.targets.iter().any(|t| t.is_bin()))
                    .collect();
                match bins.as_slice() {
                    [one] => *one,
                    [] => {
                        return Err(ModelError::Ambiguous {
                            what: "the host",
                            root,
                            why: "no member has a binary".into(),
                        });
                    }
                    many => {
                        let names: Vec<&str> = many.iter().map(|p| p.name.as_str()).collect();
                        return Err(ModelError::Ambiguous {
                            what: "the host",
                            root,
                            why: format!("several members have binaries ({})", names.join(", ")),
                        });
                    }
                }
            }
        };
        let package = Settings::from_json(&host.metadata, "package")?;
        // Each timing checked where it was set: the host package's table wins over the workspace's.
        let workspace_manifest = meta.workspace_root.join("Cargo.toml").into_std_path_buf();
        // Only the value in effect is checked: a flag overrides a manifest's value, not adds to it.
        let timing = |limit: &Limit, flag: Option<u64>, ws: Option<u64>, pkg: Option<u64>| match (
            flag, pkg, ws,
        ) {
            (Some(ms), _, _) => limit.check_flag(ms),
            (None, Some(ms), _) => limit.check_in(ms, "package", host.manifest_path.as_std_path()),
            (None, None, Some(ms)) => limit.check_in(ms, "workspace", &workspace_manifest),
            (None, None, None) => Ok(limit.default),
        };
        let debounce = timing(
            &DEBOUNCE_LIMIT,
            flags.debounce_ms,
            workspace.debounce_ms,
            package.debounce_ms,
        )?;
        let stop_timeout = timing(
            &STOP_LIMIT,
            None,
            workspace.stop_timeout_ms,
            package.stop_timeout_ms,
        )?;
        let hang_timeout = timing(
            &HANG_LIMIT,
            flags.hang_timeout_ms,
            workspace.hang_timeout_ms,
            package.hang_timeout_ms,
        )?;
        // The host package's list wins over the workspace's.
        let logic = package.logic.or(workspace.logic);
        let deps_name = format!("{}-deps", host.name);

        let logic_pkgs: Vec<&Package> = match &logic {
            Some(names) => names
                .iter()
                .map(|n| find(n, "logic crate"))
                .collect::<Result<_, _>>()?,
            None => members
                .iter()
                .copied()
                .filter(|p| p.name.as_str() != deps_name && p.name != host.name && is_reloadable(p))
                .collect(),
        };
        if logic_pkgs.is_empty() {
            return Err(ModelError::Ambiguous {
                what: "the logic crate",
                root,
                why: "no member has a `cdylib` or `dylib` library to reload".into(),
            });
        }
        let mut logic = Vec::new();
        for pkg in &logic_pkgs {
            let lib = pkg
                .targets
                .iter()
                .find(|t| is_reloadable_target(&t.kind))
                .ok_or_else(|| ModelError::Ambiguous {
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
        Ok(WatchModel {
            workspace_root: meta.workspace_root.as_std_path().to_path_buf(),
            target_dir: meta.target_directory.join("dylib-dev").into_std_path_buf(),
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
            debounce,
            stop_timeout,
            hang_timeout,
        })
    }

    /// The host's package in `metadata` (the metadata the model was made from).
    pub fn host_package<'m>(&self, metadata: &'m cargo_metadata::Metadata) -> &'m Package {
        metadata
            .workspace_packages()
            .into_iter()
            .find(|p| p.name.as_str() == self.host)
            .expect("the model's host is a workspace member")
    }

    /// The package whose directory holds `path` (the innermost one for nested packages).
    pub fn package_of(&self, path: &Path) -> Option<&LocalPackage> {
        self.packages
            .iter()
            .filter(|p| path.starts_with(&p.dir))
            .max_by_key(|p| p.dir.components().count())
    }
}

fn is_reloadable_target(kinds: &[TargetKind]) -> bool {
    kinds
        .iter()
        .any(|k| matches!(k, TargetKind::CDyLib | TargetKind::DyLib))
}

fn is_reloadable(pkg: &Package) -> bool {
    pkg.targets.iter().any(|t| is_reloadable_target(&t.kind))
}
