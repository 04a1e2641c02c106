//! `#[dylib_dev::hot]` on what cannot be patched is a compile error that says what is supported,
//! and on a supported function it leaves plain `cargo build` code as written. Real cargo, real
//! rustc, in a temp dir.
mod common;

use std::process::Command;

/// A package `name` (unique per test: cargo fingerprints path packages relative to their
/// workspace, so two same-named packages in one target dir would pass for each other).
fn project(name: &str, main: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\n\
             dylib_dev = {{ package = \"dylib-dev-runtime\", path = \"{}\" }}\n\n[workspace]\n",
            common::repo_root().join("runner/runtime").display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), main).unwrap();
    tmp
}

fn cargo_build(dir: &std::path::Path) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO"));
    for key in common::cargo_test_env() {
        cmd.env_remove(key);
    }
    cmd.current_dir(dir)
        .args(["build", "--color=never"])
        .env("CARGO_TARGET_DIR", common::shared_target_dir())
        .env_remove("DYLIB_DEV_HOT_PATCHABLE")
        .output()
        .unwrap()
}

#[test]
fn unsupported_functions_are_compile_errors_that_say_what_is_supported() {
    let tmp = project(
        "hot-attr-refused",
        r#"
#[dylib_dev::hot]
fn generic<T: Copy>(x: T) -> T { x }

#[dylib_dev::hot]
async fn later() {}

#[dylib_dev::hot]
extern "C" fn exported() {}

#[dylib_dev::hot]
fn takes_impl(x: impl Fn()) { x() }

struct S;
impl S {
    #[dylib_dev::hot]
    fn method(&self) {}
}

fn main() {}
"#,
    );
    let out = cargo_build(tmp.path());
    assert!(!out.status.success());
    let err = common::text(&out);
    for what in [
        "#[hot] cannot be used on a generic function",
        "#[hot] cannot be used on an `async` function",
        "#[hot] cannot be used on an `extern` function",
        "#[hot] cannot be used on a function with `impl Trait` arguments",
        "#[hot] cannot be used on a method (a function taking `self`)",
    ] {
        assert!(err.contains(what), "`{what}` in:\n{err}");
    }
    assert!(
        err.contains("supports free functions (not methods) that are not generic"),
        "what is supported:\n{err}"
    );
}

#[test]
fn plain_cargo_builds_hot_functions_as_written() {
    let tmp = project(
        "hot-attr-plain",
        r#"
#[dylib_dev::hot]
fn frame<'a>(name: &'a str, n: &mut u64) -> &'a str {
    *n += 1;
    &name[..1]
}

fn main() {
    let mut n = 0;
    println!("{} {}", frame("xyz", &mut n), n);
}
"#,
    );
    let out = cargo_build(tmp.path());
    assert!(out.status.success(), "{}", common::text(&out));
    let exe = common::shared_target_dir().join("debug/hot-attr-plain");
    let run = Command::new(&exe).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "x 1\n");
    // Nothing of the patchable form: no section, no slot.
    let bytes = std::fs::read(&exe).unwrap();
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!has(b"dylib_dev_hot\0"), "no hot section in a plain build");
    assert!(!has(b"__HOT_SLOT_frame"), "no slot in a plain build");
}
