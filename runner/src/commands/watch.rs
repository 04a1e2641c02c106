//! `dylib-dev watch`: rebuild on change, swap logic into the running host or restart it.
use super::Outcome;
use super::args::BuildArgs;
use super::args::GlobalArgs;
use crate::duration::ms;
use crate::host::describe;
use crate::signals::Stop;
use crate::ui;
use crate::watch::events::{
    BuildExit, BuildInfo, BuiltBy, Counts, RestartCause, RestartReason, StateHandOff, WatchEvent,
};
use crate::watch::{build, model, session};
use clap::Args;
use std::cell::RefCell;

/// Arguments of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// `-p` names the host package (default: `[workspace.metadata.dylib-dev] host`, or the only binary).
    #[command(flatten)]
    pub build: BuildArgs,
    /// Trailing debounce of file events in milliseconds, 0 to 10000 (default 30, or `debounce-ms`
    /// in the config).
    #[arg(long, value_name = "MS")]
    pub debounce_ms: Option<u64>,
    /// Always build with cargo, never rustc directly (the fast path for logic-only edits).
    #[arg(long)]
    pub no_fast_path: bool,
    /// Build logic crates with cargo's rustc flags as they are: no `-Zshare-generics=no`, no
    /// link against stubs of the deps dylib (see docs/watch.md).
    #[arg(long)]
    pub plain_rustc: bool,
    /// A call into logic running this long is reported stuck, and a swap that waits this long for
    /// it restarts the host; 100 to 3600000 (default 10000, or `hang-timeout-ms` in the config).
    #[arg(long, value_name = "MS", alias = "reload-timeout-ms")]
    pub hang_timeout_ms: Option<u64>,
    /// Arguments for the host.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<std::ffi::OsString>,
}

