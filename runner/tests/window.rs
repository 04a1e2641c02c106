//! The Bevy game in a real window, as a player sees it: `examples/bevy-game` under `dylib-dev watch
//! -F bevy-game/window` on a virtual X display (Xvfb) with the software Vulkan driver (Mesa's
//! llvmpipe), screenshots of the display taken with `xwd`, and their pixels read here.
//!
//! Needs `Xvfb`, `xwd`, `libvulkan.so.1` and llvmpipe's Vulkan driver (`.ci/run` installs Debian's
//! `xvfb`, `x11-apps`, `libvulkan1` and `mesa-vulkan-drivers`, and the X11 client libraries winit
//! loads). Where one is missing the test prints `SKIPPED: ...` (even without `--nocapture`) and
//! passes, except in CI (`CI=true` or `DYLIB_DEV_REQUIRE_DISPLAY=1`), where it fails. `DYLIB_DEV_SCREENSHOT_DIR=<dir>` keeps the two screenshots there (PPM).
//!
//! The window build shares the e2e target dir with the headless ones (`tests/examples.rs`), which
//! build with the same `window` feature and run `--headless`: bevy compiles once for all of them.
mod common;

use common::watch::{CHANGE, Watch, serial};
use common::{Fixture, number_after};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A cold build of bevy with its renderer into a fresh target dir, on a slow machine.
const COLD_START: Duration = Duration::from_secs(40 * 60);

/// The colours of `examples/bevy-game/src/main.rs`, and the ball colour the test edits in.
const ARENA: Rgb = Rgb(60, 200, 90);
const BALL: Rgb = Rgb(255, 140, 0);
const BALL_EDITED: Rgb = Rgb(0, 160, 255);
/// Bevy's default clear colour.
const CLEAR: Rgb = Rgb(43, 44, 47);

/// The virtual screen: the size of the game's window, which X places at (0, 0) with no window
/// manager running.
const SCREEN: (u32, u32) = (1280, 720);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rgb(u8, u8, u8);

impl Rgb {
    /// Close to `other` in every channel (anti-aliased edges and dithering move a few steps).
    fn near(self, other: Rgb) -> bool {
        let d = |a: u8, b: u8| (a as i32 - b as i32).abs() <= 24;
        d(self.0, other.0) && d(self.1, other.1) && d(self.2, other.2)
    }
}

/// One screenshot of the whole display.
struct Screenshot {
    width: usize,
    height: usize,
    pixels: Vec<Rgb>,
}

/// What the test counts in a screenshot.
#[derive(Debug)]
struct Figures {
    arena: usize,
    ball: usize,
    ball_edited: usize,
    clear: usize,
    /// Bounding box of the arena-coloured pixels: (min x, min y, max x, max y).
    arena_box: Option<(usize, usize, usize, usize)>,
    /// Ball-coloured pixels (old or new colour) outside the arena's box.
    balls_outside: usize,
}

impl Screenshot {
    /// `xwd -root` of `display`, read from the XWD format (a big-endian header, a colour map, then
    /// the pixels in the server's byte order, channels given by masks).
    fn take(display: &str) -> Screenshot {
        let out = Command::new("xwd")
            .args(["-root", "-silent", "-display", display])
            .output()
            .expect("run xwd");
        assert!(out.status.success(), "xwd: {}", common::text(&out));
        Screenshot::from_xwd(&out.stdout)
    }

