//! `dylib-dev bench`: edit-to-new-output latency, measured with real edits of a real project.
//!
//! Each loop rewrites a marker literal in a logic source file N times and times each edit until
//! the host prints the new text:
//! - `static`: plain `cargo build` of host and logic, then a fresh host (what cargo-watch or bacon
//!   users have today; the host reloads its data every time);
//! - `dynamic`: the same in dynamic mode (deps dylib, `-C prefer-dynamic`), then a fresh host;
//! - `hot`: `dylib-dev watch`, the logic swapped into the running host.
//!
//! The edited file is restored at the end.
use crate::cargo::{CargoBuild, CargoStderr};
use crate::watch::build::{BuildOptions, products, watch_build};
use crate::watch::model::WatchModel;
use anyhow::{Context, bail};
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// `[workspace.metadata.dylib-dev.bench]`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct BenchSettings {
    file: Option<PathBuf>,
    marker: Option<String>,
}

/// A line of output and when it was read.
struct Line {
    at: Instant,
    text: String,
    from_host: bool,
}

/// One timed edit.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Sample {
    /// Write of the file to the first line of output showing it.
    pub latency_ms: f64,
    /// The rebuild as the watcher measured it.
    pub build_ms: Option<f64>,
    /// The swap as the host measured it.
    pub swap_ms: Option<f64>,
    /// The link's part of the rebuild (when dylib-dev's linker shim ran).
    pub link_ms: Option<f64>,
}

/// An edit-build-run loop that `bench` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchLoop {
    /// `cargo build` of host and logic, then a fresh host.
    Static,
    /// The same in dynamic mode (deps dylib, `-C prefer-dynamic`), then a fresh host.
    Dynamic,
    /// `dylib-dev watch`: logic swapped into the running host.
    Hot,
}

impl BenchLoop {
    /// Its name on the command line (and in errors and the JSON report).
    pub fn name(self) -> &'static str {
        match self {
            BenchLoop::Static => "static",
            BenchLoop::Dynamic => "dynamic",
            BenchLoop::Hot => "hot",
        }
    }
}

/// How the loops run: what `bench`'s command line asked for.
#[derive(Debug, Clone, Default)]
pub struct BenchOptions {
    /// The host package (`-p`), as for `watch`.
    pub host: Option<String>,
    /// Number of timed edits per loop.
    pub edits: usize,
    /// Pause before each edit, in milliseconds.
    pub pause_ms: u64,
    /// Run `watch --no-fast-path`.
    pub no_fast_path: bool,
    /// Run `watch --plain-rustc` (and build the dynamic loop so).
    pub plain_rustc: bool,
    /// Arguments for the host.
    pub args: Vec<OsString>,
}

/// The file `bench` edits and the marker it rewrites, from the command line or the settings;
/// checked to hold the marker exactly once.
pub fn edit_target(
    metadata: &cargo_metadata::Metadata,
    file: Option<PathBuf>,
    marker: Option<String>,
) -> anyhow::Result<Edit> {
    let settings: BenchSettings = metadata
        .workspace_metadata
        .get("dylib-dev")
        .and_then(|d| d.get("bench"))
        .map(|v| serde_json::from_value(v.clone()))
        .transpose()
        .context("invalid [workspace.metadata.dylib-dev.bench]")?
        .unwrap_or_default();
    let root = metadata.workspace_root.as_std_path();
    let help = "  help: pass --file <logic source> --marker <a literal from it that shows up in the output>, or set them in [workspace.metadata.dylib-dev.bench]";
    let file = file
        .or(settings.file)
        .map(|f| root.join(f))
        .with_context(|| format!("no file to edit\n{help}"))?;
    let marker = marker
        .or(settings.marker)
        .with_context(|| format!("no marker to rewrite\n{help}"))?;
    let original = std::fs::read_to_string(&file)
        .with_context(|| format!("failed to read `{}`", file.display()))?;
    match original.matches(marker.as_str()).count() {
        1 => {}
        0 => bail!(
            "`{}` does not contain the marker `{marker}`\n{help}",
            file.display()
        ),
        n => bail!(
            "the marker `{marker}` appears {n} times in `{}`; it must name one place\n{help}",
            file.display()
        ),
    }
    Ok(Edit {
        file,
        original,
        marker,
    })
}