/// Runs the command: loads the project, then the session until a signal stops it.
pub fn run(args: &WatchArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let mut package_args = args.build.package.clone();
    let host_override = package_args.package.take();
    // Timings are checked at each load, before anything is built: a value that cannot work is
    // refused.
    let flags = model::TimingFlags {
        debounce_ms: args.debounce_ms,
        hang_timeout_ms: args.hang_timeout_ms,
    };
    // The same steps at the start and after every manifest change.
    let load = move || -> anyhow::Result<(model::WatchModel, cargo_metadata::Package)> {
        let (_, metadata) = crate::project::load_metadata(&package_args.selector(), false)?;
        let model = model::WatchModel::from_metadata_and_flags(
            &metadata,
            host_override.as_deref(),
            &flags,
        )?;
        let host_package = model.host_package(&metadata).clone();
        Ok((model, host_package))
    };
    let (model, host_package) = load()?;
    let quiet = global.quiet;
    if model.restart_mode() {
        let heavy = if model.host_has_dynamic {
            Vec::new()
        } else {
            crate::heavy::picks(&model.workspace_root.join("Cargo.toml"), &model.host)
        };
        render(WatchEvent::RestartMode { heavy }, quiet);
    }
    let session = session::Session {
        model,
        build: build::BuildOptions {
            features: args.build.features.clone(),
            release: args.build.release,
            fast_path: !args.no_fast_path,
            plain_rustc: args.plain_rustc,
        },
        args: args.args.clone(),
        host_package,
        reload: Box::new(load),
        reporter: RefCell::new(Box::new(move |event| render(event, quiet))),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(session.run()).map(Outcome::Stopped)
}

/// Prints an event as the status, warning and error lines `watch` shows; `quiet` drops the status
/// lines.
fn render(event: WatchEvent, quiet: bool) {
    let status = |verb: &str, msg: String| {
        if !quiet {
            ui::status(verb, msg);
        }
    };
    match event {
        WatchEvent::BuildStarted { .. } => {}
        WatchEvent::RestartMode { heavy } => {
            for line in restart_mode_lines(&heavy) {
                ui::note(line);
            }
        }
        WatchEvent::BuildFailed {
            diagnostics,
            output,
            exit,
            host_running,
        } => {
            use std::io::Write;
            let mut err = std::io::stderr().lock();
            for d in &diagnostics {
                let _ = err.write_all(d.rendered.as_bytes());
            }
            if diagnostics.is_empty() {
                let _ = err.write_all(output.as_bytes());
            }
            drop(err);
            let counts = counts_text(Counts::of(&diagnostics));
            let what = if counts.is_empty() {
                match exit {
                    BuildExit::Cargo(status) => format!("cargo {status}"),
                    BuildExit::Rustc => "rustc failed".to_string(),
                }
            } else {
                counts
            };
            ui::error(&anyhow::anyhow!(
                "build failed ({what}); {}",
                keeps(host_running)
            ));
        }
        WatchEvent::NoProducts => ui::warn(
            "the build succeeded but cargo reported no host binary or logic library; is the project layout right?",
        ),
        WatchEvent::UpliftFailed {
            artifact,
            dest,
            error,
        } => ui::warn(format!(
            "could not copy `{}` to `{}`: {error}",
            artifact.display(),
            dest.display()
        )),
        WatchEvent::ProjectLoadFailed {
            error,
            host_running,
        } => {
            ui::error(&error);
            ui::error(&anyhow::anyhow!(
                "build failed (the project does not load); {}",
                keeps(host_running)
            ));
        }
        WatchEvent::ProjectReloaded { host, logic } => status(
            "Reloaded",
            if logic.is_empty() {
                format!("project: host {host}, no logic crate (restarts on every change)")
            } else {
                format!("project: host {host}, logic {}", logic.join(", "))
            },
        ),
        WatchEvent::EventsLost => ui::warn(
            "file events were lost (the kernel's event queue overflowed, or the watcher failed); rebuilding everything",
        ),
        WatchEvent::HostStarted { pid, first, build } => status(
            if first { "Started" } else { "Restarted" },
            format!(
                "host (pid {pid}) after a build of {}{}",
                ms(build.duration),
                build_suffix(&build)
            ),
        ),
        WatchEvent::HostExited { pid, status: exit } => {
            let how = match exit {
                Ok(s) => describe(&s),
                Err(e) => e,
            };
            status(
                "Exited",
                format!("host (pid {pid}, {how}); waiting for a change"),
            );
        }
        WatchEvent::Restarted {
            old_pid,
            old_status,
            pid,
            reason,
            state,
        } => status(
            "Restarted",
            format!(
                "host: pid {old_pid} ({}) -> pid {pid}; {}{}",
                describe(&old_status),
                reason_text(&reason),
                state_text(&state)
            ),
        ),
        WatchEvent::Swapped {
            lib,
            version,
            build,
            swap,
            since_edit,
            lingering,
            lingering_bytes,
        } => {
            let rebuilt = match build {
                Some(b) => format!("{lib} rebuilt in {}{}", ms(b.duration), build_suffix(&b)),
                None => format!("{lib}'s newest build (the host opened an older one)"),
            };
            let kept = match lingering {
                0 => String::new(),
                1 => format!("; 1 old version mapped ({})", mib(lingering_bytes)),
                n => format!("; {n} old versions mapped ({})", mib(lingering_bytes)),
            };
            let edit = since_edit
                .map(|d| format!("; {} since the edit", ms(d)))
                .unwrap_or_default();
            status(
                "Swapped",
                format!(
                    "{rebuilt}, swapped in {} (reload {version}{edit}{kept})",
                    ms(swap)
                ),
            );
        }
        WatchEvent::OldVersionsMapped { lib, limit_bytes } => ui::note(format!(
            "old versions of {lib} stay mapped: threads, hooks or values they left behind may still use their code; the host is restarted past {} of them (a host whose logic is self-contained can unload them: `Builder::unload_old_versions(true)`)",
            mib(limit_bytes)
        )),
        WatchEvent::ReloadsOnItsOwn { lib, build } => {
            let what = match build {
                Some(b) => format!("{lib} in {}{}", ms(b.duration), build_suffix(&b)),
                None => format!("{lib}'s newest build"),
            };
            status(
                "Rebuilt",
                format!(
                    "{what}; the host reloads it on its own (or gets it when it opens the library)"
                ),
            );
        }
        WatchEvent::SwapRefused {
            lib,
            version,
            reason,
        } => ui::warn(format!(
            "the host refused reload {version} of {lib}: {reason}; restarting it"
        )),
        WatchEvent::SwapFailed {
            lib,
            version,
            error,
        } => ui::warn(format!(
            "reload {version} of {lib} failed: {error}; restarting the host"
        )),
        WatchEvent::SwapTaskFailed { error } => ui::warn(format!("reload task failed: {error}")),
        WatchEvent::Panicked(panic) => {
            let at = panic
                .location
                .as_deref()
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            status(
                "Panicked",
                format!(
                    "{}::{} (reload {}, thread {}){at}: {}",
                    panic.lib, panic.function, panic.version, panic.thread, panic.message
                ),
            );
        }
        WatchEvent::Stuck(stuck) => ui::warn(format!(
            "`{}::{}` has not returned for {} (thread {}, reload {}; an endless loop?); the next build restarts the host",
            stuck.lib,
            stuck.function,
            ms(stuck.elapsed),
            stuck.thread,
            stuck.version
        )),
        WatchEvent::Resumed(resumed) => status(
            "Resumed",
            format!(
                "`{}::{}` returned after {}",
                resumed.lib,
                resumed.function,
                ms(resumed.elapsed)
            ),
        ),
        // After a hang-up the terminal is gone: a line written to it would fail.
        WatchEvent::Stopped(signal) => {
            if signal != Stop::HangUp {
                status("Stopped", "watcher, host and builds".to_string());
            }
        }
    }
}

/// What the host does while the build is broken.
/// What `watch` says once in restart mode: it restarts on every change, what wrapping the heavy
/// dependencies would save (none named: nothing said), and how to swap code instead.
fn restart_mode_lines(heavy: &[(String, u64)]) -> Vec<String> {
    let mut first =
        "no logic crate: watch rebuilds and restarts the host on every change".to_string();
    if !heavy.is_empty() {
        let named: Vec<String> = heavy
            .iter()
            .map(|(key, bytes)| format!("{key} ({} of source)", crate::heavy::human(*bytes)))
            .collect();
        first.push_str(&format!(
            "; `dylib-dev wrap --auto` would build {} once as a shared library, so each rebuild links less",
            named.join(", ")
        ));
    }
    let mut lines = vec![first];
    lines.push(
        "to swap functions into the running process instead, add a logic crate: `dylib-dev init`"
            .to_string(),
    );
    lines
}

fn keeps(host_running: bool) -> &'static str {
    if host_running {
        "the host keeps running the last good build"
    } else {
        "waiting for a fix"
    }
}

