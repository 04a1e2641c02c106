//! The runner's end of the reload protocol against the real host runtime: real `cdylib`s built
//! with rustc, a real socket, hosts in this process and in a child process.

#[path = "../runtime/tests/common/mod.rs"]
mod host;

use dylib_dev::reload::{Outcome, ReloadError, ReloadServer};
use dylib_dev_runtime::HotLib;
use dylib_dev_runtime::protocol::{self, ENV_DIR, ENV_SOCKET};
use host::{NO_TEXT, V1, V2, build_logic, logic, test_base};
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
