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
    // The flag overrides the manifest: only the value in effect is checked, and named.
    let (ok, stderr, built) = watch_refused(&fx, &["--hang-timeout-ms", "5"]);
    assert_refused(
        &stderr,
        built,
        ok,
        &["`--hang-timeout-ms 5` on the command line"],
    );
    assert!(
        !stderr.contains("hang-timeout-ms = 0"),
        "the overridden manifest value is not the one refused:\n{stderr}"
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

/// Saves `file` with `good` replaced by `bad` (one syntax error), waits for the failed build,
/// then restores it and waits for the fix to be running. Returns what the watcher printed from
/// the save to the `build failed` line.
fn break_and_fix(fx: &Fixture, watch: &Watch, file: &str, good: &str, bad: &str) -> String {
    let err_at = watch.err_len();
    fx.replace(file, good, bad);
    let (failed_at, _) = watch.wait_err(err_at, CHANGE, |l| l.contains("build failed"));
    let shown = watch.err_since(err_at)[..=failed_at - err_at].join("\n");
    fx.replace(file, bad, good);
    watch.wait_err(failed_at, CHANGE, |l| {
        l.contains("Swapped") || l.contains("Restarted")
    });
    shown
}

/// One syntax error in the logic crate (rebuilt by rustc directly) and one in the host (rebuilt
/// by cargo), each fixed again: what the watcher showed for each.
fn syntax_errors_both_ways(fx: &Fixture, watch: &Watch) -> (String, String) {
    watch.wait_out(0, START, |l| l.contains("logic=v1"));
    let fast = break_and_fix(
        fx,
        watch,
        "logic/src/lib.rs",
        "let words =",
        "let words = ;",
    );
    let cargo = break_and_fix(
        fx,
        watch,
        "host/src/main.rs",
        "let pid = std::process::id();",
        "let pid = std::process::id() +;",
    );
    (fast, cargo)
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn diagnostics_into_a_pipe_are_plain_and_one_syntax_error_counts_once() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    let watch = Watch::start_colored(fx.path(), &[], &[]);
    let (fast, cargo) = syntax_errors_both_ways(&fx, &watch);
    assert!(
        fast.contains("build started (rustc directly)"),
        "the logic edit took the fast path:\n{fast}"
    );
    assert!(
        !cargo.contains("rustc directly"),
        "the host edit went through cargo:\n{cargo}"
    );
    for shown in [&fast, &cargo] {
        assert!(
            shown.contains("expected expression, found `;`"),
            "rustc's error is shown:\n{shown}"
        );
        assert!(
            shown.contains("build failed (1 error)"),
            "one syntax error, counted once:\n{shown}"
        );
    }
    let all = watch.err_since(0).join("\n");
    assert!(
        !all.contains("\x1b["),
        "no colour into a pipe:\n{}",
        all.replace('\x1b', "<ESC>")
    );
}

#[test]
fn color_always_colours_diagnostics_into_a_pipe() {
    let _serial = serial();
    let fx = Fixture::copy("hot");
    // The flag wins over the variable, as with cargo.
    let watch = Watch::start_colored(
        fx.path(),
        &["--color", "always"],
        &[("CARGO_TERM_COLOR", "never")],
    );
    let (fast, cargo) = syntax_errors_both_ways(&fx, &watch);
    for shown in [&fast, &cargo] {
        let rustc_line = shown
            .lines()
            .find(|l| l.contains("expected expression"))
            .unwrap_or_else(|| panic!("rustc's error is shown:\n{shown}"));
        assert!(
            rustc_line.contains("\x1b["),
            "rustc's diagnostic is coloured: {rustc_line:?}"
        );
        let ours = shown.lines().last().unwrap();
        assert!(
            ours.contains("\x1b[1;31merror:\x1b[0m"),
            "our error line is coloured: {ours:?}"
        );
        assert!(
            plain(shown).contains("build failed (1 error)"),
            "one syntax error, counted once:\n{shown}"
        );
    }
}

#[test]
fn our_lines_follow_cargo_term_color_unless_the_flag_says_otherwise() {
    // A refused setting: the error line, with nothing built.
    let fx = Fixture::copy("hot");
    workspace_settings(&fx, "hang-timeout-ms = 0");
    let run = |args: &[&str]| {
        let out = fx
            .dylib_dev()
            .args(args)
            .arg("watch")
            .env("CARGO_TERM_COLOR", "always")
            .env("CARGO_TARGET_DIR", fx.join("own-target"))
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let colored = run(&[]);
    assert!(
        colored.starts_with("\x1b[1;31merror:\x1b[0m `hang-timeout-ms = 0`"),
        "CARGO_TERM_COLOR=always colours into a pipe: {colored:?}"
    );
    let plain = run(&["--color=never"]);
    assert!(
        plain.starts_with("error: `hang-timeout-ms = 0`"),
        "--color=never wins over CARGO_TERM_COLOR: {plain:?}"
    );
}
