//! The host: owns the state and calls the logic library every `TICK_MS` (default 100)
//! milliseconds. Under `dylib-dev watch`, edits to `logic/` are swapped into this process while it
//! keeps running; edits here restart it.
use {{crate_name}}_shared::Counter;

// The logic library's functions, called as `logic::describe(...)`. Each declaration must match a
// `#[unsafe(no_mangle)] pub fn` in logic/src/lib.rs.
dylib_dev_runtime::hot_module! {
    mod logic("{{crate_name}}_logic") {
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
