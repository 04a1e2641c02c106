//! The fault suite, the files' half: `wrap` and `unwrap` interrupted (kill -9 at every step) and
//! on a disk that refuses writes (read-only, full), end to end on temp copies of
//! `tests/fixtures/diamond` and `ws-glob`, each test asserting that the project is left intact or
//! finishable. The running host's half is `faults_host.rs`.
mod common;

use common::{Fixture, assert_same_tree, text};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

const CRASH: &str = "DYLIB_DEV_TEST_CRASH_AFTER";

/// The crash points a command passes, in order (`DYLIB_DEV_TEST_CRASH_AFTER=?`).
fn crash_points(fx: &Fixture, args: &[&str]) -> Vec<String> {
    let out = fx.dylib_dev().args(args).env(CRASH, "?").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("crash point: ").map(str::to_string))
        .collect()
}

/// Runs a command that kills itself at `step`.
fn crash_at(fx: &Fixture, args: &[&str], step: &str) {
    let out = fx.dylib_dev().args(args).env(CRASH, step).output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "{args:?} did not die at {step}:\n{}",
        text(&out)
    );
}

/// `cargo build` (static, offline) succeeds.
fn builds(fx: &Fixture, what: &str) {
    let out = fx
        .cargo()
        .args(["build", "--offline", "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: the project no longer builds:\n{}",
        text(&out)
    );
}

const WRAP: [&str; 4] = ["wrap", "serde", "serde_json", "regex"];

#[test]
fn kill_9_during_wrap_at_every_step_leaves_a_project_that_builds_and_unwraps() {
    let reference = Fixture::copy("diamond");
    let original = reference.tree();
    let steps = crash_points(&reference, &WRAP);
    let wrapped = reference.tree();
    assert!(
        steps.len() >= 5
            && steps.iter().any(|s| s == "record")
            && steps.iter().any(|s| s.starts_with("tmp:")),
        "{steps:?}"
    );
    eprintln!("crash points: {steps:?}");
    for step in &steps {
        // Crash, then build and unwrap.
        let fx = Fixture::copy("diamond");
        crash_at(&fx, &WRAP, step);
        builds(&fx, &format!("after a crash at {step}"));
        let out = fx.dylib_dev().arg("unwrap").output().unwrap();
        let not_wrapped = String::from_utf8_lossy(&out.stderr).contains("is not wrapped");
        assert!(
            out.status.success() || not_wrapped,
            "unwrap after a crash at {step}:\n{}",
            text(&out)
        );
        assert_same_tree(&original, &fx.tree());

        // Crash, then wrap again: it finishes the job.
        let fx = Fixture::copy("diamond");
        crash_at(&fx, &WRAP, step);
        let out = fx.dylib_dev().args(WRAP).output().unwrap();
        assert!(
            out.status.success(),
            "wrap after a crash at {step}:\n{}",
            text(&out)
        );
        assert_same_tree(&wrapped, &fx.tree());
    }
}

#[test]
fn kill_9_during_unwrap_at_every_step_then_unwrap_again_restores() {
    let reference = Fixture::copy("diamond");
    let original = reference.tree();
    let out = reference.dylib_dev().args(WRAP).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let steps = crash_points(&reference, &["unwrap"]);
    assert_same_tree(&original, &reference.tree());
    assert!(steps.len() >= 4, "{steps:?}");
    eprintln!("crash points: {steps:?}");
    for step in &steps {
        let fx = Fixture::copy("diamond");
        let out = fx.dylib_dev().args(WRAP).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        crash_at(&fx, &["unwrap"], step);
        builds(&fx, &format!("after a crash of unwrap at {step}"));
        let out = fx.dylib_dev().arg("unwrap").output().unwrap();
        let not_wrapped = String::from_utf8_lossy(&out.stderr).contains("is not wrapped");
        assert!(
            out.status.success() || not_wrapped,
            "unwrap again after a crash at {step}:\n{}",
            text(&out)
        );
        assert_same_tree(&original, &fx.tree());
    }
}

#[test]
fn kill_9_during_wrap_of_a_glob_workspace_never_breaks_the_workspace() {
    let reference = Fixture::copy("ws-glob");
    let original = reference.tree();
    let args = ["wrap", "-p", "app", "serde_json"];
    let steps = crash_points(&reference, &args);
    eprintln!("crash points: {steps:?}");
    for step in &steps {
        let fx = Fixture::copy("ws-glob");
        crash_at(&fx, &args, step);
        let out = fx
            .cargo()
            .args(["metadata", "--offline", "--format-version", "1"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the workspace does not load after a crash at {step}:\n{}",
            text(&out)
        );
        let out = fx
            .dylib_dev()
            .args(["unwrap", "-p", "app"])
            .output()
            .unwrap();
        let not_wrapped = String::from_utf8_lossy(&out.stderr).contains("is not wrapped");
        assert!(out.status.success() || not_wrapped, "{}", text(&out));
        assert_same_tree(&original, &fx.tree());
    }
}

/// A small tmpfs of our own (root with CAP_SYS_ADMIN), unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }

    fn remount(&self, opts: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The diamond fixture copied into `dir` (a file system under test).
fn diamond_in(dir: &Path) -> Fixture {
    let fx = Fixture {
        dir: tempfile::tempdir_in(dir).unwrap(),
    };
    common::copy_tree(
        &common::repo_root().join("tests/fixtures/diamond"),
        fx.path(),
    );
    fx
}

#[test]
fn read_only_project_is_refused_with_a_clear_message_and_left_intact() {
    let (fx, _mount, how) = match Tmpfs::mount("16m") {
        Some(mount) => {
            let fx = diamond_in(mount.dir.path());
            mount.remount("ro");
            (fx, Some(mount), "a read-only tmpfs")
        }
        None if unsafe { libc::geteuid() } != 0 => {
            let fx = Fixture::copy("diamond");
            std::fs::set_permissions(fx.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
            (fx, None, "a directory without write permission")
        }
        None => {
            eprintln!(
                "skipped: root without CAP_SYS_ADMIN can neither mount nor be refused by chmod"
            );
            return;
        }
    };
    let before = fx.tree();
    let out = fx.dylib_dev().args(WRAP).output().unwrap();
    assert!(!out.status.success(), "wrap on {how} succeeded?");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error:")
            && (stderr.contains("Read-only file system") || stderr.contains("Permission denied")),
        "{stderr}"
    );
    assert_same_tree(&before, &fx.tree());
    if _mount.is_none() {
        std::fs::set_permissions(fx.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn full_disk_at_every_point_of_wrap_leaves_the_project_intact() {
    let Some(mount) = Tmpfs::mount("16m") else {
        eprintln!(
            "skipped: cannot mount a tmpfs here (needs CAP_SYS_ADMIN); `wrap::tests::a_failed_write_rolls_back_every_earlier_one` covers the rollback"
        );
        return;
    };
    // Run out of space after 0, 1, 2, ... free pages, until the wrap fits.
    let mut failures = Vec::new();
    for free_pages in 0..16u64 {
        let fx = diamond_in(mount.dir.path());
        let before = fx.tree();
        let filler = mount.dir.path().join("filler");
        fill_leaving(&filler, free_pages);
        let out = fx.dylib_dev().args(WRAP).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        std::fs::remove_file(&filler).unwrap();
        if out.status.success() {
            assert!(!failures.is_empty(), "a full disk never failed the wrap");
            eprintln!("wrap fits with {free_pages} free pages; failures before: {failures:?}");
            return;
        }
        assert!(
            stderr.contains("No space left on device") && stderr.contains("nothing was changed"),
            "{free_pages} free pages:\n{stderr}"
        );
        assert_same_tree(&before, &fx.tree());
        let first = stderr.lines().next().unwrap_or_default().to_string();
        failures.push(format!("{free_pages}: {first}"));
    }
    panic!("wrap never fit: {failures:#?}");
}

/// Writes `path` until the file system is full, then frees `pages` pages of it.
fn fill_leaving(path: &Path, pages: u64) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let mut small = [0u8; 512];
    small.fill(1);
    while f.write_all(&small).is_ok() {}
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(pages * 4096)).unwrap();
}
