use hot_rt::hot;
use std::any::TypeId;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct State {
    pub frames: u64,
    pub log: Vec<String>,
}

// A helper reachable from the hot function: a patch carries its own (new) copy.
fn greeting(n: u64) -> String {
    format!("hello swap5 #{n}")
}

static PATCH_STATIC: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[hot]
fn frame(state: &mut State) -> String {
    state.frames += scale(1) as u64 / 2;
    let s = greeting(state.frames);
    state.log.push(s.clone());
    PATCH_STATIC.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{s} log={} static@{:p}={} tid={:?} frame@{:p}",
        state.log.len(),
        &PATCH_STATIC,
        PATCH_STATIC.load(std::sync::atomic::Ordering::Relaxed),
        TypeId::of::<State>(),
        frame as fn(&mut State) -> String,
    )
}

// A second hot function called by `frame`: its signature is what the refusal test changes.
#[hot]
fn scale(x: i32) -> i32 {
    x * 2
}

#[hot]
fn add(a: u64, b: u64) -> u64 {
    a.wrapping_mul(31).wrapping_add(b)
}

#[inline(never)]
fn add_direct(a: u64, b: u64) -> u64 {
    a.wrapping_mul(31).wrapping_add(b)
}

fn bench() {
    use std::hint::black_box;
    const N: u64 = 50_000_000;
    fn run(f: &dyn Fn(u64, u64) -> u64) -> f64 {
        let t = Instant::now();
        let mut acc = 0u64;
        for i in 0..N { acc = f(black_box(acc), black_box(i)); }
        black_box(acc);
        t.elapsed().as_secs_f64() * 1e9 / N as f64
    }
    // Interleaved rounds, minimum of each: the machine is shared, the minimum is the cost.
    // What an in-flight count (to know when no call runs an old version) would add per call:
    // one shared counter (two locked RMWs), uncontended and with a second thread hammering it.
    static IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    use std::sync::atomic::Ordering::{Acquire, Release};
    let counted = |a, b| { IN_FLIGHT.fetch_add(1, Acquire); let r = add(a, b); IN_FLIGHT.fetch_sub(1, Release); r };
    let (mut d, mut h, mut i, mut c) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..15 {
        d = d.min(run(&|a, b| add_direct(a, b)));
        h = h.min(run(&|a, b| add(a, b)));
        i = i.min(run(&|a, b| a.wrapping_mul(31).wrapping_add(b)));
        c = c.min(run(&counted));
    }
    println!("per call (min of 15 x {N}): inlined {i:.3} ns, direct #[inline(never)] {d:.3} ns, #[hot] {h:.3} ns; #[hot] - direct = {:.3} ns", h - d);
    println!("#[hot] + shared in-flight counter, 1 thread: {c:.3} ns (+{:.3} ns)", c - h);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let other = std::thread::spawn(move || { let mut acc = 0; while !s2.load(Acquire) { acc = counted(black_box(acc), 1); } black_box(acc); });
    let mut c2 = f64::MAX;
    for _ in 0..5 { c2 = c2.min(run(&counted)); }
    stop.store(true, Release); other.join().unwrap();
    println!("#[hot] + shared in-flight counter, 2 threads calling: {c2:.3} ns (+{:.3} ns)", c2 - h);
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("bench") { return bench(); }
    let req = std::env::var("HOT_PATCH_REQ").unwrap_or_else(|_| "/tmp/hot_patch_req".into());
    let prefix = concat!(env!("CARGO_CRATE_NAME"), "::");
    println!("host pid={} tid(State)={:?} static@{:p}", std::process::id(), TypeId::of::<State>(), &PATCH_STATIC);
    let mut state = State { frames: 0, ..Default::default() };
    let mut last = String::new();
    loop {
        // The runner's message, prototype-style: a file naming the patch to load.
        if let Ok(path) = std::fs::read_to_string(&req) {
            let _ = std::fs::remove_file(&req);
            let path = path.trim();
            match hot_rt::load_patch(path, prefix) {
                Ok(s) => println!("swapped {:?} dlopen {} us total {} us", s.swapped, s.dlopen_us, s.total_us),
                Err(e) => println!("REFUSED: {e}"),
            }
        }
        let out = frame(&mut state);
        let key = out.split(" log=").next().unwrap_or("").rsplit_once(" #").map(|x| x.0.to_string()).unwrap_or_default();
        if key != last {
            // Print only when the output's shape changes, with a wall-clock timestamp (ns).
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            println!("OUT t={now} {out}");
            last = key;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
