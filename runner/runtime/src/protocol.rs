//! The reload protocol between the `dylib-dev` runner and a host: environment variables and the
//! messages sent over the control socket.
//!
//! Both sides use this module, so the runner and the host can never disagree on the encoding.
//!
//! # Wire format
//!
//! One message per line (`\n`-terminated, ASCII): a verb, then `key=value` fields separated by
//! single spaces. Values are percent-encoded (every byte outside `A-Z a-z 0-9 - _ . ~ / : + , @`
//! becomes `%XX`), so paths with spaces or non-UTF-8 bytes survive. Unknown keys are ignored and
//! unknown verbs are reported as [`DecodeError::UnknownVerb`], so either side can grow new fields
//! or messages without breaking an older peer.
//!
//! ```text
//! host   -> runner  hello protocol=1 pid=4242 lib=logic version=0 hash=blake3:9f86… save=1
//! runner -> host    reload lib=logic version=3 path=/home/me/game/target/dylib-dev/debug/liblogic.so hash=blake3:6030…
//! host   -> runner  swapped lib=logic version=3 copy_us=180 load_us=95 wait_us=4 unload_us=30 lingering=0 lingering_bytes=0
//! host   -> runner  failed lib=logic version=4 reason=symbol%20%60step%60%20missing…
//! host   -> runner  panicked lib=logic version=4 function=step thread=main message=boom location=logic/src/lib.rs:9:5
//! host   -> runner  stuck lib=logic version=4 function=step thread=main ms=10000
//! host   -> runner  resumed lib=logic version=4 function=step thread=main ms=12250
//! runner -> host    save timeout_ms=3000
//! runner -> host    refused reason=pid%204243%20is%20not%20the%20host%20the%20runner%20started%20(pid%204242)
//! host   -> runner  saved bytes=1234 us=310
//! host   -> runner  unsaved reason=no%20state%20registered
//! ```
//!
//! Every [`Reload`] is answered by exactly one [`Swapped`] or [`Failed`] with the same `lib` and
//! `version`; every `save` by exactly one [`Saved`] or [`Unsaved`]. [`Panicked`], [`Stuck`] and
//! [`Resumed`] come unasked, whenever they happen. A host opens one connection per reloadable
//! library and says [`Hello`] first. Library names are compared with [`same_lib`]: `my-logic` and
//! `my_logic` are one library, as they are to cargo.
//!
//! A host whose start-up artifact changed before it could load it (a rebuild while the host was
//! still loading its data) says hello with an empty `hash` and waits: the runner answers with a
//! `reload` of its newest build, which the host takes as its first version. The runner serves only
//! the process it started: any other (a child that inherited the environment) gets `refused`.
//!
//! The hello's `protocol` is the handshake: a runner refuses a host that speaks another protocol,
//! and a host refuses a runner whose [`ENV_PROTOCOL`] names another; each side says which versions
//! differ and what to update ([`host_protocol_mismatch`], [`runner_protocol_mismatch`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// The protocol revision this crate speaks; sent in [`Hello`].
pub const PROTOCOL_VERSION: u32 = 1;

/// This crate's version, named when a host and a runner speak different protocols.
pub const RUNTIME_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Environment variable: the runner's [`PROTOCOL_VERSION`], so a host can refuse a runner that
/// speaks another. Runners that do not set it speak protocol 1.
pub const ENV_PROTOCOL: &str = "DYLIB_DEV_PROTOCOL";

/// Why a runner of version `runner`, speaking [`PROTOCOL_VERSION`], refuses a host whose
/// [`Hello`] says protocol `host`: both protocols, and what to update (the hello does not name
/// the host's runtime version; its copy's `Cargo.toml` does).
pub fn host_protocol_mismatch(host: u32, runner: &str) -> String {
    format!(
        "the host's dylib-dev-runtime speaks reload protocol {host}; this dylib-dev {runner} speaks \
         protocol {PROTOCOL_VERSION}: update the project's dylib-dev-runtime copy to {runner} \
         (replace `dylib-dev-runtime/` with the runtime of dylib-dev {runner}, or depend on \
         `dylib-dev-runtime = \"{runner}\"`), or install the dylib-dev of that copy \
         (`cargo install dylib-dev --version <the version in dylib-dev-runtime/Cargo.toml>`)"
    )
}

