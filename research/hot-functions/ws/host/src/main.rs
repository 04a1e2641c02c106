use hot_rt::hot;
use std::any::TypeId;

// A hot function of the binary crate that calls the library's hot `step` and a non-hot helper.
#[hot]
fn frame(w: &mut game::World) -> String {
    format!("bin v1 [{}] [{}]", game::step(w), game::label())
}

fn main() {
    let req = std::env::var("HOT_PATCH_REQ").unwrap_or_else(|_| "/tmp/hot_patch_req".into());
    println!("host pid={} tid(World)={:?}", std::process::id(), TypeId::of::<game::World>());
    let mut w = game::World::default();
    let mut last = String::new();
    loop {
        if let Ok(line) = std::fs::read_to_string(&req) {
            let _ = std::fs::remove_file(&req);
            // "<crate> <path>"
            let (krate, path) = line.trim().split_once(' ').unwrap();
            match hot_rt::load_patch(path, &format!("{krate}::")) {
                Ok(s) => println!("swapped {:?} dlopen {} us total {} us images {}", s.swapped, s.dlopen_us, s.total_us, s.images),
                Err(e) => println!("REFUSED: {e}"),
            }
        }
        let out = frame(&mut w);
        // Print when anything but the tick count changes.
        let (a, b) = out.split_once(" ticks=").unwrap_or((&out, ""));
        let key = format!("{a} {}", b.split_once(' ').map(|x| x.1).unwrap_or(""));
        if key != last {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            println!("OUT t={now} {out}");
            last = key;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
