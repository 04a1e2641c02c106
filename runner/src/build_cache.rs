//! The build cache cargo goes through: which rustc wrapper it runs (sccache or another), and
//! sccache's statistics, as data for `doctor`.
//!
//! The wrapper is read as cargo reads it, simply: `RUSTC_WRAPPER`, then `CARGO_BUILD_RUSTC_WRAPPER`,
//! then `build.rustc-wrapper` in the nearest `.cargo/config.toml` (or `.cargo/config`) from the
//! project up to `/`, then in `$CARGO_HOME`. `cargo config get` would be exact but is unstable.
//! Cargo's workspace wrapper (`RUSTC_WORKSPACE_WRAPPER`) is not a cache: `watch` sets it to itself.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the configured wrapper was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrapperOrigin {
    /// An environment variable (`RUSTC_WRAPPER` or `CARGO_BUILD_RUSTC_WRAPPER`).
    Env(&'static str),
    /// `build.rustc-wrapper` in this cargo configuration file.
    Config(PathBuf),
}

/// The rustc wrapper cargo will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapper {
    /// The program as configured (a name looked up on `PATH`, or a path).
    pub program: String,
    /// Where it was configured.
    pub origin: WrapperOrigin,
}

impl Wrapper {
    /// Whether the wrapper is sccache (by its file name, as people install it).
    pub fn is_sccache(&self) -> bool {
        Path::new(&self.program)
            .file_stem()
            .is_some_and(|s| s.to_string_lossy().eq_ignore_ascii_case("sccache"))
    }
}

/// The rustc wrapper of builds started in `dir`, reading the variables through `env` and the
/// global configuration from `cargo_home`; `None` when there is none (an empty value disables
/// the wrapper, as it does for cargo).
pub fn configured_wrapper(
    dir: &Path,
    env: impl Fn(&str) -> Option<OsString>,
    cargo_home: Option<&Path>,
) -> Option<Wrapper> {
    for name in ["RUSTC_WRAPPER", "CARGO_BUILD_RUSTC_WRAPPER"] {
        if let Some(value) = env(name) {
            let program = value.to_string_lossy().into_owned();
            return (!program.is_empty()).then_some(Wrapper {
                program,
                origin: WrapperOrigin::Env(name),
            });
        }
    }
    let mut files: Vec<PathBuf> = dir
        .ancestors()
        .flat_map(|d| [d.join(".cargo/config.toml"), d.join(".cargo/config")])
        .collect();
    if let Some(home) = cargo_home {
        files.extend([home.join("config.toml"), home.join("config")]);
    }
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        // A file cargo cannot parse fails cargo itself; here it only tells nothing.
        let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else {
            continue;
        };
        if let Some(program) = doc
            .get("build")
            .and_then(|b| b.get("rustc-wrapper"))
            .and_then(|w| w.as_str())
        {
            return (!program.is_empty()).then(|| Wrapper {
                program: program.to_string(),
                origin: WrapperOrigin::Config(file.clone()),
            });
        }
    }
    None
}

/// The wrapper of builds started in `dir` in this process's environment.
pub fn current_wrapper(dir: &Path) -> Option<Wrapper> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    configured_wrapper(dir, |k| std::env::var_os(k), cargo_home.as_deref())
}

/// What sccache says about its cache (`sccache --show-stats --stats-format json`).
#[derive(Debug, Clone, PartialEq)]
pub struct SccacheStats {
    /// Compilations served from the cache, all languages.
    pub hits: u64,
    /// Compilations looked up and not found (then compiled and stored).
    pub misses: u64,
    /// Of the hits, Rust's.
    pub rust_hits: u64,
    /// Of the misses, Rust's.
    pub rust_misses: u64,
    /// Compilations sccache ran without the cache, by reason (`crate-type`, `incremental`, ...):
    /// for dylib-dev's builds, the deps dylib, the logic library, binaries and proc-macros.
    pub not_cached: Vec<(String, u64)>,
    /// Calls it could not treat as a compiler it knows (the workspace crates of a `watch` build,
    /// which reach it through dylib-dev's own wrapper, count here).
    pub unsupported_compiler: u64,
    /// The backend, as sccache names it (`Local disk: "/path"`, `S3, bucket: ...`).
    pub location: String,
}

impl SccacheStats {
    /// Hits over lookups (hits + misses); `None` before any lookup.
    pub fn hit_rate(&self) -> Option<f64> {
        let lookups = self.hits + self.misses;
        (lookups > 0).then(|| self.hits as f64 / lookups as f64)
    }

    /// Parses the JSON of `sccache --show-stats --stats-format json` (sccache 0.3 and later).
    pub fn parse(json: &str) -> Result<SccacheStats, String> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("not sccache's JSON stats: {e}"))?;
        let stats = value
            .get("stats")
            .ok_or("no `stats` in sccache's JSON stats")?;
        let counts = |key: &str| -> Vec<(String, u64)> {
            stats
                .get(key)
                .and_then(|c| c.get("counts"))
                .and_then(|c| c.as_object())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let sum = |c: &[(String, u64)]| c.iter().map(|(_, n)| n).sum::<u64>();
        let rust = |c: &[(String, u64)]| {
            c.iter()
                .filter(|(k, _)| k == "Rust")
                .map(|(_, n)| n)
                .sum::<u64>()
        };
        let (hits, misses) = (counts("cache_hits"), counts("cache_misses"));
        let mut not_cached: Vec<(String, u64)> = stats
            .get("not_cached")
            .and_then(|m| m.as_object())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        not_cached.sort();
        Ok(SccacheStats {
            hits: sum(&hits),
            misses: sum(&misses),
            rust_hits: rust(&hits),
            rust_misses: rust(&misses),
            not_cached,
            unsupported_compiler: stats
                .get("requests_unsupported_compiler")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            location: value
                .get("cache_location")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
        })
    }
}

