//! What `watch` runs: the packages' [roles](crate::roles) and the timings, from `cargo metadata`
//! plus `[workspace.metadata.dylib-dev]` / `[package.metadata.dylib-dev]` and the command line.
use crate::roles::{self, HotCrate, LocalPackage, Roles, RolesError, Settings};
use cargo_metadata::Package;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// The three layers, resolved (from [`Roles`]), and the timings.
#[derive(Debug, Clone)]
pub struct WatchModel {
    /// Workspace root.
    pub workspace_root: PathBuf,
    /// cargo's target dir for dynamic builds.
    pub target_dir: PathBuf,
    /// Which package is the host, which are logic, deps and shared.
    pub roles: Roles,
    /// Trailing debounce.
    pub debounce: Duration,
    /// SIGTERM-to-SIGKILL grace.
    pub stop_timeout: Duration,
    /// A call into logic running longer is reported stuck; a swap waits at most this long.
    pub hang_timeout: Duration,
}

/// The project cannot be mapped onto host + logic, or a timing cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The roles cannot be told (settings, members).
    #[error(transparent)]
    Roles(#[from] RolesError),
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
        // In the order the errors were always found: settings and host, timings, then logic.
        let host = roles::host_package(meta, host_override)?;
        let workspace = Settings::from_json(&meta.workspace_metadata, "workspace")?;
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
        Ok(WatchModel::new(
            meta,
            Roles::from_metadata(meta, host_override)?,
            debounce,
            stop_timeout,
            hang_timeout,
        ))
    }

    /// The model of `roles` in the workspace of `meta`, with these timings.
    pub fn new(
        meta: &cargo_metadata::Metadata,
        roles: Roles,
        debounce: Duration,
        stop_timeout: Duration,
        hang_timeout: Duration,
    ) -> WatchModel {
        WatchModel {
            workspace_root: meta.workspace_root.as_std_path().to_path_buf(),
            target_dir: meta.target_directory.join("dylib-dev").into_std_path_buf(),
            roles,
            debounce,
            stop_timeout,
            hang_timeout,
        }
    }

    /// The host's package in `metadata` (the metadata the model was made from).
    pub fn host_package<'m>(&self, metadata: &'m cargo_metadata::Metadata) -> &'m Package {
        metadata
            .workspace_packages()
            .into_iter()
            .find(|p| p.name.as_str() == self.roles.host)
            .expect("the model's host is a workspace member")
    }

    /// Restart mode: no logic crate and no hot function, so every change rebuilds and restarts
    /// the host.
    pub fn restart_mode(&self) -> bool {
        self.roles.logic.is_empty() && self.roles.hot.is_empty()
    }

    /// The hot crates of `package` (its binary, if it is the host, and its library).
    pub fn hot_crates_of<'a>(&'a self, package: &'a str) -> impl Iterator<Item = &'a HotCrate> {
        self.roles.hot.iter().filter(move |h| h.package == package)
    }

    /// The package whose directory holds `path` (the innermost one for nested packages).
    pub fn package_of(&self, path: &Path) -> Option<&LocalPackage> {
        self.roles
            .packages
            .iter()
            .filter(|p| path.starts_with(&p.dir))
            .max_by_key(|p| p.dir.components().count())
    }
}
