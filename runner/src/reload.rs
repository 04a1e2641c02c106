//! The runner's end of the reload protocol (see [`dylib_dev_runtime::protocol`]): the private
//! directory and control socket a host is started with, and reload requests answered with the
//! host's timing.
//!
//! Blocking, with timeouts: the watch loop calls it from its own thread. Connections are accepted
//! on a background thread, so a host that connects while the runner is busy building is not kept
//! waiting.

use dylib_dev_runtime::private_dir::{PrivateDir, default_base};
use dylib_dev_runtime::protocol::{
    self, Hello, Panicked, Reload, Save, SwapTiming, ToHost, ToRunner,
};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Prefix of the runner's private directory under the base (stale ones are found by it).
const DIR_PREFIX: &str = "dylib-dev-run-";

/// File name of the control socket inside the private directory.
const SOCKET_NAME: &str = "control.sock";

/// File name of the hand-off state inside the private directory.
const STATE_NAME: &str = "state.json";

/// What a host reports unasked, with the pid of the host that said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// A process said hello for a library (served only if it is the host the runner started).
    Connected {
        /// The connecting process, as the kernel tells it (`SO_PEERCRED`).
        pid: u32,
        /// The library it opened.
        lib: String,
    },
    /// A call into a library panicked (reported once per version and place).
    Panicked {
        /// The host's process id.
        pid: u32,
        /// What panicked where.
        panic: Panicked,
    },
    /// A call into a library has not returned for the host's hang threshold.
    Stuck {
        /// The host's process id.
        pid: u32,
        /// Which call, since when.
        stuck: protocol::Stuck,
    },
    /// A call reported stuck returned after all.
    Resumed {
        /// The host's process id.
        pid: u32,
        /// Which call, after how long.
        resumed: protocol::Resumed,
    },
}

/// Where host events go (set with [`ReloadServer::on_event`]).
type EventSink = Arc<Mutex<Option<Box<dyn Fn(HostEvent) + Send>>>>;

/// What can go wrong talking to a host. The host's own refusals are not errors but
/// [`Outcome::Failed`].
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The private directory or the socket could not be made.
    #[error("cannot set up the control socket under {base}: {source}")]
    Setup {
        /// Where the private directory was to go.
        base: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The artifact could not be read to hash it.
    #[error("cannot hash {path}: {source}")]
    Hash {
        /// The artifact.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// No host connected for this library in time.
    #[error(
        "no host loaded `{lib}` within {waited:?} (does the host open it through dylib-dev-runtime?)"
    )]
    NoHost {
        /// The library.
        lib: String,
        /// How long the runner waited.
        waited: Duration,
    },
    /// The host closed the connection (exited or crashed).
    #[error("the host of `{lib}` disconnected")]
    Disconnected {
        /// The library.
        lib: String,
    },
    /// The host did not answer in time; a call into the library that never returns blocks a swap.
    #[error(
        "the host did not answer reload {version} of `{lib}` within {} (stuck in a call?)",
        crate::duration::ms(*waited)
    )]
    NoAnswer {
        /// The library.
        lib: String,
        /// The version requested.
        version: u64,
        /// How long the runner waited.
        waited: Duration,
    },
    /// The host did not answer a `save` in time (stuck in a call, or busy).
    #[error(
        "the host did not answer the request to save its state within {}",
        crate::duration::ms(*waited)
    )]
    SaveTimedOut {
        /// How long the runner waited.
        waited: Duration,
    },
}

/// The host's answer to a reload request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The new version runs.
    Swapped(SwapTiming),
    /// Refused (load error, missing symbol, hash mismatch, ...); the old version still runs.
    Failed(String),
}

/// One reload as the runner saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// The library.
    pub lib: String,
    /// The version requested.
    pub version: u64,
    /// What the host answered.
    pub outcome: Outcome,
    /// Hashing the artifact before sending.
    pub hash_time: Duration,
    /// From sending the request to reading the answer.
    pub round_trip: Duration,
    /// Old versions the host keeps mapped (libraries with thread-locals; see the runtime docs).
    pub lingering: u64,
    /// Their size on disk together.
    pub lingering_bytes: u64,
}

