//! The host's end of the control socket: a connection per library, and the thread that receives
//! reload requests the moment the runner sends them (no polling).

use crate::Error;
use crate::hot_lib::Shared;
use crate::protocol::ToRunner;
use crate::symbols::Symbols;
use std::path::Path;
use std::sync::Weak;
use std::thread::JoinHandle;

#[cfg(unix)]
pub(crate) use unix::Channel;

#[cfg(unix)]
mod unix {
    use super::*;
    use crate::protocol::ToHost;
    use std::io::{BufRead, BufReader, Write};
    use std::net::Shutdown;
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;
    use std::sync::{Mutex, PoisonError};

    /// A connection to the runner.
    pub(crate) struct Channel {
        path: PathBuf,
        /// Replies come from the control thread and from host threads in `update`.
        writer: Mutex<UnixStream>,
    }

    impl Channel {
        /// Connects to the runner's socket.
        pub(crate) fn connect(path: &Path) -> Result<Channel, Error> {
            let stream = UnixStream::connect(path).map_err(|source| Error::Connect {
                path: path.to_path_buf(),
                source,
            })?;
            Ok(Channel {
                path: path.to_path_buf(),
                writer: Mutex::new(stream),
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

        /// Starts the thread that handles the runner's requests for `shared`'s library.
        pub(crate) fn spawn_reader<S: Symbols>(
            &self,
            shared: Weak<Shared<S>>,
        ) -> Result<JoinHandle<()>, Error> {
            let connect_error = |source| Error::Connect {
                path: self.path.clone(),
                source,
            };
            let stream = self
                .writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .try_clone()
                .map_err(connect_error)?;
            let name = shared
                .upgrade()
                .map(|s| s.name().to_string())
                .unwrap_or_default();
            std::thread::Builder::new()
                .name(format!("dylib-dev-{name}"))
                .spawn(move || read_requests(stream, shared))
                .map_err(connect_error)
        }
    }

    /// Handles requests until the runner or the [`HotLib`](crate::HotLib) closes the connection.
    fn read_requests<S: Symbols>(stream: UnixStream, shared: Weak<Shared<S>>) {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            // Anything else is from a newer runner; ignoring it keeps this host working.
            let Ok(msg) = ToHost::decode(&line) else {
                continue;
            };
            // Weak: the thread must not keep a dropped library alive.
            let Some(shared) = shared.upgrade() else {
                return;
            };
            match msg {
                ToHost::Reload(req) if req.lib == shared.name() => shared.handle_reload(&req),
                ToHost::Reload(_) => {}
                ToHost::Save(save) => {
                    shared.send_to_runner(&crate::state::save_for_runner(save.timeout));
                }
            }
        }
    }
}

// Untested off Unix: there is no control channel yet, so hosts run without reloading.
#[cfg(not(unix))]
pub(crate) struct Channel(());

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

    pub(crate) fn spawn_reader<S: Symbols>(
        &self,
        _: Weak<Shared<S>>,
    ) -> Result<JoinHandle<()>, Error> {
        unreachable!("no channel can be connected")
    }
}
