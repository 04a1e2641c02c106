//! End-to-end tests of `dylib-dev new`: the real binary renders the embedded templates into temp
//! dirs outside the repository; the minimal project builds with plain cargo and in dynamic mode
//! and swaps under `dylib-dev watch`.
mod common;

use common::watch::{CHANGE, START, Watch, serial};
use common::{Fixture, repo_root, text};
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

/// An empty temp dir outside the repository to run `new` in.
fn outside() -> Fixture {
    let dir = tempfile::Builder::new()
        .prefix("dylib-dev-new-")
        .tempdir()
        .unwrap();
    let repo = repo_root().canonicalize().unwrap();
    assert!(
        !dir.path().canonicalize().unwrap().starts_with(&repo),
        "the temp dir must be outside the repository"
    );
    Fixture { dir }
}

/// stderr and stdout of a run, for snapshots.
fn messages(out: &std::process::Output) -> String {
    format!(
        "--- stderr\n{}--- stdout\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// Nothing in the generated tree names the repository, and every path dependency stays inside
/// the project: it builds anywhere.
fn assert_self_contained(project: &Path) {
    let repo = repo_root();
    let needles = [
        repo.to_string_lossy().into_owned(),
        repo.canonicalize().unwrap().to_string_lossy().into_owned(),
    ];
    for file in files(project) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "{} names the repository ({needle})",
                file.display()
            );
        }
        if file.file_name().is_some_and(|n| n == "Cargo.toml") {
            for (i, _) in text.match_indices("path = \"") {
                let rest = &text[i + 8..];
                let rel = &rest[..rest.find('"').unwrap()];
                let target = normalize(&file.parent().unwrap().join(rel));
                assert!(
                    target.starts_with(project),
                    "{}: path `{rel}` leaves the project",
                    file.display()
                );
            }
        }
    }
}

/// `tick 12 (pid 4242)` -> (pid, tick).
fn pid_and_tick(line: &str) -> (u32, u64) {
    let number = |after: &str, end: char| -> u64 {
        let rest = &line[line.find(after).unwrap_or_else(|| panic!("{line}")) + after.len()..];
        rest[..rest.find(end).unwrap()].parse().unwrap()
    };
    (number("(pid ", ')') as u32, number(" ", ' '))
}