/// Why a host linking this crate refuses a runner that speaks protocol `runner` (its
/// [`ENV_PROTOCOL`]): both versions, and what to update.
pub fn runner_protocol_mismatch(runner: u32) -> String {
    format!(
        "this host links dylib-dev-runtime {RUNTIME_VERSION} (reload protocol {PROTOCOL_VERSION}); \
         the dylib-dev that started it speaks protocol {runner}: update the project's \
         dylib-dev-runtime copy to that dylib-dev's version (`dylib-dev --version`), or install \
         dylib-dev {RUNTIME_VERSION} (`cargo install dylib-dev --version {RUNTIME_VERSION}`)"
    )
}

/// Environment variable: path of the runner's control socket (a Unix domain socket).
pub const ENV_SOCKET: &str = "DYLIB_DEV_SOCKET";

/// Environment variable: a private directory (mode 0700) under which the host keeps its copies.
pub const ENV_DIR: &str = "DYLIB_DEV_DIR";

/// Environment variable: how long a call into a library may run, in milliseconds, before the host
/// reports it as [`Stuck`] (default [`DEFAULT_HANG_MS`]).
pub const ENV_HANG_MS: &str = "DYLIB_DEV_HANG_MS";

/// The hang threshold when [`ENV_HANG_MS`] is not set.
pub const DEFAULT_HANG_MS: u64 = 10_000;

/// Environment variable: the file through which host state survives a restart (see the `state`
/// feature): read at start (and kept until the next save replaces it), written when the runner
/// sends `save`.
pub const ENV_STATE: &str = "DYLIB_DEV_STATE";

/// Environment variable: a directory where a saved state that no longer deserializes is kept
/// (default: next to the [`ENV_STATE`] file), so a type change never throws the state away.
pub const ENV_STATE_REJECTED: &str = "DYLIB_DEV_STATE_REJECTED";

/// Prefix of the per-library variable holding the artifact path; see [`lib_env_var`].
pub const ENV_LIB_PREFIX: &str = "DYLIB_DEV_LIB_";

/// Prefix of the per-library variable holding the artifact's hash; see [`hash_env_var`].
pub const ENV_HASH_PREFIX: &str = "DYLIB_DEV_HASH_";

/// The variable naming the artifact of library `lib`: `DYLIB_DEV_LIB_` + [`env_suffix`].
pub fn lib_env_var(lib: &str) -> String {
    format!("{ENV_LIB_PREFIX}{}", env_suffix(lib))
}

/// The variable holding the expected hash (`blake3:<hex>`) of library `lib`'s artifact.
pub fn hash_env_var(lib: &str) -> String {
    format!("{ENV_HASH_PREFIX}{}", env_suffix(lib))
}

/// A library name as an environment variable suffix: upper case, anything but `A-Z0-9` as `_`
/// (so `my-logic` and `my_logic` both give `MY_LOGIC`, like cargo's own crate-name mapping).
pub fn env_suffix(lib: &str) -> String {
    lib.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether `a` and `b` name the same library: `-` and `_` are the same character, as in cargo's
/// crate names (a `hot_module!` may say `my-logic` for the library cargo calls `my_logic`).
pub fn same_lib(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || matches!((x, y), (b'-', b'_') | (b'_', b'-')))
}

/// `lib` in the one spelling the runner keys its hosts by (`-` as `_`).
pub fn lib_key(lib: &str) -> String {
    lib.replace('-', "_")
}

