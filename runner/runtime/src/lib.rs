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
//!    It checks the [layout guard](#layout-guard) before anything of the new version runs.
//! 3. At a safe point (no call in flight; see [`SwapPolicy`]) the new version replaces the old
//!    and the old copy is deleted; the old library stays mapped (see [Unloading](#unloading)).
//! 4. The host answers `swapped` with the time of each step, or `failed` with the reason, in
//!    which case the old version simply keeps running (load error, missing symbol, hash
//!    mismatch, layout change, refused by the [`Builder::validate`] hook).
//!
//! # Panics
//!
//! Every call into the library passes [`call_boundary`], which catches a panic (host, logic and
//! deps share one `libstd` under `-C prefer-dynamic`, so the unwind is an ordinary Rust one),
//! reports it to the runner (`panicked`, with message, `file:line:col` and thread; once per
//! version and place, so a panic in every frame is shown once) and then:
//!
//! - the generated free functions (`logic::step(..)`) and `Symbols` methods **re-raise it in the
//!   host**, as the message in a `String` payload: exactly where a statically linked call would
//!   have panicked. A wrapper cannot invent a return value, so this is the only honest default.
//! - **`logic::try_call(|s| s.step(..))`** ([`HotLib::try_call`]) **returns it** as
//!   `Err(`[`Panic`]`)`. The host keeps running the same version (the previous one is no longer called)
//!   and decides what a failed call means. A game loop skips the frame (or draws the error) and
//!   keeps calling, so the next build that fixes the panic is swapped in as usual; a REPL prints
//!   the error and shows its prompt; a host that prefers to stop until the fix calls
//!   `logic::lib().wait_for_reload(..)`.
//!
//! The usual panic message (and backtrace, with `RUST_BACKTRACE`) is printed for the first panic
//! of a version at a place, by whatever hook the host has: the runtime's hook sits in front of
//! it. A host that installs its own hook later (`std::panic::set_hook`, `color_eyre::install()`)
//! replaces the runtime's; the runtime notices at the next call after opening, after each swap,
//! and after a panic its hook did not see, and chains itself in front of the host's hook again
//! (so a hook installed after the first call lets at most one extra report through). Panics
//! outside library calls go to the host's hook untouched. A panic that escapes an `extern "C"` function aborts the host (Rust
//! rules): declare functions that may panic `extern "Rust"` (or `"C-unwind"`).
//!
//! # Hangs
//!
//! A call that runs longer than the hang threshold (`DYLIB_DEV_HANG_MS`, from the runner's
//! `hang-timeout-ms`, default 10 s) is reported as `stuck` by a watchdog thread, and as `resumed`
//! if it returns. A stuck host cannot swap (the swap waits for calls to end): the runner restarts
//! it with the next build instead of waiting forever.
//!
//! # Layout guard
//!
//! The logic crate exports the layout of the types it shares with the host with [`layout!`]
//! (`dylib_dev_runtime::layout!(State { counter, players }, Mode);`): name, size and alignment of
//! each type, and for the braced form each field's name, type and offset, the field list checked
//! complete by the compiler. Before a version may run, its layout is compared with the running
//! version's, and with the host's own view if `hot_module!` declares one (`layout!(State);` as
//! its first line). Any difference refuses the version, naming the type and what changed, and the
//! runner restarts the host: new code never runs on old values.
//!
//! A type listed without fields (typically an enum: `Mode` above) that derives
//! [`Layout`](macro@Layout) (`#[derive(dylib_dev_runtime::Layout)]`) is compared by its definition:
//! an enum's variants in declaration order, their discriminants (as written, and their values for
//! enums without payloads) and their payloads' field names and type names, so a reordered, renamed,
//! added or removed variant, a changed discriminant or a payload of another type refuses the
//! version (``variant `B` moved from 1 to 0``). Payload offsets are not compared (`offset_of!` into
//! a variant is not stable Rust): a type inside a payload is checked only if it is listed itself. A
//! type listed without fields that does not derive `Layout` is compared by size and alignment only:
//! reordering its variants, or changing a payload to another of the same size, is not seen.
//!
//! # State hand-off
//!
//! With the `state` feature, `state::Persistent` keeps host state across a restart: saved (as
//! JSON, serde) when the runner asks before it stops the host, restored at the next start. See
//! [`state`].
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
//! | `DYLIB_DEV_HANG_MS` | a call running this long is reported stuck (default 10000) |
//! | `DYLIB_DEV_PROTOCOL` | the runner's protocol; a host that speaks another runs without reloading |
//! | `DYLIB_DEV_STATE` | the hand-off file of `state::Persistent` |
//! | `DYLIB_DEV_STATE_REJECTED` | where a saved state that no longer deserializes is kept |
//!
//! A host started without the runner (plain `cargo run`) finds `lib<name>.so` next to its
//! executable (or in `deps/`, or one level up for examples and tests) and runs it without
//! reloading.
//!
//! # Copies
//!
//! Every version is loaded from its own copy, so a build can never overwrite a mapped file. The
//! copies (mode 0600) live in a directory created with mode 0700 and a random name, locked while
//! the host runs; directories left by a killed host are removed when the next host starts. Each
//! copy's BLAKE3 hash must equal the one the runner computed of cargo's artifact before it is
//! loaded.
//!
//! # Platforms
//!
//! Built and tested on Linux. The control channel is a Unix domain socket; elsewhere a host runs
//! without reloading.
//!
//! # Unloading
//!
//! **By default an old version that ran is never unloaded**: its copy is deleted right after the
//! swap (one copy on disk, whatever the number of swaps), but the library stays mapped for the
//! life of the process. Logic leaves code or data of its version in use more often than not: a
//! thread it started (`std::thread::spawn`, rayon, tokio) is still running its loop, a panic hook,
//! logger or `tracing` callsite it registered, a `Box<dyn Trait>`, closure or `&'static str` it
//! handed the host. `dlclose` would pull that memory away and the host would die with SIGSEGV
//! at the thread's next instruction. A version that never ran (refused, superseded) is closed.
//!
//! A host whose logic is self-contained opts in with
//! [`Builder::unload_old_versions(true)`](Builder::unload_old_versions) (with `hot_module!`:
//! `logic::init(Builder::from_env("logic").unload_old_versions(true))` before the first call).
//! Two kinds of libraries stay mapped even then: on Linux, one that shares `libstd` with the host
//! and has thread-locals of its own (std registers thread-local destructors under libstd's handle,
//! so glibc would unmap it while destructors pointing into it are pending, and the next thread
//! exit would crash the host), and one the loader refuses to unmap (glibc's own thread-local
//! destructor guard; `DF_1_NODELETE`, which an open rustc change would set on every Rust object).
//!
//! The runtime never assumes a `dlclose` gave memory back: after each swap it counts the old
//! copies still in `/proc/self/maps` and the size of their mappings, and reports both as
//! [`Swapped::lingering`](protocol::Swapped::lingering) and
//! [`lingering_bytes`](protocol::Swapped::lingering_bytes). A kept version costs the pages of
//! it that were touched (relocated data, code that ran): about 65 KiB of resident memory per swap
//! for a small logic library (`tests/fixtures/hot`). The runner restarts a host past 256 MiB of
//! mapped old versions.