/// Runs `sccache --show-stats --stats-format json` (`sccache`: the program with the environment
/// that names its server, e.g. `SCCACHE_SERVER_PORT`) and parses it. This starts sccache's server
/// if it is not running (it then stops after its idle timeout, 10 minutes by default).
pub fn sccache_stats(mut sccache: Command) -> Result<SccacheStats, String> {
    let program = sccache.get_program().to_string_lossy().into_owned();
    let out = sccache
        .args(["--show-stats", "--stats-format", "json"])
        .output()
        .map_err(|e| format!("run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} --show-stats failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    SccacheStats::parse(&String::from_utf8_lossy(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    #[test]
    fn the_environment_wins_and_empty_disables() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join(".cargo/config.toml");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(&config, "[build]\nrustc-wrapper = \"/opt/sccache\"\n").unwrap();
        let env = |value: &'static str| {
            move |k: &str| (k == "RUSTC_WRAPPER").then(|| OsString::from(value))
        };
        let w = configured_wrapper(dir.path(), env("sccache"), None).unwrap();
        assert_eq!(w.origin, WrapperOrigin::Env("RUSTC_WRAPPER"));
        assert!(w.is_sccache());
        assert_eq!(configured_wrapper(dir.path(), env(""), None), None);
        let w = configured_wrapper(dir.path(), no_env, None).unwrap();
        assert_eq!(
            w,
            Wrapper {
                program: "/opt/sccache".into(),
                origin: WrapperOrigin::Config(config)
            }
        );
        assert!(w.is_sccache());
    }

    #[test]
    fn the_nearest_config_wins_then_cargo_home() {
        let root = tempfile::tempdir().unwrap();
        let project = root.path().join("a/b");
        std::fs::create_dir_all(project.join(".cargo")).unwrap();
        std::fs::create_dir_all(root.path().join(".cargo")).unwrap();
        let home = root.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(
            home.join("config.toml"),
            "build.rustc-wrapper = \"cachepot\"\n",
        )
        .unwrap();
        // Dotted key form, in an outer directory.
        std::fs::write(
            root.path().join(".cargo/config.toml"),
            "build.rustc-wrapper = \"outer-wrapper\"\n",
        )
        .unwrap();
        // The project's config sets other things only: the outer one applies.
        std::fs::write(project.join(".cargo/config.toml"), "[build]\njobs = 2\n").unwrap();
        let w = configured_wrapper(&project, no_env, Some(&home)).unwrap();
        assert_eq!(w.program, "outer-wrapper");
        assert!(!w.is_sccache());
        std::fs::write(
            project.join(".cargo/config"),
            "[build]\nrustc-wrapper = \"sccache\"\n",
        )
        .unwrap();
        let w = configured_wrapper(&project, no_env, Some(&home)).unwrap();
        assert_eq!(
            w.origin,
            WrapperOrigin::Config(project.join(".cargo/config"))
        );
        let elsewhere = tempfile::tempdir().unwrap();
        let w = configured_wrapper(elsewhere.path(), no_env, Some(&home)).unwrap();
        assert_eq!(w.program, "cachepot");
        assert_eq!(configured_wrapper(elsewhere.path(), no_env, None), None);
    }

    #[test]
    fn stats_parse_as_sccache_prints_them() {
        // As sccache 0.16 prints it after a build (trimmed of fields not read).
        let json = r#"{"stats":{"compile_requests":30,"requests_unsupported_compiler":4,
            "cache_hits":{"counts":{"Rust":12,"C/C++":2},"adv_counts":{}},
            "cache_misses":{"counts":{"Rust":4},"adv_counts":{}},
            "not_cached":{"crate-type":7,"incremental":3}},
            "cache_location":"Local disk: \"/tmp/c\"","version":"0.16.0"}"#;
        let s = SccacheStats::parse(json).unwrap();
        assert_eq!(
            (s.hits, s.misses, s.rust_hits, s.rust_misses),
            (14, 4, 12, 4)
        );
        assert_eq!(s.unsupported_compiler, 4);
        assert_eq!(
            s.not_cached,
            vec![("crate-type".into(), 7), ("incremental".into(), 3)]
        );
        assert_eq!(s.location, "Local disk: \"/tmp/c\"");
        assert!((s.hit_rate().unwrap() - 14.0 / 18.0).abs() < 1e-9);
        let empty = SccacheStats::parse(r#"{"stats":{"cache_hits":{"counts":{}}}}"#).unwrap();
        assert_eq!(empty.hit_rate(), None);
        assert!(SccacheStats::parse("sccache: error").is_err());
    }
}
