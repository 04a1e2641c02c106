//! `#[dylib_dev::hot]` functions patched in place under `dylib-dev watch`: the `hot-inplace`
//! fixture, one ordinary binary crate (no logic library), the real binary, real rustc, real
//! dlopen.
mod common;

use common::watch::{CHANGE, START, Watch, serial};
use common::{Fixture, number_after};

/// After the first build the watcher builds the binary's patch once in the background (`patch
/// cache warm`), so the first edit is an incremental patch build; the edit is patched into the
/// same process, whose state (the counter `main` owns) goes on.
#[test]
fn hot_function_edit_is_patched_into_the_same_process_after_a_warm_up() {
    let _serial = serial();
    let fx = Fixture::copy("hot-inplace");
    let watch = Watch::start(&fx);
    let (at, first) = watch.wait_out(0, START, |l| l.contains("text=v1"));
    let pid = number_after(&first, "pid=");
    watch.wait_err(0, START, |l| l.contains("patch cache warm"));
    fx.replace("src/main.rs", "text=v1", "text=v2");
    let (_, after) = watch.wait_out(at, CHANGE, |l| l.contains("text=v2"));
    assert_eq!(number_after(&after, "pid="), pid, "the same process");
    assert!(
        number_after(&after, "counter=") > number_after(&first, "counter="),
        "the counter went on: {first} -> {after}"
    );
    watch.wait_err(0, CHANGE, |l| {
        l.contains("Swapped") && l.contains("reload 1")
    });
    let log = watch.err_since(0).join("\n");
    assert!(!log.contains("Restarted"), "no restart:\n{log}");
}
