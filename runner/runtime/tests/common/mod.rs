//! Test support: real logic libraries built with rustc, a minimal runner end on a real socket,
//! and a look at what this process has mapped.
#![allow(dead_code)] // each test binary uses a different subset

use dylib_dev_runtime::private_dir::PrivateDir;
use dylib_dev_runtime::protocol::{self, Hello, Reload, ToHost, ToRunner};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Version A of the logic library.
pub const V1: &str = r#"
#[unsafe(no_mangle)]
pub extern "Rust" fn text() -> String { String::from("v1") }
#[unsafe(no_mangle)]
pub extern "C" fn add(a: u32, b: u32) -> u32 { a + b }
"#;

/// Version B: new text, same functions.
pub const V2: &str = r#"
#[unsafe(no_mangle)]
pub extern "Rust" fn text() -> String { String::from("v2") }
#[unsafe(no_mangle)]
pub extern "C" fn add(a: u32, b: u32) -> u32 { a + b }
"#;

/// A build that lost `text`.
pub const NO_TEXT: &str = r#"
#[unsafe(no_mangle)]
pub extern "C" fn add(a: u32, b: u32) -> u32 { a + b }
"#;

/// A library whose `add(ms, b)` sleeps `ms` milliseconds, then returns `b` (a call that hangs
/// as long as the test says).
pub const SLOW: &str = r#"
#[unsafe(no_mangle)]
pub extern "Rust" fn text() -> String { String::from("slow") }
#[unsafe(no_mangle)]
pub extern "C" fn add(a: u32, b: u32) -> u32 {
    std::thread::sleep(std::time::Duration::from_millis(a as u64));
    b
}
"#;

dylib_dev_runtime::hot_module! {
    /// The test logic library.
    pub mod logic("logic") {
        unsafe extern "Rust" {
            pub fn text() -> String;
        }
        unsafe extern "C" {
            pub fn add(a: u32, b: u32) -> u32;
        }
    }
}

/// Builds `source` as a `cdylib` named `logic` with rustc, once per source and compiler: the
/// outputs are kept in cargo's test tmp dir, shared by every test binary of the workspace.
pub fn build_logic(source: &str) -> PathBuf {
    build_logic_with(source, &[])
}

/// [`build_logic`] with extra rustc arguments (e.g. `-C prefer-dynamic`).
pub fn build_logic_with(source: &str, extra: &[&str]) -> PathBuf {
    static RUSTC_VERSION: OnceLock<String> = OnceLock::new();
    let version = RUSTC_VERSION.get_or_init(|| {
        let out = Command::new(rustc())
            .arg("-vV")
            .output()
            .expect("run rustc -vV");
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    let mut hasher = DefaultHasher::new();
    (source, version, extra).hash(&mut hasher);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("runtime-logic")
        .join(format!("{:016x}", hasher.finish()));
    let lib = dir.join("liblogic.so");
    if lib.is_file() {
        return lib;
    }
    std::fs::create_dir_all(&dir).unwrap();
    // Build in a scratch dir, then hard-link into place: tests racing for the same library never
    // see half a file, and the first one in wins. (A rename would let a later build replace a
    // file another test already hashed: the scratch path is in the bytes, so builds differ.)
    let scratch = tempfile::tempdir_in(&dir).unwrap();
    let src = scratch.path().join("lib.rs");
    std::fs::write(&src, source).unwrap();
    let out = Command::new(rustc())
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "cdylib",
            "--crate-name",
            "logic",
        ])
        .args(["-C", "opt-level=0", "-C", "debuginfo=0"])
        .args(extra)
        .arg("--out-dir")
        .arg(scratch.path())
        .arg(&src)
        .output()
        .expect("run rustc");
    assert!(
        out.status.success(),
        "rustc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match std::fs::hard_link(scratch.path().join("liblogic.so"), &lib) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("could not put {} in place: {e}", lib.display()),
    }
    lib
}

fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())
}

