//! `dylib-dev bench --soak N`: N swaps of the project's logic library into one running host, with
//! the host's memory and mapped library copies before, during and after.
//!
//! Not a latency benchmark: cargo builds the logic library twice (the source as it is, and with the
//! bench marker rewritten), then the runner swaps the two builds in alternately, as fast as the host
//! answers, through the real reload protocol and runtime (copy, hash, dlopen, layout guard, swap,
//! delete the old copy; `dlclose` only for hosts that opted in to unloading). What it measures is
//! what stays behind: resident memory (`VmRSS`), the library copies still mapped and their mapped
//! size (`/proc/<pid>/maps`), and the copies on disk.
use crate::bench::BenchOptions;
use crate::duration::ms;
use crate::reload::{Outcome, ReloadServer};
use crate::watch::build::{BuildOptions, products, watch_build};
use crate::watch::model::WatchModel;
use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// One look at the host.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    /// Swaps done so far.
    pub swaps: u64,
    /// `VmRSS`, KiB.
    pub rss_kib: u64,
    /// Library copies mapped (distinct files under the runner's private directory).
    pub mapped_copies: usize,
    /// The address space their mappings span, KiB.
    pub mapped_kib: u64,
    /// Library copies on disk.
    pub copies_on_disk: usize,
}

/// What the soak reports as it runs, for the command to show.
#[derive(Debug)]
pub enum SoakProgress {
    /// It starts: this many swaps into the host package's host.
    Started {
        /// Swaps to do.
        swaps: u64,
        /// The host package.
        host: String,
    },
    /// A version of the logic library was built (`a`: as it is, `b`: the marker rewritten).
    VersionBuilt {
        /// `a` or `b`.
        name: &'static str,
        /// The build's duration.
        took: Duration,
    },
    /// A build failed (its diagnostics say why).
    BuildFailed(crate::cargo::BuildOutcome),
    /// A look at the host, every tenth of the run.
    Looked(Sample),
}

/// What a soak measured.
pub struct SoakResult {
    /// Swaps done.
    pub swaps: u64,
    /// From the first swap to the last.
    pub elapsed: Duration,
    /// Each swap as the host measured it.
    pub times: Vec<Duration>,
    /// Looks at the host: before the first swap, every tenth of the run, after the last.
    pub samples: Vec<Sample>,
}

