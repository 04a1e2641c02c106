//! End-to-end tests of `dylib-dev wrap` / `unwrap` on temp copies of fixture projects, with the
//! real binary and real cargo.
mod common;

use common::{Fixture, assert_same_tree, text};

/// Runs `wrap` with `args` in `dir` (relative to the fixture) and asserts it succeeded.
fn wrap(fx: &Fixture, dir: &str, args: &[&str]) -> std::process::Output {
    let out = fx
        .dylib_dev()
        .current_dir(fx.join(dir))
        .arg("wrap")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "wrap {args:?} failed:\n{}",
        text(&out)
    );
    out
}

/// The files a wrap touches or generates, concatenated for a snapshot.
fn files(fx: &Fixture, paths: &[&str]) -> String {
    paths
        .iter()
        .map(|p| format!("=== {p} ===\n{}", fx.read(p)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn diamond_builds_dynamically_with_same_output_and_unwrap_restores_every_byte() {
    let fx = Fixture::copy("diamond");
    let static_run = fx
        .cargo()
        .args(["run", "-q", "--", "x", "y"])
        .output()
        .unwrap();
    assert!(static_run.status.success(), "{}", text(&static_run));
    let before = fx.tree();

    wrap(&fx, ".", &["serde", "serde_json", "regex"]);
    let build = fx.dylib_dev().arg("build").output().unwrap();
    assert!(
        build.status.success(),
        "dynamic build failed:\n{}",
        text(&build)
    );

    let exe = common::shared_target_dir().join("dylib-dev/debug/diamond");
    assert!(exe.is_file(), "no dynamic binary at {}", exe.display());
    if let Some(needed) = common::needed_libraries(&exe) {
        assert!(
            needed.iter().any(|l| l.starts_with("libdiamond_deps")),
            "the deps dylib is not NEEDED: {needed:?}"
        );
        assert!(
            needed.iter().any(|l| l.starts_with("libstd-")),
            "std is not shared: {needed:?}"
        );
    }
    let dynamic_run = fx
        .dylib_dev()
        .args(["run", "--", "x", "y"])
        .output()
        .unwrap();
    assert!(dynamic_run.status.success(), "{}", text(&dynamic_run));
    assert_eq!(
        String::from_utf8_lossy(&dynamic_run.stdout),
        String::from_utf8_lossy(&static_run.stdout),
        "dynamic and static builds print the same"
    );

    let unwrap = fx.dylib_dev().arg("unwrap").output().unwrap();
    assert!(unwrap.status.success(), "{}", text(&unwrap));
    assert_same_tree(&before, &fx.tree());
}

#[test]
fn snapshot_single_package() {
    let fx = Fixture::copy("diamond");
    wrap(&fx, ".", &["serde", "serde_json", "regex"]);
    insta::assert_snapshot!(files(
        &fx,
        &[
            "Cargo.toml",
            "src/main.rs",
            "diamond-deps/Cargo.toml",
            "diamond-deps/src/lib.rs"
        ]
    ));
}

#[test]
fn snapshot_virtual_workspace_with_glob_members() {
    let fx = Fixture::copy("ws-glob");
    let before_root = fx.read("Cargo.toml");
    wrap(&fx, ".", &["-p", "app", "serde_json"]);
    assert_eq!(
        fx.read("Cargo.toml"),
        before_root,
        "crates/* already covers crates/app-deps"
    );
    insta::assert_snapshot!(files(
        &fx,
        &[
            "crates/app/Cargo.toml",
            "crates/app-deps/Cargo.toml",
            "crates/app-deps/src/lib.rs"
        ]
    ));
    let meta = fx
        .cargo()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&meta.stdout).contains("\"name\":\"app-deps\""),
        "app-deps is a member"
    );
}

#[test]
fn snapshot_root_package_with_members() {
    let fx = Fixture::copy("ws-root");
    wrap(&fx, ".", &["itoa"]);
    insta::assert_snapshot!(files(
        &fx,
        &[
            "Cargo.toml",
            "src/main.rs",
            "src/lib.rs",
            "game-deps/Cargo.toml"
        ]
    ));
}

/// Wraps one dependency of the `variants` fixture and snapshots what changed.
fn variant(dep: &str) -> String {
    let fx = Fixture::copy("variants");
    wrap(&fx, "app", &[dep]);
    files(
        &fx,
        &[
            "app/Cargo.toml",
            "app/app-deps/Cargo.toml",
            "app/app-deps/src/lib.rs",
        ],
    )
}

#[test]
fn snapshot_renamed_dependency() {
    insta::assert_snapshot!(variant("json"));
}

#[test]
fn snapshot_renamed_dependency_by_package_name() {
    assert_eq!(
        variant("serde_json"),
        variant("json"),
        "the package name finds the renamed entry"
    );
}

#[test]
fn snapshot_optional_dependency_behind_feature() {
    insta::assert_snapshot!(variant("regex"));
}

#[test]
fn snapshot_optional_dependency_implicit_feature() {
    insta::assert_snapshot!(variant("itoa"));
}

#[test]
fn snapshot_target_specific_dependency() {
    insta::assert_snapshot!(variant("ryu"));
}

#[test]
fn snapshot_default_features_off_with_features() {
    insta::assert_snapshot!(variant("memchr"));
}

#[test]
fn snapshot_path_dependency() {
    insta::assert_snapshot!(variant("local-lib"));
}

#[test]
fn every_variant_wrapped_together_builds_and_runs_like_static() {
    let fx = Fixture::copy("variants");
    let app = fx.join("app");
    let features = "text,itoa";
    let static_run = fx
        .cargo()
        .current_dir(&app)
        .args(["run", "-q", "--features", features])
        .output()
        .unwrap();
    assert!(static_run.status.success(), "{}", text(&static_run));
    let before = fx.tree();
    wrap(
        &fx,
        "app",
        &["json", "regex", "itoa", "memchr", "local-lib", "ryu"],
    );
    let run = fx
        .dylib_dev()
        .current_dir(&app)
        .args(["run", "-F", features])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&static_run.stdout)
    );
    let unwrap = fx
        .dylib_dev()
        .current_dir(&app)
        .arg("unwrap")
        .output()
        .unwrap();
    assert!(unwrap.status.success(), "{}", text(&unwrap));
    assert_same_tree(&before, &fx.tree());
}