/// What the loops report as they run, for the command to show.
#[derive(Debug)]
pub enum BenchProgress {
    /// A restart loop's first build, which compiles everything.
    WarmUp,
    /// Edit `index` showed in the output `latency` after the write; `build` is a restart loop's
    /// build time.
    Edit {
        /// 1-based.
        index: usize,
        /// Write to output.
        latency: Duration,
        /// The build's part (restart loops).
        build: Option<Duration>,
    },
    /// A line of the watcher's with an error in it, seen while waiting for output.
    WatcherError(String),
    /// A build failed (its diagnostics say why).
    BuildFailed(crate::cargo::BuildOutcome),
}

/// The loops' shared set-up: the project's host and logic, and the file being edited.
pub struct Bench {
    root: PathBuf,
    model: WatchModel,
    host_package: cargo_metadata::Package,
    edit: Edit,
    options: BenchOptions,
}

impl Bench {
    /// Resolves host and logic in `metadata`.
    pub fn new(
        metadata: &cargo_metadata::Metadata,
        options: BenchOptions,
        edit: Edit,
    ) -> anyhow::Result<Bench> {
        let model = WatchModel::from_metadata(metadata, options.host.as_deref())?;
        let host_package = model.host_package(metadata).clone();
        Ok(Bench {
            root: metadata.workspace_root.as_std_path().to_path_buf(),
            model,
            host_package,
            edit,
            options,
        })
    }

    /// The file the loops edit.
    pub fn file(&self) -> &Path {
        &self.edit.file
    }

    /// The hot loop's error when the project has no logic crate to swap (`watch` restarts it).
    pub fn check_loop(&self, kind: BenchLoop) -> anyhow::Result<()> {
        if kind == BenchLoop::Hot && self.model.restart_mode() {
            anyhow::bail!(
                "the hot loop swaps a logic crate, and `{}` has none (watch restarts it on every change)\n  help: `dylib-dev init` adds one; `--loops static,dynamic` times restarts",
                self.model.roles.host
            );
        }
        Ok(())
    }

    /// The watcher's debounce, reported as part of the hot loop's time.
    pub fn debounce(&self) -> Duration {
        self.model.debounce
    }

    /// Times one loop.
    pub fn run_loop(
        &self,
        kind: BenchLoop,
        progress: &mut dyn FnMut(BenchProgress),
    ) -> anyhow::Result<LoopResult> {
        match kind {
            BenchLoop::Hot => hot_loop(&self.root, &self.options, &self.edit, progress),
            BenchLoop::Static | BenchLoop::Dynamic => restart_loop(
                kind,
                &self.model,
                &self.host_package,
                &self.options,
                &self.edit,
                progress,
            ),
        }
    }
}

/// The file being edited and how.
pub struct Edit {
    /// The source file.
    pub file: PathBuf,
    /// Its text before the bench.
    pub original: String,
    /// The literal each edit rewrites.
    pub marker: String,
}

impl Edit {
    /// Writes edit `i`; returns the text the host will print and the time of the write.
    fn apply(&self, i: usize) -> anyhow::Result<(String, Instant)> {
        let next = format!("{}-e{i:03}-", self.marker);
        let text = self.original.replacen(&self.marker, &next, 1);
        let written = Instant::now();
        std::fs::write(&self.file, text)
            .with_context(|| format!("failed to write `{}`", self.file.display()))?;
        Ok((next, written))
    }
}

/// What one loop measured.
pub struct LoopResult {
    /// One per edit.
    pub samples: Vec<Sample>,
    /// Host RSS (KiB) before the first and after the last edit, for the hot loop.
    pub rss: Rss,
    /// A build with nothing to do: cargo's own overhead (restart loops).
    pub noop_build_ms: Option<f64>,
}

fn hot_loop(
    root: &Path,
    args: &BenchOptions,
    edit: &Edit,
    progress: &mut dyn FnMut(BenchProgress),
) -> anyhow::Result<LoopResult> {
    let mut watch = start_watch(root, args)?;
    let (tx, lines) = mpsc::channel();
    forward(watch.stdout.take().expect("piped"), true, tx.clone());
    forward(watch.stderr.take().expect("piped"), false, tx);
    let result = measure(&lines, edit, args, &mut watch, progress);
    stop(&mut watch);
    let (samples, rss) = result?;
    Ok(LoopResult {
        samples,
        rss,
        noop_build_ms: None,
    })
}

