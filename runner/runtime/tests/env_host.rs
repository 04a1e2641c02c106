//! A host process started the way the runner starts one: everything through the environment.

mod common;

use common::{MiniRunner, V1, V2, build_logic, logic};
use dylib_dev_runtime::protocol::{self, ToRunner};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Set in the child: run as the host.
const CHILD: &str = "DYLIB_DEV_TEST_ENV_HOST";

#[test]
fn a_host_configured_by_environment_reloads() {
    if std::env::var_os(CHILD).is_some() {
        // The host: the macro's `lib()` opens from the environment on first use.
        println!("TEXT {}", logic::text());
        let event = logic::lib().wait_for_reload(Duration::from_secs(60));
        assert!(event.is_some(), "no reload within a minute");
        println!("TEXT {}", logic::text());
        return;
    }
    let (v1, v2) = (build_logic(V1), build_logic(V2));
    let runner = MiniRunner::new();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_host_configured_by_environment_reloads",
            "--nocapture",
            "--quiet",
        ])
        .env(CHILD, "1")
        .env(protocol::lib_env_var("logic"), &v1)
        .env(
            protocol::hash_env_var("logic"),
            dylib_dev_runtime::hash_file(&v1).unwrap(),
        )
        .env(protocol::ENV_SOCKET, &runner.socket)
        .env(protocol::ENV_DIR, runner.dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap);
    let mut next_text = || lines.find_map(|l| l.strip_prefix("TEXT ").map(str::to_string));

    let (mut host, hello) = runner.accept_from_any();
    assert_eq!(hello.pid, child.id());
    assert_eq!(hello.hash, dylib_dev_runtime::hash_file(&v1).unwrap());
    assert_eq!(next_text().as_deref(), Some("v1"));
    assert!(matches!(host.reload(1, &v2), ToRunner::Swapped(s) if s.version == 1));
    assert_eq!(next_text().as_deref(), Some("v2"));
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_host_refuses_a_runner_that_speaks_another_protocol() {
    if std::env::var_os(CHILD).is_some() {
        println!("TEXT {}", logic::text());
        println!("RELOADABLE {}", logic::lib().is_reloadable());
        return;
    }
    let v1 = build_logic(V1);
    let runner = MiniRunner::new();
    let other = protocol::PROTOCOL_VERSION + 1;
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_host_refuses_a_runner_that_speaks_another_protocol",
            "--nocapture",
            "--quiet",
        ])
        .env(CHILD, "1")
        .env(protocol::lib_env_var("logic"), &v1)
        .env(
            protocol::hash_env_var("logic"),
            dylib_dev_runtime::hash_file(&v1).unwrap(),
        )
        .env(protocol::ENV_SOCKET, &runner.socket)
        .env(protocol::ENV_DIR, runner.dir.path())
        .env(protocol::ENV_PROTOCOL, other.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The host says hello all the same, so a runner that checks hellos can say why too; then it
    // hangs up.
    let (mut host, hello) = runner.accept_from_any();
    assert_eq!(hello.pid, child.id());
    assert!(!hello.save, "a host that hung up does not answer `save`");
    assert!(host.is_closed());
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // It runs its logic, without reloading.
    assert!(stdout.contains("TEXT v1"), "{stdout}");
    assert!(stdout.contains("RELOADABLE false"), "{stdout}");
    assert!(
        stderr.contains(&protocol::runner_protocol_mismatch(other)),
        "{stderr}"
    );
}
