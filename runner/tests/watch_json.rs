//! End-to-end tests of `dylib-dev watch --message-format json`: the real binary on temp copies of
//! the `hot` and `faults` fixtures, its stdout parsed line by line (the host's own lines, which
//! interleave there, are skipped: they have no `"reason"`).
mod common;

use common::Fixture;
use common::watch::{CHANGE, START, Watch, pid_and_counter, serial};
use serde_json::Value;
use std::time::Duration;

/// `dylib-dev watch --message-format json` in `dir`, with extra environment for the host.
fn start_json(dir: &std::path::Path, envs: &[(&str, &str)]) -> Watch {
    Watch::spawn_with(dir, &["--message-format", "json"], envs, &[])
}

/// The events among stdout's lines from `from` on: the JSON objects with a `"reason"`.
fn events_since(watch: &Watch, from: usize) -> Vec<Value> {
    watch
        .out_since(from)
        .iter()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("reason").is_some())
        .collect()
}

/// Waits for an event with `reason` at stdout line >= `from` that `pred` accepts; returns (index
/// of its line, event).
fn wait_event(
    watch: &Watch,
    from: usize,
    timeout: Duration,
    reason: &str,
    pred: impl Fn(&Value) -> bool,
) -> (usize, Value) {
    let (at, line) = watch.wait_out(from, timeout, |l| {
        serde_json::from_str::<Value>(l).is_ok_and(|v| v["reason"] == reason && pred(&v))
    });
    (at, serde_json::from_str(&line).unwrap())
}

fn reasons(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect()
}

#[test]
fn json_events_for_first_build_swap_broken_edit_and_fix() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    let watch = start_json(fx.path(), &[]);

    // First build: build-started, build-finished (success), host-started.
    let (at, started) = wait_event(&watch, 0, START, "host-started", |_| true);
    let events = events_since(&watch, 0);
    let seen = reasons(&events);
    let first = seen
        .iter()
        .position(|r| *r == "build-started")
        .expect("build-started");
    let finished = seen
        .iter()
        .position(|r| *r == "build-finished")
        .expect("build-finished");
    let host = seen.iter().position(|r| *r == "host-started").unwrap();
    assert!(first < finished && finished < host, "{seen:?}");
    assert_eq!(events[finished]["success"], true, "{}", events[finished]);
    assert_eq!(events[finished]["by"], "cargo");
    assert!(events[finished]["duration_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(started["first"], true);
    assert_eq!(started["build"]["by"], "cargo");
    let pid = started["pid"].as_u64().unwrap() as u32;
    for e in &events {
        assert!(e["time_ms"].as_f64().is_some(), "time_ms in {e}");
    }
    let (_, line) = watch.wait_out(at, START, |l| l.contains("logic=v1"));
    assert_eq!(pid_and_counter(&line).0, pid, "the pid host-started named");

    // A logic edit: swapped into the same process, reload 1, with the build's data.
    fx.replace("logic/src/lib.rs", "logic=v1", "logic=v2");
    let (at, swapped) = wait_event(&watch, at, CHANGE, "swapped", |_| true);
    assert_eq!(swapped["lib"], "logic", "{swapped}");
    assert_eq!(swapped["version"], 1, "{swapped}");
    let by = swapped["build"]["by"].as_str().unwrap();
    assert!(by == "rustc" || by == "cargo", "{swapped}");
    assert!(
        swapped["build"]["duration_ms"].as_f64().unwrap() > 0.0,
        "{swapped}"
    );
    assert!(swapped["swap_ms"].as_f64().unwrap() > 0.0, "{swapped}");
    assert!(
        swapped["since_edit_ms"].as_f64().unwrap() > 0.0,
        "{swapped}"
    );
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.contains("logic=v2"));
    assert_eq!(pid_and_counter(&line).0, pid, "same host after the swap");
    assert!(
        !events_since(&watch, 0)
            .iter()
            .any(|e| e["reason"] == "restarted"),
        "no restart"
    );

    // A broken edit: build-finished with success false and rustc's diagnostic, as cargo's JSON.
    fx.replace(
        "logic/src/lib.rs",
        "let words =",
        "let broken: u32 = \"not a number\";\n    let words =",
    );
    let broken_line = std::fs::read_to_string(fx.path().join("logic/src/lib.rs"))
        .unwrap()
        .lines()
        .position(|l| l.contains("let broken"))
        .unwrap()
        + 1;
    let (at, failed) = wait_event(&watch, at, CHANGE, "build-finished", |v| {
        v["success"] == false
    });
    assert!(failed["errors"].as_u64().unwrap() >= 1, "{failed}");
    assert_eq!(failed["host_running"], true, "{failed}");
    let diagnostics = failed["diagnostics"].as_array().unwrap();
    let error = diagnostics
        .iter()
        .find(|d| d["level"] == "error")
        .unwrap_or_else(|| panic!("an error among {failed}"));
    assert_eq!(error["code"]["code"], "E0308", "{error}");
    let span = &error["spans"][0];
    assert!(
        span["file_name"]
            .as_str()
            .unwrap()
            .ends_with("logic/src/lib.rs"),
        "{span}"
    );
    assert_eq!(span["line_start"], broken_line as u64, "{span}");
    assert!(
        error["rendered"].as_str().unwrap().contains("E0308"),
        "{error}"
    );

    // The fix swaps again, into the same host.
    fx.replace(
        "logic/src/lib.rs",
        "let broken: u32 = \"not a number\";\n    ",
        "",
    );
    fx.replace("logic/src/lib.rs", "logic=v2", "logic=v3");
    let (at, swapped) = wait_event(&watch, at, CHANGE, "swapped", |_| true);
    assert_eq!(swapped["version"], 2, "{swapped}");
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.contains("logic=v3"));
    assert_eq!(
        pid_and_counter(&line).0,
        pid,
        "the fix swapped into the same host"
    );

    // Every event line is an object with a reason and a time; no status lines on stderr.
    let events = events_since(&watch, 0);
    let times: Vec<f64> = events
        .iter()
        .map(|e| e["time_ms"].as_f64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let err = watch.err_since(0);
    assert!(
        !err.iter()
            .any(|l| l.contains("Swapped") || l.contains("Started") || l.contains("build failed")),
        "no human status lines in json mode:\n{err:#?}"
    );
}

