//! {{name}}: balls that bounce in an arena, an ordinary single-crate Bevy app. `main` builds the
//! `App` and registers the systems below as any Bevy app does; each system is
//! `#[dylib_dev::hot]`, so under `dylib-dev watch` an edit of a system (or of a constant or a
//! function it uses) is patched into the running game: same process, every entity, resource,
//! `Local` and change tick kept. Under plain `cargo run` the attribute changes nothing.
//!
//! ```text
//! {{name}} [--headless] [--report-ms N] [--frames N]
//! ```
//!
//! Headless (always, unless built with the `window` feature; or with `--headless`): Bevy's
//! `MinimalPlugins` and `LogPlugin` at 60 frames per second, and `report` prints a status line
//! with a few positions every `--report-ms` (250). `--frames N` exits after N frames.
//!
//! What restarts the game instead: an edit of a system's parameters, or a field added to a
//! component or resource a system takes (its layout changed under the running game). `main` runs
//! once: an edit of it (plugins, which systems run) is patched too, but shows at the next restart.

use bevy::app::ScheduleRunnerPlugin;
use bevy::log::LogPlugin;
use bevy::prelude::*;
use std::time::Duration;

/// Downward acceleration, units per second squared.
const GRAVITY: f32 = -500.0;
/// Share of its speed a ball keeps when it hits a wall.
const RESTITUTION: f32 = 0.92;
/// Seconds between two new balls.
const SPAWN_EVERY: f32 = 0.5;
/// No more balls than this.
const MAX_BALLS: usize = 12;
/// The longest step one frame may simulate (a stalled frame must not tunnel balls through walls).
const MAX_DT: f32 = 1.0 / 20.0;
/// The walls' colour in the window (`-F window`): green.
const ARENA_COLOR: Color = Color::srgb_u8(60, 200, 90);
/// The balls' colour in the window: orange.
const BALL_COLOR: Color = Color::srgb_u8(255, 140, 0);

/// A ball. Its position and velocity are separate components, as systems read them separately.
#[derive(Component, Debug, Clone, Copy)]
struct Ball {
    /// Radius in arena units.
    radius: f32,
    /// Number shown in the status line (0, 1, 2, ... in spawn order).
    id: u32,
}

/// Where a ball is (arena units, origin at the centre, y up).
#[derive(Component, Debug, Clone, Copy, Default)]
struct Position(Vec2);

/// How fast a ball moves (units per second).
#[derive(Component, Debug, Clone, Copy, Default)]
struct Velocity(Vec2);

/// The colour a ball is drawn in (window mode). `paint` sets it every frame, so an edit of
/// `BALL_COLOR` shows on the balls already in play.
#[derive(Component, Debug, Clone, Copy)]
struct Tint(Color);

/// The walls: a box of `2 * half_size`, centred on the origin.
#[derive(Resource, Debug, Clone, Copy)]
struct Arena {
    /// Half the width and half the height.
    half_size: Vec2,
    /// The colour the walls are drawn in (window mode); `paint` sets it.
    color: Color,
}

impl Default for Arena {
    fn default() -> Self {
        Arena {
            half_size: Vec2::new(400.0, 300.0),
            color: Color::WHITE,
        }
    }
}

/// What happened so far.
#[derive(Resource, Debug, Default, Clone, Copy)]
struct Stats {
    /// Frames run.
    frame: u64,
    /// Simulated seconds.
    elapsed: f32,
    /// Bounces off the walls.
    wall_bounces: u64,
    /// Ball-on-ball collisions.
    collisions: u64,
    /// Balls spawned.
    spawned: u32,
}

/// When the next ball appears, and the seed of the spawner's random numbers.
#[derive(Resource, Debug, Clone, Copy)]
struct Spawner {
    /// Seconds until the next spawn.
    next_in: f32,
    /// xorshift state.
    rng: u64,
}

impl Default for Spawner {
    fn default() -> Self {
        Spawner {
            next_in: 0.0,
            rng: 0x2545_F491_4F6C_DD1D,
        }
    }
}

