//! What `init` tells the user to move by hand: the top-level functions of the host's binary root
//! that can become entry points of the logic crate, each with its `hot_module!` declaration.
//!
//! A small scanner, not a parser: it reads items that start at column 0 (as rustfmt writes them),
//! so a function nested in a block or a module is simply not suggested. It never edits code.

/// A top-level function of the host and whether it can move as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its name.
    pub name: String,
    /// Its signature as written, on one line (`fn render(n: u64) -> String`).
    pub signature: String,
    /// The line for `hot_module!` (`pub fn render(n: u64) -> String;`), when it can move as it is.
    pub declaration: Option<String>,
    /// Why it cannot move as it is.
    pub problem: Option<String>,
    /// Why it cannot take `#[dylib_dev::hot]` as it is (the in-place route).
    pub hot_problem: Option<String>,
    /// Types of the host it uses, which must move into a crate both sides depend on.
    pub host_types: Vec<String>,
}

/// The top-level functions of `src` other than `main`.
pub fn scan(src: &str) -> Vec<Candidate> {
    let lines: Vec<&str> = src.lines().collect();
    let types = host_types(&lines);
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = item_after_visibility(line) else {
            continue;
        };
        let mut qualifiers = Vec::new();
        let mut rest = rest;
        loop {
            if let Some(r) = rest.strip_prefix("const ") {
                qualifiers.push("const");
                rest = r;
            } else if let Some(r) = rest.strip_prefix("async ") {
                qualifiers.push("async");
                rest = r;
            } else if let Some(r) = rest.strip_prefix("unsafe ") {
                qualifiers.push("unsafe");
                rest = r;
            } else if let Some(r) = rest.strip_prefix("extern ") {
                qualifiers.push("extern");
                rest = r.trim_start_matches(|c| c != ' ').trim_start();
            } else {
                break;
            }
        }
        if !rest.starts_with("fn ") {
            continue;
        }
        let Some(signature) = signature_from(&lines[i..]) else {
            continue;
        };
        if let Some(candidate) = candidate(&signature, &qualifiers, &types) {
            out.push(candidate);
        }
    }
    out
}

/// The rest of a column-0 item line after its visibility, `None` for anything else.
fn item_after_visibility(line: &str) -> Option<&str> {
    if line.starts_with(char::is_whitespace) || line.starts_with("//") {
        return None;
    }
    let mut rest = line;
    if let Some(r) = rest.strip_prefix("pub") {
        if let Some(r) = r.strip_prefix('(') {
            rest = r.split_once(')')?.1.trim_start();
        } else {
            rest = r.strip_prefix(' ')?;
        }
    }
    Some(rest)
}

