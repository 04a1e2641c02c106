//! The fault suite, the running host's half: what goes wrong in a hot-reload loop while the host
//! runs (logic that panics or hangs, a changed layout, reloads under load, leftover threads, a
//! crashed host or runner, a broken manifest), end to end, each test asserting that nothing is
//! lost. The real binary watches a temp copy of `tests/fixtures/faults` (a host keeping a counter
//! in a `Persistent`, a logic library `flogic` that also defines the state type). The files' half
//! is `faults_files.rs`.
mod common;

use common::Fixture;
use common::watch::{CHANGE, START, Watch, pid_and_counter, serial};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// `dylib-dev watch` on the fixture, with the standard panic report kept short (no backtrace).
fn start_watch(fx: &Fixture, envs: &[(&str, &str)]) -> Watch {
    let mut all = vec![("RUST_BACKTRACE", "0")];
    all.extend_from_slice(envs);
    Watch::start_in(fx.path(), &all)
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// Waits up to `timeout` for process `pid` to be gone.
fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The entries of `dir` whose name starts with `prefix`.
fn entries_with_prefix(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The logic source with `fault` at the fault site, `marker` in its output, and optionally a
/// field added to `State`.
fn logic_source(fault: &str, marker: &str, extra_field: bool) -> String {
    let (field, list, use_it) = if extra_field {
        (
            "    /// Added while the host ran.\n    pub extra: u32,\n",
            "counter, extra",
            "state.extra += 1;\n    let extra = state.extra;",
        )
    } else {
        ("", "counter", "")
    };
    format!(
        r#"//! The reloadable part, rewritten by the fault tests.
#[cfg(feature = "dynamic")]
use fhost_deps as _;

/// The host's state.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct State {{
    /// Ticks since the first host started.
    pub counter: u64,
{field}}}

dylib_dev_runtime::layout!(State {{ {list} }});

/// One line of output for the current state.
#[unsafe(no_mangle)]
pub fn line(state: &mut State) -> String {{
    let seen = state.counter;
    {use_it}
    {fault}
    format!("{marker} seen={{seen}}")
}}
"#
    )
}

const LOGIC: &str = "flogic/src/lib.rs";

/// Rewrites the logic source; returns the 1-based line of the fault site.
fn set_logic(fx: &Fixture, fault: &str, marker: &str, extra_field: bool) -> usize {
    let source = logic_source(fault, marker, extra_field);
    let line = source
        .lines()
        .position(|l| !fault.is_empty() && l.contains(fault))
        .map_or(0, |i| i + 1);
    fx.write(LOGIC, &source);
    line
}

/// A fresh copy of the fixture under `dylib-dev watch`, once the host prints `flogic=v1`:
/// (fixture, watch, index of that line, host pid, counter).
fn start(envs: &[(&str, &str)]) -> (Fixture, Watch, usize, u32, u64) {
    let fx = Fixture::copy("faults");
    set_logic(&fx, "", "flogic=v1", false);
    let watch = start_watch(&fx, envs);
    let (at, line) = watch.wait_out(0, START, |l| l.contains("flogic=v1"));
    let (pid, counter) = pid_and_counter(&line);
    (fx, watch, at, pid, counter)
}

/// The host lines at or after `from` that a given process printed.
fn host_lines_of(watch: &Watch, from: usize, pid: u32) -> Vec<String> {
    watch
        .out_since(from)
        .into_iter()
        .filter(|l| l.starts_with('{') && pid_and_counter(l).0 == pid)
        .collect()
}