/// How often the status line is printed (from `--report-ms`), and when the game ends.
#[derive(Resource, Debug, Clone, Copy)]
struct Settings {
    /// Seconds between two status lines.
    report_every: f32,
    /// Exit after this many frames.
    frames: Option<u64>,
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
                    "unknown argument `{arg}`\nusage: {{name}} [--headless] [--report-ms N] [--frames N]"
                ));
            }
        }
    }
    if !cfg!(feature = "window") {
        args.headless = true;
    }
    Ok(args)
}

fn main() -> AppExit {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{{name}}: {e}");
            std::process::exit(2);
        }
    };
    let mut app = App::new();
    if args.headless {
        app.add_plugins((
            MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_secs_f64(
                1.0 / 60.0,
            ))),
            LogPlugin::default(),
        ));
    } else {
        #[cfg(feature = "window")]
        window::add(&mut app);
    }
    app.init_resource::<Arena>()
        .init_resource::<Stats>()
        .init_resource::<Spawner>()
        .insert_resource(Settings {
            report_every: args.report_ms as f32 / 1000.0,
            frames: args.frames,
        })
        .add_systems(
            Update,
            (
                clock,
                spawn_balls,
                apply_gravity,
                move_balls,
                bounce_off_walls,
                collide_balls,
                paint,
                report,
            )
                .chain(),
        );
    println!(
        "{{name}}: pid {}, {} (edit a system in src/main.rs and save)",
        std::process::id(),
        if args.headless {
            "headless"
        } else {
            "windowed"
        }
    );
    app.run()
}

/// The step this frame simulates.
fn dt(time: &Time) -> f32 {
    time.delta_secs().min(MAX_DT)
}

/// Counts frames and simulated time; ends the game after `--frames`.
#[dylib_dev::hot]
fn clock(
    time: Res<Time>,
    settings: Res<Settings>,
    mut stats: ResMut<Stats>,
    mut exit: MessageWriter<AppExit>,
) {
    stats.frame += 1;
    stats.elapsed += dt(&time);
    if settings.frames.is_some_and(|n| stats.frame >= n) {
        exit.write(AppExit::Success);
    }
}

#[dylib_dev::hot]
fn spawn_balls(
    mut commands: Commands,
    time: Res<Time>,
    arena: Res<Arena>,
    mut spawner: ResMut<Spawner>,
    mut stats: ResMut<Stats>,
    balls: Query<(), With<Ball>>,
) {
    spawner.next_in -= dt(&time);
    if spawner.next_in > 0.0 || balls.iter().len() >= MAX_BALLS {
        return;
    }
    spawner.next_in = SPAWN_EVERY;
    let mut random = || {
        // xorshift64
        spawner.rng ^= spawner.rng << 13;
        spawner.rng ^= spawner.rng >> 7;
        spawner.rng ^= spawner.rng << 17;
        (spawner.rng >> 40) as f32 / (1u64 << 24) as f32
    };
    let radius = 10.0 + 14.0 * random();
    let x = (random() * 2.0 - 1.0) * (arena.half_size.x - radius);
    let velocity = Vec2::new((random() * 2.0 - 1.0) * 300.0, 100.0 + 200.0 * random());
    commands.spawn((
        Ball {
            radius,
            id: stats.spawned,
        },
        Position(Vec2::new(x, arena.half_size.y - radius)),
        Velocity(velocity),
        Tint(BALL_COLOR),
    ));
    info!("spawned ball #{} (radius {radius:.0})", stats.spawned);
    stats.spawned += 1;
}

#[dylib_dev::hot]
fn apply_gravity(time: Res<Time>, mut balls: Query<&mut Velocity, With<Ball>>) {
    let dt = dt(&time);
    for mut velocity in &mut balls {
        velocity.0.y += GRAVITY * dt;
    }
}

#[dylib_dev::hot]
fn move_balls(time: Res<Time>, mut balls: Query<(&mut Position, &Velocity)>) {
    let dt = dt(&time);
    for (mut position, velocity) in &mut balls {
        position.0 += velocity.0 * dt;
    }
}

#[dylib_dev::hot]
fn bounce_off_walls(
    arena: Res<Arena>,
    mut stats: ResMut<Stats>,
    mut balls: Query<(&Ball, &mut Position, &mut Velocity)>,
) {
    for (ball, mut position, mut velocity) in &mut balls {
        let limit = arena.half_size - Vec2::splat(ball.radius);
        for axis in 0..2 {
            if position.0[axis].abs() > limit[axis] {
                position.0[axis] = position.0[axis].clamp(-limit[axis], limit[axis]);
                velocity.0[axis] = -velocity.0[axis] * RESTITUTION;
                stats.wall_bounces += 1;
            }
        }
    }
}