#[test]
fn wrap_is_idempotent_and_grows_the_same_crate() {
    let fx = Fixture::copy("diamond");
    wrap(&fx, ".", &["serde"]);
    let once = fx.tree();
    let again = wrap(&fx, ".", &["serde"]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("Unchanged"),
        "{}",
        text(&again)
    );
    assert_same_tree(&once, &fx.tree());

    wrap(&fx, ".", &["regex"]);
    let manifest = fx.read("Cargo.toml");
    assert_eq!(manifest.matches("diamond-deps = ").count(), 1, "{manifest}");
    assert_eq!(
        fx.read("src/main.rs")
            .matches("use diamond_deps as _;")
            .count(),
        1
    );
    let lib = fx.read("diamond-deps/src/lib.rs");
    assert!(
        lib.contains("pub use serde;") && lib.contains("pub use regex;"),
        "{lib}"
    );
    let twice = fx.tree();
    wrap(&fx, ".", &["regex", "serde"]);
    assert_same_tree(&twice, &fx.tree());
}

#[test]
fn auto_wraps_heavy_dependencies_and_never_proc_macros() {
    let fx = Fixture::copy("variants");
    let out = wrap(&fx, "app", &["--auto"]);
    let report = String::from_utf8_lossy(&out.stderr);
    let row = |dep: &str| {
        report
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{dep} ")))
            .unwrap_or_else(|| panic!("no row for {dep}:\n{report}"))
            .to_string()
    };
    assert!(row("regex").contains("wrap"), "{report}");
    assert!(row("itoa").contains("skip"), "{report}");
    assert!(row("serde_derive").contains("proc-macro"), "{report}");
    let deps = fx.read("app/app-deps/Cargo.toml");
    assert!(
        deps.contains("regex = ") && !deps.contains("itoa") && !deps.contains("serde_derive"),
        "{deps}"
    );
}