/// After a layout change was saved at `err_at`: the swap is refused with every one of `changes`
/// in the message, the host `pid` restarts with its state handed off, and the new host's first
/// line with `marker` (returned) continues the counter past `before`.
fn refused_then_restarted_with_the_state(
    watch: &Watch,
    (err_at, at): (usize, usize),
    (pid, before): (u32, u64),
    changes: &[&str],
    marker: &str,
) -> String {
    let (_, refused) = watch.wait_err(err_at, CHANGE, |l| l.contains("refused reload"));
    assert!(
        changes.iter().all(|c| refused.contains(c))
            && refused.contains("new code must not run on old values"),
        "{refused}"
    );
    let (_, restarted) = watch.wait_err(err_at, CHANGE, |l| l.contains("Restarted host"));
    assert!(
        restarted.contains(&format!("pid {pid}")) && restarted.contains("state handed off ("),
        "{restarted}"
    );
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.contains(marker));
    let (pid2, after) = pid_and_counter(&line);
    assert_ne!(pid2, pid, "restarted");
    assert!(
        after > before,
        "the counter continued across the restart: {before} -> {after}"
    );
    line
}

#[test]
fn panic_in_logic_is_caught_reported_once_and_the_host_keeps_running() {
    let _serial = serial();
    let (fx, watch, at, pid, counter) = start(&[]);
    let site = set_logic(
        &fx,
        r#"if seen % 4 == 0 { panic!("boom at {seen}"); }"#,
        "flogic=p1",
        false,
    );
    let location = format!("flogic/src/lib.rs:{site}:");
    // Several panics, each caught by the host (try_call) with message and location.
    let mut from = at;
    for _ in 0..3 {
        let (i, line) = watch.wait_out(from, CHANGE, |l| l.contains("CAUGHT"));
        assert!(
            line.contains(&format!("`flogic::line` panicked at {location}"))
                && line.contains("boom at"),
            "{line}"
        );
        assert_eq!(pid_and_counter(&line).0, pid, "the same host caught it");
        from = i + 1;
    }
    // The host kept running the same version between panics, counting on.
    let (_, line) = watch.wait_out(from, CHANGE, |l| l.contains("flogic=p1"));
    let (pid2, counter2) = pid_and_counter(&line);
    assert_eq!(pid2, pid);
    assert!(counter2 > counter + 8, "{counter} -> {counter2}");
    // The watcher showed it once, however often it panicked.
    let log = watch.err_since(0);
    let shown: Vec<&String> = log.iter().filter(|l| l.contains("Panicked")).collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0].contains(&format!(
            "flogic::line (reload 1, thread main) at {location}"
        )) && shown[0].contains("boom at"),
        "{}",
        shown[0]
    );
    assert!(
        !log.iter()
            .any(|l| l.contains("Restarted") || l.contains("Exited")),
        "{log:#?}"
    );
}