/// Runs the soak: `file` holds `marker` once (checked by the caller).
pub fn run(
    args: &BenchOptions,
    swaps: u64,
    metadata: &cargo_metadata::Metadata,
    file: &Path,
    original: &str,
    marker: &str,
    progress: &mut dyn FnMut(SoakProgress),
) -> anyhow::Result<SoakResult> {
    let model = WatchModel::from_metadata(metadata, args.host.as_deref())?;
    if model.restart_mode() {
        bail!(
            "--soak swaps a logic crate, and `{}` has none\n  help: `dylib-dev init` adds one",
            model.roles.host
        );
    }
    let host_package = model.host_package(metadata).clone();
    let toolchain = crate::toolchain::Toolchain::detect()?;
    progress(SoakProgress::Started {
        swaps,
        host: model.roles.host.clone(),
    });

    // Two builds of the logic library: A (as it is) and B (marker rewritten).
    let builds = tempfile::Builder::new()
        .prefix("dylib-dev-soak-")
        .tempdir()
        .context("failed to create a temp dir")?;
    let soaked = format!("{marker}-soak");
    let mut versions = Vec::new();
    let mut host_exe = PathBuf::new();
    for (name, text) in [
        ("a", original.to_string()),
        ("b", original.replacen(marker, &soaked, 1)),
    ] {
        crate::fsutil::write_atomic(file, text.as_bytes())
            .with_context(|| format!("failed to write `{}`", file.display()))?;
        let started = Instant::now();
        let outcome = watch_build(&model, &BuildOptions::default(), false)
            .run()
            .context("failed to run cargo")?;
        if !outcome.success {
            progress(SoakProgress::BuildFailed(outcome));
            bail!("the build of version {name} failed");
        }
        let made =
            products(&model, &outcome).context("cargo reported no host binary or logic library")?;
        let Some((lib, artifact)) = made.libs.first() else {
            bail!("no logic library");
        };
        let dir = builds.path().join(name);
        std::fs::create_dir_all(&dir)?;
        let copy = dir.join(artifact.file_name().expect("a file"));
        std::fs::copy(artifact, &copy)
            .with_context(|| format!("failed to copy `{}`", artifact.display()))?;
        progress(SoakProgress::VersionBuilt {
            name,
            took: started.elapsed(),
        });
        versions.push((lib.clone(), copy));
        host_exe = made.host_exe;
    }
    crate::fsutil::write_atomic(file, original.as_bytes())
        .with_context(|| format!("failed to restore `{}`", file.display()))?;

    let mut server = ReloadServer::start().context("failed to create the reload channel")?;
    let (lib, first) = versions[0].clone();
    let mut cmd = crate::host::program_command(&host_exe, &host_package, &toolchain)?;
    cmd.args(&args.args)
        .envs(server.host_env(&[(lib.as_str(), first.as_path())])?)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut host = Host(
        cmd.spawn()
            .with_context(|| format!("failed to start `{}`", host_exe.display()))?,
    );
    let pid = host.0.id();
    let lines = forward(host.0.stdout.take().expect("piped"));
    server
        .wait_for_host(&lib, Duration::from_secs(60))
        .context("the host did not load the logic library")?;
    wait_for_line(&lines, marker, Duration::from_secs(60))?;
    let look = |server: &ReloadServer, swaps| look(pid, server.dir(), swaps);
    let mut samples = vec![look(&server, 0)?];
    let every = (swaps / 10).max(1);
    let mut times = Vec::with_capacity(swaps as usize);
    let started = Instant::now();
    for version in 1..=swaps {
        let (_, artifact) = &versions[(version % 2) as usize];
        let report = server.reload(&lib, version, artifact, Duration::from_secs(30))?;
        match report.outcome {
            Outcome::Swapped(timing) => times.push(timing.total()),
            Outcome::Failed(why) => bail!("swap {version} was refused: {why}"),
        }
        if version % every == 0 || version == swaps {
            let sample = look(&server, version)?;
            progress(SoakProgress::Looked(sample.clone()));
            samples.push(sample);
        }
    }
    let elapsed = started.elapsed();
    // The host still runs, and runs the last version.
    let last = if swaps % 2 == 1 { &soaked } else { marker };
    while lines.try_recv().is_ok() {}
    wait_for_line(&lines, last, Duration::from_secs(30))
        .context("the host does not show the last version")?;
    drop(host);
    Ok(SoakResult {
        swaps,
        elapsed,
        times,
        samples,
    })
}

/// The host, killed when the soak ends however it ends.
struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn forward(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for_line(lines: &Receiver<String>, needle: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return Ok(()),
            Ok(_) => {}
            Err(_) => bail!("no output with `{needle}` within {}", ms(timeout)),
        }
    }
}

/// RSS, the copies under `dir` the host has mapped, and the copies on disk.
fn look(pid: u32, dir: &Path, swaps: u64) -> anyhow::Result<Sample> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).context("the host is gone")?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).context("the host is gone")?;
    let prefix = dir.to_string_lossy();
    let mut mapped_bytes = 0;
    let mut mapped: Vec<&str> = maps
        .lines()
        .filter_map(|l| {
            let path = l.splitn(6, char::is_whitespace).nth(5)?.trim();
            let (a, b) = l.split_once(' ')?.0.split_once('-')?;
            if path.starts_with(&*prefix) {
                mapped_bytes +=
                    u64::from_str_radix(b, 16).ok()? - u64::from_str_radix(a, 16).ok()?;
            }
            Some(path)
        })
        .filter(|p| p.starts_with(&*prefix))
        .collect();
    mapped.sort_unstable();
    mapped.dedup();
    let copies_on_disk = walk_count(dir, &|p| {
        p.extension()
            .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
    });
    Ok(Sample {
        swaps,
        rss_kib,
        mapped_copies: mapped.len(),
        mapped_kib: mapped_bytes >> 10,
        copies_on_disk,
    })
}

fn walk_count(dir: &Path, pred: &dyn Fn(&Path) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk_count(&path, pred)
            } else {
                usize::from(pred(&path))
            }
        })
        .sum()
}
