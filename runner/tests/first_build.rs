//! End-to-end tests of what `dylib-dev build` says around the first (cold) dynamic build: the
//! line naming the wrapped crates the deps dylib compiles once, and how long they took.
//!
//! `prewrapped` wraps only `itoa`, so its own target dir (cold on purpose) costs about a second.
mod common;

use common::{Fixture, text};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const COLD: &str = "Building itoa into the deps dylib `app-deps` once (the long part); after that `build`, `run` and `watch` reuse it";

#[test]
fn only_the_first_build_names_the_wrapped_crates_and_quiet_never_does() {
    let fx = Fixture::copy("prewrapped");
    let build = |args: &[&str], target: &str| {
        let out = fx
            .dylib_dev()
            .env("CARGO_TARGET_DIR", fx.join(target))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        stderr(&out)
    };

    let first = build(&["build"], "target");
    let cold_at = first.find(COLD);
    let compiling_at = first.find("Compiling itoa");
    assert!(
        cold_at.is_some() && cold_at < compiling_at,
        "the line comes before cargo's:\n{first}"
    );
    let cached = first
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("Cached deps dylib `app-deps` (built in ")
        })
        .unwrap_or_else(|| panic!("no Cached line:\n{first}"));
    assert!(cached.ends_with("; later builds reuse it"), "{cached}");

    let second = build(&["build"], "target");
    assert!(
        !second.contains("deps dylib"),
        "the dylib exists: nothing to say:\n{second}"
    );

    let quiet = build(&["-q", "build"], "target-quiet");
    assert!(quiet.contains("Compiling itoa"), "a cold build:\n{quiet}");
    assert!(!quiet.contains("deps dylib"), "-q says neither:\n{quiet}");
}
