//! Lines an engine composes for output that several commands show alike (e.g. what `unwrap`
//! did, which `deinit` reports too); the commands print them, the engine never does.

/// One line for the user, as [`crate::ui`] prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A right-aligned green verb and a message.
    Status(&'static str, String),
    /// `warning: <msg>`.
    Warn(String),
    /// `note: <msg>`.
    Note(String),
}
