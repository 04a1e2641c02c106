//! A host in hot-lib-reloader's own style. The one change it needs for `dylib-dev watch` is
//! `lib_dir`: where to watch for the library.
use std::path::{Path, PathBuf};

#[hot_lib_reloader::hot_module(dylib = "hlr_lib", lib_dir = crate::lib_dir())]
mod hot_lib {
    // The `#[unsafe(no_mangle)] pub fn`s of the library, as wrappers that call the loaded copy.
    hot_functions_from_file!("lib/src/lib.rs");

    pub use hlr_lib::State;
}

/// The directory holding `libhlr_lib.so`. hot-lib-reloader evaluates this once, when the first
/// hot function is called.
///
/// - Under `dylib-dev watch`, `DYLIB_DEV_LIB_HLR_LIB` names the library the runner built, in
///   `<target>/dylib-dev/debug` (wherever `CARGO_TARGET_DIR` puts `<target>`).
/// - Otherwise (`cargo run` beside `cargo watch -x 'build -p hlr-lib'`), cargo puts the library
///   next to the executable, in `<target>/debug` or `<target>/release`.
fn lib_dir() -> PathBuf {
    let from_runner = std::env::var_os("DYLIB_DEV_LIB_HLR_LIB")
        .and_then(|lib| Path::new(&lib).parent().map(Path::to_path_buf));
    let next_to_exe = || {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
    };
    from_runner
        .or_else(next_to_exe)
        // hot-lib-reloader's own default.
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/target/debug").into())
}

fn main() {
    let mut state = hot_lib::State { counter: 0 };
    // Running in a loop so you can modify the code and see the effects.
    loop {
        hot_lib::step(&mut state);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
