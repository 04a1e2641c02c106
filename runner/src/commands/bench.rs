//! `dylib-dev bench`: edit-to-output latency of the loops, measured with real edits.
use super::Outcome;
use super::args::GlobalArgs;
use super::args::PackageArgs;
use crate::bench::{
    self, Bench, BenchLoop, BenchOptions, BenchProgress, LoopResult, Sample, spread,
};
use crate::duration::ms;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// An edit-build-run loop that `bench` times (the command line's names for [`BenchLoop`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoopArg {
    /// `cargo build` of host and logic, then a fresh host.
    Static,
    /// The same in dynamic mode (deps dylib, `-C prefer-dynamic`), then a fresh host.
    Dynamic,
    /// `dylib-dev watch`: logic swapped into the running host.
    Hot,
}

impl From<LoopArg> for BenchLoop {
    fn from(arg: LoopArg) -> BenchLoop {
        match arg {
            LoopArg::Static => BenchLoop::Static,
            LoopArg::Dynamic => BenchLoop::Dynamic,
            LoopArg::Hot => BenchLoop::Hot,
        }
    }
}

/// A row title for reports.
fn title(kind: BenchLoop) -> &'static str {
    match kind {
        BenchLoop::Static => "static: cargo build + restart",
        BenchLoop::Dynamic => "dynamic: deps dylib + restart",
        BenchLoop::Hot => "hot: dylib-dev watch swap",
    }
}

/// Arguments of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// `-p` names the host package, as for `watch`.
    #[command(flatten)]
    pub package: PackageArgs,
    /// Number of timed edits per loop.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub edits: usize,
    /// Which loops to time, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "static,dynamic,hot"
    )]
    pub loops: Vec<LoopArg>,
    /// Source file to edit (default: `file` in `[workspace.metadata.dylib-dev.bench]`).
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// A literal in that file that appears in the host's output (default: `marker` in the config).
    #[arg(long, value_name = "TEXT")]
    pub marker: Option<String>,
    /// Pause before each edit, so each one is timed on its own.
    #[arg(long, value_name = "MS", default_value_t = 300)]
    pub pause_ms: u64,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run `watch --no-fast-path`: every rebuild through cargo.
    #[arg(long)]
    pub no_fast_path: bool,
    /// Run `watch --plain-rustc` (and build the dynamic loop so): logic built with cargo's flags as they are.
    #[arg(long)]
    pub plain_rustc: bool,
    /// Instead: swap two builds of the logic library into one host N times and report its memory
    /// and mapped library copies (a soak, not a latency measurement).
    #[arg(long, value_name = "N")]
    pub soak: Option<u64>,
    /// Arguments for the host.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<std::ffi::OsString>,
}

