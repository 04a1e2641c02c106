//! Nanoseconds per call: a `#[dylib_dev::hot]` function against the same body called directly
//! (`#[inline(never)]`, so neither is inlined into the loop), min of 15 runs of 50M calls each.
use std::hint::black_box;
use std::time::Instant;

#[dylib_dev::hot]
fn hot_add(a: u64, b: u64) -> u64 {
    a.wrapping_mul(31).wrapping_add(b)
}

#[inline(never)]
fn plain_add(a: u64, b: u64) -> u64 {
    a.wrapping_mul(31).wrapping_add(b)
}

fn per_call(f: fn(u64, u64) -> u64) -> f64 {
    const CALLS: u64 = 50_000_000;
    let mut best = f64::MAX;
    for _ in 0..15 {
        let start = Instant::now();
        let mut acc = 0u64;
        for i in 0..CALLS {
            acc = f(black_box(acc), black_box(i));
        }
        black_box(acc);
        best = best.min(start.elapsed().as_nanos() as f64 / CALLS as f64);
    }
    best
}

fn main() {
    // Called through a local closure so both go through the same loop; the closures call the
    // functions by name, as user code does.
    let hot = per_call(|a, b| hot_add(a, b));
    let plain = per_call(|a, b| plain_add(a, b));
    println!("hot {hot:.2} ns/call, direct {plain:.2} ns/call, difference {:+.2} ns", hot - plain);
}
