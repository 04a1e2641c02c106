//! The published package works: `cargo package` the runner and the crates it depends on by path,
//! unpack the `.crate` files, `cargo install` the runner from there (no repository beside it, so its
//! templates come from `embedded.bundle`), and let the installed binary make a project.
//!
//! The install builds in the shared e2e target dir, so the runner's dependencies compile once per
//! machine; it uses the versions the package's `Cargo.lock` pins (the workspace's own).
mod common;

use common::{cargo_test_env, repo_root, shared_target_dir, text};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The runner and its path dependencies: cargo packages them together, as it publishes them.
const PACKAGES: [&str; 3] = ["dylib-dev", "dylib-dev-runtime", "dylib-dev-macros"];

/// A project name no other test uses: its artifacts in the shared target dir are its own.
const APP: &str = "package-e2e-app";

fn cargo(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    for key in cargo_test_env() {
        cmd.env_remove(key);
    }
    // As `Fixture::cargo`: the same flags as the other builds in the shared target dir.
    cmd.current_dir(dir).env_remove("RUSTFLAGS");
    cmd
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}\n{}", text(&out));
    out
}

/// Every file below `dir` (relative path, bytes).
fn tree(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            tree(root, &path, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.insert(rel, std::fs::read(&path).unwrap());
        }
    }
}

#[test]
fn packaged_runner_installs_and_makes_a_project() {
    let start = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("dylib-dev-package-")
        .tempdir()
        .unwrap();
    let tmp = tmp.path();

    // `--no-verify`: verification would build all three crates once more; the install below
    // builds the runner from the unpacked package, which is what verification checks.
    let mut package = cargo(&repo_root());
    package.args(["package", "--no-verify", "--allow-dirty", "--target-dir"]);
    package.arg(tmp.join("package-target"));
    for name in PACKAGES {
        package.args(["-p", name]);
    }
    run(&mut package);
    let crates = tmp.join("package-target/package");
    let unpacked = tmp.join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let mut dirs: BTreeMap<&str, PathBuf> = BTreeMap::new();
    for name in PACKAGES {
        let file = std::fs::read_dir(&crates)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let f = p.file_name().unwrap().to_string_lossy();
                f.ends_with(".crate")
                    && f.strip_prefix(name)
                        .and_then(|v| v.strip_prefix('-'))
                        .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
            })
            .unwrap_or_else(|| panic!("no {name}-<version>.crate in {}", crates.display()));
        run(Command::new("tar")
            .arg("-xzf")
            .arg(&file)
            .arg("-C")
            .arg(&unpacked));
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        dirs.insert(name, unpacked.join(stem));
    }
    let runner = &dirs["dylib-dev"];
    assert!(
        runner.join("embedded.bundle").is_file() && !runner.join("runtime").exists(),
        "the package carries the bundle and not the runtime's directory"
    );
    eprintln!("packaged and unpacked: {} ms", start.elapsed().as_millis());

    // The packaged manifests name the runtime and macros crates by version, as crates.io would
    // serve them; they are not published, so the unpacked packages stand in for them.
    let patch = |name: &str| {
        format!(
            "patch.crates-io.{name}.path={:?}",
            dirs[name].to_string_lossy()
        )
    };
    let with_patches = |cmd: &mut Command| {
        for name in &PACKAGES[1..] {
            cmd.arg("--config").arg(patch(name));
        }
    };
    // Resolve once with the patches so the lock file keeps every other version it pins, then
    // install `--locked` from it.
    let mut resolve = cargo(runner);
    resolve.args(["metadata", "--format-version", "1"]);
    with_patches(&mut resolve);
    run(&mut resolve);
    let root = tmp.join("root");
    let mut install = cargo(tmp);
    install.args(["install", "--locked", "--debug", "--path"]);
    install.arg(runner).arg("--root").arg(&root);
    install.arg("--target-dir").arg(shared_target_dir());
    with_patches(&mut install);
    let t = Instant::now();
    run(&mut install);
    eprintln!("installed: {} ms", t.elapsed().as_millis());
    let installed = root.join("bin/dylib-dev");
    assert!(root.join("bin/cargo-dylib-dev").is_file());

    // The installed binary makes the project the repository's binary makes, byte for byte.
    let made = |binary: &Path, dir: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::create_dir_all(dir).unwrap();
        let mut cmd = Command::new(binary);
        for key in cargo_test_env() {
            cmd.env_remove(key);
        }
        run(cmd
            .args(["new", APP])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env_remove("DYLIB_DEV_LOG"));
        let mut files = BTreeMap::new();
        tree(&dir.join(APP), &dir.join(APP), &mut files);
        files
    };
    let from_package = made(&installed, &tmp.join("new-installed"));
    let from_repo = made(
        Path::new(env!("CARGO_BIN_EXE_dylib-dev")),
        &tmp.join("new-repo"),
    );
    common::assert_same_tree(&from_repo, &from_package);
    for file in [
        "Cargo.toml",
        "host/Cargo.toml",
        "logic/src/lib.rs",
        "dylib-dev-runtime/Cargo.toml",
        "dylib-dev-runtime/src/lib.rs",
        "dylib-dev-runtime/macros/Cargo.toml",
    ] {
        assert!(from_package.contains_key(file), "no {file} in the project");
    }

    // And cargo reads it: the members and the runtime copy resolve, from inside the project.
    let project = tmp.join("new-installed").join(APP);
    let out = run(cargo(&project).args(["metadata", "--format-version", "1"]));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages: BTreeMap<String, String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["source"].is_null())
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["manifest_path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let project = project.canonicalize().unwrap();
    for name in [
        APP.to_string(),
        format!("{APP}-logic"),
        format!("{APP}-shared"),
        "dylib-dev-runtime".into(),
        "dylib-dev-macros".into(),
    ] {
        let manifest = packages
            .get(&name)
            .unwrap_or_else(|| panic!("no local package {name} in {packages:?}"));
        assert!(
            Path::new(manifest).starts_with(&project),
            "{name} is at {manifest}, outside the project"
        );
    }
    eprintln!("total: {} ms", start.elapsed().as_millis());
}
