//! What `init` and `deinit` refuse, and what they tell their caller while they work.
use crate::heavy::Choice;
use std::path::PathBuf;

/// What `init` and `deinit` refuse; nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The package has no binary to become the host.
    #[error(
        "package `{package}` has no binary target, so it cannot be the host\n  help: `dylib-dev init` turns a binary package into a host; pick one with -p <name>"
    )]
    NoBin { package: String },
    /// Several binaries and no `default-run`.
    #[error(
        "package `{package}` has several binaries ({bins}) and no `default-run`\n  help: set `default-run = \"<bin>\"` in its [package]: that binary becomes the host"
    )]
    AmbiguousBin { package: String, bins: String },
    /// `init` ran here before.
    #[error(
        "`{package}` is set up already: `{record}` exists\n  help: run `dylib-dev watch`; `dylib-dev deinit` undoes `init`"
    )]
    AlreadyInitialized { package: String, record: PathBuf },
    /// A dylib-dev project already (configured by hand or by `new`).
    #[error(
        "`{manifest}` already {what}: this is a dylib-dev project already\n  help: run `dylib-dev watch`"
    )]
    AlreadyConfigured { manifest: PathBuf, what: String },
    /// Something is where `init` puts a crate.
    #[error(
        "`{path}` already exists\n  help: `dylib-dev init` puts the {what} there; move it away first"
    )]
    Taken { path: PathBuf, what: &'static str },
    /// A member already has the logic crate's name.
    #[error(
        "the workspace already has a package named `{name}`, the name `dylib-dev init` gives the logic crate\n  help: rename that package first"
    )]
    NameTaken { name: String },
    /// `deinit` without `init`.
    #[error(
        "`{package}` was not set up by `dylib-dev init`: there is no `{record}`\n  help: nothing to undo; `dylib-dev unwrap` undoes a `dylib-dev wrap`"
    )]
    NotInitialized { package: String, record: PathBuf },
}

/// Why an `init` stopped; after its first write, everything it wrote is put back first.
#[derive(Debug, thiserror::Error)]
pub enum InitFailed {
    /// See [`InitError`].
    #[error(transparent)]
    Refused(#[from] InitError),
    /// A file or directory could not be read or written.
    #[error(transparent)]
    Io(#[from] crate::fsutil::FileError),
    /// See [`crate::manifest::ManifestError`].
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// See [`crate::wrap::LookupError`].
    #[error(transparent)]
    Lookup(#[from] crate::wrap::LookupError),
    /// See [`crate::wrap::WrapError`].
    #[error(transparent)]
    Wrap(#[from] crate::wrap::WrapError),
    /// See [`crate::deps_crate::Excluded`].
    #[error(transparent)]
    Excluded(#[from] crate::deps_crate::Excluded),
    /// See [`crate::journal::RecordError`].
    #[error(transparent)]
    Record(#[from] crate::journal::RecordError),
    /// See [`crate::project::ProjectError`].
    #[error(transparent)]
    Project(#[from] crate::project::ProjectError),
    /// See [`crate::fsutil::ReadOnly`].
    #[error(transparent)]
    ReadOnly(#[from] crate::fsutil::ReadOnly),
}

/// Something `init` or `deinit` has to say while it works, in the order it happens (the caller
/// decides what to show; the engine prints nothing).
#[derive(Debug)]
pub enum Event<'a> {
    /// `init` without crates assessed the direct dependencies (`--auto`'s table).
    Assessed { choices: &'a [Choice], min_kib: u64 },
    /// Worth a warning even with `--quiet`.
    Warning(String),
    /// `deinit` undid the `wrap` that `init` had done.
    Unwrapped(&'a crate::unwrap::Undone),
}
