//! The game's systems, swapped into the running game on every save: change a constant (gravity,
//! bounciness, spawn rate) or a system's body and the balls behave differently from the next frame
//! on, with every entity and resource still there.
//!
//! The host calls [`update`] once per frame with its `World`; it runs each system below with
//! `World::run_system_once`, in order. A system here is an ordinary Bevy system, with two rules
//! that come from this library being unloaded at the next swap:
//! - keep state in resources and components of the shared crate, not in `Local`s (a system's own
//!   state lasts one call, and change detection sees everything as changed);
//! - register nothing that outlives the call: no new component or resource types (add them to
//!   `shared::register`), observers, hooks, one-shot systems or `tracing` callsites (`info!`);
//!   print with `println!`. The host warns if a new type shows up.

use bevy::ecs::system::RunSystemOnce;
use bevy::prelude::*;
use {{crate_name}}_shared::{Arena, Ball, Position, Report, Spawner, Stats, Tint, Velocity};

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

/// Runs one frame of the game on the host's world.
#[unsafe(no_mangle)]
pub fn update(world: &mut World) {
    run(world, clock);
    run(world, spawn_balls);
    run(world, apply_gravity);
    run(world, move_balls);
    run(world, bounce_off_walls);
    run(world, collide_balls);
    run(world, paint);
    run(world, report);
}

/// Runs `system` once; it is built, run (its commands applied) and dropped within the call.
fn run<M>(world: &mut World, system: impl IntoSystem<(), (), M>) {
    if let Err(e) = world.run_system_once(system) {
        eprintln!("system failed: {e}");
    }
}

/// The step this frame simulates.
fn dt(time: &Time) -> f32 {
    time.delta_secs().min(MAX_DT)
}

fn clock(time: Res<Time>, mut stats: ResMut<Stats>) {
    stats.frame += 1;
    stats.elapsed += dt(&time);
}

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
    stats.spawned += 1;
}

fn apply_gravity(time: Res<Time>, mut balls: Query<&mut Velocity, With<Ball>>) {
    let dt = dt(&time);
    for mut velocity in &mut balls {
        velocity.0.y += GRAVITY * dt;
    }
}

fn move_balls(time: Res<Time>, mut balls: Query<(&mut Position, &Velocity)>) {
    let dt = dt(&time);
    for (mut position, velocity) in &mut balls {
        position.0 += velocity.0 * dt;
    }
}

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

/// Picks the colours the window draws the arena and the balls in (the host draws them; headless,
/// nothing does). Every frame, so an edited colour shows on the balls already in play.
fn paint(mut arena: ResMut<Arena>, mut balls: Query<&mut Tint, With<Ball>>) {
    arena.color = ARENA_COLOR;
    for mut tint in &mut balls {
        tint.0 = BALL_COLOR;
    }
}

/// Prints the status line every `Report::every` seconds: the frame counter, the counters, the
/// constants in use and the first balls' positions.
fn report(
    time: Res<Time>,
    mut report: ResMut<Report>,
    stats: Res<Stats>,
    balls: Query<(&Ball, &Position)>,
) {
    report.since += time.delta_secs();
    if report.since < report.every {
        return;
    }
    report.since = 0.0;
    let mut first: Vec<(&Ball, &Position)> = balls.iter().collect();
    first.sort_by_key(|(ball, _)| ball.id);
    let positions: Vec<String> = first
        .iter()
        .take(3)
        .map(|(ball, p)| format!("#{} ({:.0}, {:.0})", ball.id, p.0.x, p.0.y))
        .collect();
    println!(
        "bouncing frame={} t={:.1}s balls={} wall_bounces={} collisions={} gravity={GRAVITY} | {}",
        stats.frame,
        stats.elapsed,
        first.len(),
        stats.wall_bounces,
        stats.collisions,
        positions.join(" ")
    );
}