/// Runner to host: load this artifact as `version` of `lib`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reload {
    /// The library to swap (the host's name for it).
    pub lib: String,
    /// The runner's number for this build; echoed in the answer.
    pub version: u64,
    /// The artifact cargo reported; the host copies it before loading.
    pub path: PathBuf,
    /// The hash the copy must have (`blake3:<hex>`, see [`hash_file`](crate::hash_file));
    /// `None` skips the check.
    pub hash: Option<String>,
}

/// Host to runner, first message on a connection: who is speaking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The host's [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The host's process id.
    pub pid: u32,
    /// The library this connection serves.
    pub lib: String,
    /// The version loaded at start (0 for the artifact named in the environment).
    pub version: u64,
    /// Hash of the copy loaded at start; empty when the host could not load the artifact it was
    /// started with (it changed since) and waits for the runner's newest build.
    pub hash: String,
    /// The host answers `save` (a runtime that knows it; older hosts would not answer).
    pub save: bool,
}

/// Where the time of one swap went, measured by the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwapTiming {
    /// Copying the artifact to its private copy and hashing it.
    pub copy: Duration,
    /// `dlopen` of the copy and resolving every symbol (plus the validation hook, if any).
    pub load: Duration,
    /// Waiting for calls in flight to finish, then switching to the new version.
    pub wait: Duration,
    /// Closing the old library and deleting its copy.
    pub unload: Duration,
}

impl SwapTiming {
    /// Time from receiving the request to the old library being gone.
    pub fn total(&self) -> Duration {
        self.copy + self.load + self.wait + self.unload
    }
}

/// Host to runner: `version` of `lib` is now the code that runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swapped {
    /// The library that was swapped.
    pub lib: String,
    /// The version now running.
    pub version: u64,
    /// How long each step took.
    pub timing: SwapTiming,
    /// Old versions of this library still mapped in the host after this swap (all that ran,
    /// unless the host opted in to unloading; see the crate docs), as `/proc/self/maps` shows.
    pub lingering: u64,
    /// The size of their mappings together (not their file size: debug info is never mapped):
    /// address space the host cannot give back before it restarts.
    pub lingering_bytes: u64,
}

/// Host to runner: `version` of `lib` was refused; the previous code keeps running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The library whose reload failed.
    pub lib: String,
    /// The version that was refused.
    pub version: u64,
    /// Why, as a lowercase sentence fragment.
    pub reason: String,
}

/// Host to runner: a call into `lib` panicked; the panic was caught at the call boundary.
///
/// Sent once per version and place (a panic in every frame is reported once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panicked {
    /// The library that panicked.
    pub lib: String,
    /// The version that was running.
    pub version: u64,
    /// The function the host called.
    pub function: String,
    /// The calling thread's name (or id).
    pub thread: String,
    /// The panic message.
    pub message: String,
    /// `file:line:column`, when the panic hook saw it.
    pub location: Option<String>,
}

/// Host to runner: a call into `lib` has run for `elapsed` without returning (sent once per
/// call, when it passes the hang threshold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    /// The library.
    pub lib: String,
    /// The version running the call.
    pub version: u64,
    /// The function the host called.
    pub function: String,
    /// The calling thread's name (or id).
    pub thread: String,
    /// How long the call had run when reported ([`Stuck`]) or when it returned ([`Resumed`]).
    pub elapsed: Duration,
}

/// Host to runner: a call reported as [`Stuck`] returned after all.
pub type Resumed = Stuck;

/// Host to runner: the host state was written to the [`ENV_STATE`] file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Size of the file.
    pub bytes: u64,
    /// Time from the request to the file being on disk.
    pub time: Duration,
}

/// Host to runner: the state was not saved (none registered, serialization failed, timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsaved {
    /// Why, as a lowercase sentence fragment.
    pub reason: String,
}

/// A message the runner sends to a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToHost {
    /// Swap in a new build.
    Reload(Reload),
    /// Save the host state for the next host (answered by [`Saved`] or [`Unsaved`]).
    Save(Save),
    /// This connection is not served (the process is not the host the runner started); the
    /// runner closes it after this line.
    Refused(Refused),
}

