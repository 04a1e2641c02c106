//! End-to-end tests of the heavy examples and templates under `dylib-dev watch`: a temp copy of
//! `examples/polars-repl` and `examples/bevy-game`, and projects rendered by `dylib-dev new
//! --template polars|bevy` outside the repository; the real binary, real cargo builds of polars
//! and bevy (once per target dir: `target/e2e`, or `DYLIB_DEV_E2E_TARGET`), a real host and real
//! dlopen swaps. Cold, the first build is the long part (on 2 cores: polars about 5 min, bevy
//! about 2 min); the templates pin the examples' versions in their `Cargo.lock`, so after the
//! examples only their own crates and their deps dylib are built; the swaps take seconds.
//!
//! The polars example and template build their dependencies at opt-level 1 (a 1M-row analysis in
//! 0.1 s instead of 0.7 s), which makes polars' first build take 17 min instead of 5 on 2 cores.
//! These tests check what happens to the data and the code, not how fast the analysis runs, so
//! their copies build polars at opt-level 0 ([`dependencies_at_opt_level_0`]): 12 minutes of CI
//! back. The measurements (`bench/examples.sh`) use the examples as they are.
//!
//! The Bevy game and template are built with their `window` feature and run `--headless`: the
//! window test (`tests/window.rs`) needs those features, and with one feature set bevy compiles
//! once for the three tests instead of twice (the window features change the features of most of
//! bevy's crates, so a headless-only build shares almost nothing with the window build). The
//! headless run is the same code with or without the feature: `--headless` adds Bevy's
//! `MinimalPlugins` and no window, as a build without the feature does.
mod common;

use common::watch::{CHANGE, Watch, serial};
use common::{Fixture, number_after};
use std::time::{Duration, Instant};

/// A cold build of polars or bevy into a fresh target dir, on a slow machine.
const COLD_START: Duration = Duration::from_secs(40 * 60);

/// `watch`'s arguments for a Bevy project whose host package is `host`: its `window` feature, the
/// feature set the window test builds (see the module's docs).
fn bevy_features(host: &str) -> [String; 2] {
    ["-F".to_string(), format!("{host}/window")]
}

/// Sets the copy's `[profile.dev.package."*"]` to opt-level 0 (see the module's docs).
fn dependencies_at_opt_level_0(manifest: &std::path::Path) {
    let text = std::fs::read_to_string(manifest).unwrap();
    let section = "[profile.dev.package.\"*\"]\nopt-level = 1\n";
    assert!(
        text.contains(section),
        "{} no longer builds its dependencies at opt-level 1: update this test",
        manifest.display()
    );
    let faster = "[profile.dev.package.\"*\"]\nopt-level = 0\n";
    std::fs::write(manifest, text.replace(section, faster)).unwrap();
}

