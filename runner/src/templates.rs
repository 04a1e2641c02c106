//! The project templates `dylib-dev new` renders and the runtime crate that `new` and `init` copy
//! into a project: both embedded in the binary when it is built (`runner/build.rs` lists the real
//! files as `include_bytes!`), so they work after `cargo install` with no checkout.
//!
//! A template is a directory `templates/<name>/` of the repository holding the files of a project.
//! Each file (and file path) may use these placeholders, replaced when it is written out:
//!
//! | placeholder | value, for `dylib-dev new path/to/my-app` |
//! |---|---|
//! | `{{name}}` | `my-app`: the package name (the directory's name, or `--name`) |
//! | `{{crate_name}}` | `my_app`: the same as Rust code names it |
//! | `{{runtime_version}}` | the version of the copied `dylib-dev-runtime` |
//! | `{{dylib_dev_version}}` | the version of this `dylib-dev` |
//!
//! Nothing else is touched (no template engine: a `{{` that is not one of these stays as it is).
//! `template.toml` describes the template and is not written out; see [`TemplateSettings`].
//!
//! A generated host gets the runtime from [`RUNTIME_DIR`] at the project root, a copy of
//! `runner/runtime` pinned to this version of the runner, because the crate is not on crates.io
//! yet. Its manifest says so; a later release depends on the published crate instead.
use std::borrow::Cow;
use toml_edit::DocumentMut;

/// A file embedded at build time.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedFile {
    /// Its path relative to its template (or the runtime crate), `/`-separated.
    pub path: &'static str,
    /// Its bytes as they were on disk.
    pub contents: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The file of a template that describes it and is not written out.
pub const TEMPLATE_MANIFEST: &str = "template.toml";
/// Where the copy of the runtime crate goes, relative to the project root.
pub const RUNTIME_DIR: &str = "dylib-dev-runtime";
/// The runtime crate's package name.
pub const RUNTIME_PACKAGE: &str = "dylib-dev-runtime";
/// The template `new` uses without `--template`.
pub const DEFAULT_TEMPLATE: &str = "minimal";
/// This runner's version.
pub const DYLIB_DEV_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What `template.toml` says about a template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateSettings {
    /// One line for `--help`.
    pub description: String,
    /// The file to edit once `dylib-dev watch` runs, shown after `new`.
    pub edit: Option<String>,
    /// What happens when that file is edited, shown after `new`.
    pub hint: Option<String>,
    /// Dependencies of the host that `new` puts into the deps dylib right after rendering, as
    /// `dylib-dev wrap <crate>...` does (this resolves the dependency graph, so it needs the
    /// registry). Empty for templates without heavy dependencies.
    pub wrap: Vec<String>,
}

impl TemplateSettings {
    /// Parses `template.toml`.
    pub fn parse(text: &str) -> Result<TemplateSettings, String> {
        let doc: DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
        let string = |key: &str| doc.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let wrap = match doc.get("wrap") {
            None => Vec::new(),
            Some(item) => item
                .as_array()
                .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect())
                .ok_or("`wrap` must be an array of crate names")?,
        };
        Ok(TemplateSettings {
            description: string("description").ok_or("`description` is missing")?,
            edit: string("edit"),
            hint: string("hint"),
            wrap,
        })
    }
}

/// One file of a template, before rendering.
#[derive(Debug, Clone)]
pub struct TemplateFile {
    /// Path relative to the project root, `/`-separated; may hold placeholders.
    pub path: String,
    /// The contents; text may hold placeholders, other bytes are copied as they are.
    pub contents: Cow<'static, [u8]>,
}

/// A project template.
#[derive(Debug, Clone)]
pub struct Template {
    /// Its name (the directory's name under `templates/`).
    pub name: String,
    /// Its `template.toml`.
    pub settings: TemplateSettings,
    /// Its files, `template.toml` excluded.
    pub files: Vec<TemplateFile>,
}

impl Template {
    /// A template from its files (one of them `template.toml`).
    pub fn from_files(name: &str, files: Vec<TemplateFile>) -> Result<Template, String> {
        let manifest = files
            .iter()
            .find(|f| f.path == TEMPLATE_MANIFEST)
            .ok_or_else(|| format!("template `{name}` has no {TEMPLATE_MANIFEST}"))?;
        let text = std::str::from_utf8(&manifest.contents)
            .map_err(|_| format!("{TEMPLATE_MANIFEST} of `{name}` is not UTF-8"))?;
        let settings = TemplateSettings::parse(text)
            .map_err(|e| format!("{TEMPLATE_MANIFEST} of `{name}`: {e}"))?;
        Ok(Template {
            name: name.to_string(),
            settings,
            files: files
                .into_iter()
                .filter(|f| f.path != TEMPLATE_MANIFEST)
                .collect(),
        })
    }

