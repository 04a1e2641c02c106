//! `dylib-dev watch` and the host process over its life: a host that opens its library late, one
//! that spells the library with `-`, one that starts a copy of itself, a slow first load, the
//! runner dying or its terminal closing, and the hand-off state across hosts that fail.
//! The real binary, real cargo/rustc, real hosts and real dlopen, on temp copies of the `hot`
//! and `faults` fixtures.
mod common;

use common::Fixture;
use common::watch::{CHANGE, START, Watch, pid_and_counter, processes_mentioning, serial};
use std::time::{Duration, Instant};

/// The host lines at or after `from` that process `pid` printed.
fn lines_of(watch: &Watch, from: usize, pid: u32) -> Vec<String> {
    watch
        .out_since(from)
        .into_iter()
        .filter(|l| l.starts_with('{') && pid_and_counter(l).0 == pid)
        .collect()
}

/// Whether process `pid` exists and is not a zombie (an orphan's zombie may wait long for a
/// reaper in a container).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// Waits up to `timeout` for no process to mention `needle`; what is left otherwise.
fn wait_for_no_process(needle: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = processes_mentioning(needle);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_logic_edit_saved_while_the_host_loads_its_data_runs_at_its_first_call() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    let watch = Watch::start_in(fx.path(), &[("HOT_LOAD_MS", "8000")]);
    let (at, loading) = watch.wait_out(0, START, |l| l.starts_with("LOADING"));
    let pid: u32 = loading["LOADING pid=".len()..].parse().unwrap();

    // Saved before the host opened its library: the artifact it was started with is gone.
    let err_at = watch.err_len();
    fx.replace("logic/src/lib.rs", "logic=v1", "logic=v2");
    watch.wait_err(err_at, CHANGE, |l| {
        l.contains("Rebuilt") && l.contains("gets it when it opens the library")
    });
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.starts_with('{'));
    assert_eq!(pid_and_counter(&line).0, pid, "the same host: {line}");
    assert!(
        line.contains("logic=v2"),
        "its first call ran the newest build: {line}"
    );
    watch.wait_err(err_at, CHANGE, |l| {
        l.contains("Swapped") && l.contains("the host opened an older one")
    });
    // And it keeps swapping.
    fx.replace("logic/src/lib.rs", "logic=v2", "logic=v3");
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.contains("logic=v3"));
    assert_eq!(pid_and_counter(&line).0, pid);
}

#[test]
fn a_library_named_with_a_dash_swaps() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    fx.replace(
        "logic/Cargo.toml",
        "name = \"logic\"",
        "name = \"hot-logic\"",
    );
    fx.replace(
        "host/src/main.rs",
        "mod logic(\"logic\")",
        "mod logic(\"hot-logic\")",
    );
    let watch = Watch::start(&fx);
    let (at, line) = watch.wait_out(0, START, |l| l.contains("logic=v1"));
    let (pid, _) = pid_and_counter(&line);

    fx.replace("logic/src/lib.rs", "logic=v1", "logic=v2");
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.contains("logic=v2"));
    assert_eq!(pid_and_counter(&line).0, pid, "swapped, not restarted");
    watch.wait_err(0, CHANGE, |l| {
        l.contains("Swapped") && l.contains("reload 1")
    });
}

#[test]
fn a_copy_the_host_starts_is_refused_and_the_host_keeps_its_reloads() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    let watch = Watch::start_in(fx.path(), &[("HOT_SPAWN_COPY", "1")]);
    let (_, line) = watch.wait_out(0, START, |l| l.contains("logic=v1"));
    let (host, _) = pid_and_counter(&line);
    let (at, line) = watch.wait_out(0, START, |l| {
        l.contains("logic=v1") && pid_and_counter(l).0 != host
    });
    let (copy, _) = pid_and_counter(&line);
    // The copy inherited DYLIB_DEV_*: it connects, and is told it is not served.
    watch.wait_err(0, CHANGE, |l| {
        l.contains("runs without reloading in this process")
            && l.contains(&format!("pid {copy} is not the host"))
    });

    fx.replace("logic/src/lib.rs", "logic=v1", "logic=v2");
    let (_, line) = watch.wait_out(at, CHANGE, |l| {
        l.contains("logic=v2") && pid_and_counter(l).0 == host
    });
    assert!(line.contains("logic=v2"));
    // The copy still runs its first version: nothing reached it.
    let later = watch.out_len();
    watch.wait_out(later, CHANGE, |l| {
        l.contains("logic=v1") && pid_and_counter(l).0 == copy
    });
    assert!(
        lines_of(&watch, 0, copy)
            .iter()
            .all(|l| !l.contains("logic=v2")),
        "the copy never swapped"
    );
}

