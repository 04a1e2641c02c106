//! The runner's end of the reload protocol against the real host runtime: real `cdylib`s built
//! with rustc, a real socket, hosts in this process and in a child process.

#[path = "../runtime/tests/common/mod.rs"]
mod host;

use dylib_dev::reload::{Outcome, ReloadError, ReloadServer};
use dylib_dev_runtime::HotLib;
use dylib_dev_runtime::protocol::{self, ENV_DIR, ENV_SOCKET};
use host::{NO_TEXT, SLOW, V1, V2, build_logic, logic, test_base};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// Opens the test library in this process the way `host_env` tells a host to.
fn open_in_process(env: &HashMap<String, OsString>) -> HotLib<logic::Symbols> {
    HotLib::builder("logic")
        .artifact(&env[&protocol::lib_env_var("logic")])
        .hash(env[&protocol::hash_env_var("logic")].to_str().unwrap())
        .socket(&env[ENV_SOCKET])
        .copies_in(&env[ENV_DIR])
        .open()
        .unwrap()
}

#[test]
fn reload_reports_swaps_refusals_and_stuck_hosts() {
    let (v1, v2, broken) = (build_logic(V1), build_logic(V2), build_logic(NO_TEXT));
    let mut server = ReloadServer::start_in(&test_base()).unwrap();
    let env: HashMap<_, _> = server
        .host_env(&[("logic", &v1)])
        .unwrap()
        .into_iter()
        .collect();
    let lib = open_in_process(&env);
    let hello = server.wait_for_host("logic", LONG).unwrap();
    assert_eq!(hello.pid, std::process::id());
    assert!(lib.copies_dir().starts_with(server.dir()));

    let report = server.reload("logic", 1, &v2, LONG).unwrap();
    let Outcome::Swapped(timing) = report.outcome else {
        panic!("{report:?}")
    };
    eprintln!(
        "runner: hash {} us, round trip {} us; host: copy+hash {} us, load {} us, wait {} us, unload {} us",
        report.hash_time.as_micros(),
        report.round_trip.as_micros(),
        timing.copy.as_micros(),
        timing.load.as_micros(),
        timing.wait.as_micros(),
        timing.unload.as_micros()
    );
    assert_eq!(lib.call(|s| s.text()), "v2");

    let report = server.reload("logic", 2, &broken, LONG).unwrap();
    assert!(
        matches!(&report.outcome, Outcome::Failed(why) if why.contains("symbol `text` missing"))
    );
    assert_eq!(lib.call(|s| s.text()), "v2");

    // A host that never leaves a call cannot swap; the runner gives up instead of hanging.
    let stuck = lib.lock();
    let err = server
        .reload("logic", 3, &v1, Duration::from_millis(300))
        .unwrap_err();
    assert!(
        matches!(err, ReloadError::NoAnswer { version: 3, .. }),
        "{err}"
    );
    drop(stuck);
    // The late answer to 3 is skipped; 4 gets its own.
    let report = server.reload("logic", 4, &v2, LONG).unwrap();
    assert!(matches!(report.outcome, Outcome::Swapped(_)), "{report:?}");
    assert_eq!(lib.version(), 4);

    let err = server
        .reload("other", 1, &v2, Duration::from_millis(50))
        .unwrap_err();
    assert!(matches!(err, ReloadError::NoHost { .. }), "{err}");

    drop(lib);
    let err = server.reload("logic", 5, &v1, LONG).unwrap_err();
    assert!(matches!(err, ReloadError::Disconnected { .. }), "{err}");

    let dir = server.dir().to_path_buf();
    drop(server);
    assert!(!dir.exists(), "the private directory goes with the server");
}

/// Set in the child: run as the host.
const CHILD: &str = "DYLIB_DEV_TEST_RUNNER_CHILD_HOST";

#[test]
fn a_child_host_started_with_host_env_reloads() {
    if std::env::var_os(CHILD).is_some() {
        println!("TEXT {}", logic::text());
        logic::lib().wait_for_reload(Duration::from_secs(60));
        println!("TEXT {}", logic::text());
        return;
    }
    let (v1, v2) = (build_logic(V1), build_logic(V2));
    let mut server = ReloadServer::start_in(&test_base()).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_child_host_started_with_host_env_reloads",
            "--nocapture",
            "--quiet",
        ])
        .env(CHILD, "1")
        .envs(server.host_env(&[("logic", &v1)]).unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap);
    let mut next_text = || lines.find_map(|l| l.strip_prefix("TEXT ").map(str::to_string));

    assert_eq!(next_text().as_deref(), Some("v1"));
    assert_eq!(server.wait_for_host("logic", LONG).unwrap().pid, child.id());
    let report = server.reload("logic", 1, &v2, LONG).unwrap();
    assert!(matches!(report.outcome, Outcome::Swapped(_)), "{report:?}");
    assert_eq!(next_text().as_deref(), Some("v2"));
    assert!(child.wait().unwrap().success());
    let err = server.reload("logic", 2, &v1, LONG).unwrap_err();
    assert!(matches!(err, ReloadError::Disconnected { .. }), "{err}");
}

