//! `dylib-dev watch`: rebuild on change, swap logic into the running host, restart it otherwise.
pub mod build;
pub mod events;
pub mod fs;
pub mod model;
pub mod reach;
pub mod route;
pub mod session;
