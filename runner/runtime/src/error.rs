//! The errors of loading and reloading a library.

use std::path::PathBuf;

/// Why a library could not be opened, loaded or reloaded.
///
/// Messages are lowercase fragments that read well after "failed to reload: ".
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither the runner's variable nor the fallback search named an artifact.
    #[error(
        "no `{lib}` library: {var} is not set (not started by dylib-dev?) and none of {tried:?} exists"
    )]
    NotFound {
        /// The library's name.
        lib: String,
        /// The environment variable that was not set.
        var: String,
        /// The paths searched next to the executable.
        tried: Vec<PathBuf>,
    },
    /// The private directory for copies could not be made.
    #[error("cannot create a private directory under {base}: {source}")]
    PrivateDir {
        /// Where it was to go.
        base: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Copying the artifact failed.
    #[error("cannot copy {from} to {to}: {source}")]
    Copy {
        /// The artifact.
        from: PathBuf,
        /// The copy.
        to: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The copy's bytes are not the ones the runner built.
    #[error("hash mismatch: {path} was copied as {actual}, the runner expected {expected}")]
    HashMismatch {
        /// The artifact.
        path: PathBuf,
        /// The hash the runner sent.
        expected: String,
        /// The hash of the copy.
        actual: String,
    },
    /// `dlopen` refused the copy.
    #[error("cannot load {path}: {detail}{hint}")]
    Load {
        /// The copy that was opened.
        path: PathBuf,
        /// The loader's error with its cause (`dlerror()`'s text).
        detail: String,
        /// The loader's error.
        source: libloading::Error,
        /// Advice when the cause is recognisable, else empty.
        hint: &'static str,
    },
    /// The library lacks a function the host declared.
    #[error("symbol `{symbol}` missing from {path}")]
    MissingSymbol {
        /// The function's name.
        symbol: &'static str,
        /// The artifact.
        path: PathBuf,
    },
    /// The host's validation hook refused the new version.
    #[error("{path} refused: {reason}")]
    Rejected {
        /// The artifact.
        path: PathBuf,
        /// What the hook said.
        reason: String,
    },
    /// The new version was compiled with another layout of a shared type than the host or the
    /// running version: new code must not run on old values.
    #[error(
        "layout of `{ty}` differs from {against} ({changes}); new code must not run on old values"
    )]
    Layout {
        /// The type that changed.
        ty: String,
        /// What it is compared with: "the host's build" or "the running version".
        against: &'static str,
        /// What changed, `; `-separated.
        changes: String,
    },
    /// The runner's control socket could not be reached.
    #[error("cannot connect to the runner at {path}: {source}")]
    Connect {
        /// The socket's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The artifact changed before the host could load it, and the runner's newest build did not
    /// come.
    #[error(
        "`{lib}` changed before this host could load it, and the runner sent no newer build within {waited:?}: {source}"
    )]
    FirstBuild {
        /// The library's name.
        lib: String,
        /// How long the host waited.
        waited: std::time::Duration,
        /// Why the wait ended.
        source: std::io::Error,
    },
}