/// Runner to host: the connection is refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why, as a lowercase sentence fragment.
    pub reason: String,
}

/// Runner to host: save the host state now (see the runtime's `state` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Save {
    /// How long the host may wait for its state to be free (the current frame to end).
    pub timeout: Duration,
}

/// A message a host sends to the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToRunner {
    /// First message of a connection.
    Hello(Hello),
    /// A reload succeeded.
    Swapped(Swapped),
    /// A reload was refused.
    Failed(Failed),
    /// A call panicked and was caught.
    Panicked(Panicked),
    /// A call has not returned for the hang threshold.
    Stuck(Stuck),
    /// A stuck call returned.
    Resumed(Resumed),
    /// The state was saved.
    Saved(Saved),
    /// The state was not saved.
    Unsaved(Unsaved),
}

/// Why a line is not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The line has no verb.
    #[error("empty message")]
    Empty,
    /// A newer peer sent a message this version does not know; safe to ignore.
    #[error("unknown message `{0}`")]
    UnknownVerb(String),
    /// A required field is absent.
    #[error("`{verb}` message without `{key}`")]
    Missing {
        /// The message's verb.
        verb: &'static str,
        /// The missing key.
        key: &'static str,
    },
    /// A field is present but does not parse.
    #[error("bad `{key}` in `{verb}` message: {value:?}")]
    Bad {
        /// The message's verb.
        verb: &'static str,
        /// The key whose value is bad.
        key: &'static str,
        /// The value as received.
        value: String,
    },
}

impl ToHost {
    /// The message as one line, newline included.
    pub fn encode(&self) -> String {
        match self {
            ToHost::Reload(r) => {
                let mut line = Line::new("reload");
                line.field("lib", r.lib.as_bytes());
                line.field("version", r.version.to_string().as_bytes());
                line.field("path", &path_bytes(&r.path));
                if let Some(h) = &r.hash {
                    line.field("hash", h.as_bytes());
                }
                line.finish()
            }
            ToHost::Save(save) => {
                let mut line = Line::new("save");
                line.field(
                    "timeout_ms",
                    save.timeout.as_millis().to_string().as_bytes(),
                );
                line.finish()
            }
            ToHost::Refused(r) => {
                let mut line = Line::new("refused");
                line.field("reason", r.reason.as_bytes());
                line.finish()
            }
        }
    }

    /// Parses one line (with or without its newline).
    pub fn decode(line: &str) -> Result<Self, DecodeError> {
        let (verb, fields) = Fields::parse(line)?;
        match verb {
            "save" => {
                let f = fields.of("save");
                Ok(ToHost::Save(Save {
                    timeout: Duration::from_millis(f.number("timeout_ms")?),
                }))
            }
            "refused" => {
                let f = fields.of("refused");
                Ok(ToHost::Refused(Refused {
                    reason: f.string("reason")?,
                }))
            }
            "reload" => {
                let f = fields.of("reload");
                Ok(ToHost::Reload(Reload {
                    lib: f.string("lib")?,
                    version: f.number("version")?,
                    path: bytes_path(f.bytes("path")?),
                    hash: f.optional_string("hash")?,
                }))
            }
            other => Err(DecodeError::UnknownVerb(other.to_string())),
        }
    }
}