/// Runs the command: the loops (or the soak) on the project, then the report on stdout.
pub fn run(args: &BenchArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let _ = global;
    let (_, metadata) = crate::project::load_metadata(&args.package.selector(), false)?;
    let edit = bench::edit_target(&metadata, args.file.clone(), args.marker.clone())?;
    let options = BenchOptions {
        host: args.package.package.clone(),
        edits: args.edits,
        pause_ms: args.pause_ms,
        no_fast_path: args.no_fast_path,
        plain_rustc: args.plain_rustc,
        args: args.args.clone(),
    };
    let restore = Restore {
        path: edit.file.clone(),
        original: edit.original.clone(),
    };
    #[cfg(unix)]
    if let Some(swaps) = args.soak {
        let result = crate::soak::run(
            &options,
            swaps,
            &metadata,
            &edit.file,
            &edit.original,
            &edit.marker,
            &mut soak_progress,
        );
        if let Ok(soaked) = &result {
            soak_report(soaked, args.json);
        }
        drop(restore);
        return result.map(|_| Outcome::Success);
    }

    let bench = Bench::new(&metadata, options, edit)?;
    for kind in args.loops.iter().map(|&k| BenchLoop::from(k)) {
        bench.check_loop(kind)?;
    }
    let mut results = Vec::new();
    for kind in args.loops.iter().map(|&k| BenchLoop::from(k)) {
        eprintln!(
            "dylib-dev bench: {} loop, {} edits of {}",
            kind.name(),
            args.edits,
            bench.file().display()
        );
        results.push((kind, bench.run_loop(kind, &mut progress)?));
    }
    drop(restore);
    report(&results, bench.debounce(), args.json);
    Ok(Outcome::Success)
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

/// Shows the loops' progress on stderr.
fn progress(event: BenchProgress) {
    match event {
        BenchProgress::WarmUp => eprintln!("  warm-up build (a first one compiles everything)"),
        BenchProgress::Edit {
            index,
            latency,
            build: Some(built),
        } => eprintln!(
            "  edit {index:>3}: {} to new output (build {})",
            ms(latency),
            ms(built)
        ),
        BenchProgress::Edit {
            index,
            latency,
            build: None,
        } => eprintln!("  edit {index:>3}: {} to new output", ms(latency)),
        BenchProgress::WatcherError(line) => eprintln!("  {line}"),
        BenchProgress::BuildFailed(outcome) => {
            let _ = outcome.write_diagnostics(&mut std::io::stderr());
        }
    }
}

/// Shows the soak's progress on stderr.
#[cfg(unix)]
fn soak_progress(event: crate::soak::SoakProgress) {
    use crate::soak::SoakProgress;
    match event {
        SoakProgress::Started { swaps, host } => eprintln!(
            "dylib-dev bench --soak: {swaps} swaps of the logic library of `{host}` into one host"
        ),
        SoakProgress::VersionBuilt { name, took } => {
            eprintln!("  built version {name} in {}", ms(took))
        }
        SoakProgress::BuildFailed(outcome) => {
            let _ = outcome.write_diagnostics(&mut std::io::stderr());
        }
        SoakProgress::Looked(sample) => eprintln!(
            "  {:>6} swaps: RSS {} KiB, {} mapped cop{} ({} KiB), {} on disk",
            sample.swaps,
            sample.rss_kib,
            sample.mapped_copies,
            if sample.mapped_copies == 1 {
                "y"
            } else {
                "ies"
            },
            sample.mapped_kib,
            sample.copies_on_disk
        ),
    }
}

/// Prints what the loops measured: a table, or JSON.
fn report(results: &[(BenchLoop, LoopResult)], debounce: Duration, json: bool) {
    let col = |r: &LoopResult, f: fn(&Sample) -> Option<f64>| {
        r.samples.iter().filter_map(f).collect::<Vec<f64>>()
    };
    let latency = |r: &LoopResult| spread(&col(r, |s| Some(s.latency_ms)));
    let hot = results
        .iter()
        .find(|(k, _)| *k == BenchLoop::Hot)
        .and_then(|(_, r)| latency(r));
    if json {
        let loops: Vec<serde_json::Value> = results
            .iter()
            .map(|(kind, r)| {
                serde_json::json!({
                    "loop": kind.name(),
                    "edits": r.samples.len(),
                    "latency_ms": latency(r),
                    "build_ms": spread(&col(r, |s| s.build_ms)),
                    "swap_ms": spread(&col(r, |s| s.swap_ms)),
                    "link_ms": spread(&col(r, |s| s.link_ms)),
                    "noop_build_ms": r.noop_build_ms,
                    "host_rss_kib": r.rss.map(|(a, b)| serde_json::json!({"before": a, "after": b})),
                    "samples": r.samples,
                })
            })
            .collect();
        println!(
            "{:#}",
            serde_json::json!({ "debounce_ms": debounce.as_millis() as u64, "loops": loops })
        );
        return;
    }
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}",
        "edit to new output (ms)", "median", "min", "max", "vs hot"
    );
    for (kind, r) in results {
        if let Some(s) = latency(r) {
            let ratio = hot
                .map(|h| format!("{:.1}x", s.median / h.median))
                .unwrap_or_default();
            println!(
                "{:<34} {:>9.0} {:>9.0} {:>9.0} {:>9}",
                title(*kind),
                s.median,
                s.min,
                s.max,
                ratio
            );
        }
    }
    println!();
    println!(
        "{:<34} {:>9} {:>9} {:>9}",
        "where the time went (ms)", "median", "min", "max"
    );
    for (kind, r) in results {
        let mut rows = vec![(
            format!("{}: build", kind.name()),
            spread(&col(r, |s| s.build_ms)),
        )];
        if *kind == BenchLoop::Hot {
            rows.insert(
                0,
                (
                    "hot: debounce (setting)".to_string(),
                    spread(&[debounce.as_secs_f64() * 1e3]),
                ),
            );
            rows.push((
                "hot: of the build, the link".to_string(),
                spread(&col(r, |s| s.link_ms)),
            ));
            rows.push((
                "hot: swap (copy, dlopen, switch)".to_string(),
                spread(&col(r, |s| s.swap_ms)),
            ));
        }
        if let Some(noop) = r.noop_build_ms {
            rows.push((
                format!("{}: cargo with nothing to do", kind.name()),
                spread(&[noop]),
            ));
        }
        for (name, s) in rows {
            if let Some(s) = s {
                println!("{name:<34} {:>9.1} {:>9.1} {:>9.1}", s.median, s.min, s.max);
            }
        }
        if let Some((before, after)) = r.rss {
            let per = (after as f64 - before as f64) / r.samples.len().max(1) as f64;
            println!(
                "{:<34} {before} KiB -> {after} KiB ({per:+.0} KiB per swap)",
                "hot: host RSS"
            );
        }
    }
}