// `#[derive(Layout)]` names the crate `::dylib_dev_runtime`; this lets the crate's own tests use it.
extern crate self as dylib_dev_runtime;

mod boundary;
mod builder;
mod channel;
#[cfg(target_os = "linux")]
mod elf;
mod engine;
mod error;
mod hash;
mod hot_fn;
mod hot_lib;
mod layout;
#[cfg(target_os = "linux")]
mod maps;
pub mod private_dir;
pub mod protocol;
pub mod state;
mod symbols;
mod version;

pub use boundary::{CallContext, CallSite, Panic, call_boundary, resume_panic};
pub use builder::{Builder, SwapPolicy, artifact_file_name};
/// `#[derive(Layout)]`: describes a struct's fields or an enum's variants to the layout guard.
pub use dylib_dev_macros::Layout;
/// `#[hot]` (spelled `#[dylib_dev::hot]` with this crate as the `dylib_dev` dependency): under
/// `dylib-dev watch`, an edit of the function, or of code it calls, takes effect at its next call
/// in the running process. See the [hot functions](#hot-functions-in-place) section.
pub use dylib_dev_macros::hot;
/// What `#[hot]` expands to: not an API.
#[doc(hidden)]
pub mod __hot {
    pub use crate::hot_fn::{Entry, MAGIC, Slot, TypeSize, start};
}
#[cfg(target_os = "linux")]
#[doc(hidden)]
pub use elf::must_stay_mapped as __must_stay_mapped;
pub use engine::ReloadEvent;
pub use error::Error;
pub use hash::{HASH_PREFIX, hash_file};
pub use hot_lib::{Guard, HotLib, LazyHotLib};
#[doc(hidden)]
pub use layout::field_type_name as __field_type_name;
#[doc(hidden)]
pub use layout::probe as __layout_probe;
pub use layout::{
    DescribeLayout, FieldLayout, LAYOUT_SYMBOL, Layout, LayoutMismatch, PayloadField, TypeLayout,
    VariantLayout,
};
pub use symbols::{SymbolSource, Symbols};
