//! The reloadable logic: edit this while `dylib-dev watch` runs; the host keeps its counter.
use {{crate_name}}_shared::Counter;

/// The line the host prints, once per tick.
#[unsafe(no_mangle)]
pub fn describe(counter: &mut Counter) -> String {
    format!("tick {} (pid {})", counter.value, std::process::id())
}
