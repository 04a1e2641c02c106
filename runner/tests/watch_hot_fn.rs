//! `#[dylib_dev::hot]` functions in an ordinary crate (no logic crate): `watch` patches an edit of a
//! hot function, or of a helper it calls, into the running process; a patch that changes a hot
//! function's signature or the layout of a type it takes is refused, and the host restarts with
//! its state handed over. The real binary, real cargo and rustc, a real host, in a temp dir.
mod common;

use common::watch::{CHANGE, START, Watch, serial};
use std::path::Path;

/// `dylib_dev = { package = "dylib-dev-runtime", ... }`, as `init` adds it.
fn runtime_dependency(features: &str) -> String {
    let runtime = common::repo_root().join("runner/runtime");
    format!(
        "dylib_dev = {{ package = \"dylib-dev-runtime\", path = \"{}\"{features} }}\n",
        runtime.display()
    )
}

const MAIN: &str = r#"use dylib_dev::state::Persistent;

#[derive(Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct State {
    pub frames: u64,
}

fn helper(n: u64) -> String {
    format!("helper-a {n}")
}

#[dylib_dev::hot]
fn frame(state: &mut State) -> String {
    state.frames += 1;
    format!("frame-v1 {} {}", std::process::id(), helper(state.frames))
}

fn main() {
    let state = Persistent::<State>::restore_or_default();
    loop {
        {
            let mut s = state.lock();
            println!("{}", frame(&mut s));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
"#;

/// `cargo new`'s layout plus the runtime (with state hand-off) and serde.
fn single_crate(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"hot-single\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [dependencies]\n{}serde = {{ version = \"1\", features = [\"derive\"] }}\n\n[workspace]\n",
            runtime_dependency(", features = [\"state\"]")
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), MAIN).unwrap();
}

/// `frame-vN <pid> helper-x <frames>` -> (pid, frames).
fn pid_and_frames(line: &str) -> (u32, u64) {
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[1].parse().unwrap(), words[3].parse().unwrap())
}

fn edit(dir: &Path, from: &str, to: &str) {
    let file = dir.join("src/main.rs");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(from), "`{from}` in {}", file.display());
    std::fs::write(&file, text.replace(from, to)).unwrap();
}

#[test]
fn hot_functions_and_their_helpers_swap_in_the_same_process_and_refusals_restart_with_state() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    single_crate(dir);
    let watch = Watch::start_in(dir, &[]);

    let (_, line) = watch.wait_out(0, START, |l| l.starts_with("frame-v1 "));
    let (pid, frames) = pid_and_frames(&line);
    let head = watch.err_since(0).join("\n");
    assert!(
        head.contains("hot functions in place: an edit of hot_single (binary)"),
        "the hot-mode line:\n{head}"
    );

    // The hot function's own body.
    let (out_at, err_at) = (watch.out_len(), watch.err_len());
    edit(dir, "frame-v1", "frame-v2");
    let (_, line) = watch.wait_out(out_at, CHANGE, |l| l.starts_with("frame-v2 "));
    let (same, later) = pid_and_frames(&line);
    assert_eq!(same, pid, "patched into the same process: {line}");
    assert!(later > frames, "the state went on: {frames} then {later}");
    let (_, swapped) = watch.wait_err(err_at, CHANGE, |l| l.contains("Swapped hot_single"));
    assert!(swapped.contains("by rustc directly"), "{swapped}");

    // A helper it calls, which is not hot itself.
    let out_at = watch.out_len();
    edit(dir, "helper-a", "helper-b");
    let (_, line) = watch.wait_out(out_at, CHANGE, |l| l.contains(" helper-b "));
    assert_eq!(pid_and_frames(&line).0, pid, "{line}");

    // `main` itself: no hot function reaches it, so a patch would change nothing; it restarts.
    let (out_at, err_at) = (watch.out_len(), watch.err_len());
    edit(dir, "from_millis(100)", "from_millis(90)");
    let (_, restarted) = watch.wait_err(err_at, CHANGE, |l| l.contains("Restarted"));
    assert!(
        restarted.contains("`fn main` changed, which no #[dylib_dev::hot] function reaches"),
        "{restarted}"
    );
    let (_, line) = watch.wait_out(out_at, START, |l| {
        l.starts_with("frame-v2 ") && pid_and_frames(l).0 != pid
    });
    let pid = pid_and_frames(&line).0;

    // A field added to the type the hot function takes: refused, restarted, state handed over.
    let (out_at, err_at) = (watch.out_len(), watch.err_len());
    let (_, before) = watch.wait_out(out_at, CHANGE, |l| l.starts_with("frame-v2 "));
    let frames_before = pid_and_frames(&before).1;
    edit(
        dir,
        "pub frames: u64,",
        "pub frames: u64,\n    pub level: u32,",
    );
    let (_, refused) = watch.wait_err(err_at, CHANGE, |l| l.contains("layout of `State`"));
    assert!(
        refused.contains("hot_single::frame"),
        "names the function: {refused}"
    );
    let (_, line) = watch.wait_out(out_at, START, |l| {
        l.starts_with("frame-v2 ") && pid_and_frames(l).0 != pid
    });
    let (new_pid, frames_after) = pid_and_frames(&line);
    assert!(
        frames_after > frames_before,
        "the state was handed to the new process: {frames_before} then {frames_after}"
    );
    watch.wait_err(err_at, CHANGE, |l| l.contains("Restarted"));

    // A changed signature (`main` prints either result, so only the hot function changes):
    // refused, restarted.
    let (out_at, err_at) = (watch.out_len(), watch.err_len());
    edit(
        dir,
        "fn frame(state: &mut State) -> String {",
        "fn frame(state: &mut State) -> Box<str> {",
    );
    edit(
        dir,
        "helper(state.frames))\n}",
        "helper(state.frames)).into()\n}",
    );
    let (_, refused) = watch.wait_err(err_at, CHANGE, |l| {
        l.contains("signature of `hot_single::frame` changed")
    });
    assert!(refused.contains("Box<str>"), "{refused}");
    let (_, line) = watch.wait_out(out_at, START, |l| {
        l.starts_with("frame-v2 ") && pid_and_frames(l).0 != new_pid
    });
    assert!(pid_and_frames(&line).1 > frames_after, "{line}");
}