/// The host's answer to a `save` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The state is in the hand-off file, this many bytes.
    Saved(u64),
    /// Not saved, and why (no state registered, not serializable, locked too long).
    Unsaved(String),
}

/// The control socket hosts connect to, and the hosts connected to it, one per library.
pub struct ReloadServer {
    dir: PrivateDir,
    socket: PathBuf,
    incoming: Receiver<HostConn>,
    /// Keyed by [`protocol::lib_key`]: a host may spell the name with `-` or `_`.
    hosts: HashMap<String, HostConn>,
    /// The process the runner started: connections of any other are refused.
    host_pid: Option<u32>,
    sink: EventSink,
    hang: Option<Duration>,
    closing: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl ReloadServer {
    /// Creates the private directory and socket under `$XDG_RUNTIME_DIR` (else the temp dir).
    pub fn start() -> Result<Self, ReloadError> {
        Self::start_in(&default_base())
    }

    /// Creates the private directory (mode 0700) under `base` with the socket in it, removing
    /// the directories of runners that were killed.
    pub fn start_in(base: &Path) -> Result<Self, ReloadError> {
        let setup = |source| ReloadError::Setup {
            base: base.to_path_buf(),
            source,
        };
        let dir = PrivateDir::create(base, DIR_PREFIX).map_err(setup)?;
        let socket = dir.path().join(SOCKET_NAME);
        let listener = UnixListener::bind(&socket).map_err(setup)?;
        let (tx, incoming) = mpsc::channel();
        let closing = Arc::new(AtomicBool::new(false));
        let stop = closing.clone();
        let sink: EventSink = Arc::new(Mutex::new(None));
        let conn_sink = Arc::clone(&sink);
        let acceptor = std::thread::Builder::new()
            .name("dylib-dev-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    // Each greeted on its own thread with no deadline: a host that copies and
                    // loads a large library before its hello must not be dropped, nor hold up
                    // the next connection.
                    let (tx, sink) = (tx.clone(), Arc::clone(&conn_sink));
                    let _ = std::thread::Builder::new()
                        .name("dylib-dev-greet".into())
                        .spawn(move || {
                            // A connection that fails or never says hello is no host of ours.
                            if let Ok(conn) = HostConn::greet(stream, &sink) {
                                let connected = HostEvent::Connected {
                                    pid: conn.peer_pid.unwrap_or(conn.hello.pid),
                                    lib: conn.hello.lib.clone(),
                                };
                                // Queued before it is announced: whoever hears of it finds it.
                                if tx.send(conn).is_ok() {
                                    emit(&sink, connected);
                                }
                            }
                        });
                }
            })
            .map_err(setup)?;
        Ok(ReloadServer {
            dir,
            socket,
            incoming,
            hosts: HashMap::new(),
            host_pid: None,
            sink,
            hang: None,
            closing,
            acceptor: Some(acceptor),
        })
    }

    /// The private directory; hosts put their copies under it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The control socket.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// Sends what hosts report unasked (panics, stuck calls) to `sink`, on a reader thread.
    pub fn on_event(&mut self, sink: impl Fn(HostEvent) + Send + 'static) {
        *self.sink.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(sink));
    }

    /// Tells hosts started from now on to report calls running longer than `threshold` as stuck.
    pub fn set_hang_threshold(&mut self, threshold: Duration) {
        self.hang = Some(threshold);
    }

    /// The hand-off file: written by a host asked to [`save_state`](Self::save_state), read by
    /// every later host at its start until the next save replaces it.
    pub fn state_file(&self) -> PathBuf {
        self.dir.path().join(STATE_NAME)
    }

    /// The variables to set on a host process that loads `libs` (name, artifact path).
    pub fn host_env(&self, libs: &[(&str, &Path)]) -> Result<Vec<(String, OsString)>, ReloadError> {
        let mut env = vec![
            (
                protocol::ENV_SOCKET.to_string(),
                self.socket.clone().into_os_string(),
            ),
            (
                protocol::ENV_DIR.to_string(),
                self.dir.path().as_os_str().to_owned(),
            ),
            (
                protocol::ENV_STATE.to_string(),
                self.state_file().into_os_string(),
            ),
            (
                protocol::ENV_PROTOCOL.to_string(),
                protocol::PROTOCOL_VERSION.to_string().into(),
            ),
        ];
        if let Some(hang) = self.hang {
            env.push((
                protocol::ENV_HANG_MS.to_string(),
                hang.as_millis().to_string().into(),
            ));
        }
        for (lib, artifact) in libs {
            env.push((protocol::lib_env_var(lib), artifact.as_os_str().to_owned()));
            env.push((protocol::hash_env_var(lib), hash(artifact)?.into()));
        }
        Ok(env)
    }

    /// Serves only process `pid` from now on (the host just started): a process that inherited
    /// its environment (a copy of itself it spawned) is refused, and cannot take its place.
    pub fn serve_host(&mut self, pid: u32) {
        self.host_pid = Some(pid);
    }

    /// Waits until a host has loaded `lib` and said hello; returns its hello.
    pub fn wait_for_host(&mut self, lib: &str, timeout: Duration) -> Result<&Hello, ReloadError> {
        let deadline = Instant::now() + timeout;
        let lib = protocol::lib_key(lib);
        self.accept_pending();
        while !self.hosts.contains_key(&lib) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(conn) => self.add(conn),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    return Err(ReloadError::NoHost {
                        lib: lib.to_string(),
                        waited: timeout,
                    });
                }
            }
        }
        Ok(&self.hosts[&lib].hello)
    }

    /// The hello of the host currently serving `lib`, if one is connected.
    pub fn host(&mut self, lib: &str) -> Option<&Hello> {
        self.accept_pending();
        self.hosts.get(&protocol::lib_key(lib)).map(|c| &c.hello)
    }

    /// The hash of the build of `lib` the connected host runs (empty while it has loaded none),
    /// if a host is connected.
    pub fn running_hash(&mut self, lib: &str) -> Option<&str> {
        self.accept_pending();
        self.hosts
            .get(&protocol::lib_key(lib))
            .map(|c| c.running.as_str())
    }

    /// Forgets every host connection, e.g. before restarting the host.
    pub fn forget_hosts(&mut self) {
        self.accept_pending();
        self.hosts.clear();
    }

    /// Asks the host of `lib` to swap in `artifact` as `version` and waits for its answer, all
    /// within `timeout`. The artifact is hashed here so the host can verify its copy.
    pub fn reload(
        &mut self,
        lib: &str,
        version: u64,
        artifact: &Path,
        timeout: Duration,
    ) -> Result<ReloadReport, ReloadError> {
        let start = Instant::now();
        let deadline = start + timeout;
        let hash = hash(artifact)?;
        let hash_time = start.elapsed();
        self.wait_for_host(lib, deadline.saturating_duration_since(Instant::now()))?;
        let request = ToHost::Reload(Reload {
            lib: lib.to_string(),
            version,
            path: artifact.to_path_buf(),
            hash: Some(hash.clone()),
        });
        let sent = Instant::now();
        let key = protocol::lib_key(lib);
        let conn = self.hosts.get_mut(&key).expect("waited for above");
        let result = conn.exchange(&request, deadline, |msg| match msg {
            ToRunner::Swapped(s) => protocol::same_lib(&s.lib, lib) && s.version == version,
            ToRunner::Failed(f) => protocol::same_lib(&f.lib, lib) && f.version == version,
            _ => false,
        });
        if let Ok(ToRunner::Swapped(_)) = &result {
            conn.running = hash;
        }
        let (mut lingering, mut lingering_bytes) = (0, 0);
        let outcome = match result {
            Ok(ToRunner::Swapped(s)) => {
                (lingering, lingering_bytes) = (s.lingering, s.lingering_bytes);
                Outcome::Swapped(s.timing)
            }
            Ok(ToRunner::Failed(f)) => Outcome::Failed(f.reason),
            Ok(_) => unreachable!("only answers to this request are accepted"),
            Err(Exchange::Closed) => {
                self.hosts.remove(&key);
                return Err(ReloadError::Disconnected {
                    lib: lib.to_string(),
                });
            }
            Err(Exchange::TimedOut) => {
                return Err(ReloadError::NoAnswer {
                    lib: lib.to_string(),
                    version,
                    waited: timeout,
                });
            }
        };
        Ok(ReloadReport {
            lib: lib.to_string(),
            version,
            outcome,
            hash_time,
            round_trip: sent.elapsed(),
            lingering,
            lingering_bytes,
        })
    }

    /// Asks the host to write its hand-off state to [`state_file`](Self::state_file), giving it
    /// `timeout` to get at the state, and waits a little longer for the answer. `None` when no
    /// host is connected.
    pub fn save_state(&mut self, timeout: Duration) -> Option<Result<SaveOutcome, ReloadError>> {
        self.accept_pending();
        // Any library's connection reaches the one state of the process; a host whose runtime
        // predates `save` would never answer it.
        let (lib, conn) = self.hosts.iter_mut().find(|(_, c)| c.hello.save)?;
        let lib = lib.clone();
        let waited = timeout + Duration::from_secs(1);
        let result = conn.exchange(
            &ToHost::Save(Save { timeout }),
            Instant::now() + waited,
            |msg| matches!(msg, ToRunner::Saved(_) | ToRunner::Unsaved(_)),
        );
        Some(match result {
            Ok(ToRunner::Saved(s)) => Ok(SaveOutcome::Saved(s.bytes)),
            Ok(ToRunner::Unsaved(u)) => Ok(SaveOutcome::Unsaved(u.reason)),
            Ok(_) => unreachable!("only answers to a save are accepted"),
            Err(Exchange::Closed) => {
                self.hosts.remove(&lib);
                Err(ReloadError::Disconnected { lib })
            }
            Err(Exchange::TimedOut) => Err(ReloadError::SaveTimedOut { waited }),
        })
    }

    /// Takes in the connections that said hello since the last look: the host's are served,
    /// any other process is refused at once.
    pub fn accept_pending(&mut self) {
        while let Ok(conn) = self.incoming.try_recv() {
            self.add(conn);
        }
    }

    fn add(&mut self, mut conn: HostConn) {
        // The kernel's word where there is one; off Linux (untested) only the hello's.
        let peer = conn.peer_pid.unwrap_or(conn.hello.pid);
        if let Some(pid) = self.host_pid
            && peer != pid
        {
            let who = format!("pid {peer}");
            tracing::debug!(lib = conn.hello.lib, "refused {who}: the host is pid {pid}");
            let refusal = ToHost::Refused(protocol::Refused {
                reason: format!(
                    "{who} is not the host the runner started (pid {pid}); a process that inherited its environment is not served"
                ),
            });
            let _ = conn.writer.write_all(refusal.encode().as_bytes());
            let _ = conn.writer.shutdown(std::net::Shutdown::Both);
            return;
        }
        // A host whose runtime speaks another protocol cannot be served: say why on both ends.
        if conn.hello.protocol != protocol::PROTOCOL_VERSION {
            let reason =
                protocol::host_protocol_mismatch(conn.hello.protocol, env!("CARGO_PKG_VERSION"));
            tracing::warn!("`{}` cannot reload: {reason}", conn.hello.lib);
            let refusal = ToHost::Refused(protocol::Refused { reason });
            let _ = conn.writer.write_all(refusal.encode().as_bytes());
            let _ = conn.writer.shutdown(std::net::Shutdown::Both);
            return;
        }
        // The newest connection wins: it is the restarted host.
        self.hosts.insert(protocol::lib_key(&conn.hello.lib), conn);
    }
}

