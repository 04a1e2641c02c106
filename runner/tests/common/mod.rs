//! Shared end-to-end test helpers: fixture copies in temp dirs and the real `dylib-dev` binary.
#![allow(dead_code)] // each test binary uses a different subset

pub mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (fixtures live in `tests/fixtures`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// One target dir shared by every fixture build of every test, so registry crates compile once.
pub fn shared_target_dir() -> PathBuf {
    std::env::var_os("DYLIB_DEV_E2E_TARGET")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target").join("e2e"))
}

/// The variables `cargo test` sets for the test process about the *runner* package
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...), which a cargo started by a test must not inherit:
/// cargo fingerprints some of them for build scripts (e.g. `ring`'s, under polars), so a build run
/// by a test and one run from a shell would each invalidate the other's build of everything above.
pub fn cargo_test_env() -> Vec<std::ffi::OsString> {
    std::env::vars_os()
        .map(|(key, _)| key)
        .filter(|key| {
            let k = key.to_string_lossy();
            matches!(
                k.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
            ) || k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_BIN_EXE_")
        })
        .collect()
}

/// A fixture project copied into its own temp dir.
pub struct Fixture {
    /// Keeps the temp dir alive.
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// Copies `tests/fixtures/<name>` into a fresh temp dir.
    pub fn copy(name: &str) -> Fixture {
        let src = repo_root().join("tests/fixtures").join(name);
        assert!(src.is_dir(), "no fixture at {}", src.display());
        let dir = tempfile::Builder::new()
            .prefix(&format!("dylib-dev-{name}-"))
            .tempdir()
            .unwrap();
        copy_tree(&src, dir.path());
        Fixture { dir }
    }

    /// Copies `examples/<name>` (a project the repository ships for people) into a fresh temp dir.
    ///
    /// Examples name the runtime crate by a relative path into the repository
    /// (`../../../runner/runtime`); in the copy, every `path = "..."` of a manifest that leads out
    /// of the example becomes the absolute path it pointed to.
    pub fn copy_example(name: &str) -> Fixture {
        let src = repo_root().join("examples").join(name);
        assert!(src.is_dir(), "no example at {}", src.display());
        let dir = tempfile::Builder::new()
            .prefix(&format!("dylib-dev-example-{name}-"))
            .tempdir()
            .unwrap();
        copy_tree(&src, dir.path());
        let src = src.canonicalize().unwrap();
        rebase_outside_paths(&src, &src, dir.path());
        Fixture { dir }
    }

    /// The project's root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the project.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Reads a file of the project.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Replaces `from` (which must occur) by `to` in a file of the project, as an editor save.
    pub fn replace(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} has no {from:?}");
        self.write(rel, &text.replace(from, to));
    }

    /// Writes a file of the project.
    pub fn write(&self, rel: &str, contents: &str) {
        std::fs::write(self.join(rel), contents).unwrap_or_else(|e| panic!("write {rel}: {e}"));
    }

    /// `dylib-dev` with the project as working directory and the shared target dir.
    pub fn dylib_dev(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("dylib-dev").unwrap();
        for key in cargo_test_env() {
            cmd.env_remove(key);
        }
        cmd.current_dir(self.path())
            .env("CARGO_TARGET_DIR", shared_target_dir())
            .env_remove("DYLIB_DEV_LOG")
            .env_remove("CARGO_TERM_COLOR")
            .env("NO_COLOR", "1");
        cmd
    }

    /// `cargo` with the project as working directory and the shared target dir.
    pub fn cargo(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO"));
        for key in cargo_test_env() {
            cmd.env_remove(key);
        }
        cmd.current_dir(self.path())
            .env("CARGO_TARGET_DIR", shared_target_dir())
            .env_remove("RUSTFLAGS");
        cmd
    }

    /// Every file below the root except build output, with its bytes.
    pub fn tree(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        walk(self.path(), self.path(), &mut out);
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_name() == "target" {
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if entry.file_type().unwrap().is_dir() {
            out.insert(format!("{rel}/"), Vec::new());
            walk(root, &path, out);
        } else {
            out.insert(rel, std::fs::read(&path).unwrap());
        }
    }
}

/// Asserts two trees are identical, naming the first difference.
pub fn assert_same_tree(before: &BTreeMap<String, Vec<u8>>, after: &BTreeMap<String, Vec<u8>>) {
    for (path, bytes) in before {
        match after.get(path) {
            None => panic!("{path} is missing"),
            Some(now) if now != bytes => panic!(
                "{path} differs:\n--- before\n{}\n--- after\n{}",
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(now)
            ),
            _ => {}
        }
    }
    for path in after.keys() {
        assert!(before.contains_key(path), "{path} was left behind");
    }
}

/// Copies a directory tree (skipping `target/`).
pub fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "target" {
            continue;
        }
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to);
        } else if entry.file_name() == "Cargo.toml" {
            // Fixtures name the runtime crate by placeholder: their copies live outside the repo.
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let runtime = repo_root().join("runner/runtime");
            std::fs::write(
                &to,
                text.replace(RUNTIME_PLACEHOLDER, &runtime.to_string_lossy()),
            )
            .unwrap();
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// Rewrites, in the copies under `dst` of the manifests under `dir` (part of the tree `root`),
/// each `path = "<relative>"` that resolves outside `root` to that absolute path.
fn rebase_outside_paths(root: &Path, dir: &Path, dst: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap();
        if entry.file_name() == "target" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            rebase_outside_paths(root, &path, dst);
            continue;
        }
        if entry.file_name() != "Cargo.toml" {
            continue;
        }
        let copy = dst.join(rel);
        let text = std::fs::read_to_string(&copy).unwrap();
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find("path = \"") {
            let (head, tail) = rest.split_at(at + "path = \"".len());
            out.push_str(head);
            let end = tail.find('"').expect("closing quote");
            let value = &tail[..end];
            let target = path.parent().unwrap().join(value);
            match target.canonicalize() {
                Ok(abs) if Path::new(value).is_relative() && !abs.starts_with(root) => {
                    out.push_str(&abs.to_string_lossy());
                }
                _ => out.push_str(value),
            }
            rest = &tail[end..];
        }
        out.push_str(rest);
        std::fs::write(&copy, out).unwrap();
    }
}

/// Stands for the path of `runner/runtime` in fixture manifests.
pub const RUNTIME_PLACEHOLDER: &str = "@DYLIB_DEV_RUNTIME@";

/// Output of a finished command as text, for assertion messages.
pub fn text(output: &std::process::Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The `NEEDED` entries of an ELF file, or `None` (with a note) when readelf is not installed.
pub fn needed_libraries(file: &Path) -> Option<Vec<String>> {
    let out = match Command::new("readelf").arg("-d").arg(file).output() {
        Ok(out) => out,
        Err(err) => {
            eprintln!("readelf not available ({err}); NEEDED check skipped");
            return None;
        }
    };
    assert!(out.status.success(), "readelf failed: {}", text(&out));
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("(NEEDED)"))
            .filter_map(|l| Some(l.split_once('[')?.1.trim_end_matches(']').to_string()))
            .collect(),
    )
}

/// The number after `key` in `line`, up to the next non-digit.
pub fn number_after(line: &str, key: &str) -> u64 {
    let at = line
        .find(key)
        .unwrap_or_else(|| panic!("no {key:?} in {line:?}"))
        + key.len();
    let digits: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits
        .parse()
        .unwrap_or_else(|e| panic!("no number after {key:?} in {line:?}: {e}"))
}
