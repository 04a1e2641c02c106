//! The one line `wrap` adds to a crate root: `#[cfg(feature = "dynamic")] use <x>_deps as _;`.
//!
//! Without a reference, rustc does not link a crate that is only passed with `--extern`, so the
//! deps dylib would never become a NEEDED library. The line goes after the root's inner attributes
//! and inner doc comments (a `use` may not precede them).

/// Marker that identifies our line, also after rustfmt split it in two.
pub const MARKER: &str =
    "// dylib-dev: force-links the deps dylib (`dylib-dev unwrap` removes this)";

/// The line for a deps crate whose library is named `deps_lib`, behind `feature`.
pub fn force_link_line(deps_lib: &str, feature: &str) -> String {
    format!("#[cfg(feature = \"{feature}\")] use {deps_lib} as _; {MARKER}")
}

/// Whether `src` already force-links `deps_lib` (in our form or rustfmt's).
pub fn has_force_link(src: &str, deps_lib: &str) -> bool {
    let needle = format!("use {deps_lib} as _;");
    src.lines().any(|l| l.contains(&needle))
}

/// The UTF-8 byte order mark some Windows editors put first in a file.
const BOM: char = '\u{feff}';

/// Adds the force-link line; `None` when it is already there.
///
/// A leading byte order mark stays first: rustc skips a BOM only at the very start of a file, so
/// a line in front of it would make the BOM an unknown token and break every build.
pub fn insert(src: &str, deps_lib: &str, feature: &str) -> Option<String> {
    if has_force_link(src, deps_lib) {
        return None;
    }
    if let Some(rest) = src.strip_prefix(BOM) {
        return insert(rest, deps_lib, feature).map(|out| format!("{BOM}{out}"));
    }
    let line = force_link_line(deps_lib, feature);
    let pos = after_inner_attributes(src);
    let (head, rest) = src.split_at(pos);
    let mut out = String::with_capacity(src.len() + line.len() + 3);
    if head.is_empty() {
        out.push_str(&line);
        out.push('\n');
        if !rest.is_empty() && !rest.starts_with('\n') {
            out.push('\n');
        }
    } else {
        out.push_str(head);
        if !head.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(rest);
    Some(out)
}

/// Removes our line (and the `#[cfg]` line rustfmt may have split off); `None` if not found.
///
/// Used only when the user edited the file after `wrap`; an untouched file is restored from the
/// record byte for byte instead.
pub fn remove(src: &str, deps_lib: &str) -> Option<String> {
    // Our line may be the first after a BOM: take it out of the text behind the BOM, keep the BOM.
    if let Some(rest) = src.strip_prefix(BOM) {
        return remove(rest, deps_lib).map(|out| format!("{BOM}{out}"));
    }
    let needle = format!("use {deps_lib} as _;");
    let lines: Vec<&str> = src.split_inclusive('\n').collect();
    let idx = lines.iter().position(|l| l.contains(&needle))?;
    let mut start = idx;
    if idx > 0 && lines[idx - 1].trim_start().starts_with("#[cfg(feature =") {
        start -= 1;
    }
    let mut end = idx + 1;
    // `insert` separated the line by one blank line (after it at the top, before it elsewhere).
    let blank = |i: usize| lines.get(i).is_some_and(|l| l.trim().is_empty());
    if start == 0 {
        if blank(end) {
            end += 1;
        }
    } else if blank(start - 1) {
        start -= 1;
    }
    let mut out = String::with_capacity(src.len());
    for line in lines[..start].iter().chain(&lines[end..]) {
        out.push_str(line);
    }
    Some(out)
}

/// Byte offset just past the last leading inner attribute, inner doc comment or shebang line.
fn after_inner_attributes(src: &str) -> usize {
    let bytes = src.as_bytes();
    let mut pos = 0;
    let mut insert_at = 0;
    if src.starts_with("#!") && !src.starts_with("#![") {
        pos = line_end(src, 0);
        insert_at = pos;
    }
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let rest = &src[pos..];
        if rest.starts_with("//!") {
            pos = line_end(src, pos);
            insert_at = pos;
        } else if rest.starts_with("//") {
            pos = line_end(src, pos);
        } else if rest.starts_with("/*") {
            let inner = rest.starts_with("/*!");
            pos = block_comment_end(src, pos);
            if inner {
                insert_at = line_end(src, pos.saturating_sub(1));
                pos = pos.max(insert_at);
            }
        } else if rest.starts_with("#![") {
            pos = attribute_end(src, pos + 2);
            insert_at = line_end(src, pos.saturating_sub(1));
            pos = pos.max(insert_at);
        } else {
            return insert_at;
        }
    }
}

