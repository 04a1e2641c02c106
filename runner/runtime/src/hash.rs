//! SHA-256 of artifacts: the runner hashes what cargo built, the host hashes the copy it loads.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

/// Chunk size for streaming: large enough that syscalls do not dominate, small enough for the
/// cache.
const CHUNK: usize = 256 * 1024;

/// SHA-256 of a file's contents, as lowercase hex.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// Copies `from` to the new file `to` (never overwriting) and returns the SHA-256 of exactly the
/// bytes written, in one pass over the data.
pub(crate) fn copy_hashed(from: &Path, to: &Path) -> io::Result<String> {
    let mut src = File::open(from)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Only the owner: the copy is code this process is about to run.
        options.mode(0o600);
    }
    let mut dst = options.open(to)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; CHUNK];
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])?;
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_and_copy_agree() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"abc").unwrap();
        let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_file(&a).unwrap(), want);
        let b = dir.path().join("b");
        assert_eq!(copy_hashed(&a, &b).unwrap(), want);
        assert_eq!(std::fs::read(&b).unwrap(), b"abc");
        assert!(
            copy_hashed(&a, &b).is_err(),
            "an existing copy is never overwritten"
        );
    }
}
