//! What this process really has mapped (`/proc/self/maps`, Linux): the old versions of a library
//! still in memory, whatever `dlclose` was asked or answered.
//!
//! `dlclose` may leave a library mapped without saying so: glibc keeps one with pending
//! thread-local destructors, and a library marked `DF_1_NODELETE` (an open rustc change would mark
//! every Rust object so) is never unmapped. So the runtime never assumes a closed version gave its
//! memory back; it counts what the kernel shows.

use std::collections::BTreeMap;
use std::path::Path;

/// Old versions still mapped: how many, and the bytes their mappings span.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lingering {
    pub versions: u64,
    pub bytes: u64,
}

/// The copies in `dir` numbered below `current` (copy names are `<n>-<file>`) that this process
/// still has mapped, with the size of their mappings as `/proc/self/maps` shows them (file-backed
/// segments only; debug info, which is never mapped, does not count).
pub(crate) fn lingering(dir: &Path, current: u64) -> Lingering {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return Lingering::default();
    };
    let mut copies: BTreeMap<&str, u64> = BTreeMap::new();
    let dir = dir.to_string_lossy();
    for line in maps.lines() {
        // `start-end perms offset dev inode   /path[ (deleted)]`: only the path holds a `/`.
        let (Some((range, _)), Some(at)) = (line.split_once(' '), line.find('/')) else {
            continue;
        };
        let path = &line[at..];
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        let Some(name) = path.strip_prefix(&*dir).and_then(|r| r.strip_prefix('/')) else {
            continue;
        };
        let old = name
            .split_once('-')
            .and_then(|(n, _)| n.parse::<u64>().ok())
            .is_some_and(|n| n < current);
        let span = range.split_once('-').and_then(|(a, b)| {
            u64::from_str_radix(b, 16)
                .ok()?
                .checked_sub(u64::from_str_radix(a, 16).ok()?)
        });
        if let (true, Some(span)) = (old, span) {
            *copies.entry(name).or_default() += span;
        }
    }
    Lingering {
        versions: copies.len() as u64,
        bytes: copies.values().sum(),
    }
}
