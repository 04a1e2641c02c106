//! `dylib-dev watch`: rebuild on change, swap logic into the running host or restart it.
use super::Outcome;
use super::args::BuildArgs;
use super::args::GlobalArgs;
use super::args::{announce_cold_deps, report_cold_deps};
use crate::duration::ms;
use crate::host::describe;
use crate::signals::Stop;
use crate::ui;
use crate::watch::events::{
    BuildExit, BuildInfo, BuiltBy, Counts, Reporter, RestartCause, RestartReason, StateHandOff,
    WatchEvent,
};
use crate::watch::{build, model, session};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// How `watch` reports what happens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    /// Status lines on stderr.
    #[default]
    Human,
    /// One JSON object per event on stdout (see docs/watch.md, "Events for editors and scripts").
    Json,
}

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
    /// `human`: status lines on stderr; `json`: one JSON object per event on stdout, and no status
    /// lines (the host's own output still goes to stdout and stderr).
    #[arg(long, value_enum, value_name = "FMT", default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
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
    let json = args.message_format == MessageFormat::Json;
    // Diagnostics' `rendered` is plain text in JSON, as cargo's `--message-format json` gives it,
    // unless colours were asked for (`--color always`, `CARGO_TERM_COLOR=always`).
    if json && global.color == super::args::Color::Auto {
        ui::set_color(ui::ColorChoice::Never);
    }
    // The first-build lines are for people; JSON consumers get the build events.
    let mut cold = if quiet || json {
        Vec::new()
    } else {
        cold_watch_deps(&model, args.build.release)
    };
    for deps in &cold {
        announce_cold_deps(deps, "an edit rebuilds in well under a second");
    }
    let start = std::time::SystemTime::now();
    let mut reporter: Reporter = match args.message_format {
        MessageFormat::Human => Box::new(move |event| {
            let first_start = matches!(event, WatchEvent::HostStarted { first: true, .. });
            render(event, quiet);
            if first_start {
                for cold in cold.drain(..) {
                    report_cold_deps(&cold, start);
                }
            }
        }),
        MessageFormat::Json => {
            let mut json = JsonRenderer::new(Instant::now());
            Box::new(move |event| json.emit(event))
        }
    };
    if model.restart_mode() {
        // What `wrap --auto` would put in the deps dylib, for the hint; nothing once wrapped.
        let heavy = if model.roles.host_has_dynamic {
            Vec::new()
        } else {
            crate::heavy::picks(&model.workspace_root.join("Cargo.toml"), &model.roles.host)
        };
        reporter(WatchEvent::RestartMode { heavy });
    } else if model.roles.logic.is_empty() {
        let crates = model
            .roles
            .hot
            .iter()
            .map(|h| match h.kind {
                crate::roles::HotKind::Bin => format!("{} (binary)", h.crate_name),
                crate::roles::HotKind::Lib => format!("{} (library)", h.crate_name),
            })
            .collect();
        reporter(WatchEvent::HotMode { crates });
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
        reporter: RefCell::new(reporter),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(session.run()).map(Outcome::Stopped)
}