/// `1 error, 2 warnings`; empty for none.
fn counts_text(counts: Counts) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut parts = Vec::new();
    for (n, word) in [(counts.errors, "error"), (counts.warnings, "warning")] {
        if n > 0 {
            parts.push(plural(n, word));
        }
    }
    parts.join(", ")
}

/// What follows a build's time: ` by rustc directly (link 62 ms) (1 warning)`; empty for a
/// clean cargo build.
fn build_suffix(build: &BuildInfo) -> String {
    let how = match build.by {
        BuiltBy::Cargo => String::new(),
        BuiltBy::Rustc { link } => {
            let link = link
                .map(|l| format!(" (link {})", ms(l)))
                .unwrap_or_default();
            format!(" by rustc directly{link}")
        }
    };
    let counts = if build.counts.is_empty() {
        String::new()
    } else {
        format!(" ({})", counts_text(build.counts))
    };
    format!("{how}{counts}")
}

/// `12.5 MiB`.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

fn cause_text(cause: &RestartCause) -> String {
    match cause {
        RestartCause::Stuck { call } => format!("`{call}` was stuck"),
        RestartCause::SwapRefused => "swap refused".to_string(),
        RestartCause::SwapFailed => "swap failed".to_string(),
        RestartCause::OldVersionsKept { lib, count, bytes } => {
            format!(
                "{count} old versions of {lib} were kept mapped ({})",
                mib(*bytes)
            )
        }
    }
}

fn reason_text(reason: &RestartReason) -> String {
    match reason {
        RestartReason::Swap { cause, rebuilt_in } => {
            let rebuilt = rebuilt_in
                .map(|d| format!("; rebuilt in {}", ms(d)))
                .unwrap_or_default();
            format!("{}{rebuilt}", cause_text(cause))
        }
        RestartReason::Rebuilt { cause, build } => {
            let rebuilt = format!("rebuilt in {}{}", ms(build.duration), build_suffix(build));
            match cause {
                Some(cause) => format!("{}; {rebuilt}", cause_text(cause)),
                None => rebuilt,
            }
        }
    }
}

