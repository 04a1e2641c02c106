//! Where `init` puts everything, for the selected package.
use crate::deps_crate::{Layout, relative_path};
use crate::journal::INIT_RECORD_FILE;
use crate::project::Project;
use crate::templates::RUNTIME_DIR;
use std::path::{Path, PathBuf};

/// Where everything goes, for the selected package.
#[derive(Debug, Clone)]
pub struct Places {
    /// The package that becomes (or became) the host.
    pub package: String,
    /// The workspace root.
    pub root: PathBuf,
    /// The package's directory.
    pub package_dir: PathBuf,
    /// The package's manifest.
    pub host_manifest: PathBuf,
    /// The workspace's root manifest (the same file for a lone package).
    pub root_manifest: PathBuf,
    /// `<package>-logic`.
    pub logic_crate: String,
    /// `<package>_logic`: the library `hot_module!` names.
    pub logic_lib: String,
    /// Where the logic crate goes: where `wrap` puts the deps crate, under the logic crate's name.
    pub logic_dir: PathBuf,
    /// The runtime copy.
    pub runtime_dir: PathBuf,
    /// The journal of `init --split`, in the logic crate.
    pub record: PathBuf,
    /// The journal of the in-place `init`, in the runtime copy (there is no logic crate).
    pub runtime_record: PathBuf,
    /// `Cargo.lock`.
    pub lockfile: PathBuf,
    /// The deps crate's place, from [`Layout`].
    pub layout: Layout,
}

impl Places {
    /// The places for the project's selected package.
    pub fn of(project: &Project) -> Places {
        let layout = Layout::of(project);
        let package = layout.package.clone();
        let logic_crate = format!("{package}-logic");
        let logic_dir = layout.deps_dir.with_file_name(&logic_crate);
        let root = layout.workspace_root.clone();
        Places {
            logic_lib: logic_crate.replace('-', "_"),
            record: logic_dir.join(INIT_RECORD_FILE),
            runtime_record: root.join(RUNTIME_DIR).join(INIT_RECORD_FILE),
            runtime_dir: root.join(RUNTIME_DIR),
            lockfile: root.join("Cargo.lock"),
            root_manifest: root.join("Cargo.toml"),
            host_manifest: project.package().manifest_path.clone().into_std_path_buf(),
            package_dir: layout.package_dir.clone(),
            package,
            logic_crate,
            logic_dir,
            root,
            layout,
        }
    }

    /// The journal of an `init` done here, either route (the in-place one first), if any.
    pub fn existing_record(&self) -> Option<&Path> {
        [&self.runtime_record, &self.record]
            .into_iter()
            .find(|p| p.is_file())
            .map(PathBuf::as_path)
    }

    /// `path` relative to the workspace root, `/`-separated, for manifests and the journal.
    pub fn rel(&self, path: &Path) -> String {
        relative_path(path, &self.root)
            .to_string_lossy()
            .replace('\\', "/")
    }
}
