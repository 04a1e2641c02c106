//! The first (cold) dynamic build: the deps dylib `<package>-deps` does not exist yet, so this
//! build compiles every wrapped crate once. Commands tell the user what they are waiting for
//! before it starts and how long it took after; this module only finds out.
use crate::journal::Record;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A deps dylib that the coming build compiles for the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdDeps {
    /// `<package>-deps`.
    pub deps_crate: String,
    /// The wrapped crates it builds, by their key in `[dependencies]`.
    pub crates: Vec<String>,
    /// Where cargo writes the dylib (the profile dir's `deps/`, then the profile dir).
    candidates: Vec<PathBuf>,
}

impl ColdDeps {
    /// How long after `start` the dylib was written: the time the wrapped crates took. `None`
    /// when it still does not exist (the build failed before it).
    pub fn built_after(&self, start: SystemTime) -> Option<Duration> {
        let modified = self
            .candidates
            .iter()
            .find_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())?;
        modified.duration_since(start).ok()
    }
}

/// The deps crate `deps_crate` in `deps_dir` if its dylib is not built yet under `profile_dir`
/// (`<target>/dylib-dev/<profile>`); `None` when it is, or when there is no deps crate.
pub fn cold_deps(deps_crate: &str, deps_dir: &Path, profile_dir: &Path) -> Option<ColdDeps> {
    let manifest = std::fs::read_to_string(deps_dir.join("Cargo.toml")).ok()?;
    let file = format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        deps_crate.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    );
    let candidates = vec![
        profile_dir.join("deps").join(&file),
        profile_dir.join(&file),
    ];
    if candidates.iter().any(|p| p.exists()) {
        return None;
    }
    let crates = match Record::load(deps_dir) {
        Ok(Some(record)) if !record.wrapped.is_empty() => record.wrapped,
        _ => manifest_dependencies(&manifest),
    };
    Some(ColdDeps {
        deps_crate: deps_crate.to_string(),
        crates,
        candidates,
    })
}

/// The keys of a manifest's `[dependencies]`.
fn manifest_dependencies(manifest: &str) -> Vec<String> {
    let Ok(doc) = manifest.parse::<toml_edit::DocumentMut>() else {
        return Vec::new();
    };
    doc.get("dependencies")
        .and_then(|d| d.as_table_like())
        .map(|t| t.iter().map(|(k, _)| k.to_string()).collect())
        .unwrap_or_default()
}

/// The profile dir of a dynamic build: `<dynamic target dir>/debug` or `/release`.
pub fn profile_dir(dynamic_target_dir: &Path, release: bool) -> PathBuf {
    dynamic_target_dir.join(if release { "release" } else { "debug" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_until_the_dylib_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let deps_dir = tmp.path().join("app-deps");
        std::fs::create_dir_all(&deps_dir).unwrap();
        let profile = profile_dir(&tmp.path().join("target"), false);
        assert_eq!(cold_deps("app-deps", &deps_dir, &profile), None, "no crate");
        std::fs::write(
            deps_dir.join("Cargo.toml"),
            "[package]\nname = \"app-deps\"\n[dependencies]\nserde = \"1\"\nitoa = \"1\"\n",
        )
        .unwrap();
        let cold = cold_deps("app-deps", &deps_dir, &profile).unwrap();
        assert_eq!(cold.crates, ["serde", "itoa"]);
        let start = SystemTime::now() - Duration::from_secs(5);
        assert_eq!(cold.built_after(start), None);
        let file = format!(
            "{}app_deps{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        );
        std::fs::create_dir_all(profile.join("deps")).unwrap();
        std::fs::write(profile.join("deps").join(file), "").unwrap();
        assert!(cold.built_after(start).unwrap() >= Duration::from_secs(4));
        assert_eq!(cold_deps("app-deps", &deps_dir, &profile), None);
    }
}
