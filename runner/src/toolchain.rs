//! The Rust toolchain cargo will use: rustc's version, host triple and sysroot.
//!
//! Asked from `rustc` itself (honouring `RUSTC`, as cargo does), in the current directory, so a
//! `rust-toolchain.toml` picks the same toolchain for us as for cargo.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why the toolchain could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    /// The program could not be started.
    #[error("failed to run `{program} {args}`")]
    Spawn {
        program: String,
        args: String,
        #[source]
        source: std::io::Error,
    },
    /// It ran but failed.
    #[error("`{program} {args}` failed ({status}):\n{stderr}")]
    Failed {
        program: String,
        args: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    /// Its output lacked something we need.
    #[error("`{program} -vV` printed no `{field}:` line")]
    Unparsable {
        program: String,
        field: &'static str,
    },
}

/// What rustc says about itself.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// The rustc program (`$RUSTC` or `rustc`).
    pub rustc: OsString,
    /// First line of `rustc -vV`, e.g. `rustc 1.95.0 (59807616e 2026-04-14)`.
    pub version_line: String,
    /// The `release:` field, e.g. `1.95.0`.
    pub release: String,
    /// The `host:` field, e.g. `x86_64-unknown-linux-gnu`.
    pub host: String,
    /// `rustc --print sysroot`.
    pub sysroot: PathBuf,
}

impl Toolchain {
    /// Asks `$RUSTC` (or `rustc`) for its version, host triple and sysroot.
    pub fn detect() -> Result<Toolchain, ToolchainError> {
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let verbose = output_of(&rustc, &["-vV"])?;
        let (version_line, release, host) =
            parse_verbose_version(&verbose).map_err(|field| ToolchainError::Unparsable {
                program: rustc.to_string_lossy().into_owned(),
                field,
            })?;
        let sysroot = PathBuf::from(output_of(&rustc, &["--print", "sysroot"])?.trim());
        Ok(Toolchain {
            rustc,
            version_line,
            release,
            host,
            sysroot,
        })
    }

    /// The directory holding the shared std a `-C prefer-dynamic` binary needs at run time.
    pub fn runtime_dir(&self) -> PathBuf {
        crate::platform::toolchain_runtime_dir(&self.sysroot, &self.host)
    }

    /// The shared std library in [`Self::runtime_dir`], if the toolchain ships one.
    pub fn shared_std(&self) -> Option<PathBuf> {
        let dir = self.runtime_dir();
        let entries = std::fs::read_dir(&dir).ok()?;
        entries
            .filter_map(Result::ok)
            .find(|e| crate::platform::is_shared_std(&e.file_name().to_string_lossy()))
            .map(|e| e.path())
    }

    /// `(major, minor)` of the release, e.g. `(1, 95)`.
    pub fn release_version(&self) -> Option<(u32, u32)> {
        let mut parts = self.release.split(['.', '-']);
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    }

    /// Where rustc's bundled `rust-lld` lives (it exists only if the toolchain ships it).
    pub fn rust_lld(&self) -> PathBuf {
        let exe = format!("rust-lld{}", std::env::consts::EXE_SUFFIX);
        self.sysroot
            .join("lib")
            .join("rustlib")
            .join(&self.host)
            .join("bin")
            .join(exe)
    }
}

/// `(first line, release, host)` from `rustc -vV`, or the name of the missing field.
fn parse_verbose_version(text: &str) -> Result<(String, String, String), &'static str> {
    let field = |name: &'static str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(": ")))
            .map(|v| v.trim().to_string())
            .ok_or(name)
    };
    let first = text.lines().next().unwrap_or_default().trim().to_string();
    Ok((first, field("release")?, field("host")?))
}

/// Runs `program args` and returns its stdout.
pub fn output_of(program: impl AsRef<Path>, args: &[&str]) -> Result<String, ToolchainError> {
    let program = program.as_ref();
    let shown = || program.to_string_lossy().into_owned();
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| ToolchainError::Spawn {
            program: shown(),
            args: args.join(" "),
            source,
        })?;
    if !output.status.success() {
        return Err(ToolchainError::Failed {
            program: shown(),
            args: args.join(" "),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr)
                .trim_end()
                .to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rustc -vV` of the toolchain this project was written with.
    const VERBOSE: &str = "rustc 1.95.0 (59807616e 2026-04-14)
binary: rustc
commit-hash: 59807616e1fa2540724bfbac14d7976d7e4a3860
commit-date: 2026-04-14
host: x86_64-unknown-linux-gnu
release: 1.95.0
LLVM version: 22.1.2
";

    #[test]
    fn parses_verbose_version() {
        let (first, release, host) = parse_verbose_version(VERBOSE).unwrap();
        assert_eq!(first, "rustc 1.95.0 (59807616e 2026-04-14)");
        assert_eq!(release, "1.95.0");
        assert_eq!(host, "x86_64-unknown-linux-gnu");
        assert_eq!(parse_verbose_version("rustc 1.0\n"), Err("release"));
    }

    #[test]
    fn detects_the_real_toolchain() {
        let tc = Toolchain::detect().unwrap();
        assert!(tc.sysroot.is_dir(), "{tc:?}");
        let (major, minor) = tc.release_version().unwrap();
        assert!(major == 1 && minor >= 85, "{tc:?}");
        assert!(
            tc.shared_std().is_some(),
            "rustup toolchains ship libstd-*.so: {tc:?}"
        );
    }
}