/// The polars REPL keeps its DataFrame across a swap: the data is loaded once, the edited
/// analysis runs again on it in the same process and prints the new table.
#[test]
fn polars_repl_reruns_the_edited_analysis_on_the_data_in_memory() {
    let _serial = serial();
    let fx = Fixture::copy_example("polars-repl");
    dependencies_at_opt_level_0(&fx.join("Cargo.toml"));
    let started = Instant::now();
    let watch = Watch::start(&fx);
    let (_, loaded) = watch.wait_out(0, COLD_START, |l| l.starts_with("data loaded:"));
    let pid = number_after(&loaded, "pid ");
    assert!(
        loaded.contains("1000000 rows x 8 columns"),
        "the generated data set: {loaded}"
    );
    let (at, _) = watch.wait_out(0, CHANGE, |l| l.contains("logic version 0"));
    eprintln!(
        "first build and run: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let first = watch.out_since(0).join("\n");
    assert!(
        first.contains("== revenue by pickup zone ==") && first.contains("Midtown"),
        "the first report groups by zone:\n{first}"
    );

    let edited = Instant::now();
    fx.replace(
        "logic/src/lib.rs",
        "group_by([col(\"zone\")])",
        "group_by([col(\"payment\")])",
    );
    fx.replace(
        "logic/src/lib.rs",
        "revenue by pickup zone",
        "revenue by payment type",
    );
    let (title, _) = watch.wait_out(at, CHANGE, |l| l.contains("== revenue by payment type =="));
    let (end, footer) = watch.wait_out(title, CHANGE, |l| l.contains("logic version 1"));
    eprintln!("edit to new report: {} ms", edited.elapsed().as_millis());
    assert_eq!(
        number_after(&footer, "pid "),
        pid,
        "the same host ran the new analysis: {footer}"
    );
    let table = watch.out_since(title)[..end - title].join("\n");
    for payment in ["card", "cash", "app"] {
        assert!(
            table.contains(payment),
            "the new report groups by payment ({payment} missing):\n{table}"
        );
    }
    let all = watch.out_since(0);
    let loads = all.iter().filter(|l| l.starts_with("data loaded:")).count();
    assert_eq!(loads, 1, "the data was loaded once:\n{}", all.join("\n"));
    watch.wait_err(0, CHANGE, |l| {
        l.contains("Swapped") && l.contains("reload 1")
    });
    let log = watch.err_since(0).join("\n");
    assert!(!log.contains("Restarted"), "no restart:\n{log}");
}

/// `dylib-dev watch -F bevy-game/window -- --headless --report-ms 100` on a fresh copy of the
/// Bevy example; the watcher and the game's pid, once the game prints its status line.
fn bevy_game() -> (Fixture, Watch, u64) {
    let fx = Fixture::copy_example("bevy-game");
    let started = Instant::now();
    let features = bevy_features("bevy-game");
    let watch = Watch::spawn_with(
        fx.path(),
        &[&features[0], &features[1]],
        &[],
        &["--headless", "--report-ms", "100"],
    );
    let (_, hello) = watch.wait_out(0, COLD_START, |l| l.starts_with("bevy-game: pid"));
    let pid = number_after(&hello, "pid ");
    watch.wait_out(0, CHANGE, |l| l.starts_with("bouncing "));
    eprintln!(
        "first build and run: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    (fx, watch, pid)
}

/// One game process all along: one hello, no restart, no panic, no failed system.
fn assert_one_game(watch: &Watch, pid: u64) {
    let hellos = watch
        .out_since(0)
        .iter()
        .filter(|l| l.starts_with("bevy-game: pid"))
        .count();
    assert_eq!(hellos, 1, "one game process (pid {pid}) all along");
    let log = watch.err_since(0).join("\n");
    assert!(!log.contains("Restarted"), "no restart:\n{log}");
    for complaint in ["panicked", "system failed", "refused reload"] {
        assert!(!log.contains(complaint), "no `{complaint}`:\n{log}");
    }
}

/// The Bevy game is an ordinary single-crate app whose systems are `#[dylib_dev::hot]`: an edited
/// system constant is in effect in the same process; the frame counter (a resource), the balls
/// (entities) and a system's `Local` counter go on; and balls spawned by the patched system (its
/// `Ball`, `Position`, ... are the binary's types: same `TypeId`s) are found by the `Query`s of
/// the systems the game registered at start, and by the patched ones.
#[test]
fn bevy_game_swaps_systems_and_keeps_entities_and_resources() {
    let _serial = serial();
    let (fx, watch, pid) = bevy_game();
    // Wait until every ball is in play.
    let (at, before) = watch.wait_out(0, CHANGE, |l| {
        l.contains("gravity=-500") && number_after(l, "balls=") == 12
    });
    let frame = number_after(&before, "frame=");
    let reports = number_after(&before, "reports=");

    let edited = Instant::now();
    fx.replace(
        "src/main.rs",
        "const GRAVITY: f32 = -500.0;",
        "const GRAVITY: f32 = -120.0;",
    );
    let (at, after) = watch.wait_out(at, CHANGE, |l| l.contains("gravity=-120"));
    eprintln!("edit to new behaviour: {} ms", edited.elapsed().as_millis());
    assert!(
        number_after(&after, "frame=") > frame,
        "the frame counter kept counting: {before} -> {after}"
    );
    assert_eq!(
        number_after(&after, "balls="),
        12,
        "the balls are still there: {before} -> {after}"
    );
    assert!(
        number_after(&after, "reports=") > reports,
        "`report`'s `Local` counter kept counting: {before} -> {after}"
    );
    watch.wait_err(0, CHANGE, |l| {
        l.contains("Swapped") && l.contains("reload 1")
    });

    // The patched `spawn_balls` spawns `Ball`s again; `report` (registered at start, now patched)
    // counts them with its `Query<(&Ball, &Position)>`.
    fx.replace(
        "src/main.rs",
        "const MAX_BALLS: usize = 12;",
        "const MAX_BALLS: usize = 14;",
    );
    let (_, more) = watch.wait_out(at, CHANGE, |l| number_after(l, "balls=") == 14);
    assert!(
        more.contains("gravity=-120"),
        "the first edit still holds: {more}"
    );
    let log = watch.err_since(0).join("\n");
    assert!(
        log.contains("spawned ball #13"),
        "the patched system's `info!` shows:\n{log}"
    );
    watch.wait_err(0, CHANGE, |l| {
        l.contains("Swapped") && l.contains("reload 2")
    });
    assert_one_game(&watch, pid);
}

/// `info!` in a hot system, its message edited 20 times: every version's line shows, in the same
/// process (each patch registers its own tracing callsites; no patch is ever unloaded, so the
/// callsites of the old ones stay valid).
#[test]
fn bevy_game_logs_with_info_across_20_swaps() {
    let _serial = serial();
    let (fx, watch, pid) = bevy_game();
    let anchor = "    *reports += 1;\n";
    fx.replace(
        "src/main.rs",
        anchor,
        &format!("{anchor}    info!(\"probe-0 at frame {{}}\", stats.frame);\n"),
    );
    let mut at = 0;
    for i in 0..20 {
        if i > 0 {
            fx.replace(
                "src/main.rs",
                &format!("\"probe-{} at", i - 1),
                &format!("\"probe-{i} at"),
            );
        }
        at = watch
            .wait_err(at, CHANGE, |l| l.contains(&format!("probe-{i} at frame")))
            .0;
    }
    watch.wait_err(0, CHANGE, |l| {
        l.contains("Swapped") && l.contains("reload 20")
    });
    // The game still runs after the last swap.
    let seen = watch.out_len();
    watch.wait_out(seen, CHANGE, |l| l.starts_with("bouncing "));
    assert_one_game(&watch, pid);
}

/// A field added to a component a hot system takes changes its layout under the running game:
/// the patch is refused, naming the type, and the game restarts with the new code.
#[test]
fn bevy_game_restarts_when_a_component_a_system_takes_gains_a_field() {
    let _serial = serial();
    let (fx, watch, pid) = bevy_game();
    let hello_at = watch.out_len();
    // One write: the field and its initial value.
    let source = fx
        .read("src/main.rs")
        .replacen(
            "    id: u32,\n}",
            "    id: u32,\n    /// Walls hit.\n    hits: u32,\n}",
            1,
        )
        .replacen(
            "            id: stats.spawned,\n",
            "            id: stats.spawned,\n            hits: 0,\n",
            1,
        );
    assert!(
        source.contains("hits: 0,"),
        "the example changed: update this test"
    );
    fx.write("src/main.rs", &source);
    let (_, refused) = watch.wait_err(0, CHANGE, |l| l.contains("refused reload"));
    assert!(
        refused.contains("the layout of `Ball`") && refused.contains("restarting"),
        "the refusal names the type: {refused}"
    );
    let (_, hello) = watch.wait_out(hello_at, CHANGE, |l| l.starts_with("bevy-game: pid"));
    assert_ne!(number_after(&hello, "pid "), pid, "a new game process");
    watch.wait_err(0, CHANGE, |l| l.contains("Restarted"));
    let seen = watch.out_len();
    watch.wait_out(seen, CHANGE, |l| l.starts_with("bouncing "));
}

/// `dylib-dev new --template <template> <name>` in a temp dir outside the repository; the project.
fn render(template: &str, name: &str) -> (Fixture, std::path::PathBuf) {
    let fx = Fixture {
        dir: tempfile::Builder::new()
            .prefix("dylib-dev-template-")
            .tempdir()
            .unwrap(),
    };
    let repo = common::repo_root().canonicalize().unwrap();
    assert!(!fx.path().canonicalize().unwrap().starts_with(&repo));
    let out = fx
        .dylib_dev()
        .args(["new", "--template", template, name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    let project = fx.join(name);
    (fx, project)
}

/// A rendered heavy template builds in dynamic mode under `watch` (polars or bevy from the deps
/// dylib `new` generated), prints `marker`, and an edit of it in `file` (polars: the logic
/// library; bevy: a hot system of the binary) is swapped in.
fn template_swaps(
    template: &str,
    name: &str,
    file: &str,
    watch_args: &[&str],
    host_args: &[&str],
    marker: &str,
) {
    let _serial = serial();
    let (_fx, project) = render(template, name);
    if template == "polars" {
        dependencies_at_opt_level_0(&project.join("Cargo.toml"));
    }
    assert!(
        project.join(format!("{name}-deps/Cargo.toml")).is_file(),
        "`new` wrapped the heavy dependency"
    );
    let started = Instant::now();
    let watch = Watch::spawn_with(&project, watch_args, &[], host_args);
    let (at, _) = watch.wait_out(0, COLD_START, |l| l.contains(marker));
    eprintln!(
        "{template} template, first build and run: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let lib = project.join(file);
    let source = std::fs::read_to_string(&lib).unwrap();
    assert_eq!(
        source.matches(marker).count(),
        1,
        "{marker:?} names one place"
    );
    let edited = Instant::now();
    std::fs::write(&lib, source.replace(marker, &format!("{marker}-v2"))).unwrap();
    watch.wait_out(at, CHANGE, |l| l.contains(&format!("{marker}-v2")));
    eprintln!(
        "{template} template, edit to new output: {} ms",
        edited.elapsed().as_millis()
    );
    watch.wait_err(0, CHANGE, |l| {
        l.contains("Swapped") && l.contains("reload 1")
    });
    let log = watch.err_since(0).join("\n");
    assert!(!log.contains("Restarted"), "no restart:\n{log}");
}

#[test]
fn polars_template_renders_builds_and_swaps() {
    template_swaps(
        "polars",
        "tpl-trips",
        "logic/src/lib.rs",
        &[],
        &["--rows", "100000"],
        "revenue by pickup zone",
    );
}

#[test]
fn bevy_template_renders_builds_and_swaps() {
    let features = bevy_features("tpl-game");
    template_swaps(
        "bevy",
        "tpl-game",
        "src/main.rs",
        &[&features[0], &features[1]],
        &["--headless", "--report-ms", "100"],
        "bouncing",
    );
}

/// The templates are the examples with names as placeholders: every Rust source of a template,
/// rendered with the example's names, is the example's source without the line `wrap` added
/// (which `new` adds to a rendered project). Catches an edit of one that forgot the other.
#[test]
fn templates_have_the_examples_sources() {
    fn normalize(text: &str) -> String {
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("// dylib-dev: force-links the deps dylib"))
            .collect();
        let mut out = kept.join("\n");
        while out.contains("\n\n\n") {
            out = out.replace("\n\n\n", "\n\n");
        }
        out
    }
    fn sources(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    for (template, example) in [("polars", "polars-repl"), ("bevy", "bevy-game")] {
        let root = common::repo_root().join("templates").join(template);
        let mut files = Vec::new();
        sources(&root, &root, &mut files);
        assert!(!files.is_empty(), "no sources in templates/{template}");
        for rel in files {
            let rendered = std::fs::read_to_string(root.join(&rel))
                .unwrap()
                .replace("{{name}}", example)
                .replace("{{crate_name}}", &example.replace('-', "_"));
            let ex = common::repo_root()
                .join("examples")
                .join(example)
                .join(&rel);
            let original =
                std::fs::read_to_string(&ex).unwrap_or_else(|e| panic!("{}: {e}", ex.display()));
            assert!(
                normalize(&rendered) == normalize(&original),
                "templates/{template}/{} differs from examples/{example}/{}",
                rel.display(),
                rel.display()
            );
        }
    }
    // The bevy template's `window` feature is the example's (the Bevy features it needs to draw).
    let window = |path: std::path::PathBuf| {
        let text = std::fs::read_to_string(&path).unwrap();
        text.lines()
            .find(|l| l.starts_with("window = "))
            .unwrap_or_else(|| panic!("no `window` feature in {}", path.display()))
            .to_string()
    };
    let root = common::repo_root();
    assert_eq!(
        window(root.join("templates/bevy/Cargo.toml")),
        window(root.join("examples/bevy-game/Cargo.toml")),
        "templates/bevy/Cargo.toml's `window` feature differs from examples/bevy-game's"
    );
}
