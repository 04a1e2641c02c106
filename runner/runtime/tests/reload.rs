//! Reloading for real: rustc-built `cdylib`s, `dlopen`, and the protocol over a Unix socket.

mod common;

use common::{MiniRunner, NO_TEXT, SLOW, V1, V2, build_logic, copies, logic, mapped, mapped_size};
use dylib_dev_runtime::protocol::{Failed, SwapTiming, ToRunner};
use dylib_dev_runtime::{HotLib, ReloadEvent, SwapPolicy};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

type Lib = HotLib<logic::Symbols>;

fn text(lib: &Lib) -> String {
    lib.call(|s| s.text())
}

fn expect_failed(reply: ToRunner) -> Failed {
    match reply {
        ToRunner::Failed(f) => f,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn swap_runs_new_code_in_the_same_process_and_keeps_the_old_mapped() {
    let (v1, v2) = (build_logic(V1), build_logic(V2));
    let runner = MiniRunner::new();
    let lib: Lib = runner.builder(&v1).open().unwrap();
    let mut host = runner.accept();
    let first = copies(lib.copies_dir());
    let ToRunner::Swapped(swapped) = host.reload(1, &v2) else {
        panic!("reload refused")
    };
    assert_eq!(text(&lib), "v2");
    let now = copies(lib.copies_dir());
    assert_eq!(now.len(), 1, "the old copy is deleted: {now:?}");
    assert_ne!(now, first);
    // Code of the old version may still run (a thread, a hook): it is never unmapped.
    assert!(mapped(&first[0]), "the old library stays mapped");
    assert_eq!(swapped.lingering, 1);
    let size = mapped_size(&first[0]);
    assert!(size > 0);
    assert_eq!(
        swapped.lingering_bytes, size,
        "the mapped size, not the file's"
    );

    let ToRunner::Swapped(swapped) = host.reload(2, &v1) else {
        panic!("reload refused")
    };
    assert_eq!((swapped.lingering, text(&lib).as_str()), (2, "v1"));
    assert_eq!(copies(lib.copies_dir()).len(), 1);
    let dir = lib.copies_dir().to_path_buf();
    drop(lib);
    assert!(!dir.exists());
    assert!(mapped(&first[0]) && mapped(&now[0]), "never unloaded");
}

#[test]
fn with_unloading_opted_in_the_old_version_is_unmapped() {
    let (v1, v2) = (build_logic(V1), build_logic(V2));
    let runner = MiniRunner::new();
    let lib: Lib = runner
        .builder(&v1)
        .unload_old_versions(true)
        .open()
        .unwrap();
    let mut host = runner.accept();
    assert!(lib.is_reloadable());
    assert_eq!((text(&lib), lib.version()), ("v1".to_string(), 0));
    assert_eq!(lib.call(|s| s.add(2, 3)), 5);
    let first = copies(lib.copies_dir());
    assert_eq!(first.len(), 1);
    assert!(mapped(&first[0]));

    let sent = Instant::now();
    let ToRunner::Swapped(swapped) = host.reload(1, &v2) else {
        panic!("reload refused")
    };
    let round_trip = sent.elapsed();
    assert_eq!((swapped.lib.as_str(), swapped.version), ("logic", 1));
    eprintln!(
        "swap: total {} us (copy+hash {} us, dlopen+resolve {} us, wait {} us, unload {} us), round trip {} us",
        swapped.timing.total().as_micros(),
        swapped.timing.copy.as_micros(),
        swapped.timing.load.as_micros(),
        swapped.timing.wait.as_micros(),
        swapped.timing.unload.as_micros(),
        round_trip.as_micros()
    );

    // The runner heard back without the host calling anything: the swap is already done.
    assert_eq!((text(&lib), lib.version()), ("v2".to_string(), 1));
    let now = copies(lib.copies_dir());
    assert_eq!(now.len(), 1, "the old copy is deleted");
    assert_ne!(now, first);
    assert!(!mapped(&first[0]), "the old library is closed");
    assert!(mapped(&now[0]));
    assert_eq!((swapped.lingering, swapped.lingering_bytes), (0, 0));
    assert!(matches!(lib.update(), Some(ReloadEvent::Swapped(s)) if s.version == 1));
    assert_eq!(lib.update(), None, "each event is reported once");

    // Dropping the library closes the connection and removes its copies.
    let dir = lib.copies_dir().to_path_buf();
    drop(lib);
    assert!(!dir.exists());
    assert!(!mapped(&now[0]));
    assert!(host.is_closed());
}

#[test]
fn hash_mismatch_is_refused_and_the_old_code_keeps_running() {
    let (v1, v2) = (build_logic(V1), build_logic(V2));
    let runner = MiniRunner::new();
    let lib: Lib = runner.builder(&v1).open().unwrap();
    let mut host = runner.accept();

    host.send(1, &v2, Some(format!("blake3:{}", "00".repeat(32))));
    let failed = expect_failed(host.recv());
    assert_eq!(failed.version, 1);
    assert!(
        failed.reason.starts_with("hash mismatch"),
        "{}",
        failed.reason
    );
    assert_eq!((text(&lib), lib.version()), ("v1".to_string(), 0));
    assert_eq!(
        copies(lib.copies_dir()).len(),
        1,
        "the refused copy is deleted"
    );

    // The next good build goes through as usual.
    assert!(matches!(host.reload(2, &v2), ToRunner::Swapped(s) if s.version == 2));
    assert_eq!(text(&lib), "v2");
}

#[test]
fn missing_symbol_is_refused_and_the_old_code_keeps_running() {
    let (v1, broken) = (build_logic(V1), build_logic(NO_TEXT));
    let runner = MiniRunner::new();
    let lib: Lib = runner.builder(&v1).open().unwrap();
    let mut host = runner.accept();

    let failed = expect_failed(host.reload(1, &broken));
    assert!(
        failed.reason.contains("symbol `text` missing"),
        "{}",
        failed.reason
    );
    assert_eq!((text(&lib), lib.version()), ("v1".to_string(), 0));
    let left = copies(lib.copies_dir());
    assert_eq!(left.len(), 1);
    assert!(
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .filter(|l| l.contains(lib.copies_dir().to_str().unwrap()))
            .all(|l| l.contains(left[0].to_str().unwrap())),
        "the refused library is closed"
    );
    assert!(matches!(lib.update(), Some(ReloadEvent::Failed(f)) if f.version == 1));
}

#[test]
fn unloadable_artifacts_are_refused() {
    let v1 = build_logic(V1);
    let runner = MiniRunner::new();
    let lib: Lib = runner.builder(&v1).open().unwrap();
    let mut host = runner.accept();

    let not_a_lib = runner.dir.path().join("liblogic-junk.so");
    std::fs::write(&not_a_lib, "not an ELF file").unwrap();
    let failed = expect_failed(host.reload(1, &not_a_lib));
    assert!(
        failed.reason.starts_with("cannot load"),
        "{}",
        failed.reason
    );

    host.send(2, &runner.dir.path().join("gone.so"), None);
    let failed = expect_failed(host.recv());
    assert!(
        failed.reason.starts_with("cannot copy"),
        "{}",
        failed.reason
    );

    assert_eq!((text(&lib), lib.version()), ("v1".to_string(), 0));
    assert_eq!(copies(lib.copies_dir()).len(), 1);
}

#[test]
fn validation_hook_can_refuse_a_version() {
    let (v1, v2) = (build_logic(V1), build_logic(V2));
    let runner = MiniRunner::new();
    let lib: Lib = runner
        .builder(&v1)
        .validate(|s: &logic::Symbols| match s.text().as_str() {
            "v1" => Ok(()),
            other => Err(format!("layout fingerprint changed ({other})")),
        })
        .open()
        .unwrap();
    let mut host = runner.accept();
    let failed = expect_failed(host.reload(1, &v2));
    assert!(
        failed
            .reason
            .ends_with("refused: layout fingerprint changed (v2)"),
        "{}",
        failed.reason
    );
    assert_eq!(text(&lib), "v1");
}

#[test]
fn two_threads_calling_in_a_tight_loop_survive_50_swaps() {
    let (v1, v2) = (build_logic(V1), build_logic(V2));
    let runner = MiniRunner::new();
    // Self-contained logic: unloading its old versions keeps one mapped.
    let lib: Lib = runner
        .builder(&v1)
        .unload_old_versions(true)
        .open()
        .unwrap();
    let mut host = runner.accept();
    let stop = AtomicBool::new(false);
    let calls = AtomicU64::new(0);

    let (mut totals, mut lingering) = (Vec::new(), 0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let (t, sum) = lib.call(|s| (s.text(), s.add(40, 2)));
                    assert!(t == "v1" || t == "v2", "{t}");
                    assert_eq!(sum, 42);
                    // A pinned version answers consistently across calls.
                    let guard = lib.lock();
                    assert_eq!(guard.text(), guard.text());
                    drop(guard);
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for version in 1..=50u64 {
            let artifact = if version % 2 == 1 { &v2 } else { &v1 };
            match host.reload(version, artifact) {
                ToRunner::Swapped(s) => {
                    lingering = lingering.max(s.lingering);
                    totals.push(s.timing)
                }
                other => panic!("swap {version}: {other:?}"),
            }
            assert_eq!(lib.version(), version);
        }
        stop.store(true, Ordering::Relaxed);
    });

    assert_eq!(text(&lib), "v1", "50 swaps end on version A");
    assert_eq!(lingering, 0, "no old version was left mapped");
    let left = copies(lib.copies_dir());
    assert_eq!(left.len(), 1, "one copy on disk: {left:?}");
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let dir = lib.copies_dir().to_str().unwrap().to_string();
    assert!(
        maps.lines()
            .filter(|l| l.contains(&dir))
            .all(|l| l.contains(left[0].to_str().unwrap()))
    );
    let median = |f: fn(&SwapTiming) -> Duration| {
        let mut v: Vec<Duration> = totals.iter().map(f).collect();
        v.sort();
        format!(
            "{} us (min {}, max {})",
            v[25].as_micros(),
            v[0].as_micros(),
            v[49].as_micros()
        )
    };
    eprintln!(
        "50 swaps under load ({} calls): total {}; copy+hash {}; dlopen+resolve {}; wait {}; unload {}",
        calls.load(Ordering::Relaxed),
        median(SwapTiming::total),
        median(|t| t.copy),
        median(|t| t.load),
        median(|t| t.wait),
        median(|t| t.unload),
    );
    assert!(calls.load(Ordering::Relaxed) > 0);
}

#[test]
fn on_update_policy_swaps_only_at_the_hosts_safe_point() {
    let (v1, v2) = (build_logic(V1), build_logic(V2));
    let runner = MiniRunner::new();
    let lib: Lib = runner
        .builder(&v1)
        .policy(SwapPolicy::OnUpdate)
        .open()
        .unwrap();
    let mut host = runner.accept();

    host.send(1, &v2, None);
    // Prepared in the background meanwhile, but never swapped behind the host's back.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(text(&lib), "v1");
    let Some(ReloadEvent::Swapped(s)) = lib.wait_for_reload(Duration::from_secs(30)) else {
        panic!("no reload")
    };
    assert_eq!(s.version, 1);
    assert_eq!(text(&lib), "v2");
    assert!(matches!(host.recv(), ToRunner::Swapped(r) if r.version == 1));

    // A second request before `update` supersedes the first, which is reported as refused.
    host.send(2, &v1, None);
    host.send(3, &v2, None);
    let failed = expect_failed(host.recv());
    assert_eq!(failed.version, 2);
    assert!(
        failed.reason.contains("superseded by version 3"),
        "{}",
        failed.reason
    );
    assert!(
        matches!(lib.wait_for_reload(Duration::from_secs(30)), Some(ReloadEvent::Swapped(s)) if s.version == 3)
    );
    assert!(matches!(host.recv(), ToRunner::Swapped(r) if r.version == 3));
    assert_eq!(copies(lib.copies_dir()).len(), 1);
    assert_eq!(lib.wait_for_reload(Duration::from_millis(10)), None);
}

#[test]
fn without_a_runner_the_library_loads_and_never_reloads() {
    let v1 = build_logic(V1);
    let lib: Lib = HotLib::builder("logic")
        .artifact(&v1)
        .copies_in(common::test_base())
        .open()
        .unwrap();
    assert!(!lib.is_reloadable());
    assert_eq!(text(&lib), "v1");
    assert_eq!(lib.update(), None);
    assert_eq!(lib.wait_for_reload(Duration::from_millis(10)), None);
    assert_eq!(copies(lib.copies_dir()).len(), 1);
}

#[test]
fn a_bad_initial_artifact_is_an_error() {
    let v1 = build_logic(V1);
    let err = HotLib::<logic::Symbols>::builder("logic")
        .artifact(&v1)
        .hash(format!("blake3:{}", "ab".repeat(32)))
        .copies_in(common::test_base())
        .open()
        .err()
        .unwrap();
    assert!(err.to_string().starts_with("hash mismatch"), "{err}");
    let err = HotLib::<logic::Symbols>::builder("logic")
        .artifact(build_logic(NO_TEXT))
        .copies_in(common::test_base())
        .open()
        .err()
        .unwrap();
    assert!(
        err.to_string().starts_with("symbol `text` missing"),
        "{err}"
    );
    // Not started by the runner and nothing next to the test binary.
    let err = HotLib::<logic::Symbols>::builder("no-such-logic")
        .open()
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("DYLIB_DEV_LIB_NO_SUCH_LOGIC is not set"),
        "{err}"
    );
}