/// The deps dylibs of the host and the logic crates that the first build compiles for the first
/// time (none for a project without a deps crate).
fn cold_watch_deps(model: &model::WatchModel, release: bool) -> Vec<crate::first_build::ColdDeps> {
    let profile = crate::first_build::profile_dir(&model.target_dir, release);
    let host = model.roles.host_has_dynamic.then_some(&model.roles.host);
    host.into_iter()
        .chain(&model.roles.logic_with_dynamic)
        .filter_map(|wrapped| {
            let deps_crate = format!("{wrapped}-deps");
            let dir = &model
                .roles
                .packages
                .iter()
                .find(|p| p.name == deps_crate)?
                .dir;
            crate::first_build::cold_deps(&deps_crate, dir, &profile)
        })
        .collect()
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
        WatchEvent::HotMode { crates } => ui::note(format!(
            "hot functions in place: an edit of {} is patched into the running program and takes \
             effect at the next call of a #[dylib_dev::hot] function; other edits restart it",
            crates.join(", ")
        )),
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
        WatchEvent::OldVersionsMapped {
            lib,
            limit_bytes,
            patches,
        } => ui::note(old_versions_note(&lib, limit_bytes, patches)),
        WatchEvent::ReloadsOnItsOwn {
            lib,
            build: Some(b),
            hot: true,
        } => status(
            "Rebuilt",
            format!(
                "{lib} in {}{}; the program gets it at its first call of a hot function",
                ms(b.duration),
                build_suffix(&b)
            ),
        ),
        WatchEvent::ReloadsOnItsOwn { lib, build, .. } => {
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

/// Writes each event as one JSON object on a line of stdout, flushed at once (the schema is in
/// docs/watch.md, "Events for editors and scripts").
struct JsonRenderer {
    /// When the watch started: `time_ms` counts from here.
    start: Instant,
    /// A build started and its successful end has not been reported yet.
    building: bool,
}

impl JsonRenderer {
    fn new(start: Instant) -> JsonRenderer {
        JsonRenderer {
            start,
            building: false,
        }
    }

    /// Writes `event` (preceded by `build-finished` when it is the first to carry a successful
    /// build's data).
    fn emit(&mut self, event: WatchEvent) {
        for value in self.values(event) {
            write_line(&value);
        }
    }

    /// The lines `event` makes, each with `time_ms`.
    fn values(&mut self, event: WatchEvent) -> Vec<Value> {
        let time_ms = round_ms(self.start.elapsed());
        let mut out = Vec::new();
        // A successful build shows in the event that uses it (host started, swapped, ...).
        let built = match &event {
            WatchEvent::HostStarted { build, .. } => Some(*build),
            WatchEvent::Swapped { build, .. } | WatchEvent::ReloadsOnItsOwn { build, .. } => *build,
            WatchEvent::Restarted {
                reason: RestartReason::Rebuilt { build, .. },
                ..
            } => Some(*build),
            _ => None,
        };
        match (&event, built) {
            (WatchEvent::BuildStarted { .. }, _) => self.building = true,
            (WatchEvent::BuildFailed { .. } | WatchEvent::ProjectLoadFailed { .. }, _) => {
                self.building = false
            }
            (_, Some(build)) if self.building => {
                self.building = false;
                let mut finished = json!({"reason": "build-finished", "success": true});
                merge(&mut finished, build_json(&build));
                out.push(finished);
            }
            // A build that succeeded but could not be swapped in, or built nothing to run: its
            // end is known, not all of its data.
            (
                WatchEvent::SwapRefused { .. }
                | WatchEvent::SwapFailed { .. }
                | WatchEvent::SwapTaskFailed { .. }
                | WatchEvent::Restarted { .. }
                | WatchEvent::NoProducts,
                None,
            ) if self.building => {
                self.building = false;
                let duration = match &event {
                    WatchEvent::Restarted {
                        reason: RestartReason::Swap { rebuilt_in, .. },
                        ..
                    } => rebuilt_in.map(round_ms),
                    _ => None,
                };
                out.push(json!({
                    "reason": "build-finished",
                    "success": true,
                    "duration_ms": duration,
                    "by": null,
                }));
            }
            _ => {}
        }
        out.push(event_json(event));
        for value in &mut out {
            merge(value, json!({ "time_ms": time_ms }));
        }
        out
    }
}

/// One line on stdout, flushed; a closed stdout is not an error worth stopping for.
fn write_line(value: &Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, value);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// Adds `extra`'s fields to `value` (both objects).
fn merge(value: &mut Value, extra: Value) {
    if let (Value::Object(into), Value::Object(from)) = (value, extra) {
        into.extend(from);
    }
}

/// Milliseconds, to the microsecond.
fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// `{"duration_ms", "by", "link_ms", "errors", "warnings"}` of a successful build.
fn build_json(build: &BuildInfo) -> Value {
    let (by, link) = match build.by {
        BuiltBy::Cargo => ("cargo", None),
        BuiltBy::Rustc { link } => ("rustc", link.map(round_ms)),
    };
    json!({
        "duration_ms": round_ms(build.duration),
        "by": by,
        "link_ms": link,
        "errors": build.counts.errors,
        "warnings": build.counts.warnings,
    })
}

/// `{"code", "signal", "description"}` of a process's exit.
fn status_json(status: &std::process::ExitStatus) -> Value {
    #[cfg(unix)]
    let signal = {
        use std::os::unix::process::ExitStatusExt;
        status.signal()
    };
    #[cfg(not(unix))]
    let signal: Option<i32> = None;
    json!({ "code": status.code(), "signal": signal, "description": describe(status) })
}

/// `src/lib.rs:12:5` -> `{"file", "line", "column"}`; a location of another form is the file.
fn location_json(location: &str) -> Value {
    let mut parts = location.rsplitn(3, ':');
    let (col, line, file) = (parts.next(), parts.next(), parts.next());
    let number = |p: Option<&str>| p.and_then(|p| p.parse::<u64>().ok());
    match (file, number(line), number(col)) {
        (Some(file), Some(line), Some(column)) => {
            json!({ "file": file, "line": line, "column": column })
        }
        _ => json!({ "file": location, "line": null, "column": null }),
    }
}

/// Kebab-case name of a restart's cause.
fn cause_name(cause: &RestartCause) -> &'static str {
    match cause {
        RestartCause::Stuck { .. } => "stuck",
        RestartCause::SwapRefused => "swap-refused",
        RestartCause::SwapFailed => "swap-failed",
        RestartCause::OldVersionsKept { .. } => "old-versions-kept",
        RestartCause::Unreached { .. } => "unreached",
    }
}

/// `{"state", "bytes"/"call"/"why"}` of a restart's state hand-off.
fn state_json(state: &StateHandOff) -> Value {
    match state {
        StateHandOff::Nothing => json!({ "state": "nothing" }),
        StateHandOff::Saved { bytes } => json!({ "state": "saved", "bytes": bytes }),
        StateHandOff::Stuck { call } => json!({ "state": "stuck", "call": call }),
        StateHandOff::NotSaved { why } => json!({ "state": "not-saved", "why": why }),
    }
}

/// The object of one event (without `time_ms`).
fn event_json(event: WatchEvent) -> Value {
    match event {
        WatchEvent::HotMode { crates } => json!({
            "reason": "hot-mode",
            "crates": crates,
        }),
        WatchEvent::RestartMode { heavy } => json!({
            "reason": "restart-mode",
            "heavy": heavy
                .iter()
                .map(|(name, bytes)| json!({ "name": name, "source_bytes": bytes }))
                .collect::<Vec<_>>(),
        }),
        WatchEvent::BuildStarted { fast } => json!({
            "reason": "build-started",
            "by": if fast { "rustc" } else { "cargo" },
        }),
        WatchEvent::BuildFailed {
            diagnostics,
            output,
            exit,
            host_running,
        } => {
            let counts = Counts::of(&diagnostics);
            let exit = match exit {
                BuildExit::Cargo(status) => {
                    let mut exit = status_json(&status);
                    merge(&mut exit, json!({ "by": "cargo" }));
                    exit
                }
                BuildExit::Rustc => json!({ "by": "rustc" }),
            };
            json!({
                "reason": "build-finished",
                "success": false,
                "errors": counts.errors,
                "warnings": counts.warnings,
                "diagnostics": diagnostics.iter().map(|d| &d.json).collect::<Vec<_>>(),
                "output": output,
                "exit": exit,
                "host_running": host_running,
            })
        }
        WatchEvent::NoProducts => json!({ "reason": "no-products" }),
        WatchEvent::UpliftFailed {
            artifact,
            dest,
            error,
        } => json!({
            "reason": "uplift-failed",
            "artifact": artifact,
            "dest": dest,
            "error": error,
        }),
        WatchEvent::ProjectLoadFailed {
            error,
            host_running,
        } => json!({
            "reason": "project-load-failed",
            "error": format!("{error:#}"),
            "host_running": host_running,
        }),
        WatchEvent::ProjectReloaded { host, logic } => json!({
            "reason": "project-reloaded",
            "host": host,
            "logic": logic,
        }),
        WatchEvent::EventsLost => json!({ "reason": "events-lost" }),
        WatchEvent::HostStarted { pid, first, build } => json!({
            "reason": "host-started",
            "pid": pid,
            "first": first,
            "build": build_json(&build),
        }),
        WatchEvent::HostExited { pid, status } => {
            let mut value = json!({ "reason": "host-exited", "pid": pid });
            match status {
                Ok(status) => merge(&mut value, json!({ "status": status_json(&status) })),
                Err(error) => merge(&mut value, json!({ "status": null, "error": error })),
            }
            value
        }
        WatchEvent::Restarted {
            old_pid,
            old_status,
            pid,
            reason,
            state,
        } => {
            let detail = reason_text(&reason);
            let (cause, build, rebuilt_in) = match &reason {
                RestartReason::Swap { cause, rebuilt_in } => {
                    (Some(cause), None, rebuilt_in.map(round_ms))
                }
                RestartReason::Rebuilt { cause, build } => (
                    cause.as_ref(),
                    Some(build_json(build)),
                    Some(round_ms(build.duration)),
                ),
            };
            let mut value = json!({
                "reason": "restarted",
                "old_pid": old_pid,
                "old_status": status_json(&old_status),
                "pid": pid,
                "cause": cause.map_or("rebuilt", cause_name),
                "rebuilt": build.is_some(),
                "detail": detail,
                "build": build,
                "rebuilt_in_ms": rebuilt_in,
            });
            match cause {
                Some(RestartCause::Stuck { call }) => merge(&mut value, json!({ "call": call })),
                Some(RestartCause::Unreached { items }) => {
                    merge(&mut value, json!({ "items": items }))
                }
                Some(RestartCause::OldVersionsKept { lib, count, bytes }) => merge(
                    &mut value,
                    json!({ "lib": lib, "count": count, "bytes": bytes }),
                ),
                _ => {}
            }
            merge(&mut value, json!({ "state": state_json(&state) }));
            value
        }
        WatchEvent::Swapped {
            lib,
            version,
            build,
            swap,
            since_edit,
            lingering,
            lingering_bytes,
        } => json!({
            "reason": "swapped",
            "lib": lib,
            "version": version,
            "build": build.as_ref().map(build_json),
            "swap_ms": round_ms(swap),
            "since_edit_ms": since_edit.map(round_ms),
            "lingering": lingering,
            "lingering_bytes": lingering_bytes,
        }),
        WatchEvent::OldVersionsMapped {
            lib,
            limit_bytes,
            patches,
        } => json!({
            "reason": "old-versions-mapped",
            "lib": lib,
            "limit_bytes": limit_bytes,
            "patches": patches,
        }),
        WatchEvent::ReloadsOnItsOwn { lib, build, hot } => json!({
            "reason": "reloads-on-its-own",
            "lib": lib,
            "build": build.as_ref().map(build_json),
            "hot": hot,
        }),
        WatchEvent::SwapRefused {
            lib,
            version,
            reason,
        } => json!({
            "reason": "swap-refused",
            "lib": lib,
            "version": version,
            "why": reason,
        }),
        WatchEvent::SwapFailed {
            lib,
            version,
            error,
        } => json!({
            "reason": "swap-failed",
            "lib": lib,
            "version": version,
            "error": error.to_string(),
        }),
        WatchEvent::SwapTaskFailed { error } => json!({
            "reason": "swap-task-failed",
            "error": error,
        }),
        WatchEvent::Panicked(panic) => json!({
            "reason": "panicked",
            "lib": panic.lib,
            "function": panic.function,
            "version": panic.version,
            "thread": panic.thread,
            "message": panic.message,
            "location": panic.location.as_deref().map(location_json),
        }),
        WatchEvent::Stuck(stuck) => json!({
            "reason": "stuck",
            "lib": stuck.lib,
            "function": stuck.function,
            "version": stuck.version,
            "thread": stuck.thread,
            "elapsed_ms": round_ms(stuck.elapsed),
        }),
        WatchEvent::Resumed(resumed) => json!({
            "reason": "resumed",
            "lib": resumed.lib,
            "function": resumed.function,
            "version": resumed.version,
            "thread": resumed.thread,
            "elapsed_ms": round_ms(resumed.elapsed),
        }),
        WatchEvent::Stopped(signal) => json!({
            "reason": "stopped",
            "signal": match signal {
                Stop::Interrupt => "interrupt",
                Stop::Terminate => "terminate",
                Stop::HangUp => "hang-up",
            },
        }),
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
        "to change functions in the running process instead, mark them `#[dylib_dev::hot]` \
         (`dylib-dev init` adds the dependency)"
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
        RestartCause::Unreached { items } => format!(
            "{} changed, which no #[dylib_dev::hot] function reaches",
            items
                .iter()
                .map(|i| format!("`{i}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
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

/// The note said once when a host first keeps an old version mapped: a logic library's can be
/// unloaded if the host opts in; a hot crate's patches never are.
fn old_versions_note(lib: &str, limit_bytes: u64, patches: bool) -> String {
    if patches {
        format!(
            "old patches of {lib} stay mapped (the runtime never unloads one: values and callsites they made may still point into them); the host is restarted past {} of them",
            mib(limit_bytes)
        )
    } else {
        format!(
            "old versions of {lib} stay mapped: threads, hooks or values they left behind may still use their code; the host is restarted past {} of them (a host whose logic is self-contained can unload them: `Builder::unload_old_versions(true)`)",
            mib(limit_bytes)
        )
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
    fn json_reports_a_successful_build_before_the_event_that_uses_it() {
        let mut json = JsonRenderer::new(Instant::now());
        let started = json.values(WatchEvent::BuildStarted { fast: true });
        assert_eq!(started.len(), 1);
        assert_eq!(started[0]["reason"], "build-started");
        assert_eq!(started[0]["by"], "rustc");
        assert!(started[0]["time_ms"].is_f64());
        let fast = BuiltBy::Rustc {
            link: Some(Duration::from_micros(62_500)),
        };
        let swapped = |build| WatchEvent::Swapped {
            lib: "logic".into(),
            version: 1,
            build,
            swap: Duration::from_micros(410),
            since_edit: None,
            lingering: 0,
            lingering_bytes: 0,
        };
        let lines = json.values(swapped(Some(build(fast, 1))));
        let reasons: Vec<&Value> = lines.iter().map(|l| &l["reason"]).collect();
        assert_eq!(reasons, ["build-finished", "swapped"]);
        assert_eq!(lines[0]["success"], true);
        assert_eq!(lines[0]["by"], "rustc");
        assert_eq!(lines[0]["link_ms"], 62.5);
        assert_eq!(lines[0]["warnings"], 1);
        assert_eq!(lines[1]["build"]["duration_ms"], 412.0);
        assert_eq!(lines[1]["swap_ms"], 0.41);
        assert_eq!(lines[1]["since_edit_ms"], Value::Null);
        // A second library of the same build: the build was reported once.
        assert_eq!(json.values(swapped(Some(build(fast, 1)))).len(), 1);
        // A failed build is its own build-finished.
        json.values(WatchEvent::BuildStarted { fast: false });
        let failed = json.values(WatchEvent::BuildFailed {
            diagnostics: Vec::new(),
            output: "error: no such package".into(),
            exit: BuildExit::Rustc,
            host_running: true,
        });
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0]["reason"], "build-finished");
        assert_eq!(failed[0]["success"], false);
        assert_eq!(failed[0]["exit"]["by"], "rustc");
        assert_eq!(failed[0]["diagnostics"], serde_json::json!([]));
    }

    #[cfg(unix)]
    #[test]
    fn json_restart_and_panic_fields() {
        let restarted = event_json(WatchEvent::Restarted {
            old_pid: 1,
            old_status: std::os::unix::process::ExitStatusExt::from_raw(15),
            pid: 2,
            reason: RestartReason::Swap {
                cause: RestartCause::Stuck {
                    call: "logic::step".into(),
                },
                rebuilt_in: Some(Duration::from_millis(80)),
            },
            state: StateHandOff::Saved { bytes: 12 },
        });
        assert_eq!(restarted["reason"], "restarted");
        assert_eq!(restarted["cause"], "stuck");
        assert_eq!(restarted["call"], "logic::step");
        assert_eq!(restarted["rebuilt"], false);
        assert_eq!(restarted["rebuilt_in_ms"], 80.0);
        assert_eq!(restarted["old_status"]["signal"], 15);
        assert_eq!(restarted["old_status"]["description"], "killed by SIGTERM");
        assert_eq!(restarted["state"]["state"], "saved");
        assert_eq!(
            restarted["detail"],
            "`logic::step` was stuck; rebuilt in 80 ms"
        );

        assert_eq!(
            location_json("logic/src/lib.rs:12:5"),
            serde_json::json!({"file": "logic/src/lib.rs", "line": 12, "column": 5})
        );
        assert_eq!(location_json("somewhere")["file"], "somewhere");
        assert_eq!(location_json("somewhere")["line"], Value::Null);
    }

    #[test]
    fn old_patches_are_not_offered_unloading() {
        let patches = old_versions_note("bevy_game", 256 << 20, true);
        assert!(
            patches.starts_with("old patches of bevy_game stay mapped"),
            "{patches}"
        );
        assert!(!patches.contains("unload_old_versions"), "{patches}");
        let logic = old_versions_note("logic", 256 << 20, false);
        assert!(
            logic.contains("`Builder::unload_old_versions(true)`"),
            "{logic}"
        );
        let json = event_json(WatchEvent::OldVersionsMapped {
            lib: "bevy_game".into(),
            limit_bytes: 1,
            patches: true,
        });
        assert_eq!(json["reason"], "old-versions-mapped");
        assert_eq!(json["patches"], true);
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
