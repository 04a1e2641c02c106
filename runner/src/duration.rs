//! Durations as people read them; the engine's error texts use it too, so it is not in `ui`.
use std::time::Duration;

/// `412 ms`, `1.25 s`.
pub fn ms(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else if d < Duration::from_secs(10) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
