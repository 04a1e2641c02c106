//! The direct-rustc fast path: rebuild a logic crate without cargo when only its sources changed.
//!
//! Watch builds run cargo with `dylib-dev` itself as `RUSTC_WORKSPACE_WRAPPER`. As a wrapper it
//! records the exact rustc invocation of each logic library (program, arguments, working
//! directory, environment) and execs rustc. When the next change touches only files that rustc's
//! dep-info lists for that library, the watcher re-runs the recorded invocation directly, skipping
//! cargo's resolve, fingerprinting and locking of the whole graph (about a quarter of a second on
//! a polars project). Anything else (a manifest, a build script, a dependency, a flag) goes
//! through cargo, which records the invocation afresh.
use super::args::arg_after;
use super::tuning;
use crate::cargo::{BuildDiagnostic, Severity};
use cargo_metadata::diagnostic::{Diagnostic, DiagnosticLevel};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set on cargo by the watcher: `dylib-dev` runs as rustc's wrapper.
pub const ENV_WRAPPER: &str = "DYLIB_DEV_RUSTC_WRAPPER";
/// Directory where the wrapper records invocations.
pub const ENV_CAPTURE_DIR: &str = "DYLIB_DEV_CAPTURE_DIR";
/// Comma-separated crate names (as rustc's `--crate-name`) of the logic libraries: recorded when
/// [`ENV_CAPTURE_DIR`] is set, tuned when [`tuning::ENV_TUNE`] is.
pub const ENV_LOGIC_CRATES: &str = "DYLIB_DEV_LOGIC_CRATES";

/// Comma-separated `<crate name>:bin` / `<crate name>:lib` of the hot crates (crates with
/// `#[dylib_dev::hot]` functions): recorded when [`ENV_CAPTURE_DIR`] is set, for their patches.
pub const ENV_HOT_CRATES: &str = "DYLIB_DEV_HOT_CRATES";
/// Set on the rustc of every workspace crate the wrapper runs: `#[dylib_dev::hot]` (the
/// `dylib-dev-macros` crate reads it while expanding) then makes the function patchable. Every
/// dynamic build sets it, so cargo never mixes crates expanded both ways (it fingerprints the
/// wrapper); plain `cargo build` leaves hot functions as written.
pub const ENV_HOT_PATCHABLE: &str = "DYLIB_DEV_HOT_PATCHABLE";

/// Variables never replayed: cargo's jobserver file descriptors are gone by then, and our own
/// markers must not make the replayed rustc record itself.
const NOT_REPLAYED: [&str; 8] = [
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    ENV_WRAPPER,
    ENV_CAPTURE_DIR,
    ENV_LOGIC_CRATES,
    ENV_HOT_CRATES,
    tuning::ENV_TUNE,
];

/// One recorded rustc run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Invocation {
    /// rustc as cargo named it.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its working directory (the workspace root; relative paths in `args` depend on it).
    pub cwd: PathBuf,
    /// Its environment (`env!` in the crate reads `CARGO_PKG_*` from here).
    pub env: Vec<(String, String)>,
    /// Recorded by a build that asked for [`tuning`] (watch without `--plain-rustc`).
    #[serde(default)]
    pub tuning: bool,
}

impl Invocation {
    fn arg_after(&self, flag: &str) -> Option<&str> {
        arg_after(&self.args, flag)
    }

    /// The `--crate-name`.
    pub fn crate_name(&self) -> Option<&str> {
        self.arg_after("--crate-name")
    }

    /// Where rustc writes the dep-info file (`<out-dir>/<crate><extra-filename>.d`).
    pub fn dep_info_path(&self) -> Option<PathBuf> {
        let out_dir = self.arg_after("--out-dir")?;
        let extra = self
            .args
            .iter()
            .filter_map(|a| a.strip_prefix("extra-filename="))
            .next_back()
            .unwrap_or("");
        Some(
            self.cwd
                .join(out_dir)
                .join(format!("{}{extra}.d", self.crate_name()?)),
        )
    }
}

/// The environment that makes cargo run dylib-dev as rustc's wrapper for workspace crates.
///
/// Every dynamic build (`build`, `run`, `watch`) sets it, recording or not: cargo fingerprints
/// the wrapper, so builds with and without it would recompile each other's workspace crates.
/// Empty when the user has a workspace wrapper of their own (theirs wins; no fast path then).
pub fn wrapper_env() -> Vec<(&'static str, OsString)> {
    if std::env::var_os("RUSTC_WORKSPACE_WRAPPER").is_some() {
        return Vec::new();
    }
    let Ok(exe) = std::env::current_exe() else {
        return Vec::new();
    };
    let mut env = vec![
        ("RUSTC_WORKSPACE_WRAPPER", exe.into_os_string()),
        (ENV_WRAPPER, "1".into()),
    ];
    // sccache (0.16) as `RUSTC_WRAPPER` takes `sccache <workspace wrapper> rustc ...` for a
    // compiler only when `CARGO` names cargo; without it cargo's first probe fails ("Compiler not
    // supported: dylib-dev: failed to run -E"). `cargo dylib-dev` has it from cargo; a shell has
    // not: name the cargo we run.
    if std::env::var_os("CARGO").is_none()
        && let Some(cargo) = program_on_path("cargo")
    {
        env.push(("CARGO", cargo.into_os_string()));
    }
    env
}

