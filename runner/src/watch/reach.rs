//! Which edits of a hot crate the running program cannot pick up from a patch.
//!
//! A patch repoints `#[dylib_dev::hot]` functions only. Code that no hot function reaches (`main`,
//! its setup, a Bevy plugin's `build`, a function only `main` calls) already ran, or runs from the
//! program's own copy, so an edit of it would silently do nothing until the next restart. Such an
//! edit makes `watch` restart instead of patch, naming what changed.
//!
//! Reachability is by name over the crate's sources, parsed with syn: a function, method, constant
//! or static is reached when a hot function, or something it reaches, mentions its name anywhere
//! in its body (macro arguments included), and a trait impl's methods when its type is mentioned
//! (`format!("{x}")` calls `Display::fmt` without naming it). Over-approximating errs towards a
//! patch; what is flagged was, by name, never reached.
use quote::ToTokens;
use std::collections::BTreeSet;

/// One function-like or value item.
#[derive(Debug)]
struct Item {
    /// How it is shown: `fn main`, `fn Board::reset`, `const SPEED`.
    shown: String,
    /// The name calls use: `main`, `reset`, `SPEED`; for a trait impl's method, its type's name.
    name: String,
    /// Its tokens, for comparing two versions (comments are not tokens).
    text: String,
    /// Every identifier in it.
    uses: BTreeSet<String>,
    /// Marked `#[hot]` / `#[dylib_dev::hot]`.
    hot: bool,
}

/// The items changed between `old` and `new` versions of files (added ones count) that nothing
/// marked hot in `crate_sources` (the whole crate, new versions) reaches; `shown` names.
/// Empty when a file does not parse (the build reports it).
pub fn unreached(changed: &[(String, String)], crate_sources: &[String]) -> Vec<String> {
    let mut all = Vec::new();
    for text in crate_sources {
        let Ok(file) = syn::parse_file(text) else {
            return Vec::new();
        };
        collect(&file.items, "", &mut all);
    }
    let reached = reached(&all);
    let mut out = Vec::new();
    for (old, new) in changed {
        let (Ok(old), Ok(new)) = (syn::parse_file(old), syn::parse_file(new)) else {
            return Vec::new();
        };
        let (mut before, mut after) = (Vec::new(), Vec::new());
        collect(&old.items, "", &mut before);
        collect(&new.items, "", &mut after);
        for item in &after {
            let same = before
                .iter()
                .any(|b| b.shown == item.shown && b.text == item.text);
            if !same && !item.hot && !reached.contains(&item.name) && !out.contains(&item.shown) {
                out.push(item.shown.clone());
            }
        }
    }
    out
}

/// The names reached from the hot items.
fn reached(items: &[Item]) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut done = vec![false; items.len()];
    loop {
        let mut grew = false;
        for (i, item) in items.iter().enumerate() {
            if !done[i] && (item.hot || names.contains(&item.name)) {
                done[i] = true;
                grew = true;
                names.extend(item.uses.iter().cloned());
            }
        }
        if !grew {
            return names;
        }
    }
}

fn collect(items: &[syn::Item], prefix: &str, out: &mut Vec<Item>) {
    for item in items {
        match item {
            syn::Item::Fn(f) => out.push(Item {
                shown: format!("fn {prefix}{}", f.sig.ident),
                name: f.sig.ident.to_string(),
                text: f.to_token_stream().to_string(),
                // The signature too: the types a function takes reach their trait impls.
                uses: idents(f.to_token_stream()),
                hot: f.attrs.iter().any(is_hot),
            }),
            syn::Item::Const(c) => out.push(value(
                format!("const {prefix}{}", c.ident),
                &c.ident,
                c.to_token_stream(),
                c.expr.to_token_stream(),
            )),
            syn::Item::Static(s) => out.push(value(
                format!("static {prefix}{}", s.ident),
                &s.ident,
                s.to_token_stream(),
                s.expr.to_token_stream(),
            )),
            syn::Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    collect(items, &format!("{prefix}{}::", m.ident), out);
                }
            }
            syn::Item::Impl(imp) => {
                let ty = type_name(&imp.self_ty);
                for member in &imp.items {
                    if let syn::ImplItem::Fn(f) = member {
                        out.push(Item {
                            shown: format!("fn {prefix}{ty}::{}", f.sig.ident),
                            // A trait's method is called through the trait (operators, `{}`,
                            // `Default::default()`): reached when its type is.
                            name: if imp.trait_.is_some() {
                                ty.clone()
                            } else {
                                f.sig.ident.to_string()
                            },
                            text: f.to_token_stream().to_string(),
                            uses: idents(f.to_token_stream()),
                            hot: false,
                        });
                    }
                }
            }
            _ => {}
        }
    }
}

