//! End-to-end tests of `dylib-dev watch`: the real binary watching a temp copy of the `hot`
//! fixture (or of an example), real cargo builds, a real host process and real dlopen swaps.
mod common;

use common::Fixture;
use common::watch::{CHANGE, START, Watch, pid_and_counter, processes_mentioning, serial};
use std::time::{Duration, Instant};

#[test]
fn logic_edit_swaps_into_the_same_process_and_keeps_state() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    let watch = Watch::start(&fx);
    let (at, line) = watch.wait_out(0, START, |l| l.contains("logic=v1"));
    let (pid, counter) = pid_and_counter(&line);

    fx.replace("logic/src/lib.rs", "logic=v1", "logic=v2");
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.contains("logic=v2"));
    let (pid2, counter2) = pid_and_counter(&line);
    assert_eq!(pid2, pid, "same host process after the swap");
    assert!(
        counter2 > counter,
        "the counter kept counting: {counter} -> {counter2}"
    );
    watch.wait_err(0, CHANGE, |l| {
        l.contains("Swapped") && l.contains("reload 1")
    });
}

#[test]
fn host_edit_restarts_the_host() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    let watch = Watch::start(&fx);
    let (at, line) = watch.wait_out(0, START, |l| l.contains("\"host\":\"v1\""));
    let (pid, _) = pid_and_counter(&line);

    fx.replace("host/src/main.rs", "\"host\": \"v1\"", "\"host\": \"v2\"");
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.contains("\"host\":\"v2\""));
    let (pid2, counter2) = pid_and_counter(&line);
    assert_ne!(pid2, pid, "a new host process");
    assert!(counter2 < 50, "state started afresh: counter {counter2}");
    watch.wait_err(0, CHANGE, |l| {
        l.contains("Restarted") && l.contains(&format!("pid {pid}"))
    });
}

#[test]
fn compile_error_keeps_the_old_code_running_and_the_fix_swaps() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    let watch = Watch::start(&fx);
    let (_, line) = watch.wait_out(0, START, |l| l.contains("logic=v1"));
    let (pid, _) = pid_and_counter(&line);

    let err_at = watch.err_len();
    fx.replace(
        "logic/src/lib.rs",
        "let words =",
        "let broken: u32 = \"not a number\";\n    let words =",
    );
    watch.wait_err(err_at, CHANGE, |l| {
        l.contains("build failed") && l.contains("keeps running")
    });
    let shown = watch.err_since(err_at).join("\n");
    assert!(
        shown.contains("error[E0308]"),
        "the compiler's error is shown:\n{shown}"
    );
    let after_error = watch.out_len();
    let (_, line) = watch.wait_out(after_error, CHANGE, |l| l.contains("logic=v1"));
    assert_eq!(
        pid_and_counter(&line).0,
        pid,
        "the old code still runs in the same host"
    );

    fx.replace(
        "logic/src/lib.rs",
        "let broken: u32 = \"not a number\";\n    ",
        "",
    );
    fx.replace("logic/src/lib.rs", "logic=v1", "logic=v3");
    let (_, line) = watch.wait_out(after_error, CHANGE, |l| l.contains("logic=v3"));
    assert_eq!(
        pid_and_counter(&line).0,
        pid,
        "the fix swapped into the same host"
    );
}

