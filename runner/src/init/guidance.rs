//! What is left for the user after `init`: the text `init` shows.
use super::places::Places;
use super::scan;
use crate::deps_crate::relative_path;
use std::path::Path;

/// What is left for the user after `init`, exactly: which functions to move and how to call them.
pub fn guidance(places: &Places, bin: &Path, main_rs: &str, wrapped: &[String]) -> String {
    let cwd = std::env::current_dir().unwrap_or_else(|_| places.root.clone());
    let show = |p: &Path| relative_path(p, &cwd).display().to_string();
    let main = show(bin);
    let lib = show(&places.logic_dir.join("src").join("lib.rs"));
    let logic_manifest = show(&places.logic_dir.join("Cargo.toml"));
    let candidates = scan::scan(main_rs);
    let movable: Vec<&scan::Candidate> = candidates
        .iter()
        .filter(|c| c.declaration.is_some())
        .collect();
    let mut out = String::new();
    out.push_str("What is left for you (dylib-dev moves no code):\n\n");
    out.push_str(&format!(
        "1. Move the functions you want to change while the program runs from {main}\n   \
         into {lib}, each as `#[unsafe(no_mangle)] pub fn`.\n"
    ));
    if candidates.is_empty() {
        out.push_str(&format!(
            "   {main} has no top-level function besides `main`: first put the code you iterate\n   \
             on into a function (e.g. `fn step(state: &mut State) -> String`), then move that.\n\n"
        ));
    } else {
        out.push_str(&format!("   The top-level functions of {main}:\n\n"));
        for c in &candidates {
            let note = match &c.problem {
                Some(problem) => format!("    <- not as it is: {problem}"),
                None => String::new(),
            };
            out.push_str(&format!("       {}{note}\n", c.signature));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "2. Declare them in {main} and call each as `logic::<name>(...)`:\n\n"
    ));
    let declarations: Vec<String> = if movable.is_empty() {
        vec!["pub fn step(state: &mut State) -> String;".to_string()]
    } else {
        movable
            .iter()
            .filter_map(|c| c.declaration.clone())
            .collect()
    };
    out.push_str(&format!(
        "       dylib_dev_runtime::hot_module! {{\n           mod logic(\"{}\") {{\n               unsafe extern \"Rust\" {{\n",
        places.logic_lib
    ));
    for declaration in &declarations {
        out.push_str(&format!("                   {declaration}\n"));
    }
    out.push_str("               }\n           }\n       }\n\n");
    let mut host_types: Vec<&str> = candidates
        .iter()
        .flat_map(|c| c.host_types.iter().map(String::as_str))
        .collect();
    host_types.sort_unstable();
    host_types.dedup();
    let mut step = 3;
    if !host_types.is_empty() {
        out.push_str(&format!(
            "{step}. {} defined in {main}: host and logic must share one definition, so move\n   \
             {} into a library crate both depend on (the logic cannot depend on a binary).\n",
            host_types
                .iter()
                .map(|t| format!("`{t}` is"))
                .collect::<Vec<_>>()
                .join(", "),
            if host_types.len() == 1 { "it" } else { "them" }
        ));
        step += 1;
    }
    let deps = if wrapped.is_empty() {
        String::new()
    } else {
        format!(
            "\n   It already depends on {}, linked from the deps dylib.",
            wrapped.join(", ")
        )
    };
    out.push_str(&format!(
        "{step}. Add what the moved code uses to {logic_manifest}.{deps}\n\n"
    ));
    out.push_str(&format!(
        "Then run `dylib-dev watch` and edit {lib}:\n\
         each save is swapped into the running host. `dylib-dev deinit` undoes `init`\n\
         (move your code back first to get every file back as it was).\n"
    ));
    out
}

/// What is left for the user after the in-place `init`: which functions of the host's binary root
/// can take `#[dylib_dev::hot]`, why the others cannot, and what restarts instead.
pub fn hot_guidance(places: &Places, bin: &Path, main_rs: &str) -> String {
    let cwd = std::env::current_dir().unwrap_or_else(|_| places.root.clone());
    let main = relative_path(bin, &cwd).display().to_string();
    let candidates = scan::scan(main_rs);
    let mut out = String::new();
    out.push_str("What is left for you (dylib-dev edits no code):\n\n");
    out.push_str(
        "1. Mark the functions you want to change while the program runs, in place, with\n\n       \
         #[dylib_dev::hot]\n\n   on the line above their `fn`. ",
    );
    if candidates.is_empty() {
        out.push_str(&format!(
            "{main} has no top-level function besides `main`: first put the\n   \
             code you iterate on into a function (e.g. `fn step(state: &mut State) -> String`)\n   \
             and mark that.\n\n"
        ));
    } else {
        out.push_str(&format!("The top-level functions of {main}:\n\n"));
        for c in &candidates {
            let note = match &c.hot_problem {
                Some(problem) => format!("    <- cannot be hot: {problem}"),
                None => "    <- can be hot".to_string(),
            };
            out.push_str(&format!("       {}{note}\n", c.signature));
        }
        out.push('\n');
    }
    out.push_str(
        "2. An edit of a hot function, or of code it calls, is patched into the running process and\n   \
         takes effect at its next call. `main` itself, and code only `main` reaches, cannot be\n   \
         patched: an edit there rebuilds and restarts the program.\n\n",
    );
    out.push_str(
        "Then run `dylib-dev watch`. `dylib-dev deinit` undoes `init` (take the attributes out\n\
         first to get every file back as it was).\n",
    );
    out
}
