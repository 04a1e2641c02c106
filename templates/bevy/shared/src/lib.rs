//! The game's data: components and resources, shared by the host and the logic library.
//!
//! They live here, in a crate that is never reloaded, for two reasons. A type's `TypeId` (which
//! Bevy keys components and resources by) is the same in the host and in every build of the logic
//! only if the type comes from a crate they both link unchanged. And Bevy keeps, per registered
//! component or resource, function pointers (its drop, its hooks) and its name from the code that
//! registered it first: [`register`] runs in the host, so those point into the host, not into a
//! library that a swap unloads. Changing this crate restarts the host (`dylib-dev watch` does that
//! on its own).
use bevy::prelude::*;

/// A ball. Its position and velocity are separate components, as systems read them separately.
#[derive(Component, Debug, Clone, Copy)]
pub struct Ball {
    /// Radius in arena units.
    pub radius: f32,
    /// Number shown in the status line (0, 1, 2, ... in spawn order).
    pub id: u32,
}

/// Where a ball is (arena units, origin at the centre, y up).
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct Position(pub Vec2);

/// How fast a ball moves (units per second).
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct Velocity(pub Vec2);

/// The colour a ball is drawn in (window mode). The logic's `paint` system sets it every frame, so
/// an edit of the logic's colours shows on the balls already in play.
#[derive(Component, Debug, Clone, Copy)]
pub struct Tint(pub Color);

impl Default for Tint {
    fn default() -> Self {
        Tint(Color::WHITE)
    }
}

/// The walls: a box of `2 * half_size`, centred on the origin.
#[derive(Resource, Debug, Clone, Copy)]
pub struct Arena {
    /// Half the width and half the height.
    pub half_size: Vec2,
    /// The colour the walls are drawn in (window mode); the logic's `paint` system sets it.
    pub color: Color,
}

impl Default for Arena {
    fn default() -> Self {
        Arena {
            half_size: Vec2::new(400.0, 300.0),
            color: Color::WHITE,
        }
    }
}

/// What happened so far. Counted by the logic; it survives every swap.
#[derive(Resource, Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Frames the logic has run.
    pub frame: u64,
    /// Simulated seconds.
    pub elapsed: f32,
    /// Bounces off the walls.
    pub wall_bounces: u64,
    /// Ball-on-ball collisions.
    pub collisions: u64,
    /// Balls spawned.
    pub spawned: u32,
}

/// When the next ball appears, and the seed of the spawner's random numbers.
#[derive(Resource, Debug, Clone, Copy)]
pub struct Spawner {
    /// Seconds until the next spawn.
    pub next_in: f32,
    /// xorshift state.
    pub rng: u64,
}

impl Default for Spawner {
    fn default() -> Self {
        Spawner {
            next_in: 0.0,
            rng: 0x2545_F491_4F6C_DD1D,
        }
    }
}

/// How often the status line is printed (the host sets it from `--report-ms`).
#[derive(Resource, Debug, Clone, Copy)]
pub struct Report {
    /// Seconds between two status lines.
    pub every: f32,
    /// Seconds since the last one.
    pub since: f32,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            every: 0.25,
            since: f32::INFINITY,
        }
    }
}

/// Registers every component and resource the logic uses, from the host, before the logic runs.
///
/// Whatever the logic touches first that is not registered here would be registered by the logic
/// library, with pointers into it that dangle after the next swap; the host checks that this does
/// not happen (see `host/src/main.rs`).
pub fn register(world: &mut World) {
    world.register_component::<Ball>();
    world.register_component::<Position>();
    world.register_component::<Velocity>();
    world.register_component::<Tint>();
    world.init_resource::<Arena>();
    world.init_resource::<Stats>();
    world.init_resource::<Spawner>();
    world.init_resource::<Report>();
}
