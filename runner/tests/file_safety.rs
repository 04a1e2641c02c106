//! The file safety suite: what `wrap`, `unwrap`, `init` and `deinit` do to the user's files when
//! the files or the runs are not the plain case (a lock file that changed since, two runs at once,
//! symlinks, read-only files, a byte order mark), each test asserting that nothing is lost.
mod common;

use common::{Fixture, assert_same_tree, text};

/// A project made of `files` (path, contents) in a fresh temp dir.
fn project(files: &[(&str, &str)]) -> Fixture {
    let dir = tempfile::Builder::new()
        .prefix("dylib-dev-file-safety-")
        .tempdir()
        .unwrap();
    let fx = Fixture { dir };
    for (path, contents) in files {
        let path = fx.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
    }
    fx
}

/// A one-package project depending on itoa, whose `src/main.rs` is `main`.
fn itoa_app(main: &str) -> Fixture {
    project(&[
        (
            "Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"1\"\n",
        ),
        ("src/main.rs", main),
    ])
}

/// Runs `dylib-dev args` in the project and asserts it succeeded.
fn ok(fx: &Fixture, args: &[&str]) -> std::process::Output {
    let out = fx.dylib_dev().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?} failed:\n{}", text(&out));
    out
}

/// Runs `cargo args` in the project and asserts it succeeded.
fn cargo_ok(fx: &Fixture, args: &[&str]) -> std::process::Output {
    let out = fx.cargo().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "cargo {args:?} failed:\n{}",
        text(&out)
    );
    out
}

const ITOA_MAIN: &str = "fn main() {\n    println!(\"{}\", itoa::Buffer::new().format(42));\n}\n";

#[test]
fn a_crate_root_with_a_byte_order_mark_still_builds_after_wrap_and_unwrap_restores_it() {
    let fx = itoa_app(&format!("\u{feff}{ITOA_MAIN}"));
    cargo_ok(&fx, &["generate-lockfile"]);
    let before = fx.tree();

    ok(&fx, &["wrap", "itoa"]);
    let main = fx.read("src/main.rs");
    assert!(
        main.starts_with("\u{feff}#[cfg(feature = \"dynamic\")]"),
        "{main:?}"
    );
    // The plain static build and the dynamic one both compile the edited root.
    let run = cargo_ok(&fx, &["run", "-q"]);
    assert_eq!(String::from_utf8_lossy(&run.stdout), "42\n");
    ok(&fx, &["build"]);

    ok(&fx, &["unwrap"]);
    assert_same_tree(&before, &fx.tree());
}

/// Whether the project's `Cargo.lock` lists a package called `name`.
fn locks(fx: &Fixture, name: &str) -> bool {
    fx.read("Cargo.lock")
        .contains(&format!("name = \"{name}\""))
}

#[test]
fn unwrap_removes_a_lock_file_wrap_created_only_while_nobody_changed_it() {
    let fx = itoa_app(ITOA_MAIN);
    let before = fx.tree();
    assert!(!fx.join("Cargo.lock").exists());
    // A dry run writes nothing, not even the lock file cargo's resolve creates.
    ok(&fx, &["wrap", "--dry-run", "itoa"]);
    assert_same_tree(&before, &fx.tree());

    // Untouched since `wrap` (cargo commands that change nothing do not count): it goes.
    ok(&fx, &["wrap", "itoa"]);
    assert!(
        locks(&fx, "app-deps"),
        "wrap settles the lock file it created"
    );
    cargo_ok(&fx, &["metadata", "--format-version", "1"]);
    ok(&fx, &["unwrap"]);
    assert_same_tree(&before, &fx.tree());

    // Changed since (a dependency added): it is the user's now and stays, without our crate.
    ok(&fx, &["wrap", "itoa"]);
    cargo_ok(&fx, &["add", "ryu@1"]);
    let out = ok(&fx, &["unwrap"]);
    assert!(fx.join("Cargo.lock").exists(), "{}", text(&out));
    assert!(
        locks(&fx, "ryu") && !locks(&fx, "app-deps"),
        "{}",
        fx.read("Cargo.lock")
    );
    assert!(
        fx.read("Cargo.toml").contains("ryu = \"1"),
        "{}",
        fx.read("Cargo.toml")
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("kept `Cargo.lock`"),
        "{}",
        text(&out)
    );
    // The kept lock file matches the manifests: cargo needs no change to it.
    cargo_ok(&fx, &["metadata", "--format-version", "1", "--locked"]);
}