/// `name` as the shell would find it on `PATH`.
fn program_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A library build (`cdylib` or `dylib`) of one of the crates in [`ENV_LOGIC_CRATES`].
pub fn is_logic_library(args: &[String]) -> bool {
    let Ok(crates) = std::env::var(ENV_LOGIC_CRATES) else {
        return false;
    };
    let name = arg_after(args, "--crate-name");
    let library = args
        .windows(2)
        .any(|w| w[0] == "--crate-type" && (w[1] == "cdylib" || w[1] == "dylib"));
    library && name.is_some_and(|n| crates.split(',').any(|c| c == n))
}

/// The key a hot crate's build is recorded under (`hot-<crate>-bin`, `hot-<crate>-lib`), if
/// `args` build one of the crates in [`ENV_HOT_CRATES`].
pub fn hot_record_key(args: &[String]) -> Option<String> {
    let crates = std::env::var(ENV_HOT_CRATES).ok()?;
    let name = arg_after(args, "--crate-name")?;
    if args.iter().any(|a| a == "--test") {
        return None;
    }
    let kind = args
        .windows(2)
        .filter(|w| w[0] == "--crate-type")
        .find_map(|w| match w[1].as_str() {
            "bin" => Some("bin"),
            "lib" | "rlib" => Some("lib"),
            _ => None,
        })?;
    let wanted = format!("{name}:{kind}");
    crates
        .split(',')
        .any(|c| c == wanted)
        .then(|| hot_key(name, kind == "bin"))
}

/// The file stem a hot crate's invocation is recorded under.
pub fn hot_key(crate_name: &str, bin: bool) -> String {
    format!("hot-{crate_name}-{}", if bin { "bin" } else { "lib" })
}

/// Records the invocation (with the variables tuning added) where the fast path finds it, under
/// its crate name, or `key` when given.
pub fn record(
    program: &OsString,
    args: Vec<String>,
    extra_env: &[(String, String)],
    tuning: bool,
    key: Option<&str>,
) -> std::io::Result<()> {
    let Some(dir) = std::env::var_os(ENV_CAPTURE_DIR) else {
        return Ok(());
    };
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| !NOT_REPLAYED.contains(&k.as_str()))
        .filter(|(k, _)| !extra_env.iter().any(|(e, _)| e == k))
        .collect();
    env.extend(extra_env.iter().cloned());
    let invocation = Invocation {
        program: PathBuf::from(program),
        cwd: std::env::current_dir()?,
        env,
        args,
        tuning,
    };
    let Some(name) = key.or(invocation.crate_name()) else {
        return Ok(());
    };
    let path = Path::new(&dir).join(format!("{name}.json"));
    let json = serde_json::to_vec_pretty(&invocation).map_err(std::io::Error::other)?;
    std::fs::create_dir_all(&dir)?;
    crate::fsutil::write_atomic(&path, &json)
}

/// The recorded invocation of `crate_name`'s library in `dir`, if any.
pub fn load(dir: &Path, crate_name: &str) -> Option<Invocation> {
    let text = std::fs::read(dir.join(format!("{crate_name}.json"))).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The source files rustc read for the last build of `invocation` (from its dep-info file).
pub fn sources(invocation: &Invocation) -> Option<Vec<PathBuf>> {
    let text = std::fs::read_to_string(invocation.dep_info_path()?).ok()?;
    Some(parse_dep_info(&text, &invocation.cwd))
}

/// `out: a.rs b.rs` lines of a makefile-style dep-info file -> the prerequisite paths.
fn parse_dep_info(text: &str, cwd: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((_, deps)) = line
            .split_once(": ")
            .or_else(|| line.strip_suffix(':').map(|t| (t, "")))
        else {
            continue;
        };
        // Paths escape spaces as `\ `.
        let mut current = String::new();
        let mut chars = deps.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    current.push(' ');
                    chars.next();
                }
                ' ' => {
                    if !current.is_empty() {
                        paths.push(cwd.join(std::mem::take(&mut current)));
                    }
                }
                c => current.push(c),
            }
        }
        if !current.is_empty() {
            paths.push(cwd.join(current));
        }
    }
    paths.sort();
    paths.dedup();
    paths
}