impl ToRunner {
    /// The message as one line, newline included.
    pub fn encode(&self) -> String {
        match self {
            ToRunner::Hello(h) => {
                let mut line = Line::new("hello");
                line.field("protocol", h.protocol.to_string().as_bytes());
                line.field("pid", h.pid.to_string().as_bytes());
                line.field("lib", h.lib.as_bytes());
                line.field("version", h.version.to_string().as_bytes());
                line.field("hash", h.hash.as_bytes());
                if h.save {
                    line.field("save", b"1");
                }
                line.finish()
            }
            ToRunner::Swapped(s) => {
                let mut line = Line::new("swapped");
                line.field("lib", s.lib.as_bytes());
                line.field("version", s.version.to_string().as_bytes());
                for (key, d) in [
                    ("copy_us", s.timing.copy),
                    ("load_us", s.timing.load),
                    ("wait_us", s.timing.wait),
                    ("unload_us", s.timing.unload),
                ] {
                    line.field(key, d.as_micros().to_string().as_bytes());
                }
                line.field("lingering", s.lingering.to_string().as_bytes());
                line.field("lingering_bytes", s.lingering_bytes.to_string().as_bytes());
                line.finish()
            }
            ToRunner::Failed(f) => {
                let mut line = Line::new("failed");
                line.field("lib", f.lib.as_bytes());
                line.field("version", f.version.to_string().as_bytes());
                line.field("reason", f.reason.as_bytes());
                line.finish()
            }
            ToRunner::Panicked(p) => {
                let mut line = Line::new("panicked");
                line.field("lib", p.lib.as_bytes());
                line.field("version", p.version.to_string().as_bytes());
                line.field("function", p.function.as_bytes());
                line.field("thread", p.thread.as_bytes());
                line.field("message", p.message.as_bytes());
                if let Some(location) = &p.location {
                    line.field("location", location.as_bytes());
                }
                line.finish()
            }
            ToRunner::Stuck(s) | ToRunner::Resumed(s) => {
                let verb = match self {
                    ToRunner::Stuck(_) => "stuck",
                    _ => "resumed",
                };
                let mut line = Line::new(verb);
                line.field("lib", s.lib.as_bytes());
                line.field("version", s.version.to_string().as_bytes());
                line.field("function", s.function.as_bytes());
                line.field("thread", s.thread.as_bytes());
                line.field("ms", s.elapsed.as_millis().to_string().as_bytes());
                line.finish()
            }
            ToRunner::Saved(s) => {
                let mut line = Line::new("saved");
                line.field("bytes", s.bytes.to_string().as_bytes());
                line.field("us", s.time.as_micros().to_string().as_bytes());
                line.finish()
            }
            ToRunner::Unsaved(u) => {
                let mut line = Line::new("unsaved");
                line.field("reason", u.reason.as_bytes());
                line.finish()
            }
        }
    }

    /// Parses one line (with or without its newline).
    pub fn decode(line: &str) -> Result<Self, DecodeError> {
        let (verb, fields) = Fields::parse(line)?;
        match verb {
            "hello" => {
                let f = fields.of("hello");
                Ok(ToRunner::Hello(Hello {
                    protocol: f.number("protocol")?,
                    pid: f.number("pid")?,
                    lib: f.string("lib")?,
                    version: f.number("version")?,
                    hash: f.string("hash")?,
                    save: f.number_or_zero("save")? == 1,
                }))
            }
            "swapped" => {
                let f = fields.of("swapped");
                let micros = |key| f.number::<u64>(key).map(Duration::from_micros);
                Ok(ToRunner::Swapped(Swapped {
                    lib: f.string("lib")?,
                    version: f.number("version")?,
                    timing: SwapTiming {
                        copy: micros("copy_us")?,
                        load: micros("load_us")?,
                        wait: micros("wait_us")?,
                        unload: micros("unload_us")?,
                    },
                    lingering: f.number_or_zero("lingering")?,
                    lingering_bytes: f.number_or_zero("lingering_bytes")?,
                }))
            }
            "failed" => {
                let f = fields.of("failed");
                Ok(ToRunner::Failed(Failed {
                    lib: f.string("lib")?,
                    version: f.number("version")?,
                    reason: f.string("reason")?,
                }))
            }
            "panicked" => {
                let f = fields.of("panicked");
                Ok(ToRunner::Panicked(Panicked {
                    lib: f.string("lib")?,
                    version: f.number("version")?,
                    function: f.string("function")?,
                    thread: f.string("thread")?,
                    message: f.string("message")?,
                    location: f.optional_string("location")?,
                }))
            }
            verb @ ("stuck" | "resumed") => {
                let f = fields.of(if verb == "stuck" { "stuck" } else { "resumed" });
                let s = Stuck {
                    lib: f.string("lib")?,
                    version: f.number("version")?,
                    function: f.string("function")?,
                    thread: f.string("thread")?,
                    elapsed: Duration::from_millis(f.number("ms")?),
                };
                Ok(if verb == "stuck" {
                    ToRunner::Stuck(s)
                } else {
                    ToRunner::Resumed(s)
                })
            }
            "saved" => {
                let f = fields.of("saved");
                Ok(ToRunner::Saved(Saved {
                    bytes: f.number("bytes")?,
                    time: Duration::from_micros(f.number("us")?),
                }))
            }
            "unsaved" => {
                let f = fields.of("unsaved");
                Ok(ToRunner::Unsaved(Unsaved {
                    reason: f.string("reason")?,
                }))
            }
            other => Err(DecodeError::UnknownVerb(other.to_string())),
        }
    }
}

