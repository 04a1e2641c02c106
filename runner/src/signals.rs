//! The signals that stop a long-running command (Ctrl-C, SIGTERM, SIGHUP), as one stream.
use anyhow::Context;

/// A signal that stops a command before it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Ctrl-C.
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP: the terminal closed.
    HangUp,
}

/// Ctrl-C, SIGTERM and SIGHUP: each stops builds and the host before the watcher exits.
pub struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts listening.
    pub fn new() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            #[cfg(unix)]
            term: signal(SignalKind::terminate())
                .context("failed to install the SIGTERM handler")?,
            #[cfg(unix)]
            hangup: signal(SignalKind::hangup()).context("failed to install the SIGHUP handler")?,
        })
    }

    /// The next signal.
    pub async fn recv(&mut self) -> Stop {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => Stop::Interrupt,
            _ = self.term.recv() => Stop::Terminate,
            _ = self.hangup.recv() => Stop::HangUp,
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Stop::Interrupt
        }
    }
}
