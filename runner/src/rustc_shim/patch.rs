//! Patches of hot crates: a crate's recorded rustc invocation, rebuilt as a shared object that the
//! running host loads for its `#[dylib_dev::hot]` functions.
//!
//! - **The binary crate** keeps `--crate-type bin` (a `cdylib` would give its types other
//!   `TypeId`s: rustc hashes "is an executable" into the crate's identity) and is linked with
//!   `-shared`; `-C relocation-model=dynamic-no-pic` lets a binary with `thread_local!`s of its own
//!   link as a shared object (LLVM relaxes an executable's thread-locals to local-exec, which
//!   `-shared` refuses); a version script exports nothing (the runtime finds the patch's hot
//!   functions through its `dylib_dev_hot` section, not symbols), which keeps its dynamic symbol
//!   table, `dlopen` and mapping small.
//! - **A library crate** is built as a `cdylib` with the same `-C metadata`, so its types keep
//!   their `TypeId`s; cargo compiled it against its dependencies' `.rmeta`, a `cdylib` links them:
//!   their `.rlib`s instead.
//!
//! Either gets its own output file and incremental directory under the patch directory, so the
//! host's build and its incremental cache stay untouched, and cargo's jobserver (gone by then) is
//! not asked for.
use super::fastpath::Invocation;
use super::tuning;
use crate::roles::HotKind;
use std::path::{Path, PathBuf};

/// The invocation that builds a patch of the crate `recorded` built, into `dir`; with the logic
/// tuning ([`tuning`]) when `tune` names dylib-dev's executable. Returns it with the patch's path.
pub fn invocation(
    recorded: &Invocation,
    kind: HotKind,
    dir: &Path,
    tune: Option<&Path>,
) -> (Invocation, PathBuf) {
    let name = recorded.crate_name().unwrap_or("crate");
    let suffix = match kind {
        HotKind::Bin => "bin",
        HotKind::Lib => "lib",
    };
    let output = dir.join(format!(
        "{name}-{suffix}-patch{}",
        std::env::consts::DLL_SUFFIX
    ));
    let mut args = Vec::with_capacity(recorded.args.len() + 8);
    let mut it = recorded.args.iter().peekable();
    let mut crate_type_done = false;
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--out-dir" | "-o" => {
                it.next();
            }
            "-C" if it.peek().is_some_and(|v| {
                v.starts_with("incremental=") || v.starts_with("extra-filename=")
            }) =>
            {
                it.next();
            }
            a if a.starts_with("-Cincremental=") || a.starts_with("-Cextra-filename=") => {}
            "--crate-type" => {
                let value = it.next();
                match kind {
                    HotKind::Bin => {
                        if let Some(v) = value {
                            args.push(arg.clone());
                            args.push(v.clone());
                        }
                    }
                    HotKind::Lib if !crate_type_done => {
                        crate_type_done = true;
                        args.push("--crate-type".into());
                        args.push("cdylib".into());
                    }
                    HotKind::Lib => {}
                }
            }
            a if a.starts_with("--emit=") => args.push("--emit=link".into()),
            "--extern" if kind == HotKind::Lib => {
                let Some(value) = it.next() else { break };
                args.push(arg.clone());
                args.push(linkable_extern(value, &recorded.cwd));
            }
            _ => args.push(arg.clone()),
        }
    }
    let incremental = dir.join(format!("incremental-{name}-{suffix}"));
    // Tuning reads `--out-dir` (where the link stubs go): given first, then turned into `-o`.
    args.push("--out-dir".into());
    args.push(dir.display().to_string());
    args.push("-C".into());
    args.push(format!("incremental={}", incremental.display()));
    if kind == HotKind::Bin {
        args.extend(
            [
                "-C",
                "link-arg=-shared",
                "-C",
                "relocation-model=dynamic-no-pic",
            ]
            .map(String::from),
        );
    }
    if cfg!(target_os = "linux") {
        args.push("-C".into());
        args.push(format!(
            "link-arg=-Wl,--version-script={}",
            dir.join("patch-exports.map").display()
        ));
    }
    let mut env = recorded.env.clone();
    if let Some(exe) = tune {
        for (k, v) in tuning::tune(&mut args, exe) {
            env.retain(|(key, _)| key != &k);
            env.push((k, v));
        }
    }
    // `-o`, not `--out-dir`: the patch's name is ours (rustc warns when both are given).
    if let Some(at) = args.iter().position(|a| a == "--out-dir") {
        args.drain(at..at + 2);
    }
    args.push("-o".into());
    args.push(output.display().to_string());
    (
        Invocation {
            program: recorded.program.clone(),
            args,
            cwd: recorded.cwd.clone(),
            env,
            tuning: tune.is_some(),
        },
        output,
    )
}

/// Writes what the patches' version script needs into `dir` (created if missing).
pub fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let script = dir.join("patch-exports.map");
    if !script.exists() {
        crate::fsutil::write_atomic(&script, b"{ local: *; };\n")?;
    }
    Ok(())
}

/// `name=path.rmeta` -> `name=path.rlib` when the rlib exists (a `cdylib` links its dependencies).
fn linkable_extern(value: &str, cwd: &Path) -> String {
    match value.split_once('=') {
        Some((name, path)) if path.ends_with(".rmeta") => {
            let rlib = format!("{}.rlib", path.trim_end_matches(".rmeta"));
            if cwd.join(&rlib).exists() {
                format!("{name}={rlib}")
            } else {
                value.to_string()
            }
        }
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(args: &[&str]) -> Invocation {
        Invocation {
            program: "rustc".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            cwd: "/w".into(),
            env: vec![("CARGO_MAKEFLAGS".into(), "x".into())],
            tuning: false,
        }
    }

    #[test]
    fn a_binary_patch_stays_a_binary_linked_shared_with_its_own_output() {
        let inv = recorded(&[
            "--crate-name",
            "app",
            "--edition=2024",
            "src/main.rs",
            "--crate-type",
            "bin",
            "--emit=dep-info,link",
            "-C",
            "extra-filename=-abc",
            "--out-dir",
            "/t/deps",
            "-C",
            "incremental=/t/incremental",
            "-C",
            "prefer-dynamic",
        ]);
        let (patch, out) = invocation(&inv, HotKind::Bin, Path::new("/p"), None);
        assert_eq!(out, PathBuf::from("/p/app-bin-patch.so"));
        let args = patch.args.join(" ");
        assert_eq!(
            args,
            "--crate-name app --edition=2024 src/main.rs --crate-type bin --emit=link -C prefer-dynamic \
             -C incremental=/p/incremental-app-bin -C link-arg=-shared -C relocation-model=dynamic-no-pic \
             -C link-arg=-Wl,--version-script=/p/patch-exports.map -o /p/app-bin-patch.so"
        );
    }

    #[test]
    fn a_library_patch_is_a_cdylib_linking_rlibs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("libdep.rlib"), "").unwrap();
        let mut inv = recorded(&[
            "--crate-name",
            "game",
            "--crate-type",
            "lib",
            "--extern",
            "dep=libdep.rmeta",
            "--extern",
            "gone=libgone.rmeta",
            "-C",
            "metadata=42",
        ]);
        inv.cwd = dir.path().to_path_buf();
        let (patch, _) = invocation(&inv, HotKind::Lib, Path::new("/p"), None);
        let args = patch.args.join(" ");
        assert!(args.starts_with(
            "--crate-name game --crate-type cdylib --extern dep=libdep.rlib --extern gone=libgone.rmeta -C metadata=42"
        ), "{args}");
    }
}