/// Builds one encoded line.
struct Line(String);

impl Line {
    fn new(verb: &str) -> Self {
        Line(verb.to_string())
    }

    fn field(&mut self, key: &str, value: &[u8]) {
        self.0.push(' ');
        self.0.push_str(key);
        self.0.push('=');
        escape_into(&mut self.0, value);
    }

    fn finish(mut self) -> String {
        self.0.push('\n');
        self.0
    }
}

/// The decoded `key=value` fields of one line.
struct Fields<'a>(HashMap<&'a str, &'a str>);

/// [`Fields`] together with the verb, for error messages.
struct VerbFields<'a, 'b> {
    verb: &'static str,
    fields: &'b Fields<'a>,
}

impl<'a> Fields<'a> {
    fn parse(line: &'a str) -> Result<(&'a str, Fields<'a>), DecodeError> {
        let mut words = line.trim_end_matches(['\n', '\r']).split(' ');
        let verb = words
            .next()
            .filter(|v| !v.is_empty())
            .ok_or(DecodeError::Empty)?;
        // A word without `=` is ignored like an unknown key: it can only come from a newer peer.
        let fields = words.filter_map(|w| w.split_once('=')).collect();
        Ok((verb, Fields(fields)))
    }

    fn of<'b>(&'b self, verb: &'static str) -> VerbFields<'a, 'b> {
        VerbFields { verb, fields: self }
    }
}

impl VerbFields<'_, '_> {
    fn raw(&self, key: &'static str) -> Result<&str, DecodeError> {
        self.fields.0.get(key).copied().ok_or(DecodeError::Missing {
            verb: self.verb,
            key,
        })
    }

    fn bad(&self, key: &'static str, value: &str) -> DecodeError {
        DecodeError::Bad {
            verb: self.verb,
            key,
            value: value.to_string(),
        }
    }

    fn bytes(&self, key: &'static str) -> Result<Vec<u8>, DecodeError> {
        let raw = self.raw(key)?;
        unescape(raw).ok_or_else(|| self.bad(key, raw))
    }

    fn string(&self, key: &'static str) -> Result<String, DecodeError> {
        let raw = self.raw(key)?;
        String::from_utf8(self.bytes(key)?).map_err(|_| self.bad(key, raw))
    }

    fn optional_string(&self, key: &'static str) -> Result<Option<String>, DecodeError> {
        match self.fields.0.contains_key(key) {
            true => self.string(key).map(Some),
            false => Ok(None),
        }
    }

    /// A number a newer field that older peers do not send: 0 when absent.
    fn number_or_zero(&self, key: &'static str) -> Result<u64, DecodeError> {
        match self.fields.0.contains_key(key) {
            true => self.number(key),
            false => Ok(0),
        }
    }

