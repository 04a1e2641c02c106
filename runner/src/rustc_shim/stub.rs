//! The linker stub: an empty shared library with the deps dylib's `SONAME`, which a tuned logic
//! library links against instead of the deps dylib's 300k-symbol table (see [`super::tuning`]).
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Flags that make undefined symbols a link error even in a shared library: no stubs then.
const NO_UNDEFINED: [&str; 4] = ["-z,defs", "-zdefs", "--no-undefined,", "-z defs"];

/// `args` with each listed dylib replaced by its stub, kept `NEEDED` even under `--as-needed`
/// (nothing is resolved from an empty stub). `None` when nothing is replaced or stubs cannot work.
pub fn with_stubs(
    args: &[OsString],
    libs: &str,
    dir: &Path,
    linker: &OsStr,
) -> Option<Vec<OsString>> {
    let libs: Vec<&str> = libs.lines().filter(|l| !l.is_empty()).collect();
    let strict = args.iter().any(|a| {
        let a = a.to_string_lossy();
        NO_UNDEFINED.iter().any(|f| a.contains(f)) || a.ends_with("--no-undefined")
    });
    if libs.is_empty() || strict {
        return None;
    }
    let mut out = Vec::with_capacity(args.len() + 2 * libs.len());
    let mut replaced = false;
    for arg in args {
        let path = arg.to_string_lossy();
        if libs.contains(&path.as_ref()) {
            let soname = Path::new(path.as_ref()).file_name()?.to_string_lossy();
            let stub = stub(dir, &soname, linker)?;
            out.push("-Wl,--push-state,--no-as-needed".into());
            out.push(stub.into_os_string());
            out.push("-Wl,--pop-state".into());
            replaced = true;
        } else {
            out.push(arg.clone());
        }
    }
    replaced.then_some(out)
}

/// An empty shared library whose `SONAME` is `soname` (rustc names a dylib's `SONAME` after its
/// file), built once per name with the same linker.
fn stub(dir: &Path, soname: &str, linker: &OsStr) -> Option<PathBuf> {
    let path = dir.join(soname);
    if path.is_file() {
        return Some(path);
    }
    std::fs::create_dir_all(dir).ok()?;
    let tmp = dir.join(format!(".{soname}.{}.tmp", std::process::id()));
    let ok = Command::new(linker)
        .args(["-shared", "-nostdlib", "-x", "c", "/dev/null", "-o"])
        .arg(&tmp)
        .arg(format!("-Wl,-soname,{soname}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let _ = std::fs::remove_file(&tmp);
        return None;
    }
    std::fs::rename(&tmp, &path).ok()?;
    Some(path)
}

/// Whether `cc` builds a stub here (what `doctor` reports).
pub fn stub_links_here() -> bool {
    tempfile::tempdir().is_ok_and(|dir| stub(dir.path(), "libprobe.so", OsStr::new("cc")).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[cfg(target_os = "linux")]
    #[test]
    fn stub_names_the_real_library() {
        let dir = tempfile::tempdir().unwrap();
        let stub = stub(dir.path(), "libapp_deps.so", OsStr::new("cc")).expect("cc builds a stub");
        let out = Command::new("readelf")
            .arg("-d")
            .arg(&stub)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Library soname: [libapp_deps.so]"), "{text}");
        // Built once: a second call returns the same file.
        assert_eq!(
            super::stub(dir.path(), "libapp_deps.so", OsStr::new("false")),
            Some(stub)
        );
    }

    #[test]
    fn strict_links_get_no_stubs() {
        let args: Vec<OsString> = ["a.o", "/t/libapp_deps.so", "-Wl,-z,defs"]
            .map(OsString::from)
            .to_vec();
        let dir = tempfile::tempdir().unwrap();
        assert!(with_stubs(&args, "/t/libapp_deps.so", dir.path(), OsStr::new("cc")).is_none());
    }
}
