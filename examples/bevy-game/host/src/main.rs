//! bevy-game: balls bouncing in an arena. This host owns the Bevy `App`, its `World` and every
//! entity in it; the game's systems live in the logic library, which `dylib-dev watch` swaps in on
//! every save while the game keeps running.
//!
//! ```text
//! bevy-game [--headless] [--report-ms N] [--frames N]
//! ```
//!
//! Headless (always, unless built with the `window` feature; or with `--headless`): Bevy's
//! `MinimalPlugins` at 60 frames per second, and the logic prints a status line with a few
//! positions every `--report-ms` (250). `--frames N` exits after N frames.
//!
//! How logic is called: one exclusive system of the host, `run_logic`, hands the `World` to the
//! logic's `update` once per frame; the logic runs its systems on it and returns. Nothing the
//! logic creates outlives that call, so nothing points into a library after it is unloaded. The
//! swap itself happens at the top of a frame (`swap_logic` in `First`, `SwapPolicy::OnUpdate`).
#[cfg(feature = "dynamic")] use bevy_game_deps as _; // dylib-dev: force-links the deps dylib (`dylib-dev unwrap` removes this)

use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use bevy_game_shared::{self as shared, Report, Stats};
use dylib_dev_runtime::{Builder, ReloadEvent, SwapPolicy};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

dylib_dev_runtime::hot_module! {
    mod logic("bevy_game_logic") {
        unsafe extern "Rust" {
            /// Runs one frame of the game's systems on the world.
            pub fn update(world: &mut World);
        }
    }
}

struct Args {
    headless: bool,
    report_ms: u64,
    frames: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        headless: false,
        report_ms: 250,
        frames: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse().map_err(|e| format!("{name}: {e}"))
        };
        match arg.as_str() {
            "--headless" => args.headless = true,
            "--report-ms" => args.report_ms = number("--report-ms")?,
            "--frames" => args.frames = Some(number("--frames")?),
            _ => {
                return Err(format!(
                    "unknown argument `{arg}`\nusage: bevy-game [--headless] [--report-ms N] [--frames N]"
                ));
            }
        }
    }
    if !cfg!(feature = "window") {
        args.headless = true;
    }
    Ok(args)
}

/// Set once the logic registered a component or resource type itself: Bevy then holds pointers
/// into the running library version, so no other version may replace it in this process.
static SWAPS_UNSAFE: AtomicBool = AtomicBool::new(false);

/// What the host checks after each logic call, and the state of a panicked logic.
#[derive(Resource)]
struct Guardrails {
    /// The logic version that panicked; it is not called again until a new one is swapped in.
    panicked: Option<u64>,
    /// Exit after this many frames.
    frames: Option<u64>,
}

fn main() -> AppExit {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("bevy-game: {e}");
            std::process::exit(2);
        }
    };
    // Swaps only in `swap_logic`, between frames; refused (so `dylib-dev watch` restarts the game)
    // once the running version has registered types of its own.
    let builder = Builder::from_env("bevy_game_logic")
        .policy(SwapPolicy::OnUpdate)
        .validate(|_| {
            if SWAPS_UNSAFE.load(Ordering::SeqCst) {
                Err(
                    "the running logic registered component or resource types of its own \
                     (see the warning above); the game restarts instead"
                        .into(),
                )
            } else {
                Ok(())
            }
        });
    if let Err(e) = logic::init(builder) {
        eprintln!("bevy-game: could not load the logic library: {e}");
        std::process::exit(1);
    }

    let mut app = App::new();
    if args.headless {
        app.add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(
            Duration::from_secs_f64(1.0 / 60.0),
        )));
    } else {
        #[cfg(feature = "window")]
        window::add(&mut app);
    }
    shared::register(app.world_mut());
    app.insert_resource(Report {
        every: args.report_ms as f32 / 1000.0,
        ..Report::default()
    });
    app.insert_resource(Guardrails {
        panicked: None,
        frames: args.frames,
    });
    app.add_systems(First, swap_logic);
    app.add_systems(Update, run_logic);
    println!(
        "bevy-game: pid {}, {} (edit logic/src/lib.rs and save)",
        std::process::id(),
        if args.headless {
            "headless"
        } else {
            "windowed"
        }
    );
    app.run()
}

/// Top of the frame: swaps in a new logic build if one is ready.
fn swap_logic(world: &mut World) {
    if SWAPS_UNSAFE.load(Ordering::SeqCst) {
        // A version validated before the flag was set waits here until the runner gives up on it
        // and restarts the game.
        return;
    }
    let Some(event) = logic::lib().update() else {
        return;
    };
    let frame = world.resource::<Stats>().frame;
    match event {
        ReloadEvent::Swapped(s) => {
            println!(
                "logic reloaded: version {} at frame {frame} (entities and resources kept)",
                s.version
            );
            world.resource_mut::<Guardrails>().panicked = None;
        }
        ReloadEvent::Failed(f) => println!("logic reload refused: {}", f.reason),
    }
}

/// Hands the world to the logic for one frame of its systems.
fn run_logic(world: &mut World) {
    let version = logic::lib().version();
    let guard = world.resource::<Guardrails>();
    if guard.panicked == Some(version) {
        return;
    }
    let frames = guard.frames;
    let registered = world.components().len();
    // A panic in a system comes back as `Err` (host and logic share one std, and the runtime
    // catches it at the call): the game pauses instead of crashing.
    if let Err(panic) = logic::try_call(|s| s.update(world)) {
        println!("{panic}; paused until the next swap");
        world.resource_mut::<Guardrails>().panicked = Some(version);
    }
    let now = world.components().len();
    if now > registered {
        let ids: Vec<String> = (registered..now).map(|i| i.to_string()).collect();
        eprintln!(
            "warning: the logic registered {} new component or resource type(s) (component id {}; \
             Bevy's `debug` feature shows names). Register them in shared::register: Bevy keeps \
             their drop and hooks, which point into this logic library, so the next edit restarts \
             the game instead of swapping.",
            now - registered,
            ids.join(", ")
        );
        SWAPS_UNSAFE.store(true, Ordering::SeqCst);
    }
    if frames.is_some_and(|n| world.resource::<Stats>().frame >= n) {
        world.write_message(AppExit::Success);
    }
}

/// The windowed mode: Bevy's default plugins, and the arena and the balls drawn with gizmos in the
/// colours the logic picks (`Arena::color`, `Tint`).
#[cfg(feature = "window")]
mod window {
    use bevy::prelude::*;
    use bevy_game_shared::{Arena, Ball, Position, Tint};

    pub fn add(app: &mut App) {
        app.add_plugins(DefaultPlugins.set(WindowPlugin {
            primary_window: Some(Window {
                title: "bevy-game (dylib-dev watch)".into(),
                ..default()
            }),
            ..default()
        }));
        app.add_systems(
            Startup,
            |mut commands: Commands, mut gizmos: ResMut<GizmoConfigStore>| {
                commands.spawn(Camera2d);
                gizmos.config_mut::<DefaultGizmoConfigGroup>().0.line.width = 4.0;
            },
        );
        app.add_systems(PostUpdate, draw);
    }

    fn draw(mut gizmos: Gizmos, arena: Res<Arena>, balls: Query<(&Ball, &Position, &Tint)>) {
        gizmos.rect_2d(Isometry2d::IDENTITY, arena.half_size * 2.0, arena.color);
        for (ball, position, tint) in &balls {
            gizmos.circle_2d(position.0, ball.radius, tint.0);
        }
    }
}
