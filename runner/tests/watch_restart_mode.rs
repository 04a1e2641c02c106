//! `dylib-dev watch` in a project without a logic crate (a plain `cargo new` binary): restart
//! mode. Every edit rebuilds and restarts the host; a failed build keeps the old one running.
//! The real binary, real cargo and a real host, in a temp dir.
mod common;

use common::watch::{CHANGE, START, Watch, serial};
use std::path::Path;

/// A binary package with no dependencies whose `main` prints `<marker> <pid>` every 100 ms.
fn plain_project(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n"
        ),
    )
    .unwrap();
    write_main(dir, "marker-v1");
}

fn write_main(dir: &Path, marker: &str) {
    std::fs::write(
        dir.join("src/main.rs"),
        format!(
            "fn main() {{\n    loop {{\n        println!(\"{marker} {{}}\", std::process::id());\n        std::thread::sleep(std::time::Duration::from_millis(100));\n    }}\n}}\n"
        ),
    )
    .unwrap();
}

/// The pid a `<marker> <pid>` line names.
fn pid_of(line: &str) -> u32 {
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_plain_binary_restarts_on_every_edit_and_a_broken_edit_keeps_it_running() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    plain_project(dir, "restart-mode-plain");
    let watch = Watch::start_in(dir, &[]);

    let (_, line) = watch.wait_out(0, START, |l| l.starts_with("marker-v1 "));
    let first = pid_of(&line);
    let (_, started) = watch.wait_err(0, CHANGE, |l| l.contains("Started host (pid"));
    assert!(started.contains(&first.to_string()), "{started}");
    let head = watch.err_since(0).join("\n");
    assert!(
        head.contains("no logic crate: watch rebuilds and restarts the host on every change"),
        "the restart-mode line:\n{head}"
    );
    assert!(
        head.contains("`dylib-dev init`"),
        "how to swap instead:\n{head}"
    );
    assert!(
        !head.contains("wrap --auto"),
        "nothing heavy to wrap in a project without dependencies:\n{head}"
    );

    // An edit: a new host prints the new marker, and the watcher says it restarted.
    let (out_at, err_at) = (watch.out_len(), watch.err_len());
    write_main(dir, "marker-v2");
    let (_, line) = watch.wait_out(out_at, CHANGE, |l| l.starts_with("marker-v2 "));
    let second = pid_of(&line);
    assert_ne!(second, first, "a new process");
    watch.wait_err(err_at, CHANGE, |l| l.contains("Restarted"));

    // A broken edit: the compiler's error shows and the running host keeps printing.
    let err_at = watch.err_len();
    std::fs::write(
        dir.join("src/main.rs"),
        "fn main() {\n    let x: u32 = \"not a number\";\n}\n",
    )
    .unwrap();
    let (failed_at, _) = watch.wait_err(err_at, CHANGE, |l| l.contains("build failed"));
    let shown = watch.err_since(err_at)[..=failed_at - err_at].join("\n");
    assert!(
        shown.contains("mismatched types"),
        "the compiler's error:\n{shown}"
    );
    let out_at = watch.out_len();
    let (_, line) = watch.wait_out(out_at, CHANGE, |l| l.starts_with("marker-v2 "));
    assert_eq!(pid_of(&line), second, "the old host keeps running");

    // The fix restarts.
    let out_at = watch.out_len();
    write_main(dir, "marker-v3");
    let (_, line) = watch.wait_out(out_at, CHANGE, |l| l.starts_with("marker-v3 "));
    assert_ne!(pid_of(&line), second, "the fix runs in a new process");
    watch.wait_err(failed_at, CHANGE, |l| l.contains("Restarted"));
}
