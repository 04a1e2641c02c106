use hot_rt::hot;
use std::any::TypeId;

#[derive(Default)]
pub struct World {
    pub ticks: u64,
}

pub static LIB_STATIC: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn speed() -> u64 {
    1
}

/// A non-hot library function the binary calls from its own hot function.
pub fn label() -> &'static str {
    "label-1"
}

#[hot]
pub fn step(w: &mut World) -> String {
    w.ticks += speed();
    LIB_STATIC.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("lib v1 ticks={} tid={:?} lib_static@{:p}", w.ticks, TypeId::of::<World>(), &LIB_STATIC)
}