    fn from_xwd(data: &[u8]) -> Screenshot {
        let field = |i: usize| u32::from_be_bytes(data[i * 4..i * 4 + 4].try_into().unwrap());
        let header_size = field(0) as usize;
        assert_eq!(field(1), 7, "XWD version 7");
        assert_eq!(field(2), 2, "ZPixmap");
        let (width, height) = (field(4) as usize, field(5) as usize);
        let byte_order = field(7); // 0: LSB first
        let bits_per_pixel = field(11) as usize;
        let bytes_per_line = field(12) as usize;
        let masks = [field(14), field(15), field(16)];
        let colors = field(19) as usize;
        assert!(
            matches!(bits_per_pixel, 24 | 32),
            "a true-colour display (bits per pixel: {bits_per_pixel})"
        );
        let start = header_size + colors * 12;
        let bytes = bits_per_pixel / 8;
        assert!(
            data.len() >= start + bytes_per_line * height,
            "XWD data too short"
        );
        let channel = |pixel: u32, mask: u32| ((pixel & mask) >> mask.trailing_zeros()) as u8;
        let mut pixels = Vec::with_capacity(width * height);
        for y in 0..height {
            let line = &data[start + y * bytes_per_line..];
            for x in 0..width {
                let raw = &line[x * bytes..x * bytes + bytes];
                let pixel = raw.iter().enumerate().fold(0u32, |acc, (i, &b)| {
                    let shift = if byte_order == 0 {
                        8 * i
                    } else {
                        8 * (bytes - 1 - i)
                    };
                    acc | (b as u32) << shift
                });
                pixels.push(Rgb(
                    channel(pixel, masks[0]),
                    channel(pixel, masks[1]),
                    channel(pixel, masks[2]),
                ));
            }
        }
        Screenshot {
            width,
            height,
            pixels,
        }
    }

    fn at(&self, x: usize, y: usize) -> Rgb {
        self.pixels[y * self.width + x]
    }

    fn figures(&self) -> Figures {
        let count = |c: Rgb| self.pixels.iter().filter(|p| p.near(c)).count();
        let mut arena_box: Option<(usize, usize, usize, usize)> = None;
        for y in 0..self.height {
            for x in 0..self.width {
                if self.at(x, y).near(ARENA) {
                    let b = arena_box.get_or_insert((x, y, x, y));
                    *b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y));
                }
            }
        }
        let balls_outside = match arena_box {
            None => 0,
            Some((x0, y0, x1, y1)) => (0..self.height)
                .flat_map(|y| (0..self.width).map(move |x| (x, y)))
                .filter(|&(x, y)| x < x0 || x > x1 || y < y0 || y > y1)
                .filter(|&(x, y)| {
                    let p = self.at(x, y);
                    p.near(BALL) || p.near(BALL_EDITED)
                })
                .count(),
        };
        Figures {
            arena: count(ARENA),
            ball: count(BALL),
            ball_edited: count(BALL_EDITED),
            clear: count(CLEAR),
            arena_box,
            balls_outside,
        }
    }

    /// Writes a binary PPM (P6), for a person to look at.
    fn save_ppm(&self, path: &Path) {
        let mut data = format!("P6\n{} {}\n255\n", self.width, self.height).into_bytes();
        for p in &self.pixels {
            data.extend_from_slice(&[p.0, p.1, p.2]);
        }
        std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// An Xvfb server of this test, stopped on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    /// Starts `Xvfb` on a display number it picks itself (`-displayfd`: the first free one).
    fn start(program: &Path) -> Xvfb {
        let screen = format!("{}x{}x24", SCREEN.0, SCREEN.1);
        let mut child = Command::new(program)
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &screen,
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        // Xvfb writes the display number once it accepts connections.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read Xvfb's display number");
        let number: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Xvfb printed no display number: {line:?}"));
        Xvfb {
            child,
            display: format!(":{number}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The manifest of Mesa's software Vulkan driver (llvmpipe, `lvp_icd.<arch>.json`), if the Vulkan
/// loader can be opened; else what is missing. A GPU's driver does not count: it cannot present to
/// Xvfb, which has no direct rendering.
fn software_vulkan() -> Result<PathBuf, String> {
    // SAFETY: dlopen/dlclose of a system library with a NUL-terminated name.
    let handle = unsafe { libc::dlopen(c"libvulkan.so.1".as_ptr(), libc::RTLD_NOW) };
    if handle.is_null() {
        return Err("the Vulkan loader (libvulkan.so.1, Debian's `libvulkan1`)".into());
    }
    // SAFETY: the handle came from dlopen above.
    unsafe { libc::dlclose(handle) };
    ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("lvp_icd"))
        })
        .ok_or_else(|| {
            "the software Vulkan driver (llvmpipe's lvp_icd.*.json, Debian's \
             `mesa-vulkan-drivers`)"
                .into()
        })
}

/// What the test needs: the Xvfb program and the software Vulkan driver's manifest, or what of
/// it is missing.
fn requirements() -> Result<(PathBuf, PathBuf), Vec<String>> {
    let mut missing = Vec::new();
    let xvfb = on_path("Xvfb");
    if xvfb.is_none() {
        missing.push("a virtual X display (`Xvfb`, Debian's `xvfb`)".to_string());
    }
    if on_path("xwd").is_none() {
        missing.push("a screenshot tool (`xwd`, Debian's `x11-apps`)".to_string());
    }
    let vulkan = software_vulkan().map_err(|e| missing.push(e)).ok();
    match (xvfb, vulkan) {
        (Some(xvfb), Some(vulkan)) if missing.is_empty() => Ok((xvfb, vulkan)),
        _ => Err(missing),
    }
}

/// In CI, where `.ci/run` installs the display and the driver, their absence is a failure.
fn required() -> bool {
    let set = |key: &str| {
        std::env::var(key).is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "yes"))
    };
    set("CI") || set("DYLIB_DEV_REQUIRE_DISPLAY")
}

