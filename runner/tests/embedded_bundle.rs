//! `runner/embedded.bundle` (the templates and runtime sources the published package builds from)
//! holds exactly what the repository holds: a template or runtime edit without the bundle
//! rewritten fails here, with the command that rewrites it.
#[allow(dead_code)] // build.rs uses the other half of the module
#[path = "../embed.rs"]
mod embed;

use std::path::Path;

#[test]
fn bundle_is_the_repository() {
    let runner = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = embed::Sources::repository(runner).expect("runs in a checkout");
    let expected = sources.bundle();
    let path = runner.join(embed::BUNDLE);
    if std::env::var_os("DYLIB_DEV_BLESS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read(&path).unwrap_or_default();
    if actual != expected {
        let keys = |b: &[u8]| {
            embed::parse(b)
                .unwrap_or_default()
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let (want, have) = (keys(&expected), keys(&actual));
        let differ: Vec<&String> = want
            .keys()
            .chain(have.keys())
            .filter(|k| want.get(*k) != have.get(*k))
            .collect();
        panic!(
            "{} is stale (differs in {differ:?}): rewrite it with `{}`",
            path.display(),
            embed::BLESS
        );
    }
    // What the build extracts is the repository's files, byte for byte, under the same names.
    let dir = tempfile::tempdir().unwrap();
    embed::extract(&actual, dir.path()).unwrap();
    let extracted = embed::Sources::extracted(dir.path());
    let rel = |s: &embed::Sources| -> Vec<(String, Vec<u8>)> {
        s.bundle_files()
            .into_iter()
            .map(|(key, path)| (key, std::fs::read(path).unwrap()))
            .collect()
    };
    assert_eq!(rel(&extracted), rel(&sources));
}

#[test]
fn a_damaged_bundle_is_refused() {
    assert!(embed::parse(b"@@ 5 a/b\nabc\n").is_err(), "truncated");
    assert!(
        embed::parse(b"@@ 1 ../x\na\n").is_err(),
        "leaves the directory"
    );
    assert!(embed::parse(b"garbage\n").is_err());
    assert_eq!(
        embed::parse(b"# c\n@@ 2 a/b\n\n\n\n").unwrap(),
        vec![("a/b".to_string(), b"\n\n".to_vec())]
    );
}
