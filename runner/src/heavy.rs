//! `wrap --auto`: which direct dependencies are heavy enough to wrap.
//!
//! The measure is the Rust source a dependency brings into the link: the `.rs` bytes of every crate
//! reachable from it through normal (linked) dependencies, as cargo resolved them. Link and
//! codegen time grow with that code; a crate count alone would rank forty tiny crates above one
//! huge one. Proc-macros and build-only crates never reach the linker and are never chosen.
use crate::project::Project;
use cargo_metadata::{CargoOpt, DependencyKind, Metadata, MetadataCommand, PackageId};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Default threshold of `--min-source-kib`: 1 MiB of Rust source.
pub const DEFAULT_MIN_SOURCE_KIB: u64 = 1024;

/// The verdict on one direct dependency.
#[derive(Debug, Clone)]
pub struct Choice {
    /// Its key in `[dependencies]`.
    pub key: String,
    /// Crates it links (itself included); 0 when not measured.
    pub crates: usize,
    /// Rust source bytes of those crates.
    pub bytes: u64,
    /// Whether `--auto` wraps it.
    pub wrap: bool,
    /// Why, in a few words.
    pub reason: String,
}

/// What `wrap --auto` would wrap in `package` of the workspace at `manifest`: (key, Rust source
/// bytes), heaviest first. Nothing when the project does not load (a hint, never an error).
pub fn picks(manifest: &Path, package: &str) -> Vec<(String, u64)> {
    let selector = crate::project::Selector::package_at(manifest, package);
    let Ok(project) = Project::load(&selector, true) else {
        return Vec::new();
    };
    let Ok(text) = std::fs::read_to_string(&project.package().manifest_path) else {
        return Vec::new();
    };
    let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else {
        return Vec::new();
    };
    let mut picks: Vec<(String, u64)> = assess(&project, &doc, DEFAULT_MIN_SOURCE_KIB * 1024)
        .into_iter()
        .filter(|c| c.wrap)
        .map(|c| (c.key, c.bytes))
        .collect();
    picks.sort_by_key(|p| std::cmp::Reverse(p.1));
    picks
}

/// Measures every direct normal dependency of the selected package.
///
/// Only what the host platform links counts: the graph comes from `cargo metadata
/// --filter-platform <host triple>`, so a `[target.'cfg(windows)'.dependencies]` entry (and
/// anything only it pulls in) is neither measured nor wrapped on Linux.
pub fn assess(project: &Project, doc: &toml_edit::DocumentMut, min_bytes: u64) -> Vec<Choice> {
    let host = host_graph(project);
    let metadata = host.as_ref().map_or(&project.metadata, |(_, m)| m);
    let Some(resolve) = metadata.resolve.as_ref() else {
        return Vec::new();
    };
    let nodes: HashMap<&PackageId, &cargo_metadata::Node> =
        resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let pkg = project.package();
    let deps_crate = format!("{}-deps", pkg.name);
    let mut sizes: HashMap<PackageId, u64> = HashMap::new();
    let mut out = Vec::new();
    for dep in pkg
        .dependencies
        .iter()
        .filter(|d| d.kind == DependencyKind::Normal)
    {
        let key = dep.rename.clone().unwrap_or_else(|| dep.name.clone());
        if key == deps_crate || out.iter().any(|c: &Choice| c.key == key) {
            continue;
        }
        // Skip entries `find_dependency` would not accept (e.g. `[target.<triple>]`).
        if crate::wrap::lookup::find_dependency(doc, &key, &pkg.name, Path::new("Cargo.toml"))
            .is_err()
        {
            continue;
        }
        let code_name = key.replace('-', "_");
        let Some(id) = nodes
            .get(&project.package_id)
            .and_then(|n| n.deps.iter().find(|d| d.name == code_name))
            .map(|d| &d.pkg)
        else {
            let reason = match &host {
                Some((triple, _)) => format!("not linked on {triple}"),
                None => "not in the resolved graph".into(),
            };
            out.push(Choice {
                key,
                crates: 0,
                bytes: 0,
                wrap: false,
                reason,
            });
            continue;
        };
        if metadata[id].targets.iter().any(|t| t.is_proc_macro()) {
            out.push(Choice {
                key,
                crates: 0,
                bytes: 0,
                wrap: false,
                reason: "proc-macro: never linked".into(),
            });
            continue;
        }
        let reach = linked_closure(id, &nodes, metadata);
        let bytes: u64 = reach
            .iter()
            .map(|id| {
                *sizes.entry((*id).clone()).or_insert_with(|| {
                    source_bytes(metadata[*id].manifest_path.parent().unwrap().as_std_path())
                })
            })
            .sum();
        let wrap = bytes >= min_bytes;
        let reason = if wrap {
            format!(
                "links {} of Rust source (>= {})",
                human(bytes),
                human(min_bytes)
            )
        } else {
            format!("light: {} < {}", human(bytes), human(min_bytes))
        };
        out.push(Choice {
            key,
            crates: reach.len(),
            bytes,
            wrap,
            reason,
        });
    }
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.key.cmp(&b.key)));
    out
}