#[test]
fn a_hot_function_of_a_workspace_library_swaps_in_the_same_process() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "Cargo.toml",
        "[workspace]\nresolver = \"3\"\nmembers = [\"app\", \"game\"]\n",
    );
    write(
        "app/Cargo.toml",
        "[package]\nname = \"hot-app\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\ngame = { path = \"../game\" }\n",
    );
    write(
        "app/src/main.rs",
        "fn main() {\n    let mut world = game::World::default();\n    loop {\n        println!(\"{}\", game::step(&mut world));\n        std::thread::sleep(std::time::Duration::from_millis(100));\n    }\n}\n",
    );
    write(
        "game/Cargo.toml",
        &format!(
            "[package]\nname = \"game\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\n{}",
            runtime_dependency("")
        ),
    );
    write(
        "game/src/lib.rs",
        "#[derive(Default)]\npub struct World {\n    pub ticks: u64,\n}\n\n#[dylib_dev::hot]\npub fn step(world: &mut World) -> String {\n    world.ticks += 1;\n    format!(\"step-v1 {} x {}\", std::process::id(), world.ticks)\n}\n",
    );
    let watch = Watch::start_in(dir, &[]);
    let (_, line) = watch.wait_out(0, START, |l| l.starts_with("step-v1 "));
    let (pid, ticks) = pid_and_frames(&line);
    let head = watch.err_since(0).join("\n");
    assert!(head.contains("game (library)"), "{head}");

    let (out_at, err_at) = (watch.out_len(), watch.err_len());
    let lib = dir.join("game/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, text.replace("step-v1", "step-v2")).unwrap();
    let (_, line) = watch.wait_out(out_at, CHANGE, |l| l.starts_with("step-v2 "));
    let (same, later) = pid_and_frames(&line);
    assert_eq!(same, pid, "the same process: {line}");
    assert!(later > ticks, "{ticks} then {later}");
    watch.wait_err(err_at, CHANGE, |l| l.contains("Swapped game"));
}

/// Two threads call a hot function nonstop and check every result while patches swap it (as
/// Bevy's executor runs systems on several threads): a swap is one pointer store, so each call
/// runs one version from start to end.
#[test]
fn swaps_under_calls_from_two_threads_never_tear_a_call() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"hot-threads\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\n{}\n[workspace]\n",
            runtime_dependency("")
        ),
    )
    .unwrap();
    let main = r#"use std::sync::atomic::{AtomicU64, Ordering};

static CALLS: AtomicU64 = AtomicU64::new(0);

/// `x * K`, where each version has its own K; the marker names it.
#[dylib_dev::hot]
fn scaled(x: u64) -> (u64, u64) {
    const K: u64 = 1;
    (x * K, K)
}

fn main() {
    for _ in 0..2 {
        std::thread::spawn(|| {
            let mut x = 1u64;
            loop {
                let (y, k) = scaled(x);
                if y != x * k {
                    println!("torn call: {x} -> {y} with K {k}");
                    std::process::exit(1);
                }
                x = x % 1_000_000 + 1;
                CALLS.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        println!("K {} pid {} calls {}", scaled(1).1, std::process::id(), CALLS.load(Ordering::Relaxed));
    }
}
"#;
    std::fs::write(dir.join("src/main.rs"), main).unwrap();
    let watch = Watch::start_in(dir, &[]);
    let (_, line) = watch.wait_out(0, START, |l| l.starts_with("K 1 "));
    let pid = line.split_whitespace().nth(3).unwrap().to_string();
    let calls = |l: &str| -> u64 { l.split_whitespace().nth(5).unwrap().parse().unwrap() };
    let mut last_calls = calls(&line);
    for k in 2..=11u64 {
        let out_at = watch.out_len();
        let file = dir.join("src/main.rs");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(
            &file,
            text.replace(&format!("K: u64 = {};", k - 1), &format!("K: u64 = {k};")),
        )
        .unwrap();
        let (_, line) = watch.wait_out(out_at, CHANGE, |l| {
            l.starts_with(&format!("K {k} ")) || l.starts_with("torn")
        });
        assert!(!line.starts_with("torn"), "{line}");
        assert!(
            line.contains(&format!("pid {pid} ")),
            "the same process: {line}"
        );
        let now = calls(&line);
        assert!(
            now > last_calls,
            "the threads kept calling: {last_calls} then {now}"
        );
        last_calls = now;
    }
    let out = watch.out_since(0).join("\n");
    assert!(!out.contains("torn call"), "{out}");
}