    fn number<T: std::str::FromStr>(&self, key: &'static str) -> Result<T, DecodeError> {
        let raw = self.raw(key)?;
        raw.parse().map_err(|_| self.bad(key, raw))
    }
}

/// Bytes that travel unescaped: enough for names, numbers, hashes and most paths to stay readable.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.~/:+,@".contains(&b)
}

fn escape_into(out: &mut String, value: &[u8]) {
    for &b in value {
        if is_plain(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn unescape(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            // `from_str_radix` alone would also take a sign, as in `%+1`.
            if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(unix)]
fn path_bytes(p: &std::path::Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes().to_vec()
}

#[cfg(unix)]
fn bytes_path(b: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(b))
}

// Untested: off Unix, paths travel as UTF-8 (lossy for the rare path that is not).
#[cfg(not(unix))]
fn path_bytes(p: &std::path::Path) -> Vec<u8> {
    p.to_string_lossy().into_owned().into_bytes()
}

#[cfg(not(unix))]
fn bytes_path(b: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&b).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_protocol_mismatch_names_both_versions_and_what_to_update() {
        let other = PROTOCOL_VERSION + 1;
        let runner_side = host_protocol_mismatch(other, "9.8.7");
        for part in [
            format!("reload protocol {other}"),
            format!("dylib-dev 9.8.7 speaks protocol {PROTOCOL_VERSION}"),
            "update the project's dylib-dev-runtime copy to 9.8.7".to_string(),
            "cargo install dylib-dev --version".to_string(),
        ] {
            assert!(
                runner_side.contains(&part),
                "{part:?} not in {runner_side:?}"
            );
        }
        let host_side = runner_protocol_mismatch(other);
        for part in [
            format!("dylib-dev-runtime {RUNTIME_VERSION} (reload protocol {PROTOCOL_VERSION})"),
            format!("speaks protocol {other}"),
            format!("cargo install dylib-dev --version {RUNTIME_VERSION}"),
        ] {
            assert!(host_side.contains(&part), "{part:?} not in {host_side:?}");
        }
    }

    #[test]
    fn reload_round_trips_odd_paths() {
        let msg = ToHost::Reload(Reload {
            lib: "logic".into(),
            version: 7,
            path: PathBuf::from("/home/me/my game/100%/target/liblogic.so\nx"),
            hash: Some("blake3:ab12".into()),
        });
        let line = msg.encode();
        assert_eq!(
            line,
            "reload lib=logic version=7 path=/home/me/my%20game/100%25/target/liblogic.so%0Ax hash=blake3:ab12\n"
        );
        assert_eq!(ToHost::decode(&line), Ok(msg));
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_paths_survive() {
        use std::os::unix::ffi::OsStrExt;
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(b"/tmp/\xff\xfe.so"));
        let msg = ToHost::Reload(Reload {
            lib: "l".into(),
            version: 1,
            path,
            hash: None,
        });
        assert_eq!(ToHost::decode(&msg.encode()), Ok(msg));
    }

    #[test]
    fn runner_messages_round_trip() {
        let msgs = [
            ToRunner::Hello(Hello {
                protocol: PROTOCOL_VERSION,
                pid: 42,
                lib: "logic".into(),
                version: 0,
                hash: "blake3:00ff".into(),
                save: true,
            }),
            ToRunner::Swapped(Swapped {
                lib: "logic".into(),
                version: 3,
                timing: SwapTiming {
                    copy: Duration::from_micros(180),
                    load: Duration::from_micros(95),
                    wait: Duration::from_micros(4),
                    unload: Duration::from_micros(30),
                },
                lingering: 2,
                lingering_bytes: 720_000,
            }),
            ToRunner::Failed(Failed {
                lib: "logic".into(),
                version: 4,
                reason: "symbol `step` missing from /x y/liblogic.so".into(),
            }),
            ToRunner::Panicked(Panicked {
                lib: "logic".into(),
                version: 4,
                function: "step".into(),
                thread: "main".into(),
                message: "index out of bounds: the len is 3 but the index is 7".into(),
                location: Some("logic/src/lib.rs:9:5".into()),
            }),
            ToRunner::Panicked(Panicked {
                lib: "logic".into(),
                version: 5,
                function: "step".into(),
                thread: "<unnamed>".into(),
                message: "multi\nline %".into(),
                location: None,
            }),
            ToRunner::Stuck(Stuck {
                lib: "logic".into(),
                version: 4,
                function: "step".into(),
                thread: "worker 1".into(),
                elapsed: Duration::from_millis(10_000),
            }),
            ToRunner::Resumed(Stuck {
                lib: "logic".into(),
                version: 4,
                function: "step".into(),
                thread: "main".into(),
                elapsed: Duration::from_millis(12_250),
            }),
            ToRunner::Saved(Saved {
                bytes: 1234,
                time: Duration::from_micros(310),
            }),
            ToRunner::Unsaved(Unsaved {
                reason: "no state registered".into(),
            }),
        ];
        for msg in msgs {
            let line = msg.encode();
            assert!(
                line.ends_with('\n') && line.matches('\n').count() == 1,
                "{line:?}"
            );
            assert_eq!(ToRunner::decode(&line), Ok(msg));
        }
    }

    #[test]
    fn refused_round_trips_and_an_empty_hello_hash_survives() {
        let msg = ToHost::Refused(Refused {
            reason: "pid 7 is not the host".into(),
        });
        assert_eq!(
            msg.encode(),
            "refused reason=pid%207%20is%20not%20the%20host\n"
        );
        assert_eq!(ToHost::decode(&msg.encode()), Ok(msg));
        let hello = ToRunner::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            pid: 7,
            lib: "my-logic".into(),
            version: 0,
            hash: String::new(),
            save: false,
        });
        assert_eq!(ToRunner::decode(&hello.encode()), Ok(hello));
    }

    #[test]
    fn library_names_match_across_dash_and_underscore() {
        assert!(same_lib("my-logic", "my_logic"));
        assert!(same_lib("my_logic", "my-logic"));
        assert!(same_lib("logic", "logic"));
        assert!(!same_lib("my-logic", "mylogic"));
        assert!(!same_lib("logic", "Logic"));
        assert_eq!(lib_key("a-b_c"), "a_b_c");
    }

    #[test]
    fn newer_peers_are_tolerated() {
        let line =
            "swapped lib=l version=2 copy_us=1 load_us=2 wait_us=3 unload_us=4 gpu_us=9 flag\n";
        assert!(matches!(ToRunner::decode(line), Ok(ToRunner::Swapped(_))));
        assert_eq!(
            ToRunner::decode("rewound lib=l"),
            Err(DecodeError::UnknownVerb("rewound".into()))
        );
        let save = ToHost::Save(Save {
            timeout: Duration::from_millis(2500),
        });
        assert_eq!(save.encode(), "save timeout_ms=2500\n");
        assert_eq!(
            ToHost::decode("save please=now timeout_ms=2500\n"),
            Ok(save)
        );
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert_eq!(ToHost::decode(""), Err(DecodeError::Empty));
        assert_eq!(
            ToHost::decode("reload lib=l path=/x"),
            Err(DecodeError::Missing {
                verb: "reload",
                key: "version"
            })
        );
        assert!(matches!(
            ToHost::decode("reload lib=l version=x path=/x"),
            Err(DecodeError::Bad { key: "version", .. })
        ));
        assert!(matches!(
            ToHost::decode("reload lib=l version=1 path=%4"),
            Err(DecodeError::Bad { key: "path", .. })
        ));
    }

    #[test]
    fn env_names() {
        assert_eq!(lib_env_var("my-logic"), "DYLIB_DEV_LIB_MY_LOGIC");
        assert_eq!(hash_env_var("logic2"), "DYLIB_DEV_HASH_LOGIC2");
    }
}