/// The host's triple and the package graph as it links for the host: `cargo metadata
/// --filter-platform <triple>`, features as [`Project::load`] resolves them. `None` (measure the
/// whole graph, as before) when rustc or cargo cannot answer.
fn host_graph(project: &Project) -> Option<(String, Metadata)> {
    let host = match crate::toolchain::Toolchain::detect() {
        Ok(toolchain) => toolchain.host,
        Err(e) => {
            tracing::debug!("no host triple ({e}); measuring every platform's dependencies");
            return None;
        }
    };
    let mut cmd = MetadataCommand::new();
    cmd.manifest_path(project.root_manifest())
        .features(CargoOpt::AllFeatures)
        .other_options(vec!["--filter-platform".to_string(), host.clone()]);
    match cmd.exec() {
        Ok(metadata) => Some((host, metadata)),
        Err(e) => {
            tracing::debug!("cargo metadata --filter-platform {host} failed: {e}");
            None
        }
    }
}

/// The verdicts as a table, one line each after a heading (the command prints it).
pub fn table(choices: &[Choice], min_kib: u64) -> String {
    let mut out = format!(
        "dylib-dev wrap --auto: wrapping direct dependencies that link >= {} of Rust source\n",
        human(min_kib * 1024)
    );
    let width = choices
        .iter()
        .map(|c| c.key.len())
        .max()
        .unwrap_or(0)
        .max(10);
    out.push_str(&format!(
        "  {:width$}  {:>6}  {:>9}  decision\n",
        "dependency", "crates", "source"
    ));
    for c in choices {
        let verdict = if c.wrap { "wrap" } else { "skip" };
        out.push_str(&format!(
            "  {:width$}  {:>6}  {:>9}  {verdict}: {}\n",
            c.key,
            c.crates,
            human(c.bytes),
            c.reason
        ));
    }
    out
}

/// Packages reachable from `start` through dependencies that end up in the link.
fn linked_closure<'a>(
    start: &'a PackageId,
    nodes: &HashMap<&PackageId, &'a cargo_metadata::Node>,
    metadata: &Metadata,
) -> HashSet<&'a PackageId> {
    let mut seen = HashSet::new();
    let mut stack = vec![start];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Some(node) = nodes.get(id) else { continue };
        for dep in &node.deps {
            let linked = dep
                .dep_kinds
                .iter()
                .any(|k| k.kind == DependencyKind::Normal);
            let proc_macro = metadata[&dep.pkg].targets.iter().any(|t| t.is_proc_macro());
            if linked && !proc_macro {
                stack.push(&dep.pkg);
            }
        }
    }
    seen
}

/// Bytes of `.rs` files under a package directory, without its tests, benches and examples.
fn source_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            let skip = matches!(
                entry.file_name().to_str(),
                Some("tests" | "benches" | "examples" | "target" | ".git")
            );
            if !skip {
                total += source_bytes(&path);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            total += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    total
}

/// `1536` -> `1.5 KiB`.
pub fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
