//! End-to-end tests of what `dylib-dev watch` sees and refuses: directories that appear while it
//! watches, settings that cannot work, and how its diagnostics look. The real binary on a temp copy
//! of the `hot` fixture, real cargo and rustc builds, a real host and real dlopen swaps.
mod common;

use common::Fixture;
use common::watch::{CHANGE, START, Watch, pid_and_counter, serial};
use std::time::Duration;

/// The fixture's logic line, with the text of `extra::tag()` (a module wired in by the test).
const WIRED_LINE: &str =
    "format!(\"logic=v1 {} words={words} seen={}\", extra::tag(), state.counter)";
const PLAIN_LINE: &str = "format!(\"logic=v1 words={words} seen={}\", state.counter)";

/// Wires `mod extra;` (in `logic/src/extra/mod.rs`) into the logic library's output line.
fn wire_in_extra(fx: &Fixture) {
    let lib = fx
        .read("logic/src/lib.rs")
        .replace("use shared::State;", "use shared::State;\nmod extra;")
        .replace(PLAIN_LINE, WIRED_LINE);
    assert!(lib.contains(WIRED_LINE), "the fixture's logic line changed");
    fx.write("logic/src/lib.rs", &lib);
}

/// Saves `file` with tag `from` changed to `to` and waits for the host to print `to` in the
/// process `pid`, swapped (not restarted).
fn edit_and_expect_swap(fx: &Fixture, watch: &Watch, file: &str, from: &str, to: &str, pid: u32) {
    let (out_at, err_at) = (watch.out_len(), watch.err_len());
    fx.replace(file, from, to);
    let (_, line) = watch.wait_out(out_at, CHANGE, |l| l.contains(to));
    assert_eq!(
        pid_and_counter(&line).0,
        pid,
        "`{to}` runs in the same host process"
    );
    watch.wait_err(err_at, CHANGE, |l| l.contains("Swapped"));
}

#[test]
fn a_module_directory_made_while_watching_swaps_on_every_save() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    let watch = Watch::start(&fx);
    let (_, line) = watch.wait_out(0, START, |l| l.contains("logic=v1"));
    let (pid, _) = pid_and_counter(&line);

    // `mkdir -p` of two levels in one go, the files written right away, then wired in.
    std::fs::create_dir_all(fx.join("logic/src/extra/deep")).unwrap();
    fx.write(
        "logic/src/extra/mod.rs",
        "mod deep;\npub fn tag() -> &'static str { deep::TAG }\n",
    );
    fx.write(
        "logic/src/extra/deep/mod.rs",
        "pub const TAG: &str = \"extra=e1\";\n",
    );
    let out_at = watch.out_len();
    wire_in_extra(&fx);
    let (_, line) = watch.wait_out(out_at, CHANGE, |l| l.contains("extra=e1"));
    assert_eq!(pid_and_counter(&line).0, pid, "the new module swapped in");

    // Every later save of the new file counts (it used to be seen never again).
    let file = "logic/src/extra/deep/mod.rs";
    edit_and_expect_swap(&fx, &watch, file, "extra=e1", "extra=e2", pid);
    edit_and_expect_swap(&fx, &watch, file, "extra=e2", "extra=e3", pid);
}

#[test]
fn a_module_directory_moved_in_while_watching_swaps_on_every_save() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    // Made outside the workspace (on the same file system), then moved in whole.
    let staging = tempfile::tempdir_in(fx.path().parent().unwrap()).unwrap();
    let made = staging.path().join("extra");
    std::fs::create_dir(&made).unwrap();
    std::fs::write(
        made.join("mod.rs"),
        "pub fn tag() -> &'static str { \"moved=m1\" }\n",
    )
    .unwrap();
    let watch = Watch::start(&fx);
    let (_, line) = watch.wait_out(0, START, |l| l.contains("logic=v1"));
    let (pid, _) = pid_and_counter(&line);

    std::fs::rename(&made, fx.join("logic/src/extra")).unwrap();
    let out_at = watch.out_len();
    wire_in_extra(&fx);
    let (_, line) = watch.wait_out(out_at, CHANGE, |l| l.contains("moved=m1"));
    assert_eq!(
        pid_and_counter(&line).0,
        pid,
        "the moved-in module swapped in"
    );

    let file = "logic/src/extra/mod.rs";
    edit_and_expect_swap(&fx, &watch, file, "moved=m1", "moved=m2", pid);
    edit_and_expect_swap(&fx, &watch, file, "moved=m2", "moved=m3", pid);
}

