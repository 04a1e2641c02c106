//! End-to-end tests of `dylib-dev build`, `run` and `doctor`, and of the cargo build driver, with
//! the real binary, real cargo and rustc, on temp copies of fixture projects.
//!
//! `prewrapped` is a package already in the layout `wrap` produces (written by hand), so these
//! tests check the dynamic build on its own, whatever state `wrap` is in.
mod common;

use common::{Fixture, needed_libraries, shared_target_dir, text};
use std::time::{Duration, Instant};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn build_puts_the_binary_in_the_dynamic_target_dir_and_links_the_deps_dylib() {
    let fx = Fixture::copy("prewrapped");
    let out = fx.dylib_dev().arg("build").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let exe = shared_target_dir().join("dylib-dev/debug/app");
    assert!(exe.is_file(), "no dynamic binary at {}", exe.display());
    assert!(
        stderr(&out).contains(&format!("Built {}", exe.display())),
        "build names the binary it made:\n{}",
        text(&out)
    );
    if let Some(needed) = needed_libraries(&exe) {
        assert!(
            needed
                .iter()
                .any(|l| l.starts_with("libapp_deps") && l.ends_with(".so")),
            "the deps dylib is not NEEDED: {needed:?}"
        );
        assert!(
            needed.iter().any(|l| l.starts_with("libstd-")),
            "std is not shared (prefer-dynamic missing?): {needed:?}"
        );
    }
}

#[test]
fn run_prints_what_static_cargo_run_prints_and_passes_the_exit_code() {
    let fx = Fixture::copy("prewrapped");
    let args = ["arg", "two words"];
    let static_run = fx
        .cargo()
        .args(["run", "-q", "--"])
        .args(args)
        .output()
        .unwrap();
    assert!(static_run.status.success(), "{}", text(&static_run));

    // No inherited loader path (cargo test sets one): `run` must set everything itself.
    let dynamic_run = fx
        .dylib_dev()
        .env_remove("LD_LIBRARY_PATH")
        .args(["run", "--"])
        .args(args)
        .output()
        .unwrap();
    assert!(dynamic_run.status.success(), "{}", text(&dynamic_run));
    assert_eq!(stdout(&dynamic_run), stdout(&static_run));
    assert_eq!(stdout(&dynamic_run), "app: 2 args: arg two words\n");

    let exit = fx
        .dylib_dev()
        .env_remove("LD_LIBRARY_PATH")
        .args(["run", "--", "--exit=7"])
        .output()
        .unwrap();
    assert_eq!(exit.status.code(), Some(7), "{}", text(&exit));

    // And the search path is what makes it start: without it the loader cannot find the libraries.
    let exe = shared_target_dir().join("dylib-dev/debug/app");
    let bare = std::process::Command::new(&exe)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    assert!(
        !bare.status.success() && stderr(&bare).contains("shared libraries"),
        "the dynamic binary should not start without its library path:\n{}",
        text(&bare)
    );
}

#[test]
fn a_compile_error_fails_the_build_with_errors_before_warnings() {
    let fx = Fixture::copy("prewrapped");
    // A warning in the deps crate reaches cargo's stream before the error in `app`.
    fx.write(
        "app-deps/src/lib.rs",
        "pub use itoa;\n\npub fn helper() {\n    let unused_in_deps = 1;\n}\n",
    );
    fx.write(
        "src/main.rs",
        "fn main() {\n    let s = String::from(\"moved\");\n    let t = s;\n    println!(\"{s} {t}\");\n}\n",
    );
    // Its own target dir: the changed deps crate must not replace the shared one that other tests
    // of this binary are running.
    let out = fx
        .dylib_dev()
        .env("CARGO_TARGET_DIR", fx.join("target"))
        .arg("build")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let err = stderr(&out);
    let error_at = err.find("error[E0382]: borrow of moved value: `s`");
    let warning_at = err.find("warning: unused variable: `unused_in_deps`");
    assert!(
        error_at.is_some() && warning_at.is_some(),
        "both diagnostics are shown:\n{err}"
    );
    assert!(error_at < warning_at, "errors come before warnings:\n{err}");
    assert!(
        err.contains(" --> src/main.rs:4:16"),
        "rendered as rustc renders it:\n{err}"
    );
    assert!(
        err.trim_end()
            .ends_with("error: dynamic build of `app` failed (1 error, 1 warning)"),
        "a one-line summary closes the output:\n{err}"
    );
}

#[test]
fn a_package_that_is_not_wrapped_is_refused_with_the_fix() {
    let fx = Fixture::copy("prewrapped");
    let manifest = fx.read("Cargo.toml");
    let plain = manifest
        .replace("app-deps = { path = \"app-deps\", optional = true }\n", "")
        .replace("[features]\ndynamic = [\"dep:app-deps\"]\n", "");
    assert_ne!(
        plain, manifest,
        "the fixture's manifest changed; update this test"
    );
    fx.write("Cargo.toml", &plain);
    for command in ["build", "run"] {
        let out = fx.dylib_dev().arg(command).output().unwrap();
        assert!(!out.status.success(), "{}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains("package `app` is not wrapped") && err.contains("run `dylib-dev wrap"),
            "{command}: {err}"
        );
        assert!(
            !err.contains("Compiling"),
            "{command} must not start cargo:\n{err}"
        );
    }
}

#[test]
fn doctor_passes_here_and_names_the_sysroot() {
    let fx = Fixture::copy("prewrapped");
    let out = fx.dylib_dev().arg("doctor").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report = stdout(&out);
    let sysroot = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(fx.path())
        .output()
        .unwrap();
    let sysroot = stdout(&sysroot);
    assert!(
        report.contains("sysroot") && report.contains(sysroot.trim()),
        "{report}"
    );
    assert!(report.contains("shared std libstd-"), "{report}");
    assert!(
        report.contains("feature `dynamic` links `app-deps`"),
        "{report}"
    );
    assert!(report.contains("no errors"), "{report}");
}

#[test]
fn cancelling_a_build_stops_cargo_and_everything_it_started() {
    use dylib_dev::cargo::{CargoBuild, CargoStderr};
    let fx = Fixture::copy("slow-build");
    let pid_file = fx.join("build-script.pid");
    let running = CargoBuild::new()
        .program(env!("CARGO"))
        .manifest_path(fx.join("Cargo.toml"))
        .target_dir(fx.join("target"))
        .env("SLOW_BUILD_PID_FILE", &pid_file)
        .stderr(CargoStderr::Capture)
        .spawn()
        .unwrap();
    let handle = running.handle();
    // From another thread, as the watcher will: wait until the build script runs, then cancel.
    let canceller = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(180);
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "the build script never started");
            std::thread::sleep(Duration::from_millis(50));
        };
        let started = Instant::now();
        handle.cancel(Duration::from_secs(5)).unwrap();
        (pid, started.elapsed())
    });
    let outcome = running.wait().unwrap();
    let (script_pid, took) = canceller.join().unwrap();
    assert!(outcome.cancelled && !outcome.success, "{outcome:?}");
    assert!(took < Duration::from_secs(10), "cancel took {took:?}");
    // The build script is cargo's child; the process-group signal must have reached it. Once
    // orphaned it is reaped by whoever adopts it, which may take a moment or never happen (a
    // zombie is dead all the same).
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_running(script_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !is_running(script_pid),
        "build script {script_pid} survived the cancel"
    );
}

/// Whether `pid` is a live process (not gone, not a zombie), per Linux's /proc.
fn is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state ...`; comm may contain spaces and parentheses, so split at the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}