impl Drop for ReloadServer {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        // Wake the acceptor out of `accept` so it sees the flag.
        let _ = UnixStream::connect(&self.socket);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Hands `event` to the session's sink, if it set one.
fn emit(sink: &EventSink, event: HostEvent) {
    if let Some(sink) = sink.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        sink(event);
    }
}

/// The process at the other end of `stream`, as the kernel tells it.
#[cfg(target_os = "linux")]
fn peer_pid(stream: &UnixStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero `ucred` is a valid out-parameter, and `len` is its size.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid and writable for the call; the fd is open.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    (rc == 0).then(|| u32::try_from(cred.pid).ok()).flatten()
}

/// Untested off Linux: the hello's own pid is all there is.
#[cfg(not(target_os = "linux"))]
fn peer_pid(_stream: &UnixStream) -> Option<u32> {
    None
}

fn hash(artifact: &Path) -> Result<String, ReloadError> {
    dylib_dev_runtime::hash_file(artifact).map_err(|source| ReloadError::Hash {
        path: artifact.to_path_buf(),
        source,
    })
}

/// One host library's connection: requests go out on `writer`; a reader thread sorts what comes
/// back into answers (for [`HostConn::exchange`]) and events (for the event sink).
struct HostConn {
    hello: Hello,
    /// Who connected, as the kernel tells it (the hello's `pid` is only what the host says).
    peer_pid: Option<u32>,
    /// Hash of the build the host runs: its hello's, then each build it swapped in.
    running: String,
    writer: UnixStream,
    answers: Receiver<ToRunner>,
}

