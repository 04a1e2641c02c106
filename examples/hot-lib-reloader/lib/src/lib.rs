//! The reloadable part: edit the text below while `dylib-dev watch` runs.

/// The host's state: it lives in the host, so it survives every reload.
pub struct State {
    pub counter: usize,
}

/// One step of the host's loop.
#[unsafe(no_mangle)]
pub fn step(state: &mut State) {
    state.counter += 1;
    println!(
        "doing stuff in iteration {} (pid {})",
        state.counter,
        std::process::id()
    );
}