/// Offset after the newline ending the line that contains `pos` (or the end of `src`).
fn line_end(src: &str, pos: usize) -> usize {
    src[pos..].find('\n').map_or(src.len(), |i| pos + i + 1)
}

/// Offset after the `*/` closing the (possibly nested) block comment opening at `pos`.
fn block_comment_end(src: &str, pos: usize) -> usize {
    let bytes = src.as_bytes();
    let mut depth = 0usize;
    let mut i = pos;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    src.len()
}

/// Offset after the `]` that closes the attribute whose `[` is at `open`, skipping strings.
fn attribute_end(src: &str, open: usize) -> usize {
    let bytes = src.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'[' | b'(' | b'{' => depth += 1,
            b']' | b')' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    src.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(src: &str) -> String {
        let out = insert(src, "app_deps", "dynamic").expect("inserted");
        assert!(
            insert(&out, "app_deps", "dynamic").is_none(),
            "second insert is a no-op"
        );
        assert_eq!(
            remove(&out, "app_deps").as_deref(),
            Some(src),
            "remove undoes insert"
        );
        out
    }

    #[test]
    fn plain_file_gets_line_on_top() {
        let out = roundtrip("use std::io;\n\nfn main() {}\n");
        assert!(
            out.starts_with("#[cfg(feature = \"dynamic\")] use app_deps as _;"),
            "{out}"
        );
    }

    #[test]
    fn goes_after_inner_attributes_and_docs() {
        let src = "//! Crate docs.\n//! More.\n#![allow(\n    dead_code, // why\n    unused\n)]\n#![doc = \"a ] in a string\"]\n\nuse std::io;\nfn main() {}\n";
        let out = roundtrip(src);
        let attr_end = out.find("a ] in a string\"]\n").unwrap();
        let line = out.find("use app_deps as _;").unwrap();
        assert!(line > attr_end, "{out}");
        assert!(out[line..].contains("use std::io;"));
    }

    #[test]
    fn keeps_leading_license_comment_above_and_handles_block_docs() {
        let src = "// SPDX-License-Identifier: MIT\n/*! Block doc */\nfn main() {}\n";
        let out = roundtrip(src);
        assert!(
            out.find("Block doc").unwrap() < out.find("use app_deps").unwrap(),
            "{out}"
        );
    }

    #[test]
    fn empty_file_and_no_trailing_newline() {
        roundtrip("");
        roundtrip("fn main() {}");
        let out = insert("#![allow(unused)]", "app_deps", "dynamic").unwrap();
        assert!(out.starts_with("#![allow(unused)]\n\n#[cfg("), "{out}");
    }

    #[test]
    fn a_byte_order_mark_stays_first() {
        for src in [
            "\u{feff}fn main() {}\n",
            "\u{feff}//! Docs.\n#![allow(unused)]\nfn main() {}\n",
            "\u{feff}",
        ] {
            let out = roundtrip(src);
            assert!(out.starts_with('\u{feff}'), "{out:?}");
            assert_eq!(out.matches('\u{feff}').count(), 1, "{out:?}");
        }
        // Surgical removal (the file was edited after `wrap`) keeps the BOM too.
        let edited =
            insert("\u{feff}fn main() {}\n", "app_deps", "dynamic").unwrap() + "fn more() {}\n";
        assert_eq!(
            remove(&edited, "app_deps").unwrap(),
            "\u{feff}fn main() {}\nfn more() {}\n"
        );
    }

    #[test]
    fn removes_rustfmt_split_form() {
        let src = "use std::io;\n\n#[cfg(feature = \"dynamic\")]\nuse app_deps as _; // dylib-dev: force-links\n\nfn main() {}\n";
        assert_eq!(
            remove(src, "app_deps").unwrap(),
            "use std::io;\n\nfn main() {}\n"
        );
    }
}