fn state_text(state: &StateHandOff) -> String {
    match state {
        StateHandOff::Nothing => String::new(),
        StateHandOff::Saved { bytes } => format!("; state handed off ({bytes} bytes)"),
        StateHandOff::Stuck { call } => format!("; state not saved (`{call}` is stuck)"),
        StateHandOff::NotSaved { why } => format!("; state not saved ({why})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn build(by: BuiltBy, warnings: usize) -> BuildInfo {
        BuildInfo {
            duration: Duration::from_millis(412),
            by,
            counts: Counts {
                errors: 0,
                warnings,
            },
        }
    }

    #[test]
    fn restart_mode_names_heavy_dependencies_and_the_commands() {
        let tiny = restart_mode_lines(&[]);
        assert_eq!(tiny.len(), 2, "{tiny:?}");
        assert!(tiny[0].contains("restarts the host on every change"));
        assert!(tiny.iter().all(|l| !l.contains("wrap")), "{tiny:?}");
        assert!(tiny[1].contains("`dylib-dev init`"));
        let heavy = restart_mode_lines(&[
            ("polars".into(), 40 * 1024 * 1024),
            ("serde_json".into(), 2 * 1024 * 1024),
        ]);
        assert_eq!(heavy.len(), 2, "{heavy:?}");
        assert!(heavy[0].contains("restarts the host on every change; `dylib-dev wrap --auto` would build polars (40.0 MiB of source), serde_json (2.0 MiB of source)"), "{heavy:?}");
        assert_eq!(heavy[1], tiny[1]);
    }

    #[test]
    fn build_suffix_says_how_and_what_it_found() {
        assert_eq!(build_suffix(&build(BuiltBy::Cargo, 0)), "");
        assert_eq!(build_suffix(&build(BuiltBy::Cargo, 2)), " (2 warnings)");
        let fast = BuiltBy::Rustc {
            link: Some(Duration::from_millis(62)),
        };
        assert_eq!(
            build_suffix(&build(fast, 1)),
            " by rustc directly (link 62 ms) (1 warning)"
        );
        let unlinked = BuiltBy::Rustc { link: None };
        assert_eq!(build_suffix(&build(unlinked, 0)), " by rustc directly");
    }

    #[test]
    fn restart_reasons_read_as_before() {
        let refused = RestartReason::Swap {
            cause: RestartCause::SwapRefused,
            rebuilt_in: Some(Duration::from_millis(80)),
        };
        assert_eq!(reason_text(&refused), "swap refused; rebuilt in 80 ms");
        let stuck = RestartReason::Swap {
            cause: RestartCause::Stuck {
                call: "logic::step".into(),
            },
            rebuilt_in: None,
        };
        assert_eq!(reason_text(&stuck), "`logic::step` was stuck");
        let kept = RestartReason::Swap {
            cause: RestartCause::OldVersionsKept {
                lib: "logic".into(),
                count: 3,
                bytes: 300 << 20,
            },
            rebuilt_in: None,
        };
        assert_eq!(
            reason_text(&kept),
            "3 old versions of logic were kept mapped (300.0 MiB)"
        );
        // A refused swap of a rustc-only build, then cargo's build for the restart.
        let after = RestartReason::Rebuilt {
            cause: Some(RestartCause::SwapRefused),
            build: build(BuiltBy::Cargo, 1),
        };
        assert_eq!(
            reason_text(&after),
            "swap refused; rebuilt in 412 ms (1 warning)"
        );
        let plain = RestartReason::Rebuilt {
            cause: None,
            build: build(BuiltBy::Cargo, 0),
        };
        assert_eq!(reason_text(&plain), "rebuilt in 412 ms");
    }

    #[test]
    fn state_hand_off_reads_as_before() {
        assert_eq!(state_text(&StateHandOff::Nothing), "");
        assert_eq!(
            state_text(&StateHandOff::Saved { bytes: 12 }),
            "; state handed off (12 bytes)"
        );
        assert_eq!(
            state_text(&StateHandOff::Stuck {
                call: "logic::step".into()
            }),
            "; state not saved (`logic::step` is stuck)"
        );
        assert_eq!(counts_text(Counts::default()), "");
        assert_eq!(
            counts_text(Counts {
                errors: 1,
                warnings: 2
            }),
            "1 error, 2 warnings"
        );
    }
}
