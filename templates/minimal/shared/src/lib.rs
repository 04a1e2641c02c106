//! State that lives in the host and is handed to the logic library. A change of its layout
//! restarts the host (a swapped library must never see old state with a new layout).

/// Counts the host's ticks; survives every swap of the logic.
#[derive(Debug, Default)]
pub struct Counter {
    /// Ticks so far.
    pub value: u64,
}
