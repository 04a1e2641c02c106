//! The project model: which workspace, which package, where cargo puts its output.
//!
//! Everything here comes from `cargo metadata`, so `CARGO_TARGET_DIR`, `--manifest-path` and
//! workspace membership mean exactly what they mean to cargo.
use crate::manifest;
use camino::{Utf8Path, Utf8PathBuf};
use cargo_metadata::{Metadata, MetadataCommand, Package};
use std::path::{Path, PathBuf};

/// Why the project could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// No manifest where one was looked for.
    #[error(
        "could not find `Cargo.toml` in `{0}` or any parent directory\n  help: run dylib-dev inside a Cargo project, or pass --manifest-path <path/to/Cargo.toml>"
    )]
    NoManifest(PathBuf),
    /// `--manifest-path` names something that is not a manifest.
    #[error("manifest path `{0}` does not exist\n  help: pass the path of an existing Cargo.toml")]
    MissingManifest(PathBuf),
    /// The manifest does not parse.
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    /// `cargo metadata` failed.
    #[error("`cargo metadata` failed for `{path}`:\n{stderr}")]
    Metadata { path: PathBuf, stderr: String },
    /// `-p` names no member.
    #[error(
        "package `{name}` is not a member of the workspace at `{root}`\n  help: members are: {members}"
    )]
    NotAMember {
        name: String,
        root: Utf8PathBuf,
        members: String,
    },
    /// A virtual workspace with several members and no `-p`.
    #[error(
        "`{root}/Cargo.toml` is a workspace with several packages; pick one with -p <name>\n  help: members are: {members}"
    )]
    Ambiguous { root: Utf8PathBuf, members: String },
}

/// Which workspace and which package in it, as cargo's `--manifest-path` and `-p` name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// The manifest to start from (default: `Cargo.toml` here or in a parent directory).
    pub manifest_path: Option<PathBuf>,
    /// The package (default: the one in the current directory, or the only one).
    pub package: Option<String>,
}

impl Selector {
    /// The package `package` of the workspace whose manifest is `manifest_path`.
    pub fn package_at(manifest_path: impl Into<PathBuf>, package: impl Into<String>) -> Selector {
        Selector {
            manifest_path: Some(manifest_path.into()),
            package: Some(package.into()),
        }
    }
}

/// A loaded workspace and the package a command works on.
#[derive(Debug)]
pub struct Project {
    /// Everything cargo said.
    pub metadata: Metadata,
    /// The selected package's id.
    pub package_id: cargo_metadata::PackageId,
}

impl Project {
    /// Loads the project named by `--manifest-path`/`-p` (or found from the current directory).
    ///
    /// `with_deps` resolves the whole dependency graph (needed to tell proc-macros and lib names);
    /// without it only workspace members are read, which is fast and offline.
    pub fn load(args: &Selector, with_deps: bool) -> Result<Project, ProjectError> {
        let (manifest_path, metadata) = load_metadata(args, with_deps)?;
        let package_id = select_package(&metadata, &manifest_path, args.package.as_deref())?;
        Ok(Project {
            metadata,
            package_id,
        })
    }

    /// The selected package.
    pub fn package(&self) -> &Package {
        &self.metadata[&self.package_id]
    }

    /// The workspace root directory.
    pub fn workspace_root(&self) -> &Utf8Path {
        &self.metadata.workspace_root
    }

    /// cargo's target directory (honours `CARGO_TARGET_DIR` and config).
    pub fn target_dir(&self) -> &Utf8Path {
        &self.metadata.target_directory
    }

    /// The target dir for dynamic builds: separate, so changed RUSTFLAGS never thrash the user's cache.
    pub fn dynamic_target_dir(&self) -> Utf8PathBuf {
        self.metadata.target_directory.join("dylib-dev")
    }

    /// The workspace's root manifest.
    pub fn root_manifest(&self) -> Utf8PathBuf {
        self.metadata.workspace_root.join("Cargo.toml")
    }

    /// The package in the workspace with this name, if any.
    pub fn member(&self, name: &str) -> Option<&Package> {
        self.metadata
            .workspace_packages()
            .into_iter()
            .find(|p| p.name.as_str() == name)
    }
}

/// Runs `cargo metadata` for the workspace named by `--manifest-path` (or found from the current
/// directory), without selecting a package; returns the manifest path it started from too.
pub fn load_metadata(
    args: &Selector,
    with_deps: bool,
) -> Result<(PathBuf, Metadata), ProjectError> {
    let manifest_path = locate_manifest(args.manifest_path.as_deref())?;
    // Parse it ourselves first: our error names the file and the line, and nothing runs.
    manifest::Manifest::read(&manifest_path)?;
    let mut cmd = MetadataCommand::new();
    cmd.manifest_path(&manifest_path);
    if with_deps {
        // Optional dependencies must be in the graph too: they can be wrapped.
        cmd.features(cargo_metadata::CargoOpt::AllFeatures);
    } else {
        cmd.no_deps();
    }
    let metadata = cmd.exec().map_err(|err| ProjectError::Metadata {
        path: manifest_path.clone(),
        stderr: match err {
            cargo_metadata::Error::CargoMetadata { stderr } => stderr.trim_end().to_string(),
            other => other.to_string(),
        },
    })?;
    Ok((manifest_path, metadata))
}

/// Finds the manifest: `--manifest-path`, else `Cargo.toml` in the current directory or a parent.
pub fn locate_manifest(explicit: Option<&Path>) -> Result<PathBuf, ProjectError> {
    if let Some(path) = explicit {
        if !path.is_file() {
            return Err(ProjectError::MissingManifest(path.to_path_buf()));
        }
        return Ok(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
    }
    let cwd = std::env::current_dir().map_err(|_| ProjectError::NoManifest(PathBuf::from(".")))?;
    cwd.ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|candidate| candidate.is_file())
        .ok_or(ProjectError::NoManifest(cwd))
}

fn member_list(metadata: &Metadata) -> String {
    let mut names: Vec<&str> = metadata
        .workspace_packages()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    names.sort_unstable();
    names.join(", ")
}

fn select_package(
    metadata: &Metadata,
    manifest_path: &Path,
    requested: Option<&str>,
) -> Result<cargo_metadata::PackageId, ProjectError> {
    let members = metadata.workspace_packages();
    if let Some(name) = requested {
        return members
            .iter()
            .find(|p| p.name.as_str() == name)
            .map(|p| p.id.clone())
            .ok_or_else(|| ProjectError::NotAMember {
                name: name.to_string(),
                root: metadata.workspace_root.clone(),
                members: member_list(metadata),
            });
    }
    let canonical = manifest_path
        .canonicalize()
        .unwrap_or_else(|_| manifest_path.to_path_buf());
    if let Some(pkg) = members.iter().find(|p| {
        p.manifest_path
            .as_std_path()
            .canonicalize()
            .is_ok_and(|m| m == canonical)
    }) {
        return Ok(pkg.id.clone());
    }
    match members.as_slice() {
        [only] => Ok(only.id.clone()),
        _ => Err(ProjectError::Ambiguous {
            root: metadata.workspace_root.clone(),
            members: member_list(metadata),
        }),
    }
}

/// Lets cargo bring `Cargo.lock` in line with the manifests (offline first), keeping every
/// other locked version; `false` if cargo could not resolve.
pub fn settle_lockfile(root_manifest: &Path) -> bool {
    let resolve = |offline: bool| {
        let mut cmd =
            std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.args(["metadata", "--format-version", "1", "--manifest-path"])
            .arg(root_manifest);
        if offline {
            cmd.arg("--offline");
        }
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    };
    resolve(true) || resolve(false)
}