/// Takes screenshots until `good` accepts one (the renderer may lag the logic by a few frames),
/// at most for `CHANGE`; returns the last one.
fn screenshot_until(
    watch: &Watch,
    display: &str,
    what: &str,
    good: impl Fn(&Figures) -> bool,
) -> (Screenshot, Figures) {
    let deadline = Instant::now() + CHANGE;
    loop {
        let shot = Screenshot::take(display);
        let figures = shot.figures();
        if good(&figures) {
            return (shot, figures);
        }
        if Instant::now() > deadline {
            watch.fail(&format!("{what}; the last screenshot shows {figures:?}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The windowed game draws the arena and the balls, and an edit of the balls' colour (a constant
/// of the hot `paint` system) shows in the same window of the same process.
#[test]
fn bevy_game_window_shows_arena_and_balls_and_an_edited_colour() {
    let (xvfb, vulkan_driver) = match requirements() {
        Ok(found) => found,
        Err(missing) if required() => panic!(
            "the window test needs {} (`.ci/run` installs them)",
            missing.join(", ")
        ),
        Err(missing) => {
            // To stderr itself, not through `eprintln!`: the test harness would swallow that
            // (it shows a passing test's output only with --nocapture).
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: bevy_game_window_shows_arena_and_balls_and_an_edited_colour: not \
                 installed: {}. On Debian: apt-get install xvfb x11-apps libvulkan1 \
                 mesa-vulkan-drivers",
                missing.join(", ")
            );
            return;
        }
    };
    let _serial = serial();
    let x = Xvfb::start(&xvfb);
    eprintln!("Xvfb on display {}", x.display);
    let keep = std::env::var_os("DYLIB_DEV_SCREENSHOT_DIR").map(PathBuf::from);

    let fx = Fixture::copy_example("bevy-game");
    let started = Instant::now();
    // llvmpipe only, even where a GPU's driver is installed too (VK_ICD_FILENAMES: older loaders).
    let driver = vulkan_driver.to_string_lossy();
    let watch = Watch::spawn_with(
        fx.path(),
        &["-F", "bevy-game/window"],
        &[
            ("DISPLAY", x.display.as_str()),
            ("WAYLAND_DISPLAY", ""),
            ("VK_DRIVER_FILES", &driver),
            ("VK_ICD_FILENAMES", &driver),
        ],
        &["--report-ms", "250"],
    );
    let (_, hello) = watch.wait_out(0, COLD_START, |l| l.starts_with("bevy-game: pid"));
    assert!(hello.contains("windowed"), "a window build: {hello}");
    let pid = number_after(&hello, "pid ");
    eprintln!(
        "window build, first build and run: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    // Bevy logs the adapter it renders with (host's stderr, which the watcher passes on).
    let (_, adapter) = watch.wait_err(0, CHANGE, |l| l.contains("AdapterInfo {"));
    assert!(
        adapter.contains("llvmpipe") && adapter.contains("backend: Vulkan"),
        "rendered by llvmpipe through Vulkan: {adapter}"
    );
    // Every ball spawned (one each 0.5 s, at most 12).
    let (at, _) = watch.wait_out(0, CHANGE, |l| {
        l.starts_with("bouncing") && number_after(l, "balls=") >= 12
    });

    let (first, before) = screenshot_until(&watch, &x.display, "arena and balls drawn", |f| {
        f.arena > 3000 && f.ball > 1500
    });
    eprintln!("screenshot 1 (orange balls): {before:?}");
    if let Some(dir) = &keep {
        first.save_ppm(&dir.join("bevy-window-1.ppm"));
    }
    let (x0, y0, x1, y1) = before.arena_box.unwrap();
    let (w, h) = (x1 - x0 + 1, y1 - y0 + 1);
    // The arena is 800 x 600 units, drawn 1:1 in pixels, lines 4 px wide, centred in the window.
    assert!(
        (800..=812).contains(&w) && (600..=612).contains(&h),
        "the arena's outline is 800 x 600: {w} x {h} at ({x0}, {y0})"
    );
    let centre = ((x0 + x1) / 2, (y0 + y1) / 2);
    let window_centre = (SCREEN.0 as usize / 2, SCREEN.1 as usize / 2);
    assert!(
        centre.0.abs_diff(window_centre.0) <= 2 && centre.1.abs_diff(window_centre.1) <= 2,
        "the arena is centred in the window: {centre:?}"
    );
    assert!(
        before.clear > (SCREEN.0 * SCREEN.1 / 2) as usize,
        "mostly the clear colour around the outlines: {before:?}"
    );
    assert_eq!(before.ball_edited, 0, "no ball in the edited colour yet");
    assert_eq!(before.balls_outside, 0, "every ball inside the arena");

    fx.replace(
        "src/main.rs",
        "const BALL_COLOR: Color = Color::srgb_u8(255, 140, 0);",
        "const BALL_COLOR: Color = Color::srgb_u8(0, 160, 255);",
    );
    let edited = Instant::now();
    let (_, swapped) = watch.wait_err(0, CHANGE, |l| {
        l.contains("Swapped") && l.contains("reload 1")
    });
    let reload = watch.out_len().max(at);
    let (second, after) = screenshot_until(&watch, &x.display, "the balls recoloured", |f| {
        f.ball_edited > 1500 && f.ball < 50
    });
    eprintln!(
        "screenshot 2 (blue balls), {} ms after the edit: {after:?}",
        edited.elapsed().as_millis()
    );
    if let Some(dir) = &keep {
        second.save_ppm(&dir.join("bevy-window-2.ppm"));
    }
    assert!(
        after.arena > 3000 && after.arena_box == before.arena_box,
        "the arena is drawn as before: {before:?} -> {after:?}"
    );
    assert_eq!(after.balls_outside, 0, "every ball inside the arena");

    // The same process drew both: one host, the patch swapped into it, no restart.
    let hellos: Vec<String> = watch
        .out_since(0)
        .into_iter()
        .filter(|l| l.starts_with("bevy-game: pid"))
        .collect();
    assert_eq!(hellos, vec![hello.clone()], "one host process (pid {pid})");
    let (_, status) = watch.wait_out(reload, CHANGE, |l| l.starts_with("bouncing"));
    assert!(
        number_after(&status, "balls=") >= 12,
        "the balls are still there after {swapped:?}: {status}"
    );
    let log = watch.err_since(0).join("\n");
    assert!(!log.contains("Restarted"), "no restart:\n{log}");
    for complaint in ["refused reload", "system failed", "panicked"] {
        assert!(!log.contains(complaint), "no `{complaint}`:\n{log}");
    }
}