#[test]
fn deinit_keeps_a_lock_file_init_created_once_it_changed() {
    let fx = Fixture::copy("ticker");
    std::fs::remove_file(fx.join("Cargo.lock")).unwrap();
    let before = fx.tree();

    ok(&fx, &["init", "itoa"]);
    ok(&fx, &["deinit"]);
    assert_same_tree(&before, &fx.tree());

    ok(&fx, &["init", "itoa"]);
    cargo_ok(&fx, &["add", "ryu@1"]);
    let out = ok(&fx, &["deinit"]);
    assert!(fx.join("Cargo.lock").exists(), "{}", text(&out));
    assert!(
        locks(&fx, "ryu") && !locks(&fx, "ticker-logic") && !locks(&fx, "ticker-deps"),
        "{}",
        fx.read("Cargo.lock")
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("kept `Cargo.lock`"),
        "{}",
        text(&out)
    );
    cargo_ok(&fx, &["metadata", "--format-version", "1", "--locked"]);
}

/// Whether `path` is a symlink pointing at `to`.
fn is_link_to(path: &std::path::Path, to: &str) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
        && std::fs::read_link(path).is_ok_and(|t| t == std::path::Path::new(to))
}

#[test]
fn symlinked_manifest_and_crate_root_stay_links_through_wrap_and_unwrap() {
    // A workspace whose member manifest and crate root are links into shared directories.
    let fx = project(&[
        (
            "Cargo.toml",
            "[workspace]\nresolver = \"2\"\nmembers = [\"app\"]\n",
        ),
        (
            "shared/app.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"1\"\n",
        ),
        ("shared/main.rs", ITOA_MAIN),
    ]);
    std::fs::create_dir_all(fx.join("app/src")).unwrap();
    std::os::unix::fs::symlink("../shared/app.toml", fx.join("app/Cargo.toml")).unwrap();
    std::os::unix::fs::symlink("../../shared/main.rs", fx.join("app/src/main.rs")).unwrap();
    cargo_ok(&fx, &["generate-lockfile"]);
    let before = fx.tree();
    let links = |fx: &Fixture| {
        is_link_to(&fx.join("app/Cargo.toml"), "../shared/app.toml")
            && is_link_to(&fx.join("app/src/main.rs"), "../../shared/main.rs")
    };

    ok(&fx, &["wrap", "-p", "app", "itoa"]);
    assert!(links(&fx), "wrap replaced a symlink by a file");
    // The edits went to the files the links point to.
    assert!(
        fx.read("shared/app.toml").contains("app-deps"),
        "{}",
        fx.read("shared/app.toml")
    );
    assert!(fx.read("shared/main.rs").contains("use app_deps as _;"));
    let run = cargo_ok(&fx, &["run", "-q", "-p", "app"]);
    assert_eq!(String::from_utf8_lossy(&run.stdout), "42\n");

    ok(&fx, &["unwrap", "-p", "app"]);
    assert!(links(&fx), "unwrap replaced a symlink by a file");
    assert_same_tree(&before, &fx.tree());
}