/// Names of the structs, enums, unions and type aliases `src` defines at the top level.
fn host_types(lines: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for line in lines {
        let Some(rest) = item_after_visibility(line) else {
            continue;
        };
        for keyword in ["struct ", "enum ", "union ", "type "] {
            if let Some(r) = rest.strip_prefix(keyword) {
                let name: String = r.chars().take_while(|c| is_ident(*c)).collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The signature starting at `lines[0]`, up to the body's `{`, on one line; `None` without a body.
fn signature_from(lines: &[&str]) -> Option<String> {
    let mut text = String::new();
    let mut depth = 0i32;
    for line in lines.iter().take(40) {
        let code = line.split("//").next().unwrap_or("");
        for (i, c) in code.char_indices() {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                '{' if depth == 0 => {
                    text.push_str(&code[..i]);
                    return Some(collapse(&text));
                }
                ';' if depth == 0 => return None,
                _ => {}
            }
        }
        text.push_str(code);
        text.push(' ');
    }
    None
}

/// Whitespace runs as one space; no space just inside parentheses or before a comma.
fn collapse(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .join(" ")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" ,", ",")
        .replace(",)", ")")
}

/// Splits `text` at commas outside brackets.
fn split_top(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    let mut prev = ' ';
    for c in text.chars() {
        match c {
            '(' | '[' | '<' => depth += 1,
            ')' | ']' => depth -= 1,
            '>' if prev != '-' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                prev = c;
                continue;
            }
            _ => {}
        }
        current.push(c);
        prev = c;
    }
    if !current.trim().is_empty() {
        parts.push(current);
    }
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn candidate(signature: &str, qualifiers: &[&str], types: &[String]) -> Option<Candidate> {
    let after_fn = &signature[signature.find("fn ")? + 3..];
    let name: String = after_fn.chars().take_while(|c| is_ident(*c)).collect();
    if name.is_empty() || name == "main" {
        return None;
    }
    let rest = &after_fn[name.len()..];
    let host_types: Vec<String> = types
        .iter()
        .filter(|t| {
            signature
                .split(|c: char| !is_ident(c))
                .any(|word| word == t.as_str())
        })
        .cloned()
        .collect();
    let mut problem = None;
    let mut set = |p: &str| {
        if problem.is_none() {
            problem = Some(p.to_string());
        }
    };
    let hot_problem = hot_problem(rest, qualifiers);
    if let Some(q) = qualifiers.iter().find(|q| **q != "const") {
        set(&match *q {
            "async" => "an `async fn` cannot be called across the library boundary".to_string(),
            "unsafe" => "an `unsafe fn`: call it from a safe function and move that".to_string(),
            _ => "it has an explicit ABI; `hot_module!` calls Rust functions".to_string(),
        });
    }
    if rest.starts_with('<') {
        set("generic: a `#[no_mangle]` function cannot be generic; move a non-generic wrapper");
    }
    let (params, ret) = match (rest.find('('), matching_paren(rest)) {
        (Some(open), Some(close)) => (&rest[open + 1..close], rest[close + 1..].trim()),
        _ => return None,
    };
    if ret.contains("where ") {
        set("generic: a `#[no_mangle]` function cannot be generic; move a non-generic wrapper");
    }
    if ret.contains("impl ") || params.contains("impl ") {
        set("it uses `impl Trait`, which is generic or unnameable across the boundary");
    }
    let mut args = Vec::new();
    for (i, param) in split_top(params).iter().enumerate() {
        let Some((pat, ty)) = param.split_once(':') else {
            set("it takes `self`");
            break;
        };
        let pat = pat.trim().trim_start_matches("mut ").trim();
        let pat = if pat == "_" {
            format!("arg{i}")
        } else if pat.chars().all(is_ident) && !pat.is_empty() {
            pat.to_string()
        } else {
            set("it destructures an argument; bind it to a name first");
            break;
        };
        args.push(format!("{pat}: {}", ty.trim()));
    }
    let ret = ret.split(" where ").next().unwrap_or("").trim();
    let declaration = problem.is_none().then(|| {
        let ret = if ret.is_empty() {
            String::new()
        } else {
            format!(" {ret}")
        };
        format!("pub fn {name}({}){ret};", args.join(", "))
    });
    Some(Candidate {
        name,
        signature: signature.to_string(),
        declaration,
        problem,
        host_types,
        hot_problem,
    })
}

/// Why a function (`rest`: its signature after the name) cannot take `#[dylib_dev::hot]`, which
/// takes free functions that are not generic (lifetimes are fine), `async`, `const` or `extern`.
fn hot_problem(rest: &str, qualifiers: &[&str]) -> Option<String> {
    for (q, why) in [
        (
            "async",
            "an `async fn`: mark a plain `fn` it is called from instead",
        ),
        (
            "const",
            "a `const fn`: drop `const` or mark a plain `fn` that calls it",
        ),
        (
            "extern",
            "it has an explicit ABI (`extern`); mark a plain Rust `fn` instead",
        ),
    ] {
        if qualifiers.contains(&q) {
            return Some(why.to_string());
        }
    }
    let generic = "generic: mark a non-generic function that calls it instead";
    if let Some(params) = rest.strip_prefix('<') {
        let mut depth = 1;
        let end = params.char_indices().find_map(|(i, c)| {
            match c {
                '<' => depth += 1,
                '>' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(i)
        })?;
        if split_top(&params[..end])
            .iter()
            .any(|p| !p.starts_with('\''))
        {
            return Some(generic.to_string());
        }
    }
    let close = matching_paren(rest)?;
    if rest[close..].contains("where ") {
        return Some(generic.to_string());
    }
    if rest.contains("impl ") {
        return Some(
            "it uses `impl Trait` (a generic function); name the type instead".to_string(),
        );
    }
    if let Some(open) = rest.find('(')
        && split_top(&rest[open + 1..close])
            .iter()
            .any(|p| !p.contains(':'))
    {
        return Some("it takes `self`: a method; mark a free function instead".to_string());
    }
    None
}

/// Index of the `)` closing the first `(` of `text`.
fn matching_paren(text: &str) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_movable_functions_and_says_why_others_are_not() {
        let src = r#"//! A program.
use std::fmt;

pub struct State {
    pub n: u64,
}

/// Renders.
fn render(mut n: u64, _: &str) -> String {
    format!("{n}")
}

pub(crate) fn step(state: &mut State,
    by: Vec<(u8, u8)>) {
    state.n += 1;
}

fn parse<T: std::str::FromStr>(s: &str) -> Option<T> { s.parse().ok() }

async fn fetch() {}

fn takes(f: impl Fn(u8) -> u8) -> u8 { f(1) }

fn main() {
    fn nested() {}
}
"#;
        let found = scan(src);
        let names: Vec<&str> = found.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["render", "step", "parse", "fetch", "takes"]);
        assert_eq!(
            found[0].signature,
            "fn render(mut n: u64, _: &str) -> String"
        );
        assert_eq!(
            found[0].declaration.as_deref(),
            Some("pub fn render(n: u64, arg1: &str) -> String;")
        );
        assert_eq!(
            found[1].declaration.as_deref(),
            Some("pub fn step(state: &mut State, by: Vec<(u8, u8)>);")
        );
        assert_eq!(found[1].host_types, ["State"]);
        assert!(found[2].problem.as_deref().unwrap().contains("generic"));
        assert!(found[3].problem.as_deref().unwrap().contains("async"));
        assert!(found[4].problem.as_deref().unwrap().contains("impl Trait"));
        assert_eq!(found[0].hot_problem, None);
        assert_eq!(found[1].hot_problem, None);
        assert!(found[2].hot_problem.as_deref().unwrap().contains("generic"));
        assert!(found[3].hot_problem.as_deref().unwrap().contains("async"));
        assert!(
            found[4]
                .hot_problem
                .as_deref()
                .unwrap()
                .contains("impl Trait")
        );
    }

    #[test]
    fn hot_route_takes_lifetimes_and_unsafe_but_not_const_or_extern() {
        let src = [
            "fn a<'x>(s: &'x str) -> &'x str { s }",
            "unsafe fn b(p: *const u8) -> u8 { unsafe { *p } }",
            "const fn c() -> u8 { 1 }",
            "extern \"C\" fn d() {}",
            "fn e<T>(t: T) -> T where T: Copy { t }",
        ]
        .join("\n");
        let found = scan(&src);
        let hot: Vec<Option<&str>> = found.iter().map(|c| c.hot_problem.as_deref()).collect();
        assert_eq!(hot[0], None);
        assert_eq!(hot[1], None);
        assert!(hot[2].unwrap().contains("const"));
        assert!(hot[3].unwrap().contains("extern"));
        assert!(hot[4].unwrap().contains("generic"));
    }
}
