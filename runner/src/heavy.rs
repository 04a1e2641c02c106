//! `wrap --auto`: deciding which direct dependencies are heavy.

/// Default threshold of `--min-source-kib`.
pub const DEFAULT_MIN_SOURCE_KIB: u64 = 1024;