#[test]
fn minimal_project_builds_anywhere_and_swaps_under_watch() {
    let _serial = serial();
    let fx = outside();
    let name = "new-e2e-counter"; // distinct artifacts in the shared target dir
    let t = Instant::now();
    let out = fx.dylib_dev().args(["new", name]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    eprintln!("new: {} ms", t.elapsed().as_millis());
    insta::assert_snapshot!("new_minimal", messages(&out));
    let project = fx.join(name);
    assert_self_contained(&project);
    let rel: Vec<String> = files(&project)
        .iter()
        .map(|f| f.strip_prefix(&project).unwrap().display().to_string())
        .filter(|f| {
            !f.starts_with("dylib-dev-runtime/src/")
                && !f.starts_with("dylib-dev-runtime/macros/src/")
        })
        .collect();
    insta::assert_snapshot!("new_minimal_files", rel.join("\n"));
    insta::assert_snapshot!(
        "new_minimal_manifests",
        ["Cargo.toml", "host/Cargo.toml", "logic/Cargo.toml"]
            .iter()
            .map(|p| format!(
                "=== {p} ===\n{}",
                std::fs::read_to_string(project.join(p)).unwrap()
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Plain cargo: static, and the host runs without the runner, logic loaded from next to it.
    let t = Instant::now();
    let build = fx
        .cargo()
        .current_dir(&project)
        .arg("build")
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", text(&build));
    eprintln!("plain cargo build: {} ms", t.elapsed().as_millis());
    let exe = common::shared_target_dir().join("debug").join(name);
    let mut host = std::process::Command::new(&exe)
        .env("TICK_MS", "10")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(host.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let _ = host.kill();
    let _ = host.wait();
    assert!(first.starts_with("tick 1 (pid "), "{first}");

    // Dynamic mode, as `watch` builds it (prefer-dynamic, own target dir, dylib-dev as wrapper).
    let t = Instant::now();
    let dynamic = fx
        .cargo()
        .current_dir(&project)
        .args(["build", "-p", name, "-p", &format!("{name}-logic")])
        .arg("--target-dir")
        .arg(common::shared_target_dir().join("dylib-dev"))
        .env("CARGO_ENCODED_RUSTFLAGS", "-Cprefer-dynamic")
        .env("RUSTC_WORKSPACE_WRAPPER", env!("CARGO_BIN_EXE_dylib-dev"))
        .env("DYLIB_DEV_RUSTC_WRAPPER", "1")
        .output()
        .unwrap();
    assert!(dynamic.status.success(), "{}", text(&dynamic));
    eprintln!("dynamic build: {} ms", t.elapsed().as_millis());

    let t = Instant::now();
    let watch = Watch::start_in(&project, &[("TICK_MS", "20")]);
    let (at, line) = watch.wait_out(0, START, |l| l.starts_with("tick "));
    eprintln!("watch to first output: {} ms", t.elapsed().as_millis());
    let (pid, tick) = pid_and_tick(&line);
    let lib = project.join("logic/src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    let edited = Instant::now();
    std::fs::write(&lib, source.replace("\"tick {}", "\"TOCK {}")).unwrap();
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.starts_with("TOCK "));
    eprintln!("edit to new output: {} ms", edited.elapsed().as_millis());
    let (pid2, tick2) = pid_and_tick(&line.replacen("TOCK", "tick", 1));
    assert_eq!(pid2, pid, "same host process after the swap");
    assert!(tick2 > tick, "the counter kept counting: {tick} -> {tick2}");
    watch.wait_err(0, CHANGE, |l| l.contains("Swapped"));
}

#[test]
fn non_empty_directory_is_refused_and_nothing_is_written() {
    let fx = outside();
    fx.write("taken.txt", "mine");
    std::fs::create_dir(fx.join("app")).unwrap();
    fx.write("app/notes.txt", "mine too");
    let before = fx.tree();
    let out = fx.dylib_dev().args(["new", "app"]).output().unwrap();
    assert!(!out.status.success());
    insta::assert_snapshot!("new_non_empty", messages(&out));
    let out = fx.dylib_dev().args(["new", "taken.txt"]).output().unwrap();
    assert!(!out.status.success());
    insta::assert_snapshot!("new_not_a_directory", messages(&out));
    common::assert_same_tree(&before, &fx.tree());
}

#[test]
fn invalid_names_are_refused_and_nothing_is_written() {
    let fx = outside();
    let before = fx.tree();
    let mut shown = Vec::new();
    for args in [
        &["new", "2048"][..],
        &["new", "My App"],
        &["new", "nested/dir/test"],
        &["new", "ok-dir", "--name", "fn"],
    ] {
        let out = fx.dylib_dev().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        shown.push(format!(
            "$ dylib-dev {}\n{}",
            args.join(" "),
            messages(&out)
        ));
    }
    insta::assert_snapshot!("new_invalid_names", shown.join("\n"));
    common::assert_same_tree(&before, &fx.tree());
}

#[test]
fn empty_directory_nested_path_and_name_override() {
    let fx = outside();
    std::fs::create_dir(fx.join("empty")).unwrap();
    let out = fx
        .dylib_dev()
        .args(["-q", "new", "empty"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        fx.read("empty/host/Cargo.toml")
            .contains("name = \"empty\"")
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cd empty && dylib-dev watch"),
        "{}",
        text(&out)
    );

    // `new .` in an empty directory: the directory itself stays (a shell may be in it).
    std::fs::create_dir(fx.join("here")).unwrap();
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let here = inode(&fx.join("here"));
    let out = fx
        .dylib_dev()
        .current_dir(fx.join("here"))
        .args(["new", "."])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(inode(&fx.join("here")), here, "the same directory");
    assert!(fx.read("here/host/Cargo.toml").contains("name = \"here\""));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\n    dylib-dev watch\n") && !stdout.contains("cd "),
        "{stdout}"
    );
    let left: Vec<_> = std::fs::read_dir(fx.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "no temp dir left next to it: {left:?}");

    let out = fx
        .dylib_dev()
        .args(["new", "a/b/My Project", "--name", "my-project"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let host = fx.read("a/b/My Project/host/src/main.rs");
    assert!(host.contains("mod logic(\"my_project_logic\")"), "{host}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cd 'a/b/My Project' && dylib-dev watch"),
        "{}",
        text(&out)
    );
    // Nothing else next to the projects: the temp dirs were renamed into place.
    let mut left: Vec<String> = std::fs::read_dir(fx.join("a/b"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["My Project"]);
}

#[test]
fn templates_are_listed_in_help_and_errors() {
    let fx = outside();
    let out = fx.dylib_dev().args(["new", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("minimal") && help.contains("a counter"),
        "{help}"
    );
    let out = fx
        .dylib_dev()
        .args(["new", "x", "--template", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    insta::assert_snapshot!("new_unknown_template", messages(&out));
    assert!(!fx.join("x").exists());
}
