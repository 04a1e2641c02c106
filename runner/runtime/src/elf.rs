//! What the runtime needs to know about a library before it may unload it (ELF, Linux).
//!
//! A Rust library that shares `libstd` with the host (`-C prefer-dynamic`) and has thread-locals of
//! its own (a `PT_TLS` segment) can have thread-local destructors registered that point into its
//! code: std registers them with glibc under *libstd's* handle, so glibc does not know they belong
//! to the library and unloads it anyway. The next thread exit (at the latest the process exit)
//! then calls into unmapped memory and the host dies with SIGSEGV. Such a library must stay mapped
//! after a swap. A library with its own static std registers under its own handle, and glibc keeps
//! it mapped by itself exactly when needed.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// Whether the library at `path` must never be unloaded (see the module docs). `false` when the
/// file cannot be read as a 64-bit little-endian ELF file: the loader will say what is wrong.
pub fn must_stay_mapped(path: &Path) -> bool {
    matches!(inspect(path), Ok(Some(info)) if info.tls && info.shares_std)
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ElfInfo {
    /// It has a `PT_TLS` segment: thread-locals of its own.
    pub tls: bool,
    /// It needs `libstd-*.so`: std is shared with the host.
    pub shares_std: bool,
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_TLS: u32 = 7;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;

struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn read_at(file: &mut File, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    // A corrupt header must not make us allocate gigabytes.
    if len > 64 << 20 {
        return Err(io::ErrorKind::InvalidData.into());
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0; len as usize];
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// `Ok(None)` for a file that is not a 64-bit little-endian ELF file.
pub(crate) fn inspect(path: &Path) -> io::Result<Option<ElfInfo>> {
    let mut file = File::open(path)?;
    let header = read_at(&mut file, 0, 64)?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Ok(None);
    }
    let (phoff, phentsize, phnum) = (
        u64_at(&header, 0x20),
        u64::from(u16_at(&header, 0x36)),
        u64::from(u16_at(&header, 0x38)),
    );
    if phentsize < 56 {
        return Ok(None);
    }
    let table = read_at(&mut file, phoff, phentsize * phnum)?;
    let segments: Vec<Segment> = table
        .chunks_exact(phentsize as usize)
        .map(|p| Segment {
            kind: u32_at(p, 0),
            offset: u64_at(p, 8),
            vaddr: u64_at(p, 16),
            filesz: u64_at(p, 32),
        })
        .collect();
    let tls = segments.iter().any(|s| s.kind == PT_TLS);
    let Some(dynamic) = segments.iter().find(|s| s.kind == PT_DYNAMIC) else {
        return Ok(Some(ElfInfo {
            tls,
            shares_std: false,
        }));
    };
    let entries = read_at(&mut file, dynamic.offset, dynamic.filesz)?;
    let (mut needed, mut strtab, mut strsz) = (Vec::new(), None, None);
    for entry in entries.chunks_exact(16) {
        match u64_at(entry, 0) {
            0 => break,
            DT_NEEDED => needed.push(u64_at(entry, 8)),
            DT_STRTAB => strtab = Some(u64_at(entry, 8)),
            DT_STRSZ => strsz = Some(u64_at(entry, 8)),
            _ => {}
        }
    }
    let (Some(strtab), Some(strsz)) = (strtab, strsz) else {
        return Ok(None);
    };
    // The string table is given by address: find the file offset through its load segment.
    let Some(load) = segments
        .iter()
        .find(|s| s.kind == PT_LOAD && s.vaddr <= strtab && strtab < s.vaddr + s.filesz)
    else {
        return Ok(None);
    };
    let strings = read_at(&mut file, strtab - load.vaddr + load.offset, strsz)?;
    let shares_std = needed.iter().any(|&at| {
        strings
            .get(at as usize..)
            .is_some_and(|s| s.starts_with(b"libstd-"))
    });
    Ok(Some(ElfInfo { tls, shares_std }))
}

/// The virtual address and size of section `name` in the ELF file at `path` (`Ok(None)`: no such
/// section, or not a 64-bit little-endian ELF file). Add the image's load bias for its address
/// in memory.
pub(crate) fn section(path: &Path, name: &str) -> io::Result<Option<(u64, u64)>> {
    let mut file = File::open(path)?;
    let header = read_at(&mut file, 0, 64)?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Ok(None);
    }
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(&header, 0x28),
        u64::from(u16_at(&header, 0x3a)),
        u64::from(u16_at(&header, 0x3c)),
        u64::from(u16_at(&header, 0x3e)),
    );
    if shentsize < 64 || shoff == 0 || shstrndx >= shnum {
        return Ok(None);
    }
    let table = read_at(&mut file, shoff, shentsize * shnum)?;
    let headers: Vec<&[u8]> = table.chunks_exact(shentsize as usize).collect();
    let names = headers[shstrndx as usize];
    let strings = read_at(&mut file, u64_at(names, 0x18), u64_at(names, 0x20))?;
    Ok(headers.iter().find_map(|h| {
        let at = u32_at(h, 0) as usize;
        let this = strings.get(at..)?.split(|&b| b == 0).next()?;
        (this == name.as_bytes()).then(|| (u64_at(h, 0x10), u64_at(h, 0x20)))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_test_binary_and_refuses_other_files() {
        // The test binary: an ELF file with thread-locals (std's), std linked statically.
        let exe = std::env::current_exe().unwrap();
        let info = inspect(&exe).unwrap().expect("an ELF64 LE file");
        assert!(info.tls, "{info:?}");
        assert!(!info.shares_std, "{info:?}");
        assert!(!must_stay_mapped(&exe));

        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.so");
        std::fs::write(&junk, vec![7u8; 100]).unwrap();
        assert_eq!(inspect(&junk).unwrap(), None);
        assert!(!must_stay_mapped(&junk));
        assert!(!must_stay_mapped(&dir.path().join("missing.so")));
    }
}
