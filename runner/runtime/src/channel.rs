//! The host's end of the control socket: a connection per library, and the thread that receives
//! reload requests the moment the runner sends them (no polling).
//!
//! Transport only: what a request does is the [`Handler`]'s business (the library's reload
//! engine implements it), so this file names nothing of the engine.

use crate::Error;
use crate::protocol::{Reload, ToRunner};
use std::path::Path;
use std::sync::Weak;
use std::thread::JoinHandle;

/// What the control thread does with the runner's requests for one library.
pub(crate) trait Handler: Send + Sync + 'static {
    /// The library's name: requests for other libraries are ignored.
    fn name(&self) -> &str;
    /// Loads and swaps in the build the runner announced (on the control thread).
    fn reload(&self, req: &Reload);
    /// Sends an answer (e.g. the saved state) to the runner.
    fn send(&self, msg: &ToRunner);
}

#[cfg(unix)]
pub(crate) use unix::{Channel, FirstBuild};

#[cfg(unix)]
mod unix {
    use super::*;
    use crate::protocol::{ToHost, same_lib};
    use std::io::{BufRead, BufReader, Write};
    use std::net::Shutdown;
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;
    use std::sync::{Mutex, PoisonError};
    use std::time::{Duration, Instant};

    /// A connection to the runner.
    pub(crate) struct Channel {
        path: PathBuf,
        /// Replies come from the control thread and from host threads in `update`.
        writer: Mutex<UnixStream>,
        /// The read side, buffered once for the connection's life: [`Channel::wait_for_build`]
        /// reads from it before the reader thread takes it, and a second buffer would lose what
        /// the first had read ahead.
        reader: Mutex<Option<BufReader<UnixStream>>>,
    }

    /// What the runner answered a host that loaded nothing yet.
    pub(crate) enum FirstBuild {
        /// Its newest build, to load as the first version.
        Reload(Reload),
        /// The runner does not serve this process (see [`ToHost::Refused`]).
        Refused(String),
    }

    impl Channel {
        /// Connects to the runner's socket.
        pub(crate) fn connect(path: &Path) -> Result<Channel, Error> {
            let connect_error = |source| Error::Connect {
                path: path.to_path_buf(),
                source,
            };
            let stream = UnixStream::connect(path).map_err(connect_error)?;
            let reader = BufReader::new(stream.try_clone().map_err(connect_error)?);
            Ok(Channel {
                path: path.to_path_buf(),
                writer: Mutex::new(stream),
                reader: Mutex::new(Some(reader)),
            })
        }

        /// Sends `msg`; a runner that went away is not the host's problem, so errors are dropped.
        pub(crate) fn send(&self, msg: &ToRunner) {
            let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = writer.write_all(msg.encode().as_bytes());
        }

        /// Ends the connection, which also ends the reader thread.
        pub(crate) fn shutdown(&self) {
            let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = writer.shutdown(Shutdown::Both);
        }

        /// After a hello that loaded nothing: waits up to `timeout` for the runner's `reload` of
        /// `lib` (answering a `save` meanwhile), before the reader thread exists.
        pub(crate) fn wait_for_build(
            &self,
            lib: &str,
            timeout: Duration,
        ) -> Result<FirstBuild, Error> {
            let mut guard = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
            let reader = guard.as_mut().expect("taken only by `spawn_reader`, later");
            let wait_error = |source| Error::FirstBuild {
                lib: lib.to_string(),
                waited: timeout,
                source,
            };
            let deadline = Instant::now() + timeout;
            let mut line = String::new();
            let found = loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break Err(wait_error(std::io::ErrorKind::TimedOut.into()));
                }
                reader
                    .get_ref()
                    .set_read_timeout(Some(left))
                    .map_err(wait_error)?;
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) => break Err(wait_error(std::io::ErrorKind::UnexpectedEof.into())),
                    Ok(_) => {}
                    Err(e) => break Err(wait_error(e)),
                }
                match ToHost::decode(&line) {
                    Ok(ToHost::Reload(req)) if same_lib(&req.lib, lib) => {
                        break Ok(FirstBuild::Reload(req));
                    }
                    Ok(ToHost::Refused(r)) => break Ok(FirstBuild::Refused(r.reason)),
                    Ok(ToHost::Save(save)) => {
                        self.send(&crate::state::save_for_runner(save.timeout));
                    }
                    // Another library's, or a newer runner's message.
                    Ok(ToHost::Reload(_)) | Err(_) => {}
                }
            };
            let _ = reader.get_ref().set_read_timeout(None);
            found
        }

        /// Starts the thread that passes the runner's requests for `handler`'s library to it.
        pub(crate) fn spawn_reader<H: Handler>(
            &self,
            handler: Weak<H>,
        ) -> Result<JoinHandle<()>, Error> {
            let reader = self
                .reader
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .expect("one reader thread per connection");
            let name = handler
                .upgrade()
                .map(|h| h.name().to_string())
                .unwrap_or_default();
            std::thread::Builder::new()
                .name(format!("dylib-dev-{name}"))
                .spawn(move || read_requests(reader, handler))
                .map_err(|source| Error::Connect {
                    path: self.path.clone(),
                    source,
                })
        }
    }

    /// Handles requests until the runner or the [`HotLib`](crate::HotLib) closes the connection.
    fn read_requests<H: Handler>(reader: BufReader<UnixStream>, handler: Weak<H>) {
        for line in reader.lines() {
            let Ok(line) = line else { return };
            // Anything else is from a newer runner; ignoring it keeps this host working.
            let Ok(msg) = ToHost::decode(&line) else {
                continue;
            };
            // Weak: the thread must not keep a dropped library alive.
            let Some(handler) = handler.upgrade() else {
                return;
            };
            match msg {
                ToHost::Reload(req) if same_lib(&req.lib, handler.name()) => {
                    handler.reload(&req);
                }
                ToHost::Reload(_) => {}
                ToHost::Save(save) => {
                    handler.send(&crate::state::save_for_runner(save.timeout));
                }
                ToHost::Refused(r) => {
                    eprintln!(
                        "dylib-dev: `{}` runs without reloading in this process: {}",
                        handler.name(),
                        r.reason
                    );
                    return;
                }
            }
        }
    }
}

// Untested off Unix: there is no control channel yet, so hosts run without reloading.
#[cfg(not(unix))]
pub(crate) struct Channel(());

#[cfg(not(unix))]
pub(crate) enum FirstBuild {
    Reload(Reload),
    Refused(String),
}

#[cfg(not(unix))]
impl Channel {
    pub(crate) fn connect(path: &Path) -> Result<Channel, Error> {
        Err(Error::Connect {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "no control channel on this platform",
            ),
        })
    }

    pub(crate) fn send(&self, _: &ToRunner) {}

    pub(crate) fn shutdown(&self) {}

    pub(crate) fn wait_for_build(
        &self,
        _: &str,
        _: std::time::Duration,
    ) -> Result<FirstBuild, Error> {
        unreachable!("no channel can be connected")
    }

    pub(crate) fn spawn_reader<H: Handler>(&self, _: Weak<H>) -> Result<JoinHandle<()>, Error> {
        unreachable!("no channel can be connected")
    }
}