#[test]
fn a_host_with_its_own_panic_hook_still_sees_a_logic_panic_once_with_its_location() {
    let _serial = serial();
    // The host installs its own hook after the runtime's (as `color_eyre::install()` would).
    let (fx, watch, at, pid, _) = start(&[("FAULT_OWN_HOOK", "1"), ("FAULT_TICK_MS", "20")]);
    let site = set_logic(&fx, r#"panic!("boom at {seen}");"#, "flogic=p1", false);
    let location = format!("flogic/src/lib.rs:{site}:");
    // Every call panics; each is caught by the host with its location.
    let mut from = at;
    for _ in 0..20 {
        let (i, line) = watch.wait_out(from, CHANGE, |l| l.contains("CAUGHT"));
        assert!(
            line.contains(&format!("`flogic::line` panicked at {location}")),
            "{line}"
        );
        assert_eq!(pid_and_counter(&line).0, pid);
        from = i + 1;
    }
    // The host's own panic outside the logic still reaches its hook. (It prints
    // `HOST HOOK: panicked at <location>:` and the message on the next line.)
    watch.wait_err(0, CHANGE, |l| {
        l.contains("HOST HOOK") && l.contains("fhost/src/main.rs")
    });
    let log = watch.err_since(0);
    let printed = log
        .iter()
        .filter(|l| l.contains("HOST HOOK") && l.contains(&location))
        .count();
    assert_eq!(printed, 1, "printed once: {log:#?}");
    let shown = log.iter().filter(|l| l.contains("Panicked")).count();
    assert_eq!(shown, 1, "{log:#?}");
}

#[test]
fn panic_then_fix_swaps_in_the_fix_and_the_panics_stop() {
    let _serial = serial();
    let (fx, watch, at, pid, _) = start(&[]);
    set_logic(
        &fx,
        r#"if seen % 2 == 0 { panic!("boom at {seen}"); }"#,
        "flogic=p1",
        false,
    );
    let (at, line) = watch.wait_out(at, CHANGE, |l| l.contains("CAUGHT"));
    let (_, counter) = pid_and_counter(&line);

    set_logic(&fx, "", "flogic=fixed", false);
    let (fixed_at, line) = watch.wait_out(at, CHANGE, |l| l.contains("flogic=fixed"));
    let (pid2, counter2) = pid_and_counter(&line);
    assert_eq!(pid2, pid, "the fix swapped into the same host");
    assert!(counter2 > counter, "state kept: {counter} -> {counter2}");
    watch.wait_err(0, CHANGE, |l| {
        l.contains("Swapped") && l.contains("reload 2")
    });
    // A second of output after the fix: no more panics.
    std::thread::sleep(Duration::from_secs(1));
    let after = host_lines_of(&watch, fixed_at, pid);
    assert!(after.len() > 5, "{after:?}");
    assert!(
        after.iter().all(|l| l.contains("flogic=fixed")),
        "{after:#?}"
    );
}

#[test]
fn an_uncaught_panic_ends_the_host_and_the_watcher_waits_for_the_fix() {
    let _serial = serial();
    let (fx, watch, _, pid, _) = start(&[("FAULT_UNCAUGHT", "1")]);
    let err_at = watch.err_len();
    set_logic(&fx, r#"panic!("no way on at {seen}");"#, "flogic=p1", false);
    watch.wait_err(err_at, CHANGE, |l| {
        l.contains("Panicked flogic::line") && l.contains("no way on at")
    });
    let (exited, line) = watch.wait_err(err_at, CHANGE, |l| l.contains("Exited host"));
    assert!(
        line.contains(&format!("pid {pid}, exit 101")) && line.contains("waiting for a change"),
        "{line}"
    );
    assert!(wait_gone(pid, Duration::from_secs(5)));
    // No restart loop: nothing starts until the next change.
    std::thread::sleep(Duration::from_secs(2));
    let since = watch.err_since(exited + 1);
    assert!(
        !since
            .iter()
            .any(|l| l.contains("Restarted") || l.contains("Started")),
        "{since:#?}"
    );
    let out_at = watch.out_len();
    set_logic(&fx, "", "flogic=fixed", false);
    let (_, line) = watch.wait_out(out_at, CHANGE, |l| l.contains("flogic=fixed"));
    assert_ne!(pid_and_counter(&line).0, pid, "a new host");
    watch.wait_err(exited, CHANGE, |l| l.contains("Restarted host (pid"));
}

#[test]
fn endless_loop_in_logic_is_reported_and_the_fix_restarts_the_host() {
    let _serial = serial();
    let (fx, watch, _, pid, _) = start(&[]);
    let err_at = watch.err_len();
    set_logic(
        &fx,
        "if seen % 8 == 0 { loop { std::hint::spin_loop(); } }",
        "flogic=l1",
        false,
    );
    // (The new version may loop at its first call: no line of it is awaited.)
    // The fixture's hang-timeout-ms is 1500.
    let (_, line) = watch.wait_err(err_at, CHANGE, |l| l.contains("has not returned for"));
    assert!(
        line.contains("`flogic::line` has not returned for 1")
            && line.contains("thread main")
            && line.contains("endless loop"),
        "{line}"
    );
    let frozen = watch.out_len();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        host_lines_of(&watch, frozen, pid).is_empty(),
        "the host is stuck, not running"
    );

    let fixed = Instant::now();
    set_logic(&fx, "", "flogic=fixed", false);
    let (_, line) = watch.wait_out(frozen, CHANGE, |l| l.contains("flogic=fixed"));
    let (pid2, _) = pid_and_counter(&line);
    assert_ne!(pid2, pid, "a stuck host cannot swap: it was restarted");
    eprintln!("fix to new output: {} ms", fixed.elapsed().as_millis());
    let (_, line) = watch.wait_err(err_at, CHANGE, |l| l.contains("Restarted host"));
    assert!(
        line.contains(&format!("pid {pid} (killed by SIGTERM)"))
            && line.contains("`flogic::line` was stuck"),
        "{line}"
    );
    assert!(wait_gone(pid, Duration::from_secs(5)));
}

#[test]
fn field_added_to_the_state_is_refused_by_the_layout_guard_and_the_state_is_handed_off() {
    let _serial = serial();
    let (fx, watch, at, pid, _) = start(&[]);
    // Let the counter grow, so the hand-off shows.
    let (at, line) = watch.wait_out(at, CHANGE, |l| {
        l.contains("flogic=v1") && pid_and_counter(l).1 >= 30
    });
    let (_, before) = pid_and_counter(&line);
    let err_at = watch.err_len();
    set_logic(&fx, "", "flogic=grown extra={extra}", true);
    let line = refused_then_restarted_with_the_state(
        &watch,
        (err_at, at),
        (pid, before),
        &[
            "layout of `flogic::State` differs from the running version",
            "size 8 -> 16",
            "field `extra: u32` added",
        ],
        "flogic=grown",
    );
    assert!(
        line.contains("extra=1"),
        "the new field starts from its default: {line}"
    );
    // The old host never ran the new code: it printed no line of it.
    assert!(
        host_lines_of(&watch, 0, pid)
            .iter()
            .all(|l| !l.contains("flogic=grown")),
    );
}

/// The logic source with a `mode: Mode` field in `State`, `Mode` an enum deriving `Layout` and
/// listed in `layout!`; `swapped` declares its first two variants the other way round (the same
/// size and alignment, so only the derive's variant list tells the versions apart).
fn logic_with_mode(marker: &str, swapped: bool) -> String {
    let variants = if swapped {
        "Run(u32),\n    #[default]\n    Idle,"
    } else {
        "#[default]\n    Idle,\n    Run(u32),"
    };
    let source = logic_source("", marker, false);
    let with_field = source.replace(
        "    pub counter: u64,\n",
        "    pub counter: u64,\n    /// What the logic does: an enum the layout guard compares by its variants.\n    pub mode: Mode,\n",
    );
    let with_enum = with_field.replace(
        "dylib_dev_runtime::layout!(State { counter });",
        &format!(
            "/// What the logic does.\n\
             #[derive(Debug, Default, serde::Serialize, serde::Deserialize, dylib_dev_runtime::Layout)]\n\
             pub enum Mode {{\n    {variants}\n    Jump {{ height: f32 }},\n}}\n\n\
             dylib_dev_runtime::layout!(State {{ counter, mode }}, Mode);"
        ),
    );
    assert_ne!(
        with_enum, with_field,
        "the layout! line of logic_source moved"
    );
    with_enum
}

#[test]
fn reordered_enum_variants_are_refused_by_the_layout_guard_and_the_state_is_handed_off() {
    let _serial = serial();
    let fx = Fixture::copy("faults");
    fx.write(LOGIC, &logic_with_mode("flogic=v1", false));
    let watch = start_watch(&fx, &[]);
    let (at, line) = watch.wait_out(0, START, |l| {
        l.contains("flogic=v1") && pid_and_counter(l).1 >= 30
    });
    let (pid, before) = pid_and_counter(&line);
    let err_at = watch.err_len();
    // `Idle` and `Run` change places: an old `Idle` (discriminant 0) would read as `Run`.
    fx.write(LOGIC, &logic_with_mode("flogic=reordered", true));
    refused_then_restarted_with_the_state(
        &watch,
        (err_at, at),
        (pid, before),
        &[
            "layout of `flogic::Mode` differs from the running version",
            "variant `Run` moved from 1 to 0",
            "variant `Idle` moved from 0 to 1",
        ],
        "flogic=reordered",
    );
    // The old host never ran the new code: it printed no line of it.
    assert!(
        host_lines_of(&watch, 0, pid)
            .iter()
            .all(|l| !l.contains("flogic=reordered")),
    );
}

#[test]
fn reload_under_load_from_two_threads_swaps_every_time() {
    let _serial = serial();
    let base = tempfile::tempdir().unwrap();
    // The logic is self-contained, so the host opts in to unloading its old versions.
    let (fx, watch, at, pid, _) = start(&[
        ("FAULT_UNLOAD", "1"),
        ("FAULT_THREADS", "2"),
        ("FAULT_PAUSE_US", "100"),
        ("FAULT_TICK_MS", "20"),
        ("XDG_RUNTIME_DIR", base.path().to_str().unwrap()),
    ]);
    let mut from = at;
    for i in 1..=5 {
        let marker = format!("flogic=load{i}");
        set_logic(&fx, "", &marker, false);
        // Both threads and the main loop run the new version, in the same process.
        for t in 0..2 {
            let (_, line) = watch.wait_out(from, CHANGE, |l| {
                l.starts_with(&format!("THREAD {t} ")) && l.contains(&marker)
            });
            assert!(line.contains(&format!("pid={pid}")), "{line}");
            assert!(line.contains(" caught=0 "), "{line}");
        }
        let (i_main, line) =
            watch.wait_out(from, CHANGE, |l| l.contains(&marker) && l.starts_with('{'));
        assert_eq!(pid_and_counter(&line).0, pid);
        let (_, status) = watch.wait_err(0, CHANGE, |l| {
            l.contains("Swapped") && l.contains(&format!("reload {i};"))
        });
        assert!(!status.contains("mapped"), "nothing left mapped: {status}");
        from = i_main;
    }
    let log = watch.err_since(0);
    assert!(!log.iter().any(|l| l.contains("Restarted")), "{log:#?}");

    // Bounded: one copy on disk and one mapped, in private directories of ours.
    let (host_dir, copies, mapped) = copies_of(base.path(), pid);
    assert_eq!(copies.len(), 1, "the old copies are deleted: {copies:?}");
    assert_eq!(
        copies[0].metadata().unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(mapped.len(), 1, "one mapped copy after 5 swaps: {mapped:?}");
    assert!(mapped[0].starts_with(host_dir.to_str().unwrap()));
    drop(fx);
}

/// The runner's and the host's private directories under `base` (checked: one each, 0700, ours),
/// the library copies on disk in the host's, and the copies process `pid` has mapped from it.
fn copies_of(base: &Path, pid: u32) -> (std::path::PathBuf, Vec<std::path::PathBuf>, Vec<String>) {
    let runner_dirs = entries_with_prefix(base, "dylib-dev-run-");
    assert_eq!(runner_dirs.len(), 1, "{runner_dirs:?}");
    let host_dirs = entries_with_prefix(&runner_dirs[0], "dylib-dev-host-");
    assert_eq!(host_dirs.len(), 1, "{host_dirs:?}");
    let uid = unsafe { libc::getuid() };
    for dir in [&runner_dirs[0], &host_dirs[0]] {
        let meta = std::fs::metadata(dir).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            0o700,
            "{}",
            dir.display()
        );
        assert_eq!(meta.uid(), uid);
    }
    let copies = entries_with_prefix(&host_dirs[0], "")
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "so"))
        .collect();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mapped: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with(host_dirs[0].to_str().unwrap()))
        .map(String::from)
        .collect();
    mapped.sort();
    mapped.dedup();
    (host_dirs[0].clone(), copies, mapped)
}