    /// The project's files for `names`: (path relative to the project root, bytes), in order.
    pub fn render(&self, names: &Names) -> Vec<(String, Vec<u8>)> {
        let vars = variables(names);
        self.files
            .iter()
            .map(|f| {
                let contents = match std::str::from_utf8(&f.contents) {
                    Ok(text) => render(text, &vars).into_bytes(),
                    Err(_) => f.contents.to_vec(),
                };
                (render(&f.path, &vars), contents)
            })
            .collect()
    }
}

/// Every embedded template, by name.
pub fn all() -> Vec<Template> {
    TEMPLATES
        .iter()
        .map(|(name, files)| {
            let files = files
                .iter()
                .map(|f| TemplateFile {
                    path: f.path.to_string(),
                    contents: Cow::Borrowed(f.contents),
                })
                .collect();
            // A test checks every template parses; a broken one is a bug of this build.
            Template::from_files(name, files).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

/// The embedded template called `name`.
pub fn find(name: &str) -> Option<Template> {
    all().into_iter().find(|t| t.name == name)
}

/// The names of the embedded templates.
pub fn names() -> Vec<&'static str> {
    TEMPLATES.iter().map(|(name, _)| *name).collect()
}

/// The names a project gets, derived from one package name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The package name, e.g. `my-app`.
    pub name: String,
    /// The crate name Rust code uses, e.g. `my_app`.
    pub crate_name: String,
}

/// A name that cannot be a package name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` cannot be a package name: {reason}")]
pub struct InvalidName {
    /// The name.
    pub name: String,
    /// Why not.
    pub reason: String,
}

/// Rust keywords (strict and reserved): not usable as crate names.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Names cargo refuses or that clash with the standard library, cargo's output directories or
/// Windows device names.
const RESERVED: &[&str] = &[
    "alloc",
    "core",
    "proc_macro",
    "std",
    "test",
    "build",
    "deps",
    "examples",
    "incremental",
    "con",
    "prn",
    "aux",
    "nul",
    "com1",
    "com2",
    "com3",
    "com4",
    "com5",
    "com6",
    "com7",
    "com8",
    "com9",
    "lpt1",
    "lpt2",
    "lpt3",
    "lpt4",
    "lpt5",
    "lpt6",
    "lpt7",
    "lpt8",
    "lpt9",
];

impl Names {
    /// Checks `name` as a package name and derives the crate name.
    ///
    /// Stricter than cargo where cargo only warns: ASCII lower case, digits, `-` and `_`, not
    /// starting with a digit or `-`, no keyword, no reserved name.
    pub fn new(name: &str) -> Result<Names, InvalidName> {
        let invalid = |reason: &str| InvalidName {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        let crate_name = name.replace('-', "_");
        if name.is_empty() {
            return Err(invalid("it is empty"));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            return Err(invalid(&if c.is_ascii_uppercase() {
                "package names are lower case".to_string()
            } else {
                format!("`{c}` is not allowed; use lower-case letters, digits, `-` and `_`")
            }));
        }
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(invalid("it starts with a digit"));
        }
        if name.starts_with(['-', '_']) || name.ends_with(['-', '_']) {
            return Err(invalid("it starts or ends with `-` or `_`"));
        }
        if KEYWORDS.contains(&crate_name.as_str()) {
            return Err(invalid("it is a Rust keyword"));
        }
        if RESERVED.contains(&crate_name.as_str()) {
            return Err(invalid("the name is reserved"));
        }
        if crate_name == RUNTIME_PACKAGE.replace('-', "_") {
            return Err(invalid("that is the runtime crate's name"));
        }
        Ok(Names {
            name: name.to_string(),
            crate_name,
        })
    }
}

/// The placeholders and their values for `names`.
pub fn variables(names: &Names) -> Vec<(&'static str, String)> {
    vec![
        ("name", names.name.clone()),
        ("crate_name", names.crate_name.clone()),
        ("runtime_version", runtime_version()),
        ("dylib_dev_version", DYLIB_DEV_VERSION.to_string()),
    ]
}

/// Replaces every `{{key}}` whose key is in `vars`; anything else stays as it is.
pub fn render(text: &str, vars: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let value = after.find("}}").and_then(|end| {
            let key = &after[..end];
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (v, end + 2))
        });
        match value {
            Some((value, len)) => {
                out.push_str(value);
                rest = &after[len..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The version in the embedded runtime manifest.
pub fn runtime_version() -> String {
    let manifest = RUNTIME_FILES
        .iter()
        .find(|f| f.path == "Cargo.toml")
        .expect("the runtime manifest is embedded");
    let doc: DocumentMut = std::str::from_utf8(manifest.contents)
        .expect("UTF-8 manifest")
        .parse()
        .expect("the runtime manifest parses");
    doc["package"]["version"]
        .as_str()
        .expect("the runtime has a literal version")
        .to_string()
}

/// The runtime's path dependency on the macros crate, in the repository (`runner/macros`).
const MACROS_DEPENDENCY: &str = r#"dylib-dev-macros = { path = "../macros","#;
/// The same in the copy, which carries the macros crate inside it (one directory to exclude from
/// the user's workspace and to take out again).
const MACROS_DEPENDENCY_IN_COPY: &str = r#"dylib-dev-macros = { path = "macros","#;

/// The files of the runtime copy, relative to [`RUNTIME_DIR`]: the crate's sources as they are,
/// the macros crate's under `macros/`, its manifest under a comment that says what the copy is
/// and with the macros crate's path pointing inside the copy.
pub fn runtime_files() -> Vec<(String, Vec<u8>)> {
    RUNTIME_FILES
        .iter()
        .map(|f| {
            let mut contents = f.contents.to_vec();
            if f.path == "Cargo.toml" {
                let manifest = std::str::from_utf8(f.contents).expect("UTF-8 manifest");
                assert!(
                    manifest.contains(MACROS_DEPENDENCY),
                    "the runtime manifest names the macros crate as `{MACROS_DEPENDENCY}`"
                );
                contents = manifest
                    .replace(MACROS_DEPENDENCY, MACROS_DEPENDENCY_IN_COPY)
                    .into_bytes();
                let header = format!(
                    "# A copy of {RUNTIME_PACKAGE} {}, written by dylib-dev {DYLIB_DEV_VERSION}: the host side of the\n\
                     # reload protocol that this version of the runner speaks. Do not edit it; a later release of\n\
                     # dylib-dev depends on {RUNTIME_PACKAGE} from crates.io instead of this copy.\n",
                    runtime_version()
                );
                contents.splice(0..0, header.into_bytes());
            }
            (f.path.to_string(), contents)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn on_disk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            if path.is_dir() {
                on_disk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy();
                out.insert(rel.replace('\\', "/"), std::fs::read(&path).unwrap());
            }
        }
    }

    /// The binary carries exactly `runner/runtime`'s manifest and sources as they are now: a
    /// generated project can never get a runtime that differs from the one this runner is tested with.
    #[test]
    fn embedded_runtime_is_the_runtime_crate_on_disk() {
        let root = Path::new(RUNTIME_SOURCE);
        let mut disk = BTreeMap::new();
        on_disk(root, &root.join("src"), &mut disk);
        disk.insert(
            "Cargo.toml".into(),
            std::fs::read(root.join("Cargo.toml")).unwrap(),
        );
        if root.join("build.rs").is_file() {
            disk.insert(
                "build.rs".into(),
                std::fs::read(root.join("build.rs")).unwrap(),
            );
        }
        let macros = Path::new(MACROS_SOURCE);
        let mut macro_files = BTreeMap::new();
        on_disk(macros, &macros.join("src"), &mut macro_files);
        macro_files.insert(
            "Cargo.toml".into(),
            std::fs::read(macros.join("Cargo.toml")).unwrap(),
        );
        disk.extend(
            macro_files
                .into_iter()
                .map(|(rel, bytes)| (format!("macros/{rel}"), bytes)),
        );
        let embedded: BTreeMap<String, Vec<u8>> = RUNTIME_FILES
            .iter()
            .map(|f| (f.path.to_string(), f.contents.to_vec()))
            .collect();
        assert_eq!(
            embedded.keys().collect::<Vec<_>>(),
            disk.keys().collect::<Vec<_>>()
        );
        for (path, bytes) in &disk {
            assert!(
                embedded[path] == *bytes,
                "embedded {path} differs from disk"
            );
        }
        // What is written out differs only by the comment on top of the manifest and the path of
        // the macros crate in it.
        for (path, bytes) in runtime_files() {
            if path == "Cargo.toml" {
                let expected = String::from_utf8(disk[&path].clone())
                    .unwrap()
                    .replace(MACROS_DEPENDENCY, MACROS_DEPENDENCY_IN_COPY);
                assert!(bytes.ends_with(expected.as_bytes()) && bytes.starts_with(b"# A copy of"));
                assert!(!expected.contains("../macros"), "{expected}");
            } else {
                assert_eq!(bytes, disk[&path], "{path}");
            }
        }
    }

    #[test]
    fn embedded_templates_are_the_templates_on_disk() {
        let root = Path::new(TEMPLATES_SOURCE);
        let mut disk = BTreeMap::new();
        on_disk(root, root, &mut disk);
        let embedded: BTreeMap<String, Vec<u8>> = TEMPLATES
            .iter()
            .flat_map(|(name, files)| {
                files
                    .iter()
                    .map(move |f| (format!("{name}/{}", f.path), f.contents.to_vec()))
            })
            .collect();
        assert_eq!(
            embedded.keys().collect::<Vec<_>>(),
            disk.keys().collect::<Vec<_>>()
        );
        assert!(embedded == disk, "an embedded template differs from disk");
    }

    /// Guards every template, including those added later: it parses, uses only known
    /// placeholders, and each manifest that depends on the runtime finds it in [`RUNTIME_DIR`].
    #[test]
    fn every_template_is_well_formed() {
        assert!(names().contains(&DEFAULT_TEMPLATE));
        let names_ = Names::new("probe-app").unwrap();
        let known: Vec<&str> = variables(&names_).iter().map(|(k, _)| *k).collect();
        for template in all() {
            assert!(!template.settings.description.is_empty());
            for file in &template.files {
                let Ok(text) = std::str::from_utf8(&file.contents) else {
                    continue;
                };
                for (i, _) in text.match_indices("{{") {
                    let key: String = text[i + 2..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !key.is_empty() && text[i + 2 + key.len()..].starts_with("}}") {
                        assert!(
                            known.contains(&key.as_str()),
                            "{}/{}: unknown placeholder {{{{{key}}}}}",
                            template.name,
                            file.path
                        );
                    }
                }
            }
            let rendered = template.render(&names_);
            assert!(
                rendered.iter().any(|(p, _)| p == "Cargo.toml"),
                "{}: no root Cargo.toml",
                template.name
            );
            for (path, bytes) in &rendered {
                if !path.ends_with("Cargo.toml") {
                    continue;
                }
                let doc: DocumentMut = std::str::from_utf8(bytes)
                    .unwrap()
                    .parse()
                    .unwrap_or_else(|e| panic!("{}/{path}: {e}", template.name));
                // Under its own name, or renamed (`dylib_dev = { package = "dylib-dev-runtime", .. }`).
                let Some(dep) = doc
                    .get("dependencies")
                    .and_then(|d| d.as_table_like())
                    .and_then(|d| {
                        d.iter().find_map(|(key, dep)| {
                            let package = dep.get("package").and_then(|p| p.as_str());
                            (package.unwrap_or(key) == RUNTIME_PACKAGE).then_some(dep)
                        })
                    })
                else {
                    continue;
                };
                let dir = Path::new(path).parent().unwrap();
                let target = dir.join(dep["path"].as_str().expect("a path dependency"));
                assert_eq!(
                    crate::deps_crate::relative_path(
                        &Path::new("/p").join(target),
                        Path::new("/p")
                    ),
                    Path::new(RUNTIME_DIR),
                    "{}/{path}: the runtime dependency must point at {RUNTIME_DIR}/",
                    template.name
                );
                assert_eq!(
                    dep["version"].as_str(),
                    Some(format!("={}", runtime_version()).as_str()),
                    "{}/{path}: pin the runtime to the copied version",
                    template.name
                );
            }
        }
    }

    #[test]
    fn renders_known_placeholders_only() {
        let vars = vec![("name", "app".to_string()), ("crate_name", "app".into())];
        assert_eq!(
            render(
                "{{name}}-logic {{crate_name}}_logic {{other}} {{ {{name",
                &vars
            ),
            "app-logic app_logic {{other}} {{ {{name"
        );
        assert_eq!(render("format!(\"{{}}\")", &vars), "format!(\"{{}}\")");
    }

    #[test]
    fn names_follow_cargo() {
        let ok = Names::new("my-app_2").unwrap();
        assert_eq!(ok.crate_name, "my_app_2");
        for (bad, why) in [
            ("", "empty"),
            ("My-App", "lower case"),
            ("2fast", "digit"),
            ("my app", "not allowed"),
            ("-x", "starts or ends"),
            ("fn", "keyword"),
            ("async", "keyword"),
            ("test", "reserved"),
            ("proc-macro", "reserved"),
            ("dylib-dev-runtime", "runtime"),
        ] {
            let err = Names::new(bad).unwrap_err();
            assert!(err.reason.contains(why), "{bad}: {}", err.reason);
        }
    }
}