#[test]
fn the_macro_wrappers_call_the_current_version() {
    let (v1, v2) = (build_logic(V1), build_logic(V2));
    let runner = MiniRunner::new();
    let lib = logic::init(runner.builder(&v1)).unwrap();
    let mut host = runner.accept();
    assert_eq!(logic::text(), "v1");
    assert_eq!(logic::add(1, 2), 3);
    assert!(matches!(host.reload(1, &v2), ToRunner::Swapped(_)));
    assert_eq!(logic::text(), "v2");
    assert_eq!(logic::lib().lock().text(), "v2");
    assert!(std::ptr::eq(lib, logic::lib()));
}

/// Set in the child process of the stale-copies test: the base directory to load under.
const CHILD_BASE: &str = "DYLIB_DEV_TEST_KILLED_HOST_BASE";

#[test]
fn copies_of_a_killed_host_are_removed_at_the_next_start() {
    let v1 = build_logic(V1);
    if let Some(base) = std::env::var_os(CHILD_BASE) {
        // The child: load, say where the copies are, and die without any cleanup running.
        let lib: Lib = HotLib::builder("logic")
            .artifact(&v1)
            .copies_in(base)
            .open()
            .unwrap();
        println!("COPIES {}", lib.copies_dir().display());
        std::process::abort();
    }
    let base = tempfile::tempdir_in(common::test_base()).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "copies_of_a_killed_host_are_removed_at_the_next_start",
            "--nocapture",
        ])
        .env(CHILD_BASE, base.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the child aborts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let left = stdout
        .lines()
        .find_map(|l| l.strip_prefix("COPIES "))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("no COPIES line in {stdout}"));
    assert_eq!(
        copies(&left).len(),
        1,
        "the killed host left its copy behind"
    );

    // A directory is only judged stale once past the start-up grace period; pretend it is.
    let lock = std::fs::File::options()
        .write(true)
        .open(left.join("lock"))
        .unwrap();
    lock.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    drop(lock);

    let lib: Lib = HotLib::builder("logic")
        .artifact(&v1)
        .copies_in(base.path())
        .open()
        .unwrap();
    assert!(!left.exists(), "the next start removed the stale copies");
    assert!(lib.copies_dir().exists());
}