/// What a direct rustc run produced.
#[derive(Debug)]
pub struct FastOutcome {
    /// rustc exited successfully and reported the library.
    pub success: bool,
    /// The library rustc wrote (from its artifact notification).
    pub artifact: Option<PathBuf>,
    /// Diagnostics, errors first.
    pub diagnostics: Vec<BuildDiagnostic>,
    /// rustc's own non-JSON stderr (e.g. a crash), if any.
    pub other_output: String,
    /// Wall time of the rustc run.
    pub duration: Duration,
    /// The link's part of it, when dylib-dev's linker shim ran ([`tuning`]).
    pub link: Option<Duration>,
}

impl FastOutcome {
    /// `1 error, 2 warnings` (empty when there are none).
    pub fn counts(&self) -> String {
        crate::cargo::count_text(&self.diagnostics)
    }
}

/// Re-runs a recorded invocation and reads rustc's JSON messages from its stderr.
pub fn rebuild(invocation: &Invocation) -> std::io::Result<FastOutcome> {
    let link_file = tuning::link_time_file(&invocation.env);
    if let Some(file) = &link_file {
        let _ = std::fs::remove_file(file);
    }
    let started = Instant::now();
    let mut cmd = Command::new(&invocation.program);
    cmd.args(with_rendering(&invocation.args, crate::ui::color()))
        .current_dir(&invocation.cwd)
        .env_clear()
        .envs(invocation.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let stderr = child.stderr.take().expect("piped");
    let crate_name = invocation.crate_name().unwrap_or("");
    let Messages {
        mut diagnostics,
        artifact,
        other_output,
    } = read_messages(std::io::BufReader::new(stderr), crate_name)?;
    let status = child.wait()?;
    diagnostics.sort_by_key(|d| d.severity);
    Ok(FastOutcome {
        success: status.success() && artifact.is_some(),
        artifact,
        diagnostics,
        other_output,
        duration: started.elapsed(),
        link: link_file.and_then(|f| tuning::read_link_time(&f)),
    })
}

/// rustc's `args` asking for rendered diagnostics with ANSI colours exactly when `color`.
///
/// cargo always passes `--json=diagnostic-rendered-ansi` (whatever its own `--color`) and strips
/// the colours itself when they are not wanted; run directly, rustc renders what we show.
fn with_rendering(args: &[String], color: bool) -> Vec<String> {
    const ANSI: &str = "diagnostic-rendered-ansi";
    let adjust = |value: &str| {
        let mut kinds: Vec<&str> = value.split(',').filter(|k| *k != ANSI).collect();
        if color {
            kinds.push(ANSI);
        }
        kinds.join(",")
    };
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut seen = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if let Some(value) = arg.strip_prefix("--json=") {
            seen = true;
            let value = adjust(value);
            if !value.is_empty() {
                out.push(format!("--json={value}"));
            }
        } else if arg == "--json" {
            seen = true;
            let value = adjust(iter.next().map(String::as_str).unwrap_or(""));
            if !value.is_empty() {
                out.push(arg.clone());
                out.push(value);
            }
        } else {
            out.push(arg.clone());
        }
    }
    if color && !seen {
        out.push(format!("--json={ANSI}"));
    }
    out
}

/// What rustc wrote to stderr, sorted out.
#[derive(Debug, Default)]
struct Messages {
    diagnostics: Vec<BuildDiagnostic>,
    artifact: Option<PathBuf>,
    other_output: String,
}