/// A thread started by the logic that runs code of its version forever.
const THREAD: &str = "static STARTED: std::sync::Once = std::sync::Once::new(); STARTED.call_once(|| { std::thread::spawn(|| loop { std::thread::sleep(std::time::Duration::from_millis(1)); std::hint::black_box(0u64); }); });";

#[test]
fn logic_that_leaves_a_thread_running_survives_swaps_and_its_old_versions_stay_mapped() {
    let _serial = serial();
    let base = tempfile::tempdir().unwrap();
    let (fx, watch, mut at, pid, _) = start(&[("XDG_RUNTIME_DIR", base.path().to_str().unwrap())]);
    let err_at = watch.err_len();
    // Each version starts a thread of its own; closing a version would pull the code from under
    // its thread (SIGSEGV at the thread's next instruction).
    let swaps = 6;
    for i in 1..=swaps {
        let marker = format!("flogic=thread{i}");
        set_logic(&fx, THREAD, &marker, false);
        let (next, line) = watch.wait_out(at, CHANGE, |l| l.contains(&marker));
        assert_eq!(
            pid_and_counter(&line).0,
            pid,
            "the host did not survive swap {i}: {:#?}",
            watch.err_since(err_at)
        );
        at = next;
        let (_, status) = watch.wait_err(err_at, CHANGE, |l| l.contains(&format!("reload {i};")));
        let old = if i == 1 {
            "1 old version".to_string()
        } else {
            format!("{i} old versions")
        };
        assert!(status.contains(&format!("; {old} mapped (")), "{status}");
    }
    // The threads of every old version had time to run again.
    std::thread::sleep(Duration::from_millis(300));
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.contains(&format!("flogic=thread{swaps}")));
    assert_eq!(pid_and_counter(&line).0, pid, "the same host runs");
    let log = watch.err_since(err_at);
    assert!(
        !log.iter()
            .any(|l| l.contains("Exited host") || l.contains("Restarted")),
        "{log:#?}"
    );
    assert_eq!(
        log.iter().filter(|l| l.contains("stay mapped")).count(),
        1,
        "the note is shown once: {log:#?}"
    );
    // Every version that ran is still mapped; one copy on disk.
    let (_, copies, mapped) = copies_of(base.path(), pid);
    assert_eq!(copies.len(), 1, "old copies are deleted: {copies:?}");
    assert_eq!(mapped.len(), swaps + 1, "{mapped:?}");
    assert_eq!(
        mapped.iter().filter(|p| !Path::new(p).exists()).count(),
        swaps,
        "{mapped:?}"
    );
    drop(fx);
}