#[test]
fn a_host_whose_first_load_takes_longer_than_five_seconds_still_swaps() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    // The library's initialiser stalls the host's first load once (a huge library to copy and
    // map, a slow disk): the hello comes long after the connection.
    let flag = fx.join("slow-load-once");
    fx.write("slow-load-once", "");
    let source = fx.read("logic/src/lib.rs");
    fx.write(
        "logic/src/lib.rs",
        &format!(
            "{source}\n#[used]\n#[link_section = \".init_array\"]\nstatic SLOW_LOAD: extern \"C\" fn() = slow_load;\n\
             extern \"C\" fn slow_load() {{\n    if let Some(flag) = std::env::var_os(\"HOT_SLOW_LOAD_ONCE\") {{\n        \
             if std::fs::remove_file(flag).is_ok() {{\n            std::thread::sleep(std::time::Duration::from_secs(7));\n        }}\n    }}\n}}\n"
        ),
    );
    let watch = Watch::start_in(fx.path(), &[("HOT_SLOW_LOAD_ONCE", flag.to_str().unwrap())]);
    let (at, line) = watch.wait_out(0, START, |l| l.contains("logic=v1"));
    let (pid, _) = pid_and_counter(&line);
    assert!(!flag.exists(), "the first load was the slow one");

    fx.replace("logic/src/lib.rs", "logic=v1", "logic=v2");
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.contains("logic=v2"));
    assert_eq!(pid_and_counter(&line).0, pid, "swapped, not restarted");
}

/// A `build.rs` for the `shared` crate that runs for minutes: a build to interrupt.
const SLOW_BUILD_SCRIPT: &str =
    "fn main() { std::thread::sleep(std::time::Duration::from_secs(300)); }\n";

/// The hot fixture under watch with its host running, then a build whose build script runs
/// for minutes, in progress: (fixture, watch, host pid).
fn watch_in_a_long_build() -> (Fixture, Watch, u32) {
    let fx = Fixture::copy("hot");
    let watch = Watch::start(&fx);
    let (_, line) = watch.wait_out(0, START, |l| l.contains("logic=v1"));
    let (host, _) = pid_and_counter(&line);
    fx.write("shared/build.rs", SLOW_BUILD_SCRIPT);
    // The build script's working directory is its package.
    let script = fx.join("shared").to_string_lossy().into_owned();
    let deadline = Instant::now() + CHANGE;
    while !processes_mentioning(&script)
        .iter()
        .any(|p| p.contains("build-script-build"))
    {
        assert!(Instant::now() < deadline, "the build script never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    (fx, watch, host)
}

#[test]
fn kill_9_of_the_runner_mid_build_leaves_no_build_and_no_host_behind() {
    let _serial = serial();
    let (fx, mut watch, host) = watch_in_a_long_build();
    watch.signal(libc::SIGKILL);
    watch.wait_exit();
    let left = wait_for_no_process(&fx.path().to_string_lossy(), Duration::from_secs(10));
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!alive(host), "host {host} still runs");
}

#[test]
fn a_closed_terminal_stops_the_build_and_the_host() {
    let _serial = serial();
    let (fx, mut watch, host) = watch_in_a_long_build();
    watch.signal(libc::SIGHUP);
    let status = watch.wait_exit();
    assert_eq!(status.code(), Some(129), "128 + SIGHUP: {status}");
    let left = wait_for_no_process(&fx.path().to_string_lossy(), Duration::from_secs(5));
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!alive(host), "host {host} still runs");
}

/// The faults fixture's host (a `Persistent` counter) under watch, once its counter passed 20:
/// (fixture, watch, index of that line, host pid, counter).
fn faults_host_with_state() -> (Fixture, Watch, usize, u32, u64) {
    let fx = Fixture::copy("faults");
    let watch = Watch::start_in(fx.path(), &[("RUST_BACKTRACE", "0")]);
    let (at, line) = watch.wait_out(0, START, |l| {
        l.starts_with('{') && pid_and_counter(l).1 >= 20
    });
    let (pid, counter) = pid_and_counter(&line);
    (fx, watch, at, pid, counter)
}

