//! End-to-end tests of `dylib-dev init` / `deinit`. The in-place route (the default) on a project
//! `cargo init` made: the `dylib_dev` dependency and nothing else, a build with a
//! `#[dylib_dev::hot]` function, a patch in the running process, the undo. The split route
//! (`init --split`) on temp copies of the `ticker` fixture (a plain binary package with itoa +
//! serde_json): the layout it writes, a build and a live swap after the move `init` asks for, and
//! the undo.
mod common;

use common::watch::{CHANGE, START, Watch, serial};
use common::{Fixture, assert_same_tree, text};
use std::time::Instant;

/// stderr and stdout of a run, for snapshots.
fn messages(out: &std::process::Output) -> String {
    format!(
        "--- stderr\n{}--- stdout\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

fn run(fx: &Fixture, args: &[&str]) -> std::process::Output {
    let out = fx.dylib_dev().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?} failed:\n{}", text(&out));
    out
}

fn files(fx: &Fixture, paths: &[&str]) -> String {
    paths
        .iter()
        .map(|p| format!("=== {p} ===\n{}", fx.read(p)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the user does by hand after `init`, as it told them: `render` moves into the logic crate,
/// the host declares it in `hot_module!` and calls it as `logic::render`.
fn move_render_into_logic(fx: &Fixture) {
    let main = fx.read("src/main.rs");
    let start = main.find("/// The line for tick").expect("render's doc");
    let end = main.find("fn main").expect("main");
    let render = &main[start..end];
    let host = format!(
        "{}dylib_dev_runtime::hot_module! {{\n    mod logic(\"ticker_logic\") {{\n        unsafe extern \"Rust\" {{\n            pub fn render(n: u64) -> String;\n        }}\n    }}\n}}\n\n{}",
        &main[..start],
        main[end..].replace("render(n)", "logic::render(n)")
    );
    fx.write("src/main.rs", &host);
    let lib = fx.read("ticker-logic/src/lib.rs");
    let moved = render.replace("fn render", "#[unsafe(no_mangle)]\npub fn render");
    fx.write("ticker-logic/src/lib.rs", &format!("{lib}\n{moved}"));
}

/// `{"pid":4242,"text":"render=v1","tick":"12"}` -> (pid, tick).
fn pid_and_tick(line: &str) -> (u32, u64) {
    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    (
        v["pid"].as_u64().unwrap() as u32,
        v["tick"].as_str().unwrap().parse().unwrap(),
    )
}

#[test]
fn init_then_build_swap_and_deinit_restores_every_byte() {
    let _serial = serial();
    let fx = Fixture::copy("ticker");
    let before = fx.tree();

    let t = Instant::now();
    let out = run(&fx, &["init", "--split", "itoa", "serde_json"]);
    eprintln!("init: {} ms", t.elapsed().as_millis());
    insta::assert_snapshot!("init_messages", messages(&out));
    insta::assert_snapshot!(
        "init_manifests",
        files(
            &fx,
            &[
                "Cargo.toml",
                "src/main.rs",
                "ticker-logic/Cargo.toml",
                "ticker-logic/src/lib.rs",
                "ticker-deps/Cargo.toml",
            ]
        )
    );
    let runtime = fx.read("dylib-dev-runtime/Cargo.toml");
    assert!(
        runtime.starts_with("# A copy of dylib-dev-runtime"),
        "{runtime}"
    );
    let repo = common::repo_root().to_string_lossy().into_owned();
    for (path, bytes) in fx.tree() {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&repo),
            "{path} names the repository"
        );
    }
    let after_init = fx.tree();

    // A plain build still works (static, the logic crate and the deps dylib included).
    let t = Instant::now();
    let build = fx.cargo().arg("build").output().unwrap();
    assert!(build.status.success(), "{}", text(&build));
    eprintln!("plain cargo build: {} ms", t.elapsed().as_millis());

    move_render_into_logic(&fx);
    let t = Instant::now();
    let watch = Watch::start_in(fx.path(), &[("TICK_MS", "20")]);
    let (at, line) = watch.wait_out(0, START, |l| l.contains("render=v1"));
    eprintln!("watch to first output: {} ms", t.elapsed().as_millis());
    let (pid, tick) = pid_and_tick(&line);
    let lib = fx.read("ticker-logic/src/lib.rs");
    let edited = Instant::now();
    fx.write(
        "ticker-logic/src/lib.rs",
        &lib.replace("render=v1", "render=v2"),
    );
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.contains("render=v2"));
    eprintln!("edit to new output: {} ms", edited.elapsed().as_millis());
    let (pid2, tick2) = pid_and_tick(&line);
    assert_eq!(pid2, pid, "same host process after the swap");
    assert!(tick2 > tick, "the host kept its state: {tick} -> {tick2}");
    watch.wait_err(0, CHANGE, |l| l.contains("Swapped ticker_logic"));
    drop(watch);

    // Move the code back (the user's part), then deinit undoes everything else.
    for path in ["src/main.rs", "ticker-logic/src/lib.rs"] {
        fx.write(path, &String::from_utf8(after_init[path].clone()).unwrap());
    }
    let out = run(&fx, &["deinit"]);
    insta::assert_snapshot!("deinit_messages", messages(&out));
    assert_same_tree(&before, &fx.tree());
}

#[test]
fn deinit_keeps_what_the_user_changed_since() {
    let fx = Fixture::copy("ticker");
    let original = fx.read("Cargo.toml");
    run(&fx, &["-q", "init", "--split", "itoa"]);
    // The user adds a dependency and a function of their own to the logic crate.
    fx.write(
        "Cargo.toml",
        &fx.read("Cargo.toml").replace(
            "serde_json = \"1\"\n",
            "serde_json = \"1\"\nmemchr = \"2\"\n",
        ),
    );
    let lib = fx.read("ticker-logic/src/lib.rs");
    fx.write(
        "ticker-logic/src/lib.rs",
        &format!("{lib}\npub fn mine() {{}}\n"),
    );

    let out = run(&fx, &["deinit"]);
    insta::assert_snapshot!("deinit_kept_edits", messages(&out));
    assert_eq!(
        fx.read("Cargo.toml"),
        original.replace(
            "serde_json = \"1\"\n",
            "serde_json = \"1\"\nmemchr = \"2\"\n"
        ),
        "only dylib-dev's additions are gone"
    );
    assert!(fx.read("ticker-logic/src/lib.rs").contains("pub fn mine()"));
    assert!(!fx.join("ticker-logic/Cargo.toml").exists());
    assert!(!fx.join("dylib-dev-runtime").exists());
    assert!(!fx.join("ticker-deps").exists());
}

#[test]
fn init_picks_heavy_dependencies_like_wrap_auto_and_deinit_restores() {
    // Without crates named: what `wrap --auto` picks (serde_json links ~2 MiB of source, itoa 18 KiB).
    let fx = Fixture::copy("ticker");
    let before = fx.tree();
    let out = run(&fx, &["init", "--split"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Wrapped serde_json into `ticker-deps`"),
        "{stderr}"
    );
    assert!(
        fx.read("ticker-deps/src/lib.rs")
            .contains("pub use serde_json;")
    );
    assert!(!fx.read("ticker-deps/src/lib.rs").contains("itoa"));
    run(&fx, &["deinit"]);
    assert_same_tree(&before, &fx.tree());

    // Nothing heavy enough: no deps dylib, the rest as usual; no Cargo.lock before, none after.
    let fx = Fixture::copy("ticker");
    std::fs::remove_file(fx.join("Cargo.lock")).unwrap();
    let before = fx.tree();
    let out = run(&fx, &["init", "--split", "--min-source-kib", "100000"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing was wrapped"), "{stderr}");
    assert!(!fx.join("ticker-deps").exists());
    let manifest = fx.read("Cargo.toml");
    assert!(
        manifest.contains("members = [\"ticker-logic\"]") && !manifest.contains("dynamic"),
        "{manifest}"
    );
    assert!(fx.join("Cargo.lock").exists(), "init settles the lock file");
    run(&fx, &["deinit"]);
    assert_same_tree(&before, &fx.tree());
}

#[test]
fn refusals_name_the_problem_and_write_nothing() {
    let mut shown = Vec::new();
    let mut refuse = |fx: &Fixture, args: &[&str]| {
        let before = fx.tree();
        let out = fx.dylib_dev().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_same_tree(&before, &fx.tree());
        let shown_messages = messages(&out).replace(&fx.path().display().to_string(), "[PROJECT]");
        shown.push(format!("$ dylib-dev {}\n{shown_messages}", args.join(" ")));
    };

    let fx = Fixture::copy("ticker");
    refuse(&fx, &["init", "not-a-dependency"]);
    run(&fx, &["-q", "init", "--split", "itoa"]);
    refuse(&fx, &["init"]);
    refuse(&fx, &["init", "--split"]);

    let library = Fixture::copy("ticker");
    std::fs::rename(library.join("src/main.rs"), library.join("src/lib.rs")).unwrap();
    refuse(&library, &["init"]);
    refuse(&library, &["deinit"]);

    let project = Fixture::copy("ticker");
    std::fs::create_dir(project.join("dylib-dev-runtime")).unwrap();
    refuse(&project, &["init"]);

    insta::assert_snapshot!("init_refusals", shown.join("\n"));
}

/// A project as `cargo init` makes it, with a comment in its manifest (which `init` must keep) and
/// a function worth making hot.
fn cargo_init_project() -> Fixture {
    let dir = tempfile::Builder::new()
        .prefix("dylib-dev-hotinit-")
        .tempdir()
        .unwrap();
    let fx = Fixture { dir };
    let made = fx
        .cargo()
        .args(["init", "--vcs", "none", "--bin", "--name", "hotinit"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    fx.replace(
        "Cargo.toml",
        "[dependencies]",
        "# The tuning knobs live here.\n[dependencies]",
    );
    fx.write(
        "src/main.rs",
        "fn line(n: u64) -> String {\n    format!(\"line-v1 {} {n}\", std::process::id())\n}\n\n\
         async fn later() {}\n\n\
         fn main() {\n    let _ = later();\n    let mut n = 0;\n    loop {\n        n += 1;\n        \
         println!(\"{}\", line(n));\n        std::thread::sleep(std::time::Duration::from_millis(50));\n    }\n}\n",
    );
    fx
}

/// `line-v1 <pid> <n>` -> (pid, n).
fn pid_and_n(line: &str) -> (u32, u64) {
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[1].parse().unwrap(), words[2].parse().unwrap())
}

#[test]
fn in_place_init_adds_the_dependency_only_builds_hot_functions_and_deinit_restores_every_byte() {
    let _serial = serial();
    let fx = cargo_init_project();
    let original = fx.read("Cargo.toml");
    let main = fx.read("src/main.rs");
    let before = fx.tree();

    let out = run(&fx, &["init"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let manifest = fx.read("Cargo.toml");
    assert!(
        manifest.starts_with(&original),
        "everything before is kept, formatting and comments included:\n{manifest}"
    );
    assert!(
        manifest.contains(
            "dylib_dev = { package = \"dylib-dev-runtime\", path = \"dylib-dev-runtime\""
        ),
        "{manifest}"
    );
    assert!(!manifest.contains("[workspace"), "{manifest}");
    assert!(!fx.join("hotinit-logic").exists(), "no logic crate");
    assert!(fx.join("dylib-dev-runtime/init-record.json").is_file());
    assert!(fx.join("dylib-dev-runtime/macros/Cargo.toml").is_file());
    assert!(stdout.contains("#[dylib_dev::hot]"), "{stdout}");
    assert!(
        stdout.contains("fn line(n: u64) -> String    <- can be hot"),
        "{stdout}"
    );
    assert!(
        stdout.contains("async fn later()    <- cannot be hot: an `async fn`"),
        "{stdout}"
    );
    assert!(stdout.contains("`main` itself"), "{stdout}");
    assert!(stdout.contains("run `dylib-dev watch`"), "{stdout}");
    let after_init = fx.tree();

    // Set up already: refused either way, naming the journal, nothing written.
    for args in [&["init"][..], &["init", "--split"]] {
        let again = fx.dylib_dev().args(args).output().unwrap();
        assert!(!again.status.success(), "{args:?} succeeded twice");
        let err = String::from_utf8_lossy(&again.stderr);
        assert!(
            err.contains("is set up already")
                && err.contains("dylib-dev-runtime/init-record.json")
                && err.contains("`dylib-dev deinit` undoes `init`"),
            "{err}"
        );
        assert_same_tree(&after_init, &fx.tree());
    }

    // A hot function builds with plain cargo, and `watch` patches it in the same process.
    fx.write(
        "src/main.rs",
        &main.replace("fn line(", "#[dylib_dev::hot]\nfn line("),
    );
    let build = fx.cargo().arg("build").output().unwrap();
    assert!(build.status.success(), "{}", text(&build));
    let watch = Watch::start_in(fx.path(), &[]);
    let (at, first) = watch.wait_out(0, START, |l| l.starts_with("line-v1 "));
    let (pid, n) = pid_and_n(&first);
    fx.replace("src/main.rs", "line-v1", "line-v2");
    let (_, patched) = watch.wait_out(at, CHANGE, |l| l.starts_with("line-v2 "));
    let (same, later) = pid_and_n(&patched);
    assert_eq!(same, pid, "patched into the same process: {patched}");
    assert!(later > n, "the loop went on: {n} then {later}");
    drop(watch);

    // The attribute taken out again (the user's part): `deinit` restores every byte.
    fx.write("src/main.rs", &main);
    let out = run(&fx, &["deinit"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("removed the runtime copy"), "{stderr}");
    assert_same_tree(&before, &fx.tree());
}

#[test]
fn in_place_init_wraps_heavy_dependencies_for_the_host_alone_and_deinit_restores() {
    let fx = Fixture::copy("ticker");
    let before = fx.tree();
    let out = run(&fx, &["init", "serde_json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Wrapped serde_json into `ticker-deps`, linked by the host\n"),
        "{stderr}"
    );
    assert!(!fx.join("ticker-logic").exists(), "no logic crate");
    let manifest = fx.read("Cargo.toml");
    assert!(
        manifest.contains("dylib_dev = { package = \"dylib-dev-runtime\"")
            && manifest.contains("\"dylib-dev-runtime\"]")
            && !manifest.contains("metadata"),
        "the runtime copy stays out of the workspace `wrap` makes:\n{manifest}"
    );
    run(&fx, &["deinit"]);
    assert_same_tree(&before, &fx.tree());
}