/// Edit, build, start a fresh host, time to its first line with the new text, stop it.
fn restart_loop(
    kind: BenchLoop,
    model: &WatchModel,
    host_package: &cargo_metadata::Package,
    args: &BenchOptions,
    edit: &Edit,
    progress: &mut dyn FnMut(BenchProgress),
) -> anyhow::Result<LoopResult> {
    let build = match kind {
        BenchLoop::Static => {
            let mut b = CargoBuild::new()
                .manifest_path(model.workspace_root.join("Cargo.toml"))
                .package(&model.roles.host)
                .stderr(CargoStderr::Capture);
            for (logic, _) in &model.roles.logic {
                b = b.package(logic);
            }
            b
        }
        _ => watch_build(
            model,
            &BuildOptions {
                fast_path: false,
                plain_rustc: args.plain_rustc,
                ..BuildOptions::default()
            },
            false,
        ),
    };
    let toolchain = crate::toolchain::Toolchain::detect()?;
    let run_build =
        |progress: &mut dyn FnMut(BenchProgress)| -> anyhow::Result<crate::watch::build::Products> {
            let outcome = build.run().context("failed to run cargo")?;
            if !outcome.success {
                let counts = outcome.counts();
                progress(BenchProgress::BuildFailed(outcome));
                bail!("the {} build failed ({counts})", kind.name());
            }
            products(model, &outcome).context("cargo reported no host binary or logic library")
        };
    progress(BenchProgress::WarmUp);
    run_build(progress)?;
    let noop = Instant::now();
    run_build(progress)?;
    let noop_build_ms = Some(noop.elapsed().as_secs_f64() * 1e3);
    let mut samples = Vec::new();
    for i in 1..=args.edits {
        std::thread::sleep(Duration::from_millis(args.pause_ms));
        let (next, written) = edit.apply(i)?;
        let made = run_build(progress)?;
        let built = written.elapsed();
        let mut cmd = if kind == BenchLoop::Dynamic {
            crate::host::program_command(&made.host_exe, host_package, &toolchain)?
        } else {
            Command::new(&made.host_exe)
        };
        cmd.args(&args.args)
            .current_dir(&model.workspace_root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        crate::platform::set_own_process_group(&mut cmd);
        let mut host = cmd
            .spawn()
            .with_context(|| format!("failed to start `{}`", made.host_exe.display()))?;
        let (tx, lines) = mpsc::channel();
        forward(host.stdout.take().expect("piped"), true, tx);
        let shown = wait_for(&lines, Duration::from_secs(300), progress, |l| {
            l.text.contains(&next)
        });
        let _ = crate::platform::send_stop(host.id(), true, crate::platform::Stop::Kill);
        let _ = host.wait();
        let latency = shown
            .with_context(|| format!("edit {i}: the host did not print `{next}`"))?
            .at
            .duration_since(written);
        progress(BenchProgress::Edit {
            index: i,
            latency,
            build: Some(built),
        });
        samples.push(Sample {
            latency_ms: latency.as_secs_f64() * 1e3,
            build_ms: Some(built.as_secs_f64() * 1e3),
            swap_ms: None,
            link_ms: None,
        });
    }
    Ok(LoopResult {
        samples,
        rss: None,
        noop_build_ms,
    })
}

fn start_watch(root: &Path, args: &BenchOptions) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("failed to find the dylib-dev executable")?;
    let mut cmd = Command::new(exe);
    // Its lines are parsed: no colours, whatever `CARGO_TERM_COLOR` says.
    cmd.arg("watch")
        .arg("--color=never")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"));
    if let Some(host) = &args.host {
        cmd.args(["-p", host]);
    }
    if args.no_fast_path {
        cmd.arg("--no-fast-path");
    }
    if args.plain_rustc {
        cmd.arg("--plain-rustc");
    }
    cmd.arg("--").args(&args.args);
    cmd.env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().context("failed to start `dylib-dev watch`")
}

fn forward(stream: impl std::io::Read + Send + 'static, from_host: bool, tx: mpsc::Sender<Line>) {
    std::thread::spawn(move || {
        for text in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx
                .send(Line {
                    at: Instant::now(),
                    text,
                    from_host,
                })
                .is_err()
            {
                break;
            }
        }
    });
}

/// Waits for a line that satisfies `pred`; watcher errors are echoed so a failed build is visible.
fn wait_for(
    lines: &Receiver<Line>,
    timeout: Duration,
    progress: &mut dyn FnMut(BenchProgress),
    mut pred: impl FnMut(&Line) -> bool,
) -> anyhow::Result<Line> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if pred(&line) => return Ok(line),
            Ok(line) => {
                if !line.from_host && line.text.contains("error") {
                    progress(BenchProgress::WatcherError(line.text));
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                bail!("timed out after {timeout:?} waiting for the output")
            }
            Err(RecvTimeoutError::Disconnected) => bail!("`dylib-dev watch` exited"),
        }
    }
}