/// Why an exchange ended without an answer.
enum Exchange {
    Closed,
    TimedOut,
}

impl HostConn {
    /// Reads the hello of a new connection and starts its reader.
    fn greet(stream: UnixStream, sink: &EventSink) -> io::Result<HostConn> {
        let writer = stream.try_clone()?;
        let peer_pid = peer_pid(&stream);
        let mut lines = Lines {
            reader: BufReader::new(stream),
            partial: String::new(),
        };
        let hello = match lines.read()? {
            Some(ToRunner::Hello(hello)) => hello,
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "no hello")),
        };
        let (tx, answers) = mpsc::channel();
        let sink = Arc::clone(sink);
        let pid = peer_pid.unwrap_or(hello.pid);
        std::thread::Builder::new()
            .name(format!("dylib-dev-host-{}", hello.lib))
            .spawn(move || lines.sort(pid, &tx, &sink))?;
        Ok(HostConn {
            running: hello.hash.clone(),
            hello,
            peer_pid,
            writer,
            answers,
        })
    }

    /// Sends `request` and waits for the answer `is_answer` accepts (older answers are skipped).
    fn exchange(
        &mut self,
        request: &ToHost,
        deadline: Instant,
        is_answer: impl Fn(&ToRunner) -> bool,
    ) -> Result<ToRunner, Exchange> {
        // Answers to requests that timed out earlier.
        while self.answers.try_recv().is_ok() {}
        self.writer
            .write_all(request.encode().as_bytes())
            .map_err(|_| Exchange::Closed)?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.answers.recv_timeout(left) {
                Ok(msg) if is_answer(&msg) => return Ok(msg),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => return Err(Exchange::TimedOut),
                Err(RecvTimeoutError::Disconnected) => return Err(Exchange::Closed),
            }
        }
    }
}

