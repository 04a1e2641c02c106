//! `dylib-dev completions <shell>`: the scripts complete our subcommands and flags in a real shell.
use assert_cmd::Command;

fn script(shell: &str) -> String {
    let out = Command::cargo_bin("dylib-dev")
        .unwrap()
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What bash offers for the words typed so far (the last one being completed).
fn bash_offers(script_path: &std::path::Path, words: &[&str]) -> Vec<String> {
    let words_list = words
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let program = format!(
        "source '{}'\n\
         COMP_WORDS=({words_list}); COMP_CWORD={}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}\n\
         func=$(complete -p dylib-dev | sed -E 's/.*-F ([^ ]+).*/\\1/')\n\
         \"$func\" dylib-dev '{}' '{}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script_path.display(),
        words.len() - 1,
        words.join(" "),
        words[words.len() - 1],
        words[words.len().saturating_sub(2)],
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_their_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dylib-dev.bash");
    std::fs::write(&path, script("bash")).unwrap();

    let subcommands = bash_offers(&path, &["dylib-dev", "w"]);
    assert!(
        subcommands.contains(&"watch".to_string()),
        "{subcommands:?}"
    );
    assert!(subcommands.contains(&"wrap".to_string()), "{subcommands:?}");
    assert!(!subcommands.contains(&"new".to_string()), "{subcommands:?}");

    let flags = bash_offers(&path, &["dylib-dev", "watch", "--de"]);
    assert_eq!(flags, ["--debounce-ms"], "watch's flags");

    let templates = bash_offers(&path, &["dylib-dev", "new", "game", "--template", ""]);
    for name in ["minimal", "bevy", "polars"] {
        assert!(templates.contains(&name.to_string()), "{templates:?}");
    }
}

#[test]
fn zsh_and_fish_scripts_name_every_subcommand() {
    let zsh = script("zsh");
    let fish = script("fish");
    assert!(zsh.starts_with("#compdef dylib-dev"), "{}", &zsh[..80]);
    for sub in [
        "wrap", "unwrap", "build", "run", "watch", "bench", "new", "init", "deinit",
    ] {
        assert!(zsh.contains(&format!("'{sub}:")), "zsh lacks {sub}");
        assert!(fish.contains(&format!("-a \"{sub}\"")), "fish lacks {sub}");
    }
}

#[test]
fn an_unknown_shell_is_refused_with_the_ones_we_know() {
    let out = Command::cargo_bin("dylib-dev")
        .unwrap()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("possible values: bash"), "{err}");
}