/// `dylib-dev watch <args>` on `fx` with its own (empty) target dir; fails the test if it does
/// not exit within a minute. Returns (success, stderr, whether anything was built).
fn watch_refused(fx: &Fixture, args: &[&str]) -> (bool, String, bool) {
    let target = fx.join("own-target");
    let out = fx
        .dylib_dev()
        .arg("watch")
        .args(args)
        .env("CARGO_TARGET_DIR", &target)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let built = target.join("dylib-dev").exists();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        built,
    )
}

/// Puts `lines` into the `[workspace.metadata.dylib-dev]` table of the fixture's root manifest.
fn workspace_settings(fx: &Fixture, lines: &str) {
    fx.replace(
        "Cargo.toml",
        "[workspace.metadata.dylib-dev.bench]",
        &format!("[workspace.metadata.dylib-dev]\n{lines}\n\n[workspace.metadata.dylib-dev.bench]"),
    );
}

fn assert_refused(stderr: &str, built: bool, ok: bool, wanted: &[&str]) {
    assert!(!ok, "watch must fail:\n{stderr}");
    assert!(!built, "nothing may be built:\n{stderr}");
    for w in wanted {
        assert!(stderr.contains(w), "the error names {w:?}:\n{stderr}");
    }
}

#[test]
fn a_hang_timeout_of_zero_is_refused_before_anything_is_built() {
    let fx = Fixture::copy("hot");
    workspace_settings(&fx, "hang-timeout-ms = 0");
    let (ok, stderr, built) = watch_refused(&fx, &[]);
    let manifest = fx.join("Cargo.toml");
    assert_refused(
        &stderr,
        built,
        ok,
        &[
            "`hang-timeout-ms = 0`",
            "[workspace.metadata.dylib-dev]",
            &manifest.display().to_string(),
            "every swap would time out",
            "use 100 to 3600000 ms",
        ],
    );
}

#[test]
fn timings_that_cannot_work_are_refused_naming_the_flag_or_package() {
    let fx = Fixture::copy("hot");
    let (ok, stderr, built) = watch_refused(&fx, &["--hang-timeout-ms", "5"]);
    assert_refused(
        &stderr,
        built,
        ok,
        &["`--hang-timeout-ms 5` on the command line"],
    );
    let (ok, stderr, built) = watch_refused(&fx, &["--debounce-ms", "86400000"]);
    assert_refused(
        &stderr,
        built,
        ok,
        &["`--debounce-ms 86400000`", "0 to 10000 ms"],
    );

    // The host package's own table wins over the workspace's, and is named.
    workspace_settings(&fx, "stop-timeout-ms = 2000");
    let manifest = fx.read("host/Cargo.toml");
    fx.write(
        "host/Cargo.toml",
        &format!("{manifest}\n[package.metadata.dylib-dev]\nstop-timeout-ms = 0\n"),
    );
    let (ok, stderr, built) = watch_refused(&fx, &[]);
    let host_manifest = fx.join("host/Cargo.toml");
    assert_refused(
        &stderr,
        built,
        ok,
        &[
            "`stop-timeout-ms = 0` in `[package.metadata.dylib-dev]`",
            &host_manifest.display().to_string(),
            "hand-off state",
        ],
    );
}