/// The layout the guarded host below declares, and what a library exports for it.
#[allow(dead_code)]
pub struct Counter {
    pub counter: u64,
}

dylib_dev_runtime::hot_module! {
    mod guarded("logic") {
        layout!(Counter { counter });
        unsafe extern "Rust" {
            pub fn text() -> String;
        }
    }
}

/// A logic library whose `dylib_dev_layout` exports `layout` (what `layout!` would generate).
fn logic_with_layout(text: &str, layout: &dylib_dev_runtime::Layout) -> std::path::PathBuf {
    build_logic(&format!(
        r#"
#[unsafe(no_mangle)]
pub extern "Rust" fn text() -> String {{ String::from({text:?}) }}
#[unsafe(no_mangle)]
pub extern "Rust" fn dylib_dev_layout() -> String {{ String::from({:?}) }}
"#,
        layout.encode()
    ))
}

fn grown(layout: &dylib_dev_runtime::Layout) -> dylib_dev_runtime::Layout {
    let mut grown = layout.clone();
    let t = &mut grown.types[0];
    t.size = 16;
    t.fields
        .as_mut()
        .unwrap()
        .push(dylib_dev_runtime::FieldLayout {
            name: "extra".into(),
            ty: "u32".into(),
            offset: 8,
        });
    grown
}