#[test]
fn twenty_quick_saves_build_at_most_twice_and_the_last_one_runs() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    let watch = Watch::start(&fx);
    let (at, _) = watch.wait_out(0, START, |l| l.contains("logic=v1"));
    let err_at = watch.err_len();
    for i in 0..20 {
        fx.replace(
            "logic/src/lib.rs",
            &if i == 0 {
                "logic=v1".to_string()
            } else {
                format!("logic=s{}", i - 1)
            },
            &format!("logic=s{i}"),
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    watch.wait_out(at, CHANGE, |l| l.contains("logic=s19"));
    // Let anything still queued finish before counting.
    std::thread::sleep(Duration::from_secs(2));
    let builds = watch
        .err_since(err_at)
        .iter()
        .filter(|l| l.contains("build started"))
        .count();
    assert!(
        (1..=2).contains(&builds),
        "{builds} builds for 20 saves:\n{}",
        watch.err_since(err_at).join("\n")
    );
    let last = watch.out_len() - 1;
    let tail = watch.wait_out(last, CHANGE, |_| true).1;
    assert!(
        tail.contains("logic=s19"),
        "the last save is what runs: {tail}"
    );
}

#[test]
fn ctrl_c_leaves_no_process_behind() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    let mut watch = Watch::start(&fx);
    let (_, line) = watch.wait_out(0, START, |l| l.contains("logic=v1"));
    let (host_pid, _) = pid_and_counter(&line);
    // Interrupt in the middle of a build.
    let err_at = watch.err_len();
    fx.replace(
        "shared/src/lib.rs",
        "pub counter: u64,",
        "pub counter: u64,\n    /// Added.\n    pub extra: u32,",
    );
    watch.wait_err(err_at, CHANGE, |l| l.contains("build started"));
    std::thread::sleep(Duration::from_millis(300));
    let status = watch.interrupt();
    assert!(
        !status.success(),
        "interrupted watcher exits non-zero: {status}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let left = processes_mentioning(&fx.path().to_string_lossy());
    assert!(left.is_empty(), "processes left behind: {left:?}");
    assert!(
        !std::path::Path::new(&format!("/proc/{host_pid}")).exists(),
        "host {host_pid} still runs"
    );
}

/// `doing stuff in iteration 12 (pid 4242)` -> (pid, iteration).
fn hlr_pid_and_iteration(line: &str) -> (u32, u64) {
    let after = |key: &str, end: char| -> u64 {
        let rest = &line[line
            .find(key)
            .unwrap_or_else(|| panic!("no {key:?} in {line:?}"))
            + key.len()..];
        rest[..rest.find(end).unwrap_or(rest.len())]
            .parse()
            .unwrap_or_else(|e| panic!("bad number after {key:?} in {line:?}: {e}"))
    };
    (after("(pid ", ')') as u32, after("iteration ", ' '))
}

/// Item 6 of the watch acceptance: a host written for hot-lib-reloader (`examples/hot-lib-reloader`,
/// its `#[hot_module]` watching the library file itself) reloads under `dylib-dev watch`: the
/// runner only rebuilds, and does not restart a host that never connects to its control socket.
#[test]
fn hot_lib_reloader_host_reloads_under_watch() {
    let _serial = serial();
    let fx = Fixture::copy_example("hot-lib-reloader");
    let watch = Watch::start(&fx);
    let (at, line) = watch.wait_out(0, START, |l| l.contains("doing stuff in iteration"));
    let (pid, iteration) = hlr_pid_and_iteration(&line);

    // Right after the start: within the grace the runner gives a host to connect.
    let edited = Instant::now();
    fx.replace("lib/src/lib.rs", "doing stuff", "doing other stuff");
    let (at, line) = watch.wait_out(at, CHANGE, |l| l.contains("doing other stuff"));
    eprintln!("edit to new output: {} ms", edited.elapsed().as_millis());
    let (pid2, iteration2) = hlr_pid_and_iteration(&line);
    assert_eq!(pid2, pid, "same host process after the reload");
    assert!(
        iteration2 > iteration,
        "the host's counter kept counting: {iteration} -> {iteration2}"
    );
    watch.wait_err(0, CHANGE, |l| {
        l.contains("Rebuilt hlr_lib") && l.contains("the host reloads it on its own")
    });
    // The runner's verdict is in: the host still runs, still counting.
    let (_, line) = watch.wait_out(watch.out_len().max(at + 1), CHANGE, |_| true);
    let (pid3, iteration3) = hlr_pid_and_iteration(&line);
    assert_eq!(pid3, pid, "the runner left the host running: {line}");
    assert!(iteration3 > iteration2, "{iteration2} -> {iteration3}");
    let log = watch.err_since(0).join("\n");
    assert!(!log.contains("Restarted"), "no restart:\n{log}");
}

#[test]
fn fast_path_builds_the_same_library_as_cargo() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    let mut watch = Watch::start(&fx);
    let (at, line) = watch.wait_out(0, START, |l| l.contains("logic=v1"));
    let (pid, _) = pid_and_counter(&line);
    let err_at = watch.err_len();
    fx.replace("logic/src/lib.rs", "logic=v1", "logic=v2");
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.contains("logic=v2"));
    assert_eq!(pid_and_counter(&line).0, pid);
    watch.wait_err(err_at, CHANGE, |l| {
        l.contains("Swapped") && l.contains("by rustc directly")
    });
    watch.interrupt();

    let target = common::shared_target_dir().join("dylib-dev");
    let lib = target.join("debug/deps/liblogic.so");
    let fast = std::fs::read(&lib).expect("the fast path's library");
    // cargo rebuilds the same source with the same flags: it must produce the same bytes.
    fx.write("logic/src/lib.rs", &fx.read("logic/src/lib.rs"));
    let out = fx
        .cargo()
        .args([
            "build",
            "-p",
            "host",
            "-p",
            "logic",
            "--features",
            "host/dynamic,logic/dynamic",
            "--target-dir",
        ])
        .arg(&target)
        .env("CARGO_ENCODED_RUSTFLAGS", "-Cprefer-dynamic")
        // The environment watch gives cargo: logic's flags tuned the same way.
        .env("RUSTC_WORKSPACE_WRAPPER", env!("CARGO_BIN_EXE_dylib-dev"))
        .env("DYLIB_DEV_RUSTC_WRAPPER", "1")
        .env("DYLIB_DEV_LOGIC_CRATES", "logic")
        .env("DYLIB_DEV_TUNE_LOGIC", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("Compiling logic"),
        "cargo rebuilt logic:\n{stderr}"
    );
    assert!(
        std::fs::read(&lib).unwrap() == fast,
        "the direct rustc build differs from cargo's"
    );
    // Linked against a stub of the deps dylib (the shim says which link succeeded), it still
    // names the real one.
    let link =
        std::fs::read_to_string(target.join("debug/deps/dylib-dev-link-stubs/logic.link-us"))
            .expect("the linker shim ran");
    assert!(
        link.ends_with(" stubbed"),
        "the link with the stub failed: {link:?}"
    );
    if let Some(needed) = common::needed_libraries(&lib) {
        assert!(
            needed.iter().any(|l| l == "libhost_deps.so"),
            "liblogic.so needs the deps dylib: {needed:?}"
        );
    }
}