#[test]
fn json_panicked_event_has_the_message_and_location() {
    let _serial = serial();
    let fx = Fixture::copy("faults");
    let watch = start_json(fx.path(), &[("RUST_BACKTRACE", "0")]);
    let (at, _) = watch.wait_out(0, START, |l| l.contains("flogic=v1"));
    let site = std::fs::read_to_string(fx.path().join("flogic/src/lib.rs"))
        .unwrap()
        .lines()
        .position(|l| l.contains("// FAULT"))
        .unwrap()
        + 1;
    fx.replace(
        "flogic/src/lib.rs",
        "// FAULT",
        r#"if seen % 4 == 0 { panic!("boom at {seen}"); }"#,
    );
    let (_, panicked) = wait_event(&watch, at, CHANGE, "panicked", |_| true);
    assert_eq!(panicked["lib"], "flogic", "{panicked}");
    assert_eq!(panicked["function"], "line", "{panicked}");
    assert_eq!(panicked["version"], 1, "{panicked}");
    assert!(
        panicked["message"].as_str().unwrap().contains("boom at"),
        "{panicked}"
    );
    let location = &panicked["location"];
    assert!(
        location["file"]
            .as_str()
            .unwrap()
            .ends_with("flogic/src/lib.rs"),
        "{panicked}"
    );
    assert_eq!(location["line"], site as u64, "{panicked}");
    assert!(location["column"].as_u64().unwrap() > 0, "{panicked}");
    let err = watch.err_since(0);
    assert!(
        !err.iter()
            .any(|l| l.contains("Panicked") || l.contains("Swapped")),
        "no human status lines in json mode:\n{err:#?}"
    );
}