/// The messages of one connection.
struct Lines {
    reader: BufReader<UnixStream>,
    /// Bytes of a line read so far.
    partial: String,
}

impl Lines {
    /// Reads one message, blocking: `Ok(None)` for a line that does not decode.
    fn read(&mut self) -> io::Result<Option<ToRunner>> {
        self.reader.read_line(&mut self.partial)?;
        if !self.partial.ends_with('\n') {
            // `read_line` returns a line without its newline only at the end of the stream.
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = std::mem::take(&mut self.partial);
        Ok(ToRunner::decode(&line).ok())
    }

    /// The reader thread: answers to `answers`, unasked reports to `sink`, until the host closes.
    fn sort(mut self, pid: u32, answers: &mpsc::Sender<ToRunner>, sink: &EventSink) {
        loop {
            let msg = match self.read() {
                Ok(Some(msg)) => msg,
                // A message of a newer host that this runner does not know.
                Ok(None) => continue,
                Err(_) => return,
            };
            let event = match msg {
                ToRunner::Panicked(p) => HostEvent::Panicked { pid, panic: p },
                ToRunner::Stuck(s) => HostEvent::Stuck { pid, stuck: s },
                ToRunner::Resumed(s) => HostEvent::Resumed { pid, resumed: s },
                answer => {
                    // The connection was forgotten (host restarted): nobody waits for answers.
                    let _ = answers.send(answer);
                    continue;
                }
            };
            emit(sink, event);
        }
    }
}