#[test]
fn layout_guard_refuses_a_version_built_with_another_layout_of_the_host_types() {
    use dylib_dev_runtime::Symbols;
    let host_view = guarded::Symbols::layout().expect("the host declares a layout");
    let v1 = logic_with_layout("v1", &host_view);
    let v2 = logic_with_layout("v2", &host_view);
    let changed = logic_with_layout("changed", &grown(&host_view));
    let runner = MiniRunner::new();
    let lib: HotLib<guarded::Symbols> = HotLib::builder("logic")
        .artifact(&v1)
        .socket(&runner.socket)
        .copies_in(runner.dir.path())
        .open()
        .unwrap();
    let mut host = runner.accept();
    assert!(matches!(host.reload(1, &v2), ToRunner::Swapped(_)));
    assert_eq!(lib.call(|s| s.text()), "v2");

    let failed = expect_failed(host.reload(2, &changed));
    assert!(
        failed.reason.starts_with(&format!(
            "layout of `{}` differs from the running version (size 8 -> 16; field `extra: u32` added)",
            host_view.types[0].name
        )),
        "{}",
        failed.reason
    );
    assert_eq!(lib.call(|s| s.text()), "v2", "the old code keeps running");

    let failed = expect_failed(host.reload(3, &build_logic(V1)));
    assert!(
        failed.reason.contains("the new build exports no layout"),
        "{}",
        failed.reason
    );
    assert_eq!(
        copies(lib.copies_dir()).len(),
        1,
        "refused copies are deleted"
    );

    // A library built against other types cannot even be opened.
    let err = HotLib::<guarded::Symbols>::builder("logic")
        .artifact(&changed)
        .copies_in(runner.dir.path())
        .open()
        .err()
        .unwrap();
    assert!(
        err.to_string().starts_with(&format!(
            "layout of `{}` differs from the host's build (size 8 -> 16; field `extra: u32` added)",
            host_view.types[0].name
        )),
        "{err}"
    );
}