/// Runs a `wrap` that must be refused: non-zero exit, `expect` in the message, no byte written.
fn refused(fx: &Fixture, dir: &str, args: &[&str], expect: &[&str]) {
    let before = fx.tree();
    let out = fx
        .dylib_dev()
        .current_dir(fx.join(dir))
        .args(args)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "{args:?} should fail:\n{}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in expect {
        assert!(
            stderr.contains(needle),
            "{args:?}: message lacks {needle:?}:\n{stderr}"
        );
    }
    assert_same_tree(&before, &fx.tree());
}

#[test]
fn malformed_manifest_is_refused_with_file_and_line() {
    let fx = Fixture::copy("diamond");
    let broken = fx
        .read("Cargo.toml")
        .replace("[dependencies]", "[dependencies\n");
    fx.write("Cargo.toml", &broken);
    refused(
        &fx,
        ".",
        &["wrap", "serde"],
        &["Cargo.toml", "line 8", "not valid TOML"],
    );
}

#[test]
fn unknown_dependency_is_refused() {
    let fx = Fixture::copy("diamond");
    refused(
        &fx,
        ".",
        &["wrap", "polars"],
        &[
            "`polars` is not a dependency",
            "Cargo.toml",
            "cargo add polars",
        ],
    );
}

#[test]
fn proc_macro_is_refused() {
    let fx = Fixture::copy("variants");
    refused(
        &fx,
        "app",
        &["wrap", "serde_derive"],
        &["proc-macro", "serde_derive"],
    );
}

#[test]
fn dev_dependency_is_refused() {
    let fx = Fixture::copy("variants");
    refused(
        &fx,
        "app",
        &["wrap", "fastrand"],
        &["only a dev-dependency", "Cargo.toml"],
    );
}

#[test]
fn missing_manifest_is_refused() {
    let fx = Fixture::copy("diamond");
    std::fs::create_dir(fx.join("empty")).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let out = fx
        .dylib_dev()
        .current_dir(outside.path())
        .args(["wrap", "serde"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not find `Cargo.toml`"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written"
    );
    refused(
        &fx,
        ".",
        &["wrap", "--manifest-path", "empty/Cargo.toml", "serde"],
        &["does not exist"],
    );
}

#[test]
fn package_outside_workspace_is_refused() {
    let fx = Fixture::copy("ws-glob");
    refused(
        &fx,
        ".",
        &["wrap", "-p", "nope", "serde_json"],
        &["`nope` is not a member", "app, util"],
    );
}

#[test]
fn ambiguous_virtual_workspace_asks_for_a_package() {
    let fx = Fixture::copy("ws-glob");
    refused(&fx, ".", &["wrap", "serde_json"], &["-p <name>"]);
}

#[test]
fn foreign_dynamic_feature_is_refused() {
    let fx = Fixture::copy("diamond");
    let manifest = fx.read("Cargo.toml") + "\n[features]\ndynamic = []\n";
    fx.write("Cargo.toml", &manifest);
    refused(
        &fx,
        ".",
        &["wrap", "serde"],
        &["already has a feature `dynamic`"],
    );
}

#[test]
fn unwrap_keeps_edits_made_after_wrap() {
    let fx = Fixture::copy("diamond");
    let original_manifest = fx.read("Cargo.toml");
    let original_main = fx.read("src/main.rs");
    wrap(&fx, ".", &["serde", "regex"]);
    // The user edits both files afterwards.
    let edited = fx
        .read("Cargo.toml")
        .replace("serde_json = \"1\"", "serde_json = \"1\"\nitoa = \"1\"");
    fx.write("Cargo.toml", &edited);
    fx.write(
        "src/main.rs",
        &(fx.read("src/main.rs") + "\nfn added_later() {}\n"),
    );

    let out = fx.dylib_dev().arg("unwrap").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("kept your edits"),
        "{}",
        text(&out)
    );
    assert_eq!(
        fx.read("Cargo.toml"),
        original_manifest.replace("serde_json = \"1\"", "serde_json = \"1\"\nitoa = \"1\"")
    );
    assert_eq!(
        fx.read("src/main.rs"),
        original_main + "\nfn added_later() {}\n"
    );
    assert!(!fx.join("diamond-deps").exists());
}

#[test]
fn unwrap_without_wrap_says_so() {
    let fx = Fixture::copy("diamond");
    refused(
        &fx,
        ".",
        &["unwrap"],
        &["is not wrapped", "nothing to undo"],
    );
}