fn value(
    shown: String,
    ident: &syn::Ident,
    all: proc_macro2::TokenStream,
    expr: proc_macro2::TokenStream,
) -> Item {
    Item {
        shown,
        name: ident.to_string(),
        text: all.to_string(),
        uses: idents(expr),
        hot: false,
    }
}

/// The last identifier of a type's path (`Board` for `crate::Board<T>`).
fn type_name(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        other => other.to_token_stream().to_string(),
    }
}

/// `#[hot]`, `#[dylib_dev::hot]`, `#[anything::hot]`.
fn is_hot(attr: &syn::Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "hot")
}

/// Every identifier in `tokens`, macro arguments included.
fn idents(tokens: proc_macro2::TokenStream) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![tokens];
    while let Some(ts) = stack.pop() {
        for tt in ts {
            match tt {
                proc_macro2::TokenTree::Ident(i) => {
                    out.insert(i.to_string());
                }
                proc_macro2::TokenTree::Group(g) => stack.push(g.stream()),
                // `format!("{speed}")` names `speed` inside the string.
                proc_macro2::TokenTree::Literal(l) => {
                    let text = l.to_string();
                    for part in text.split('{').skip(1) {
                        let name: String = part
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if !name.is_empty() {
                            out.insert(name);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"
        const SPEED: f32 = 2.0;
        const TITLE: &str = "game";
        struct Board { cells: Vec<u8> }
        impl Board { fn reset(&mut self) { self.cells.clear(); } fn unused(&self) {} }
        impl std::fmt::Display for Board {
            fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result { write!(f, "board") }
        }
        fn helper(x: f32) -> f32 { x * SPEED }
        fn setup() -> Board { println!("{}", TITLE); Board { cells: vec![] } }
        #[dylib_dev::hot]
        fn frame(b: &mut Board) -> String { b.reset(); format!("{} {}", b, helper(1.0)) }
        fn main() { let mut b = setup(); loop { frame(&mut b); } }
        mod inner { pub fn only_main() {} }
    "#;

    fn unreached_after(from: &str, to: &str) -> Vec<String> {
        let after = BEFORE.replace(from, to);
        assert_ne!(after, BEFORE, "the edit applies");
        unreached(&[(BEFORE.to_string(), after.clone())], &[after])
    }

    #[test]
    fn edits_reached_from_a_hot_function_patch() {
        // The hot function, a helper, a method and a constant it reaches, a trait impl of a type
        // it uses, and a comment anywhere.
        assert!(unreached_after("x * SPEED", "x * SPEED * 2.0").is_empty());
        assert!(unreached_after("2.0;", "3.0;").is_empty());
        assert!(unreached_after("self.cells.clear();", "self.cells.truncate(1);").is_empty());
        assert!(unreached_after("\"board\"", "\"BOARD\"").is_empty());
        assert!(unreached_after("b.reset();", "b.reset(); b.reset();").is_empty());
        assert!(
            unreached_after(
                "format!(\"{} {}\", b, helper(1.0))",
                "format!(\"{TITLE} {b}\")"
            )
            .is_empty()
        );
        assert!(
            unreached_after("\"game\"", "\"other\"").len() == 1,
            "before the inline use, only setup named it"
        );
        assert!(unreached_after("fn main()", "// a comment\n fn main()").is_empty());
    }

    #[test]
    fn edits_only_main_reaches_need_a_restart() {
        assert_eq!(
            unreached_after("loop { frame", "println!(\"hi\"); loop { frame"),
            ["fn main"]
        );
        assert_eq!(
            unreached_after("Board { cells: vec![] }", "Board { cells: vec![1] }"),
            ["fn setup"]
        );
        assert_eq!(unreached_after("\"game\"", "\"other\""), ["const TITLE"]);
        assert_eq!(
            unreached_after("fn only_main() {}", "fn only_main() { println!(); }"),
            ["fn inner::only_main"]
        );
        assert_eq!(
            unreached_after("fn unused(&self) {}", "fn unused(&self) { let _ = 1; }"),
            ["fn Board::unused"]
        );
    }

    #[test]
    fn a_file_that_does_not_parse_flags_nothing() {
        let broken = BEFORE.replace("fn main()", "fn main(");
        assert!(unreached(&[(BEFORE.to_string(), broken.clone())], &[broken]).is_empty());
    }
}