/// A thread-local with a destructor, declared in the logic library.
const TLS: &str = "thread_local! { static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![1; 64]); } let _ = SCRATCH.with(|s| s.borrow().len());";

#[test]
fn logic_with_thread_locals_is_kept_mapped_and_the_host_still_exits_cleanly() {
    let _serial = serial();
    // The host exits on its own after 250 ticks of 40 ms; thread-local destructors run then.
    // Even a host that opts in to unloading keeps such a library mapped.
    let (fx, watch, at, pid, _) = start(&[
        ("FAULT_UNLOAD", "1"),
        ("FAULT_TICKS", "250"),
        ("FAULT_TICK_MS", "40"),
    ]);
    let err_at = watch.err_len();
    set_logic(&fx, TLS, "flogic=t1", false);
    let (at, _) = watch.wait_out(at, CHANGE, |l| l.contains("flogic=t1"));
    set_logic(&fx, TLS, "flogic=t2", false);
    watch.wait_out(at, CHANGE, |l| l.contains("flogic=t2"));
    let (_, line) = watch.wait_err(err_at, CHANGE, |l| l.contains("reload 2;"));
    assert!(line.contains("; 1 old version mapped ("), "{line}");
    // Unloaded, that version's destructor would run in unmapped memory at exit: SIGSEGV.
    let (_, line) = watch.wait_err(err_at, CHANGE, |l| l.contains("Exited host"));
    assert!(line.contains(&format!("pid {pid}, exit 0")), "{line}");
}