/// Reads rustc's JSON messages (`--error-format=json`) for crate `crate_name`: diagnostics in the
/// order sent (without rustc's closing summary, which cargo drops too), the library it linked,
/// and any line that is not JSON.
fn read_messages(reader: impl BufRead, crate_name: &str) -> std::io::Result<Messages> {
    let mut out = Messages::default();
    for line in reader.lines() {
        let line = line?;
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            out.other_output.push_str(&line);
            out.other_output.push('\n');
            continue;
        };
        match value.get("$message_type").and_then(|t| t.as_str()) {
            Some("artifact") if value.get("emit").and_then(|e| e.as_str()) == Some("link") => {
                let path = value
                    .get("artifact")
                    .and_then(|a| a.as_str())
                    .map(PathBuf::from);
                // A crate of several types (`cdylib` and `rlib`: the hot-lib-reloader layout)
                // reports each one: the library to load is the dynamic one.
                let dynamic = |p: &PathBuf| {
                    p.extension()
                        .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
                };
                if out.artifact.as_ref().is_none_or(|a| !dynamic(a)) {
                    out.artifact = path;
                }
            }
            Some("diagnostic") => {
                let Ok(d) = serde_json::from_value::<Diagnostic>(value) else {
                    continue;
                };
                if crate::cargo::is_rustc_summary(&d.message, !d.spans.is_empty()) {
                    continue;
                }
                let severity = match d.level {
                    DiagnosticLevel::Error | DiagnosticLevel::Ice => Severity::Error,
                    DiagnosticLevel::Warning => Severity::Warning,
                    _ => Severity::Note,
                };
                out.diagnostics.push(BuildDiagnostic {
                    severity,
                    package_id: cargo_metadata::PackageId {
                        repr: crate_name.to_string(),
                    },
                    target: crate_name.to_string(),
                    message: d.message.clone(),
                    rendered: d.rendered.clone().unwrap_or_else(|| d.message.clone()),
                    json: d,
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Puts `built` (in `deps/`) at `dest` (the profile dir) the way cargo does: a hard link, put in
/// place by a rename so that a reader never sees a missing or partial file.
pub fn uplift(built: &Path, dest: &Path) -> std::io::Result<()> {
    if built == dest {
        return Ok(());
    }
    let tmp = dest.with_extension(format!("dylib-dev-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(built, &tmp).is_err() {
        std::fs::copy(built, &tmp)?;
    }
    std::fs::rename(&tmp, dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_info_lists_sources_with_escaped_spaces() {
        let text = "/t/deps/liblogic.so: logic/src/lib.rs logic/src/my\\ mod.rs\n\nlogic/src/lib.rs:\nlogic/src/my\\ mod.rs:\n\n# env-dep:CARGO_PKG_NAME=logic\n";
        let got = parse_dep_info(text, Path::new("/w"));
        assert_eq!(
            got,
            vec![
                PathBuf::from("/w/logic/src/lib.rs"),
                PathBuf::from("/w/logic/src/my mod.rs")
            ]
        );
    }

    #[test]
    fn dep_info_path_follows_out_dir_and_extra_filename() {
        let inv = |extra: &[&str]| Invocation {
            program: "rustc".into(),
            args: ["--crate-name", "logic", "--out-dir", "/t/debug/deps"]
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect(),
            cwd: "/w".into(),
            env: vec![],
            tuning: false,
        };
        assert_eq!(
            inv(&[]).dep_info_path(),
            Some(PathBuf::from("/t/debug/deps/logic.d"))
        );
        assert_eq!(
            inv(&["-C", "extra-filename=-abc"]).dep_info_path(),
            Some(PathBuf::from("/t/debug/deps/logic-abc.d"))
        );
    }

    /// rustc's stderr (`--error-format=json --json=diagnostic-rendered-ansi,artifacts`, as cargo
    /// asks for it) building a cdylib with one syntax error.
    const SYNTAX_ERROR: &str = include_str!("../../tests/data/rustc-syntax-error.jsonl");
    /// The same crate without the error: one unused variable, and the library.
    const WARNING: &str = include_str!("../../tests/data/rustc-warning.jsonl");

    #[test]
    fn rustc_closing_summary_is_not_counted() {
        let failed = read_messages(SYNTAX_ERROR.as_bytes(), "logic").unwrap();
        assert_eq!(crate::cargo::count_text(&failed.diagnostics), "1 error");
        assert_eq!(
            failed.diagnostics[0].message,
            "expected expression, found `;`"
        );
        let built = read_messages(WARNING.as_bytes(), "logic").unwrap();
        assert_eq!(crate::cargo::count_text(&built.diagnostics), "1 warning");
        assert_eq!(built.artifact, Some(PathBuf::from("out/liblogic.so")));
    }

    #[test]
    fn rendering_asks_rustc_for_colours_only_when_shown() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cargo_made = args(&[
            "--error-format=json",
            "--json=diagnostic-rendered-ansi,artifacts,future-incompat",
            "src/lib.rs",
        ]);
        assert_eq!(
            with_rendering(&cargo_made, false),
            args(&[
                "--error-format=json",
                "--json=artifacts,future-incompat",
                "src/lib.rs"
            ])
        );
        assert_eq!(
            with_rendering(&cargo_made, true),
            args(&[
                "--error-format=json",
                "--json=artifacts,future-incompat,diagnostic-rendered-ansi",
                "src/lib.rs"
            ])
        );
        // The separate form, and a list that ends up empty.
        assert_eq!(
            with_rendering(
                &args(&["--json", "diagnostic-rendered-ansi", "x.rs"]),
                false
            ),
            args(&["x.rs"])
        );
        assert_eq!(
            with_rendering(&args(&["--error-format=json"]), true),
            args(&["--error-format=json", "--json=diagnostic-rendered-ansi"])
        );
    }
}