const RESTORE: &str = "let state = Persistent::<State>::restore_or_default();";

#[test]
fn the_state_survives_a_host_that_panics_right_after_restoring_it() {
    let _serial = serial();
    let (fx, watch, at, pid, before) = faults_host_with_state();
    let err_at = watch.err_len();
    fx.replace(
        "fhost/src/main.rs",
        RESTORE,
        &format!("{RESTORE}\n    assert!(state.lock().counter == 0, \"boom after restore\");"),
    );
    // Handed off, restored, and the new host panics before it saved anything.
    watch.wait_err(err_at, CHANGE, |l| {
        l.contains("Restarted host") && l.contains("state handed off")
    });
    watch.wait_err(err_at, CHANGE, |l| {
        l.contains("Exited") && l.contains("exit 101")
    });
    fx.replace(
        "fhost/src/main.rs",
        "\n    assert!(state.lock().counter == 0, \"boom after restore\");",
        "",
    );
    let (_, line) = watch.wait_out(at, CHANGE, |l| {
        l.starts_with('{') && pid_and_counter(l).0 != pid
    });
    let (_, after) = pid_and_counter(&line);
    assert!(
        after > before,
        "the fixed host continued from the handed-off state: {before} -> {after}"
    );
}

#[test]
fn a_saved_state_that_no_longer_fits_is_kept_where_the_host_says() {
    let _serial = serial();
    let (fx, watch, at, pid, before) = faults_host_with_state();
    let err_at = watch.err_len();
    // A required field without a default: the saved JSON no longer deserializes. The layout
    // guard refuses the swap, the host hands its state off and restarts.
    let source = fx.read("flogic/src/lib.rs");
    let source = source
        .replace("#[serde(default)]\n", "")
        .replace(
            "pub counter: u64,",
            "pub counter: u64,\n    /// Required since this edit.\n    pub name: String,",
        )
        .replace("State { counter }", "State { counter, name }");
    assert!(source.contains("pub name: String"), "{source}");
    fx.write("flogic/src/lib.rs", &source);
    let (_, kept) = watch.wait_err(err_at, CHANGE, |l| {
        l.contains("does not fit") && l.contains("it is kept in ")
    });
    let path = kept.rsplit("it is kept in ").next().unwrap().trim();
    let saved = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let value: serde_json::Value = serde_json::from_str(&saved).unwrap();
    let counter = value["counter"].as_u64().unwrap();
    assert!(
        counter >= before,
        "the kept state is the old host's: {saved}"
    );
    assert!(
        path.contains("rejected-state"),
        "kept outside the runner's private directory: {path}"
    );
    // The new host started from the default.
    let (_, line) = watch.wait_out(at, CHANGE, |l| {
        l.starts_with('{') && pid_and_counter(l).0 != pid
    });
    assert!(pid_and_counter(&line).1 < counter, "{line}");
}

#[test]
fn a_member_renamed_while_watching_is_built_under_its_new_name() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    let watch = Watch::start(&fx);
    let (_, line) = watch.wait_out(0, START, |l| l.contains("logic=v1"));
    let (pid, _) = pid_and_counter(&line);

    // One save: the package gets a new name, its library keeps the one the host loads.
    let err_at = watch.err_len();
    let manifest = fx
        .read("logic/Cargo.toml")
        .replace("name = \"logic\"", "name = \"renamed-logic\"")
        .replace("[lib]\n", "[lib]\nname = \"logic\"\n");
    fx.write("logic/Cargo.toml", &manifest);
    let (_, restarted) = watch.wait_err(err_at, CHANGE, |l| l.contains("Restarted host"));
    assert!(restarted.contains(&format!("pid {pid}")), "{restarted}");
    let shown = watch.err_since(err_at).join("\n");
    assert!(
        shown.contains("logic renamed-logic"),
        "the watcher says what it builds now:\n{shown}"
    );
    let at = watch.out_len();
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.contains("logic=v1"));
    let (pid2, _) = pid_and_counter(&line);
    assert_ne!(pid2, pid);

    // And the renamed crate swaps as before.
    fx.replace("logic/src/lib.rs", "logic=v1", "logic=v2");
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.contains("logic=v2"));
    assert_eq!(pid_and_counter(&line).0, pid2, "swapped, not restarted");
}