/// The mode bits of a file of the project.
fn mode(fx: &Fixture, rel: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(fx.join(rel))
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

fn chmod(fx: &Fixture, rel: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(fx.join(rel), std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs a command that must be refused; asserts it changed nothing and returns its stderr, with
/// the project's path as `[PROJECT]`.
fn refused(fx: &Fixture, args: &[&str]) -> String {
    let before = fx.tree();
    let out = fx.dylib_dev().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded:\n{}", text(&out));
    assert_same_tree(&before, &fx.tree());
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&fx.path().display().to_string(), "[PROJECT]");
    format!("$ dylib-dev {}\n{stderr}", args.join(" "))
}

#[test]
fn read_only_files_are_refused_before_anything_is_written() {
    // Tests run as root here, who may write any file: the refusal must come from the mode bits.
    let mut shown = Vec::new();
    let fx = itoa_app(ITOA_MAIN);
    cargo_ok(&fx, &["generate-lockfile"]);
    let before = fx.tree();

    chmod(&fx, "src/main.rs", 0o444);
    shown.push(refused(&fx, &["wrap", "itoa"]));
    assert_eq!(mode(&fx, "src/main.rs"), 0o444);
    assert!(!fx.join("app-deps").exists());

    chmod(&fx, "src/main.rs", 0o644);
    ok(&fx, &["wrap", "itoa"]);
    chmod(&fx, "Cargo.toml", 0o444);
    shown.push(refused(&fx, &["unwrap"]));
    chmod(&fx, "Cargo.toml", 0o644);
    ok(&fx, &["unwrap"]);
    assert_same_tree(&before, &fx.tree());

    let fx = Fixture::copy("ticker");
    chmod(&fx, "Cargo.toml", 0o444);
    shown.push(refused(&fx, &["init", "itoa"]));
    chmod(&fx, "Cargo.toml", 0o644);
    ok(&fx, &["init", "itoa"]);
    chmod(&fx, "src/main.rs", 0o444);
    shown.push(refused(&fx, &["deinit"]));

    insta::assert_snapshot!("read_only_refusals", shown.join("\n"));
}

/// A virtual workspace listing its two members `a` and `b` by hand, each depending on itoa.
fn two_member_workspace() -> Fixture {
    let member = |name: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"1\"\n"
        )
    };
    let fx = project(&[
        (
            "Cargo.toml",
            "[workspace]\nresolver = \"2\"\nmembers = [\n    \"a\",\n    \"b\",\n]\n",
        ),
        ("a/Cargo.toml", &member("a")),
        ("a/src/main.rs", ITOA_MAIN),
        ("b/Cargo.toml", &member("b")),
        ("b/src/main.rs", ITOA_MAIN),
    ]);
    cargo_ok(&fx, &["generate-lockfile"]);
    fx
}

/// Waits up to a minute for `cond`.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `dylib-dev` as [`Fixture::dylib_dev`] sets it up, as a `std` command (to run in the background).
fn spawnable(fx: &Fixture) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dylib-dev"));
    for key in common::cargo_test_env() {
        cmd.env_remove(key);
    }
    cmd.current_dir(fx.path())
        .env("CARGO_TARGET_DIR", common::shared_target_dir())
        .env_remove("DYLIB_DEV_LOG")
        .env("NO_COLOR", "1");
    cmd
}