#[test]
fn stuck_calls_reach_the_event_sink_with_the_hosts_pid() {
    use dylib_dev::reload::HostEvent;
    let slow = build_logic(SLOW);
    let mut server = ReloadServer::start_in(&test_base()).unwrap();
    let (tx, events) = std::sync::mpsc::channel();
    server.on_event(move |e| {
        let _ = tx.send(e);
    });
    server.set_hang_threshold(Duration::from_millis(100));
    let env: HashMap<_, _> = server
        .host_env(&[("logic", &slow)])
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(env[protocol::ENV_HANG_MS], "100");
    let lib: HotLib<logic::Symbols> = HotLib::builder("logic")
        .artifact(&env[&protocol::lib_env_var("logic")])
        .socket(&env[ENV_SOCKET])
        .copies_in(&env[ENV_DIR])
        .hang_after(Duration::from_millis(100))
        .open()
        .unwrap();
    server.wait_for_host("logic", LONG).unwrap();
    assert_eq!(lib.call(|s| s.add(500, 3)), 3);
    let me = std::process::id();
    // The hello is announced first, with the pid the kernel gives for the connection.
    assert_eq!(
        events.recv_timeout(LONG).unwrap(),
        HostEvent::Connected {
            pid: me,
            lib: "logic".into()
        }
    );
    match events.recv_timeout(LONG).unwrap() {
        HostEvent::Stuck { pid, stuck } => {
            assert_eq!((pid, stuck.function.as_str()), (me, "add"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        events.recv_timeout(LONG).unwrap(),
        HostEvent::Resumed { pid, .. } if pid == me
    ));
    // A host without hand-off state says so at once.
    let outcome = server
        .save_state(Duration::from_millis(200))
        .unwrap()
        .unwrap();
    assert!(
        matches!(&outcome, dylib_dev::reload::SaveOutcome::Unsaved(why) if why.contains("no hand-off state")),
        "{outcome:?}"
    );
}

/// Set in the child: run as a host that keeps a `Persistent` counter.
const STATE_CHILD: &str = "DYLIB_DEV_TEST_STATE_CHILD";

#[derive(Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Counter {
    counter: u64,
}

#[test]
fn state_saved_by_one_host_is_restored_by_the_next() {
    if let Some(add) = std::env::var_os(STATE_CHILD) {
        let state = dylib_dev_runtime::state::Persistent::<Counter>::restore_or_default();
        state.lock().counter += add.to_str().unwrap().parse::<u64>().unwrap();
        println!("COUNTER {}", state.lock().counter);
        // Connect, then wait for the runner to save and kill this host.
        let _text = logic::text();
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let v1 = build_logic(V1);
    let mut server = ReloadServer::start_in(&test_base()).unwrap();
    let run_host = |server: &mut ReloadServer, add: u64| {
        server.forget_hosts();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "state_saved_by_one_host_is_restored_by_the_next",
                "--nocapture",
                "--quiet",
            ])
            .env(STATE_CHILD, add.to_string())
            .envs(server.host_env(&[("logic", &v1)]).unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let counter = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map(Result::unwrap)
            .find_map(|l| l.strip_prefix("COUNTER ").map(str::to_string))
            .expect("a COUNTER line");
        server.wait_for_host("logic", LONG).unwrap();
        let saved = server.save_state(Duration::from_secs(5)).unwrap().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        (counter.parse::<u64>().unwrap(), saved)
    };
    let (first, saved) = run_host(&mut server, 5);
    assert_eq!(first, 5);
    assert!(
        matches!(saved, dylib_dev::reload::SaveOutcome::Saved(n) if n > 0),
        "{saved:?}"
    );
    assert!(server.state_file().is_file());
    let (second, _) = run_host(&mut server, 2);
    assert_eq!(
        second, 7,
        "the second host continued from the first one's state"
    );
}