#[test]
fn versions_are_compared_with_the_running_one_when_the_host_declares_no_layout() {
    let host_view = {
        use dylib_dev_runtime::Symbols;
        guarded::Symbols::layout().unwrap()
    };
    let runner = MiniRunner::new();
    // `logic::Symbols` declares no layout: a library owning its state type is still guarded.
    let lib: Lib = runner
        .builder(&build_logic(&format!(
            "{V1}\n#[unsafe(no_mangle)] pub extern \"Rust\" fn dylib_dev_layout() -> String {{ String::from({:?}) }}",
            host_view.encode()
        )))
        .open()
        .unwrap();
    let mut host = runner.accept();
    let grown_lib = build_logic(&format!(
        "{V2}\n#[unsafe(no_mangle)] pub extern \"Rust\" fn dylib_dev_layout() -> String {{ String::from({:?}) }}",
        grown(&host_view).encode()
    ));
    let failed = expect_failed(host.reload(1, &grown_lib));
    assert!(
        failed.reason.contains("differs from the running version"),
        "{}",
        failed.reason
    );
    assert_eq!(text(&lib), "v1");
}

#[test]
fn a_call_that_does_not_return_is_reported_stuck_then_resumed() {
    let runner = MiniRunner::new();
    let lib: Lib = runner
        .builder(&build_logic(SLOW))
        .hang_after(Duration::from_millis(100))
        .open()
        .unwrap();
    let mut host = runner.accept();
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("worker".into())
            .spawn_scoped(scope, || lib.call(|s| s.add(600, 7)))
            .unwrap();
        let ToRunner::Stuck(stuck) = host.recv() else {
            panic!("expected stuck")
        };
        assert_eq!(
            (
                stuck.lib.as_str(),
                stuck.function.as_str(),
                stuck.thread.as_str()
            ),
            ("logic", "add", "worker")
        );
        assert!(stuck.elapsed >= Duration::from_millis(100), "{stuck:?}");
        let ToRunner::Resumed(resumed) = host.recv() else {
            panic!("expected resumed")
        };
        assert!(resumed.elapsed >= Duration::from_millis(500), "{resumed:?}");
        assert_eq!(worker.join().unwrap(), 7);
    });
    // Short calls are never reported.
    for _ in 0..5 {
        assert_eq!(lib.call(|s| s.add(1, 2)), 2);
    }
    host.send_save(Duration::from_millis(100));
    let ToRunner::Unsaved(unsaved) = host.recv() else {
        panic!("expected unsaved")
    };
    assert!(unsaved.reason.contains("no hand-off state"), "{unsaved:?}");
}

/// A library with a thread-local that has a destructor.
const WITH_TLS: &str = r#"
thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 16]);
}
#[unsafe(no_mangle)]
pub extern "Rust" fn text() -> String { SCRATCH.with(|s| format!("tls {}", s.borrow().len())) }
#[unsafe(no_mangle)]
pub extern "C" fn add(a: u32, b: u32) -> u32 { a + b }
"#;

/// What decides whether an old version may be unloaded (the host crashes at the next thread exit
/// otherwise): thread-locals of its own, and std shared with the host.
#[cfg(target_os = "linux")]
#[test]
fn only_libraries_sharing_std_with_thread_locals_must_stay_mapped() {
    let cases = [
        (V1, &[][..], false),
        (WITH_TLS, &[][..], false),
        (V1, &["-C", "prefer-dynamic"][..], false),
        (WITH_TLS, &["-C", "prefer-dynamic"][..], true),
    ];
    for (source, args, stays) in cases {
        let lib = common::build_logic_with(source, args);
        assert_eq!(
            dylib_dev_runtime::__must_stay_mapped(&lib),
            stays,
            "{args:?} {}",
            &source[..40]
        );
    }
}
