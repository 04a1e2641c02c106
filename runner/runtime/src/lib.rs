//! dylib-dev-runtime: the part of dylib-dev that lives inside a host program.
//!
//! A host depends on this crate to load its reloadable *logic* library (a `cdylib` or `dylib`),
//! call its functions through typed wrappers, and swap in each new build the `dylib-dev` runner
//! announces, in the same process, with the host's state kept.
//!
//! ```no_run
//! pub struct State { pub score: u32 }
//!
//! dylib_dev_runtime::hot_module! {
//!     pub mod logic("logic") {
//!         unsafe extern "Rust" {
//!             pub fn step(state: &mut State) -> String;
//!         }
//!     }
//! }
//!
//! fn main() {
//!     let mut state = State { score: 0 };
//!     loop {
//!         println!("{}", logic::step(&mut state));
//!         std::thread::sleep(std::time::Duration::from_millis(100));
//!     }
//! }
//! ```
//!
//! # How a reload goes
//!
//! 1. The runner rebuilds the logic crate and sends `reload` over the control socket.
//! 2. The host's control thread (started by [`HotLib`]) wakes on it at once, copies the artifact
//!    to a new, uniquely named file in a private directory, checks its hash, `dlopen`s it and
//!    resolves every declared function. Meanwhile the host keeps running the old version.
//! 3. At a safe point (no call in flight; see [`SwapPolicy`]) the new version replaces the old,
//!    the old library is closed and its copy deleted.
//! 4. The host answers `swapped` with the time of each step, or `failed` with the reason, in
//!    which case the old version simply keeps running (load error, missing symbol, hash
//!    mismatch, refused by the [`Builder::validate`] hook).
//!
//! # Environment
//!
//! Set by the runner on the host process (names in [`protocol`]):
//!
//! | variable | meaning |
//! |---|---|
//! | `DYLIB_DEV_LIB_<NAME>` | path of the artifact of library `<name>` (upper case, `-` as `_`) |
//! | `DYLIB_DEV_HASH_<NAME>` | its hash, `blake3:<hex>`; a copy that differs is refused |
//! | `DYLIB_DEV_SOCKET` | the runner's control socket; without it nothing reloads |
//! | `DYLIB_DEV_DIR` | a private directory for the host's copies (default `$XDG_RUNTIME_DIR`, else the temp dir) |
//!
//! A host started without the runner (plain `cargo run`) finds `lib<name>.so` next to its
//! executable (or in `deps/`, or one level up for examples and tests) and runs it without
//! reloading.
//!
//! # Copies
//!
//! Every version is loaded from its own copy, so a build can never overwrite a mapped file. The
//! copies live in a directory created with mode 0700 and a random name, locked while the host
//! runs; directories left by a killed host are removed when the next host starts.
//!
//! # Platforms
//!
//! Built and tested on Linux. The control channel is a Unix domain socket; elsewhere a host runs
//! without reloading.
//!
//! # Unloading
//!
//! An old version is closed (`dlclose`) and its copy deleted as soon as it is swapped out, so
//! memory stays flat over any number of reloads, with one exception on Linux: a library that
//! shares `libstd` with the host and has thread-locals of its own is **kept mapped** (its copy is
//! still deleted). std registers thread-local destructors under libstd's handle, so glibc would
//! unload such a library while destructors pointing into it are pending, and the next thread exit
//! would crash the host. [`Swapped::lingering`](protocol::Swapped::lingering) counts these versions;
//! each costs the pages of the library it touched. Keep thread-locals in the host or the deps
//! dylib to avoid it.

mod boundary;
mod channel;
#[cfg(target_os = "linux")]
mod elf;
mod error;
mod hash;
mod hot_lib;
mod layout;
pub mod private_dir;
pub mod protocol;
pub mod state;
mod symbols;

pub use boundary::{CallContext, CallSite, Panic, call_boundary, resume_panic};
#[cfg(target_os = "linux")]
#[doc(hidden)]
pub use elf::must_stay_mapped as __must_stay_mapped;
pub use error::Error;
pub use hash::{HASH_PREFIX, hash_file};
pub use hot_lib::{
    Builder, Guard, HotLib, LazyHotLib, ReloadEvent, SwapPolicy, artifact_file_name,
};
#[doc(hidden)]
pub use layout::field_type_name as __field_type_name;
pub use layout::{FieldLayout, LAYOUT_SYMBOL, Layout, LayoutMismatch, TypeLayout};
pub use symbols::{SymbolSource, Symbols};