/// The runner's end, reduced to what these tests need, speaking the real protocol on a real
/// Unix socket in a real private directory.
pub struct MiniRunner {
    pub dir: PrivateDir,
    pub socket: PathBuf,
    listener: UnixListener,
}

impl MiniRunner {
    /// A private directory under the test tmp dir with the control socket in it.
    pub fn new() -> MiniRunner {
        let dir = PrivateDir::create(&test_base(), "mini-runner-").unwrap();
        let socket = dir.path().join("control.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        MiniRunner {
            dir,
            socket,
            listener,
        }
    }

    /// Options for a host library that talks to this runner.
    pub fn builder(&self, artifact: &Path) -> dylib_dev_runtime::Builder<logic::Symbols> {
        dylib_dev_runtime::HotLib::builder("logic")
            .artifact(artifact)
            .hash(dylib_dev_runtime::hash_file(artifact).unwrap())
            .socket(&self.socket)
            .copies_in(self.dir.path())
    }

    /// Accepts a connection from a host library in this process and reads its hello.
    pub fn accept(&self) -> HostConn {
        let (conn, hello) = self.accept_from_any();
        assert_eq!(hello.pid, std::process::id());
        conn
    }

    /// Accepts a host connection and reads its hello.
    pub fn accept_from_any(&self) -> (HostConn, Hello) {
        let (stream, _) = self.listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut conn = HostConn {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        let ToRunner::Hello(hello) = conn.recv() else {
            panic!("the first message must be hello")
        };
        assert_eq!(hello.protocol, protocol::PROTOCOL_VERSION);
        assert_eq!(hello.lib, "logic");
        (conn, hello)
    }
}

/// The private directories of tests go under cargo's test tmp dir, not the user's runtime dir.
pub fn test_base() -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("runtime-dirs");
    std::fs::create_dir_all(&base).unwrap();
    base
}

/// One host connection, as the runner sees it.
pub struct HostConn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl HostConn {
    /// Sends a reload request.
    pub fn send(&mut self, version: u64, path: &Path, hash: Option<String>) {
        let msg = ToHost::Reload(Reload {
            lib: "logic".into(),
            version,
            path: path.to_path_buf(),
            hash,
        });
        self.writer.write_all(msg.encode().as_bytes()).unwrap();
    }

    /// Asks the host to save its state.
    pub fn send_save(&mut self, timeout: Duration) {
        let msg = ToHost::Save(protocol::Save { timeout });
        self.writer.write_all(msg.encode().as_bytes()).unwrap();
    }

    /// Reads the host's next message.
    pub fn recv(&mut self) -> ToRunner {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .expect("host reply in time");
        assert!(n > 0, "host closed the connection");
        ToRunner::decode(&line).unwrap()
    }

    /// Sends a reload of `path` with its real hash and returns the answer.
    pub fn reload(&mut self, version: u64, path: &Path) -> ToRunner {
        self.send(
            version,
            path,
            Some(dylib_dev_runtime::hash_file(path).unwrap()),
        );
        self.recv()
    }

    /// Whether the host closed its end.
    pub fn is_closed(&mut self) -> bool {
        let mut line = String::new();
        matches!(self.reader.read_line(&mut line), Ok(0))
    }
}

/// Whether this process has a file under `path` mapped (i.e. a library not really unloaded).
pub fn mapped(path: &Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let path = path.to_string_lossy();
    maps.lines()
        .any(|l| l.ends_with(&*path) || l.ends_with(&format!("{path} (deleted)")))
}

/// The bytes this process has mapped from the file at `path` (all its segments).
pub fn mapped_size(path: &Path) -> u64 {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let path = path.to_string_lossy();
    maps.lines()
        .filter(|l| l.ends_with(&*path) || l.ends_with(&format!("{path} (deleted)")))
        .filter_map(|l| {
            let (a, b) = l.split_whitespace().next()?.split_once('-')?;
            Some(u64::from_str_radix(b, 16).ok()? - u64::from_str_radix(a, 16).ok()?)
        })
        .sum()
}

/// The library copies in a directory.
pub fn copies(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "so"))
        .collect();
    v.sort();
    v
}