#[test]
fn host_segfault_is_reported_and_the_watcher_waits_for_a_change() {
    let _serial = serial();
    let (fx, watch, _, pid, _) = start(&[]);
    let err_at = watch.err_len();
    set_logic(
        &fx,
        "if seen % 4 == 0 { unsafe { std::ptr::null_mut::<u64>().write_volatile(seen) } }",
        "flogic=s1",
        false,
    );
    let (exited, line) = watch.wait_err(err_at, CHANGE, |l| l.contains("Exited host"));
    assert!(
        line.contains(&format!("pid {pid}, killed by SIGSEGV"))
            && line.contains("waiting for a change"),
        "{line}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let since = watch.err_since(exited + 1);
    assert!(
        !since
            .iter()
            .any(|l| l.contains("Restarted") || l.contains("Started")),
        "no restart loop: {since:#?}"
    );
    let out_at = watch.out_len();
    set_logic(&fx, "", "flogic=fixed", false);
    let (_, line) = watch.wait_out(out_at, CHANGE, |l| l.contains("flogic=fixed"));
    assert_ne!(pid_and_counter(&line).0, pid);
}

#[test]
fn kill_9_of_the_runner_leaves_no_orphan_and_the_next_start_cleans_up() {
    let _serial = serial();
    let base = tempfile::tempdir().unwrap();
    let xdg = [("XDG_RUNTIME_DIR", base.path().to_str().unwrap())];
    let (fx, mut watch, _, pid, _) = start(&xdg);
    let dirs = entries_with_prefix(base.path(), "dylib-dev-run-");
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let stale = dirs[0].clone();
    assert!(
        std::fs::read_dir(&stale).unwrap().count() >= 3,
        "lock, socket, copies"
    );

    watch.signal(libc::SIGKILL);
    let status = watch.wait_exit();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(
        wait_gone(pid, Duration::from_secs(10)),
        "the host {pid} outlived its runner"
    );
    assert!(stale.exists(), "a killed runner cleans nothing up itself");
    drop(watch);

    // A directory younger than the start-up grace (5 s) is never judged stale: age it.
    let lock = std::fs::File::options()
        .write(true)
        .open(stale.join("lock"))
        .unwrap();
    lock.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    drop(lock);

    let watch = start_watch(&fx, &xdg);
    let (_, line) = watch.wait_out(0, START, |l| l.contains("flogic=v1"));
    let (pid2, _) = pid_and_counter(&line);
    assert_ne!(pid2, pid);
    assert!(
        !stale.exists(),
        "the next start removed the stale directory"
    );
    let dirs = entries_with_prefix(base.path(), "dylib-dev-run-");
    assert_eq!(dirs.len(), 1, "only the new runner's directory: {dirs:?}");
    assert!(!alive(pid));
}

#[test]
fn malformed_manifest_keeps_the_host_running_and_the_fix_restarts_it_with_its_state() {
    let _serial = serial();
    let (fx, watch, at, pid, _) = start(&[]);
    let (at, _) = watch.wait_out(at, CHANGE, |l| pid_and_counter(l).1 >= 20);
    let err_at = watch.err_len();
    let manifest = fx.read("fhost/Cargo.toml");
    fx.replace("fhost/Cargo.toml", "[features]", "[features");
    let (_, line) = watch.wait_err(err_at, CHANGE, |l| l.contains("build failed"));
    assert!(line.contains("the host keeps running"), "{line}");
    let shown = watch.err_since(err_at).join("\n");
    assert!(
        shown.contains("fhost/Cargo.toml"),
        "cargo names the file:\n{shown}"
    );
    let after_error = watch.out_len();
    let (_, line) = watch.wait_out(after_error, CHANGE, |l| l.starts_with('{'));
    let (pid_now, before) = pid_and_counter(&line);
    assert_eq!(pid_now, pid, "the old host still runs");

    fx.write("fhost/Cargo.toml", &manifest);
    let (_, line) = watch.wait_err(err_at, CHANGE, |l| l.contains("Restarted host"));
    assert!(line.contains("state handed off"), "{line}");
    let (_, line) = watch.wait_out(at, CHANGE, |l| {
        l.starts_with('{') && pid_and_counter(l).0 != pid
    });
    let (_, after) = pid_and_counter(&line);
    assert!(
        after > before,
        "state survived the restart: {before} -> {after}"
    );
}
