//! dylib-dev: a hot-reload development runner for Rust.
//!
//! The binary is a thin shell over this library: [`cli`] parses and dispatches, every other module
//! holds one responsibility.

pub mod bench;
pub mod build_cache;
pub mod cargo;
pub mod cli;
pub mod commands;
pub mod deps_crate;
pub mod doctor;
pub mod duration;
pub mod dynamic;
pub mod first_build;
pub mod fsutil;
pub mod guard;
pub mod heavy;
pub mod host;
pub mod init;
pub mod journal;
pub mod lock;
pub mod logging;
pub mod manifest;
pub mod new;
pub mod platform;
pub mod project;
#[cfg(unix)] // the control socket is a Unix domain socket
pub mod reload;
pub mod report;
pub mod roles;
pub mod rustc_shim;
pub mod signals;
#[cfg(unix)]
pub mod soak;
pub mod source_edit;
pub mod templates;
pub mod toolchain;
pub mod ui;
pub mod unwrap;
pub mod watch;
pub mod wrap;