/// Prints what the soak measured: three lines, or JSON.
#[cfg(unix)]
fn soak_report(soaked: &crate::soak::SoakResult, json: bool) {
    let (swaps, elapsed, samples) = (soaked.swaps, soaked.elapsed, &soaked.samples);
    let mut times = soaked.times.clone();
    times.sort_unstable();
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    let (first, last) = (&samples[0], &samples[samples.len() - 1]);
    // Growth over the second half: what a long session would keep adding.
    let mid = &samples[samples.len() / 2];
    let per_swap = |a: &crate::soak::Sample, b: &crate::soak::Sample| {
        (b.rss_kib as f64 - a.rss_kib as f64) / (b.swaps - a.swaps).max(1) as f64
    };
    if json {
        let value = serde_json::json!({
            "soak": swaps,
            "seconds": elapsed.as_secs_f64(),
            "swap_us": {
                "median": pct(0.5).as_micros() as u64,
                "p99": pct(0.99).as_micros() as u64,
                "max": pct(1.0).as_micros() as u64,
            },
            "rss_kib": { "before": first.rss_kib, "after": last.rss_kib },
            "rss_kib_per_swap": { "all": per_swap(first, last), "second_half": per_swap(mid, last) },
            "mapped_copies": { "before": first.mapped_copies, "after": last.mapped_copies },
            "mapped_kib": { "before": first.mapped_kib, "after": last.mapped_kib },
            "copies_on_disk_after": last.copies_on_disk,
            "samples": samples,
        });
        println!("{value:#}");
        return;
    }
    println!(
        "{swaps} swaps in {} ({} per swap; median {}, p99 {}, max {})",
        ms(elapsed),
        ms(elapsed / swaps.max(1) as u32),
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(pct(1.0))
    );
    println!(
        "host RSS: {} KiB -> {} KiB ({:+.1} KiB per swap; {:+.1} over the second half)",
        first.rss_kib,
        last.rss_kib,
        per_swap(first, last),
        per_swap(mid, last)
    );
    println!(
        "mapped library copies: {} ({} KiB) -> {} ({} KiB); copies on disk: {}",
        first.mapped_copies,
        first.mapped_kib,
        last.mapped_copies,
        last.mapped_kib,
        last.copies_on_disk
    );
}
