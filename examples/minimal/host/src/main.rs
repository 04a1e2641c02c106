//! The host: owns the state, calls the logic library every `TICK_MS` (default 100) milliseconds.
//! Under `dylib-dev watch`, edits to `logic/` are swapped in while this process keeps running.
use minimal_shared::Counter;

dylib_dev_runtime::hot_module! {
    mod logic("minimal_logic") {
        unsafe extern "Rust" {
            pub fn describe(counter: &mut Counter) -> String;
        }
    }
}

fn main() {
    let tick = std::env::var("TICK_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let mut counter = Counter::default();
    loop {
        counter.value += 1;
        println!("{}", logic::describe(&mut counter));
        std::thread::sleep(std::time::Duration::from_millis(tick));
    }
}