/// Runs `first` held at its `staged` step (its crate staged in the workspace root, the root
/// manifest planned from what it read), starts `second` meanwhile, checks that `second` waits for
/// `first` and says so, then lets both finish; asserts both succeeded and left no staging
/// directory behind.
fn one_while_the_other_is_writing(fx: &Fixture, first: &[&str], second: &[&str]) {
    use std::io::BufRead;
    use std::process::Stdio;
    let outside = tempfile::tempdir().unwrap();
    let paused = outside.path().join("paused");
    let mut a = spawnable(fx)
        .args(first)
        .env(
            "DYLIB_DEV_TEST_PAUSE_AT",
            format!("staged={}", paused.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first run to reach `staged`", || {
        assert!(a.try_wait().unwrap().is_none(), "the first run ended early");
        paused.exists()
    });
    let mut b = spawnable(fx)
        .args(second)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b_err = b.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(b_err).lines() {
            let line = line.unwrap();
            if line.contains("Blocking") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    // Ends early (disconnected) when the second run exits without waiting.
    let waited = rx.recv_timeout(std::time::Duration::from_secs(60)).is_ok();
    std::fs::remove_file(&paused).unwrap();
    let a_out = a.wait_with_output().unwrap();
    let b_status = b.wait().unwrap();
    let b_err = reader.join().unwrap();
    assert!(
        a_out.status.success(),
        "{first:?} failed:\n{}",
        text(&a_out)
    );
    assert!(b_status.success(), "{second:?} failed:\n{b_err}");
    assert!(waited, "{second:?} did not wait for {first:?}:\n{b_err}");
    assert!(
        b_err.contains("waiting for the lock on workspace"),
        "{b_err}"
    );
    let tree = fx.tree();
    assert!(
        !tree.keys().any(|p| p.starts_with(".dylib-dev-")),
        "{:?}",
        tree.keys()
    );
}

/// Whether member `name` is wrapped: its deps crate, record, manifest entry and force-link line.
fn wrapped(fx: &Fixture, name: &str) -> bool {
    fx.read("Cargo.toml").contains(&format!("\"{name}-deps\""))
        && fx
            .join(&format!("{name}-deps/unwrap-record.json"))
            .is_file()
        && fx
            .read(&format!("{name}/Cargo.toml"))
            .contains(&format!("{name}-deps"))
        && fx
            .read(&format!("{name}/src/main.rs"))
            .contains(&format!("use {name}_deps as _;"))
}

#[test]
fn two_wraps_at_once_on_one_workspace_both_land_and_each_unwraps() {
    let fx = two_member_workspace();
    let before = fx.tree();
    one_while_the_other_is_writing(
        &fx,
        &["wrap", "-p", "a", "itoa"],
        &["wrap", "-p", "b", "itoa"],
    );
    assert!(
        wrapped(&fx, "a") && wrapped(&fx, "b"),
        "{}",
        fx.read("Cargo.toml")
    );
    cargo_ok(&fx, &["metadata", "--format-version", "1", "--locked"]);

    ok(&fx, &["unwrap", "-p", "a"]);
    ok(&fx, &["unwrap", "-p", "b"]);
    assert_same_tree(&before, &fx.tree());
}

#[test]
fn unwrap_during_another_wrap_is_not_undone_by_it() {
    let fx = two_member_workspace();
    let before = fx.tree();
    ok(&fx, &["wrap", "-p", "b", "itoa"]);
    one_while_the_other_is_writing(&fx, &["wrap", "-p", "a", "itoa"], &["unwrap", "-p", "b"]);
    // The root manifest lists exactly the crates that exist: a's, and not b's any more.
    assert!(wrapped(&fx, "a"), "{}", fx.read("Cargo.toml"));
    assert!(
        !fx.read("Cargo.toml").contains("b-deps"),
        "{}",
        fx.read("Cargo.toml")
    );
    assert!(!fx.join("b-deps").exists());
    cargo_ok(&fx, &["metadata", "--format-version", "1", "--locked"]);

    ok(&fx, &["unwrap", "-p", "a"]);
    assert_same_tree(&before, &fx.tree());
}

#[test]
fn init_during_a_wrap_waits_and_both_land() {
    let fx = two_member_workspace();
    let before = fx.tree();
    one_while_the_other_is_writing(
        &fx,
        &["wrap", "-p", "a", "itoa"],
        &["init", "--split", "-p", "b", "itoa"],
    );
    let root = fx.read("Cargo.toml");
    assert!(wrapped(&fx, "a") && wrapped(&fx, "b"), "{root}");
    assert!(
        root.contains("\"b-logic\"") && root.contains("host = \"b\""),
        "{root}"
    );
    cargo_ok(&fx, &["metadata", "--format-version", "1", "--locked"]);

    ok(&fx, &["unwrap", "-p", "a"]);
    ok(&fx, &["deinit", "-p", "b"]);
    assert_same_tree(&before, &fx.tree());
}

#[test]
fn auto_measures_only_what_the_host_platform_links() {
    // windows-sys is megabytes of source, but only Windows links it; libc is the Unix counterpart.
    let fx = project(&[
        (
            "Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"1\"\n\n[target.'cfg(windows)'.dependencies]\nwindows-sys = { version = \"0.59\", features = [\"Win32_Foundation\"] }\n\n[target.'cfg(unix)'.dependencies]\nlibc = \"0.2\"\n",
        ),
        ("src/main.rs", ITOA_MAIN),
    ]);
    let before = fx.tree();
    let out = ok(&fx, &["wrap", "--auto", "--dry-run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let row = |name: &str| {
        stderr
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{stderr}"))
            .to_string()
    };
    assert!(
        row("windows-sys").contains("skip: not linked on"),
        "{stderr}"
    );
    assert!(row("libc").contains("wrap: links"), "{stderr}");
    assert!(row("itoa").contains("skip: light"), "{stderr}");
    assert!(
        stderr.contains("Would wrap libc into `app-deps`"),
        "{stderr}"
    );
    assert_same_tree(&before, &fx.tree());
}
