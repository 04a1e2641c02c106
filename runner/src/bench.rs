//! `dylib-dev bench`: edit-to-new-output latency, measured with real edits of a real project.
//!
//! The hot loop runs `dylib-dev watch` on the project, rewrites a marker literal in a source file
//! N times and times each edit until the host prints the new text, reading the watcher's status
//! lines for where the time went. The edited file is restored at the end.
use crate::cli::BenchArgs;
use crate::watch::session::ms;
use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
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
}

/// Runs `dylib-dev bench`.
pub fn command(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let (_, metadata) = crate::project::load_metadata(&args.package, false)?;
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
    let file = args
        .file
        .clone()
        .or(settings.file)
        .map(|f| root.join(f))
        .with_context(|| format!("no file to edit\n{help}"))?;
    let marker = args
        .marker
        .clone()
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
    let restore = Restore {
        path: file.clone(),
        original: original.clone(),
    };

    eprintln!(
        "dylib-dev bench: hot swap under `dylib-dev watch`, {} edits of {}",
        args.edits,
        file.display()
    );
    let mut watch = start_watch(root, args)?;
    let (tx, lines) = mpsc::channel();
    forward(watch.stdout.take().expect("piped"), true, tx.clone());
    forward(watch.stderr.take().expect("piped"), false, tx);
    let result = measure(&lines, &file, &original, &marker, args, &mut watch);
    stop(&mut watch);
    drop(restore);
    let (samples, rss) = result?;
    report(&samples, rss, args.json);
    Ok(ExitCode::SUCCESS)
}

/// Puts the edited file back however the bench ends.
struct Restore {
    path: PathBuf,
    original: String,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Err(e) = crate::fsutil::write_atomic(&self.path, self.original.as_bytes()) {
            crate::ui::warn(format!("could not restore `{}`: {e}", self.path.display()));
        }
    }
}

fn start_watch(root: &Path, args: &BenchArgs) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("failed to find the dylib-dev executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("watch")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"));
    if let Some(host) = &args.package.package {
        cmd.args(["-p", host]);
    }
    if args.no_fast_path {
        cmd.arg("--no-fast-path");
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
    mut pred: impl FnMut(&Line) -> bool,
) -> anyhow::Result<Line> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if pred(&line) => return Ok(line),
            Ok(line) => {
                if !line.from_host && line.text.contains("error") {
                    eprintln!("  {}", line.text);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                bail!("timed out after {timeout:?} waiting for the output")
            }
            Err(RecvTimeoutError::Disconnected) => bail!("`dylib-dev watch` exited"),
        }
    }
}

type Rss = Option<(u64, u64)>;

fn measure(
    lines: &Receiver<Line>,
    file: &Path,
    original: &str,
    marker: &str,
    args: &BenchArgs,
    watch: &mut Child,
) -> anyhow::Result<(Vec<Sample>, Rss)> {
    let mut host_pid = None;
    wait_for(lines, Duration::from_secs(1800), |l| {
        if let Some(pid) = l
            .text
            .split("host (pid ")
            .nth(1)
            .and_then(|s| s.split(')').next())
        {
            host_pid = pid.parse::<u32>().ok();
        }
        l.from_host && l.text.contains(marker)
    })
    .context("the first build and start")?;
    let rss_before = host_pid.and_then(rss_kib);
    let mut samples = Vec::new();
    for i in 1..=args.edits {
        let next = format!("{marker}-e{i:03}-");
        let text = original.replacen(marker, &next, 1);
        std::thread::sleep(Duration::from_millis(args.pause_ms));
        while lines.try_recv().is_ok() {}
        let written = Instant::now();
        std::fs::write(file, &text)
            .with_context(|| format!("failed to write `{}`", file.display()))?;
        let mut status = None;
        let shown = wait_for(lines, Duration::from_secs(300), |l| {
            if !l.from_host && l.text.contains("Swapped") {
                status = Some(l.text.clone());
            }
            l.from_host && l.text.contains(&next)
        })
        .with_context(|| format!("edit {i}"))?;
        let latency = shown.at.duration_since(written);
        // The watcher's status line for this swap may also come just after the output.
        if status.is_none() {
            status = wait_for(lines, Duration::from_secs(10), |l| {
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
        });
        eprintln!("  edit {i:>3}: {} to new output", ms(latency));
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

fn report(samples: &[Sample], rss: Rss, json: bool) {
    let col = |f: fn(&Sample) -> Option<f64>| samples.iter().filter_map(f).collect::<Vec<f64>>();
    let latency = spread(&col(|s| Some(s.latency_ms)));
    let build = spread(&col(|s| s.build_ms));
    let swap = spread(&col(|s| s.swap_ms));
    if json {
        let value = serde_json::json!({
            "loop": "hot",
            "edits": samples.len(),
            "latency_ms": latency,
            "build_ms": build,
            "swap_ms": swap,
            "host_rss_kib": rss.map(|(a, b)| serde_json::json!({"before": a, "after": b})),
            "samples": samples,
        });
        println!("{value:#}");
        return;
    }
    println!(
        "{:<28} {:>9} {:>9} {:>9}",
        "hot swap (ms)", "median", "min", "max"
    );
    for (name, s) in [
        ("edit to new output", latency),
        ("  rebuild (cargo)", build),
        ("  swap (host)", swap),
    ] {
        if let Some(s) = s {
            println!("{name:<28} {:>9.0} {:>9.0} {:>9.0}", s.median, s.min, s.max);
        }
    }
    if let Some((before, after)) = rss {
        let per = (after as f64 - before as f64) / samples.len().max(1) as f64;
        println!("host RSS: {before} KiB -> {after} KiB ({per:+.0} KiB per swap)");
    }
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