/// Host RSS in KiB before the first and after the last edit.
pub type Rss = Option<(u64, u64)>;

fn measure(
    lines: &Receiver<Line>,
    edit: &Edit,
    args: &BenchOptions,
    watch: &mut Child,
    progress: &mut dyn FnMut(BenchProgress),
) -> anyhow::Result<(Vec<Sample>, Rss)> {
    let mut host_pid = None;
    wait_for(lines, Duration::from_secs(1800), progress, |l| {
        if let Some(pid) = l
            .text
            .split("host (pid ")
            .nth(1)
            .and_then(|s| s.split(')').next())
        {
            host_pid = pid.parse::<u32>().ok();
        }
        if !l.from_host && l.text.contains("build failed") {
            return true;
        }
        l.from_host && l.text.contains(&edit.marker)
    })
    .and_then(|l| {
        if l.from_host {
            Ok(l)
        } else {
            Err(anyhow::anyhow!("{}", l.text.trim()))
        }
    })
    .context("the first build and start")?;
    let rss_before = host_pid.and_then(rss_kib);
    let mut samples = Vec::new();
    for i in 1..=args.edits {
        std::thread::sleep(Duration::from_millis(args.pause_ms));
        while lines.try_recv().is_ok() {}
        let (next, written) = edit.apply(i)?;
        let mut status = None;
        let shown = wait_for(lines, Duration::from_secs(300), progress, |l| {
            if !l.from_host && l.text.contains("Swapped") {
                status = Some(l.text.clone());
            }
            l.from_host && l.text.contains(&next)
        })
        .with_context(|| format!("edit {i}"))?;
        let latency = shown.at.duration_since(written);
        // The watcher's status line for this swap may also come just after the output.
        if status.is_none() {
            status = wait_for(lines, Duration::from_secs(10), progress, |l| {
                !l.from_host && l.text.contains("Swapped")
            })
            .ok()
            .map(|l| l.text);
        }
        let field = |key: &str| status.as_deref().and_then(|s| parse_ms_after(s, key));
        samples.push(Sample {
            latency_ms: latency.as_secs_f64() * 1e3,
            build_ms: field("rebuilt in "),
            swap_ms: field("swapped in "),
            link_ms: field("(link "),
        });
        progress(BenchProgress::Edit {
            index: i,
            latency,
            build: None,
        });
        if let Ok(Some(status)) = watch.try_wait() {
            bail!("`dylib-dev watch` exited with {status}");
        }
    }
    let rss_after = host_pid.and_then(rss_kib);
    Ok((samples, rss_before.zip(rss_after)))
}

/// `... rebuilt in 412 ms ...` -> 412.0; also `1.5 s`.
fn parse_ms_after(text: &str, key: &str) -> Option<f64> {
    let rest = text.split(key).nth(1)?;
    let mut words = rest.split_whitespace();
    let value: f64 = words.next()?.trim_end_matches(',').parse().ok()?;
    match words.next()?.trim_end_matches([',', ')', ';']) {
        "ms" => Some(value),
        "s" => Some(value * 1e3),
        _ => None,
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn stop(watch: &mut Child) {
    #[cfg(unix)]
    {
        let _ = crate::platform::send_stop(watch.id(), false, crate::platform::Stop::Terminate);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = watch.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = watch.kill();
    let _ = watch.wait();
}

/// Median, min and max of some values.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Spread {
    /// Middle value.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

/// The spread of `values`, `None` when empty.
pub fn spread(values: &[f64]) -> Option<Spread> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    };
    Some(Spread {
        median,
        min: v[0],
        max: v[v.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_durations() {
        let line = "     Swapped logic rebuilt in 412 ms, swapped in 3 ms (reload 7; 455 ms since the edit)";
        assert_eq!(parse_ms_after(line, "rebuilt in "), Some(412.0));
        assert_eq!(parse_ms_after(line, "swapped in "), Some(3.0));
        assert_eq!(
            parse_ms_after("rebuilt in 12.5 s, x", "rebuilt in "),
            Some(12500.0)
        );
    }

    #[test]
    fn spread_of_values() {
        let s = spread(&[5.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 5.0));
        assert!(spread(&[]).is_none());
    }
}
