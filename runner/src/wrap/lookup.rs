//! Which entries of the user's manifest a dependency name means, and what cargo resolved it to.
use crate::deps_crate::{DepEntry, DepTable};
use crate::project::Project;
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, Item, Table};

/// Dependency tables that are not linked into the program, with what to call them in messages.
const OTHER_KINDS: [(&str, &str); 4] = [
    ("dev-dependencies", "dev-dependency"),
    ("dev_dependencies", "dev-dependency"),
    ("build-dependencies", "build-dependency"),
    ("build_dependencies", "build-dependency"),
];

/// A name that is not a linked dependency of the package, each with the fix.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The name is not in the manifest at all.
    #[error(
        "`{name}` is not a dependency of `{package}` in `{manifest}`\n  help: add it first (`cargo add {name}`); its dependencies are: {known}"
    )]
    UnknownDependency {
        name: String,
        package: String,
        manifest: PathBuf,
        known: String,
    },
    /// The name is only a dev- or build-dependency.
    #[error(
        "`{name}` is only a {kind} of `{package}` in `{manifest}`; only [dependencies] are linked into the program, so only they can be wrapped"
    )]
    NotLinked {
        name: String,
        kind: &'static str,
        package: String,
        manifest: PathBuf,
    },
    /// A `[target.<triple>.dependencies]` key has no `cfg` equivalent for the re-export.
    #[error(
        "`{name}` is declared under `[target.{target}.dependencies]` in `{manifest}`; dylib-dev can wrap target-specific dependencies only under a `cfg(...)` key\n  help: write the target as `[target.'cfg(...)'.dependencies]`"
    )]
    TargetTriple {
        name: String,
        target: String,
        manifest: PathBuf,
    },
}

/// The user's entries for one dependency.
#[derive(Debug)]
pub struct FoundDep {
    /// The key in the dependency tables.
    pub key: String,
    /// Any entry says `optional = true`.
    pub optional: bool,
    /// All of its linked entries.
    pub entries: Vec<DepEntry>,
}

/// Finds `name` (a key, or the `package =` of a renamed entry) among the linked dependencies.
pub fn find_dependency(
    doc: &DocumentMut,
    name: &str,
    package: &str,
    manifest: &Path,
) -> Result<FoundDep, LookupError> {
    let matches = |key: &str, item: &Item| {
        key == name
            || key.replace('-', "_") == name.replace('-', "_")
            || item
                .get("package")
                .and_then(Item::as_str)
                .is_some_and(|p| p == name)
    };
    let mut found: Option<FoundDep> = None;
    let mut consider = |table: DepTable, deps: &Table| -> Result<(), LookupError> {
        for (key, item) in deps.iter() {
            if !matches(key, item) {
                continue;
            }
            if let DepTable::Target(t) = &table
                && !t.trim_start().starts_with("cfg(")
            {
                return Err(LookupError::TargetTriple {
                    name: key.to_string(),
                    target: t.clone(),
                    manifest: manifest.to_path_buf(),
                });
            }
            let optional = item
                .get("optional")
                .and_then(Item::as_bool)
                .unwrap_or(false);
            let entry = DepEntry {
                table: table.clone(),
                item: item.clone(),
            };
            let dep = found.get_or_insert_with(|| FoundDep {
                key: key.to_string(),
                optional: false,
                entries: Vec::new(),
            });
            dep.optional |= optional;
            dep.entries.push(entry);
        }
        Ok(())
    };
    if let Some(deps) = doc
        .get("dependencies")
        .and_then(Item::as_table_like)
        .map(as_table)
    {
        consider(DepTable::Normal, &deps)?;
    }
    if let Some(targets) = doc.get("target").and_then(Item::as_table_like) {
        for (cfg, target) in targets.iter() {
            if let Some(deps) = target
                .get("dependencies")
                .and_then(Item::as_table_like)
                .map(as_table)
            {
                consider(DepTable::Target(cfg.to_string()), &deps)?;
            }
        }
    }
    if let Some(found) = found {
        return Ok(found);
    }
    for (table, kind) in OTHER_KINDS {
        let in_table = |t: Option<&Item>| {
            t.and_then(Item::as_table_like)
                .is_some_and(|t| t.iter().any(|(k, i)| matches(k, i)))
        };
        let in_targets = doc
            .get("target")
            .and_then(Item::as_table_like)
            .is_some_and(|ts| ts.iter().any(|(_, t)| in_table(t.get(table))));
        if in_table(doc.get(table)) || in_targets {
            return Err(LookupError::NotLinked {
                name: name.to_string(),
                kind,
                package: package.to_string(),
                manifest: manifest.to_path_buf(),
            });
        }
    }
    let mut known: Vec<String> = doc
        .get("dependencies")
        .and_then(Item::as_table_like)
        .map(|t| t.iter().map(|(k, _)| k.to_string()).collect())
        .unwrap_or_default();
    known.retain(|k| !k.ends_with("-deps"));
    Err(LookupError::UnknownDependency {
        name: name.to_string(),
        package: package.to_string(),
        manifest: manifest.to_path_buf(),
        known: if known.is_empty() {
            "(none)".into()
        } else {
            known.join(", ")
        },
    })
}

fn as_table(t: &dyn toml_edit::TableLike) -> Table {
    t.iter().map(|(k, v)| (k, v.clone())).collect()
}

/// The extern name and package id cargo resolved for the dependency `key` of the selected package.
pub fn resolved_dep(project: &Project, key: &str) -> Option<(String, cargo_metadata::PackageId)> {
    let resolve = project.metadata.resolve.as_ref()?;
    let node = resolve.nodes.iter().find(|n| n.id == project.package_id)?;
    let pkg = project.package();
    // Map the manifest key to the dependency's package name via cargo's own view of the manifest.
    let dep = pkg
        .dependencies
        .iter()
        .find(|d| d.rename.as_deref().unwrap_or(&d.name) == key)?;
    let code_name = dep.rename.as_deref().unwrap_or(&dep.name).replace('-', "_");
    node.deps
        .iter()
        .find(|d| {
            d.name == code_name
                || project.metadata[&d.pkg].name.as_str() == dep.name && dep.rename.is_none()
        })
        .map(|d| (d.name.clone(), d.pkg.clone()))
}