#[dylib_dev::hot]
fn collide_balls(
    mut stats: ResMut<Stats>,
    mut balls: Query<(&Ball, &mut Position, &mut Velocity)>,
) {
    let mut pairs = balls.iter_combinations_mut();
    while let Some([(a, mut pa, mut va), (b, mut pb, mut vb)]) = pairs.fetch_next() {
        let delta = pb.0 - pa.0;
        let distance = delta.length();
        let overlap = a.radius + b.radius - distance;
        if overlap <= 0.0 || distance == 0.0 {
            continue;
        }
        // Push apart, then exchange the velocity along the line between the centres (equal mass).
        let normal = delta / distance;
        pa.0 -= normal * overlap / 2.0;
        pb.0 += normal * overlap / 2.0;
        let closing = (va.0 - vb.0).dot(normal);
        if closing > 0.0 {
            va.0 -= normal * closing;
            vb.0 += normal * closing;
            stats.collisions += 1;
        }
    }
}

/// Picks the colours the window draws the arena and the balls in (headless, nothing draws them).
/// Every frame, so an edited colour shows on the balls already in play.
#[dylib_dev::hot]
fn paint(mut arena: ResMut<Arena>, mut balls: Query<&mut Tint, With<Ball>>) {
    arena.color = ARENA_COLOR;
    for mut tint in &mut balls {
        tint.0 = BALL_COLOR;
    }
}

/// Prints the status line every `--report-ms`: the frame counter, the counters, the constants in
/// use and the first balls' positions. `reports` (a `Local`, this system's own state) counts the
/// lines printed; `since` the seconds since the last one.
#[dylib_dev::hot]
fn report(
    time: Res<Time>,
    settings: Res<Settings>,
    stats: Res<Stats>,
    balls: Query<(&Ball, &Position)>,
    mut since: Local<f32>,
    mut reports: Local<u64>,
) {
    *since += time.delta_secs();
    if *reports > 0 && *since < settings.report_every {
        return;
    }
    *since = 0.0;
    *reports += 1;
    let mut first: Vec<(&Ball, &Position)> = balls.iter().collect();
    first.sort_by_key(|(ball, _)| ball.id);
    let positions: Vec<String> = first
        .iter()
        .take(3)
        .map(|(ball, p)| format!("#{} ({:.0}, {:.0})", ball.id, p.0.x, p.0.y))
        .collect();
    println!(
        "bouncing frame={} t={:.1}s balls={} wall_bounces={} collisions={} reports={} gravity={GRAVITY} | {}",
        stats.frame,
        stats.elapsed,
        first.len(),
        stats.wall_bounces,
        stats.collisions,
        *reports,
        positions.join(" ")
    );
}

/// The windowed mode: Bevy's default plugins, and the arena and the balls drawn with gizmos in the
/// colours `paint` picks (`Arena::color`, `Tint`).
#[cfg(feature = "window")]
mod window {
    use super::{Arena, Ball, Position, Tint};
    use bevy::prelude::*;

    pub fn add(app: &mut App) {
        app.add_plugins(DefaultPlugins.set(WindowPlugin {
            primary_window: Some(Window {
                title: "{{name}} (dylib-dev watch)".into(),
                ..default()
            }),
            ..default()
        }));
        app.add_systems(Startup, setup);
        app.add_systems(PostUpdate, draw);
    }

    fn setup(mut commands: Commands, mut gizmos: ResMut<GizmoConfigStore>) {
        commands.spawn(Camera2d);
        gizmos.config_mut::<DefaultGizmoConfigGroup>().0.line.width = 4.0;
    }

    #[dylib_dev::hot]
    fn draw(mut gizmos: Gizmos, arena: Res<Arena>, balls: Query<(&Ball, &Position, &Tint)>) {
        gizmos.rect_2d(Isometry2d::IDENTITY, arena.half_size * 2.0, arena.color);
        for (ball, position, tint) in &balls {
            gizmos.circle_2d(position.0, ball.radius, tint.0);
        }
    }
}
