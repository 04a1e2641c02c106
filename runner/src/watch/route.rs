//! Routing a batch of changed paths to the least work that makes them take effect.
use super::model::WatchModel;
use crate::roles::Role;
use std::path::Path;

/// What a batch of changes needs, from least to most work.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Route {
    /// Nothing that affects a build (docs, files outside every package).
    Ignore,
    /// Only sources of logic crates or hot crates (these packages): rebuild them and swap them
    /// into the running host.
    Swap(Vec<String>),
    /// Host or shared sources: rebuild and restart the host.
    Restart,
    /// A manifest, lock file, build script or cargo config: rebuild everything (deps too), restart.
    Rebuild,
}

/// Routes one changed path.
pub fn route_path(model: &WatchModel, path: &Path) -> Route {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if matches!(
        name,
        "Cargo.toml"
            | "Cargo.lock"
            | "build.rs"
            | "config.toml"
            | "config"
            | "rust-toolchain"
            | "rust-toolchain.toml"
    ) {
        // `config.toml` matters only under `.cargo/`; elsewhere it is data.
        let is_cargo_config = matches!(name, "config.toml" | "config");
        if !is_cargo_config
            || path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|d| d == ".cargo")
        {
            return Route::Rebuild;
        }
    }
    // Sources, and anything under `src/` (`include_str!` data); not READMEs or assets.
    let source = path.extension().is_some_and(|e| e == "rs")
        || model
            .package_of(path)
            .is_some_and(|p| path.starts_with(p.dir.join("src")));
    if !source {
        return Route::Ignore;
    }
    match model.package_of(path) {
        None => Route::Ignore,
        Some(pkg) => match pkg.role {
            Role::Logic => Route::Swap(vec![pkg.name.clone()]),
            // A crate with hot functions is patched into the running host.
            Role::Host | Role::Shared if model.hot_crates_of(&pkg.name).next().is_some() => {
                Route::Swap(vec![pkg.name.clone()])
            }
            Role::Host | Role::Shared => Route::Restart,
            Role::Deps => Route::Rebuild,
        },
    }
}

/// Routes a batch: the most work any path needs; swaps of several logic crates merge.
pub fn route_batch<'a>(model: &WatchModel, paths: impl IntoIterator<Item = &'a Path>) -> Route {
    let mut route = Route::Ignore;
    for path in paths {
        route = merge(route, route_path(model, path));
    }
    route
}

/// Combines two routes.
pub fn merge(a: Route, b: Route) -> Route {
    match (a, b) {
        (Route::Swap(mut x), Route::Swap(y)) => {
            for name in y {
                if !x.contains(&name) {
                    x.push(name);
                }
            }
            Route::Swap(x)
        }
        (a, b) => a.max(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::{LocalPackage, Roles};
    use std::path::PathBuf;
    use std::time::Duration;

    fn model() -> WatchModel {
        let pkg = |name: &str, dir: &str, role| LocalPackage {
            name: name.into(),
            dir: PathBuf::from(dir),
            role,
        };
        WatchModel {
            workspace_root: "/w".into(),
            target_dir: "/w/target/dylib-dev".into(),
            roles: Roles {
                host: "game".into(),
                host_bin: "game".into(),
                host_has_dynamic: true,
                logic: vec![("systems".into(), "systems".into())],
                logic_with_dynamic: vec![],
                hot: vec![],
                packages: vec![
                    pkg("game", "/w", Role::Host),
                    pkg("systems", "/w/systems", Role::Logic),
                    pkg("shared", "/w/shared", Role::Shared),
                    pkg("game-deps", "/w/game-deps", Role::Deps),
                ],
            },
            debounce: Duration::from_millis(30),
            stop_timeout: Duration::from_secs(1),
            hang_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn routes_by_innermost_package() {
        let m = model();
        assert_eq!(
            route_path(&m, Path::new("/w/systems/src/lib.rs")),
            Route::Swap(vec!["systems".into()])
        );
        assert_eq!(route_path(&m, Path::new("/w/src/main.rs")), Route::Restart);
        assert_eq!(
            route_path(&m, Path::new("/w/shared/src/lib.rs")),
            Route::Restart
        );
        assert_eq!(
            route_path(&m, Path::new("/w/systems/Cargo.toml")),
            Route::Rebuild
        );
        assert_eq!(
            route_path(&m, Path::new("/w/.cargo/config.toml")),
            Route::Rebuild
        );
        assert_eq!(
            route_path(&m, Path::new("/w/assets/config.toml")),
            Route::Ignore
        );
        assert_eq!(route_path(&m, Path::new("/w/README.md")), Route::Ignore);
        assert_eq!(
            route_path(&m, Path::new("/w/systems/src/shader.wgsl")),
            Route::Swap(vec!["systems".into()])
        );
        assert_eq!(route_path(&m, Path::new("/elsewhere/x.rs")), Route::Ignore);
    }

    #[test]
    fn batch_takes_the_most_work() {
        let m = model();
        let swap = [
            Path::new("/w/systems/src/a.rs"),
            Path::new("/w/systems/src/b.rs"),
        ];
        assert_eq!(route_batch(&m, swap), Route::Swap(vec!["systems".into()]));
        let mixed = [
            Path::new("/w/systems/src/a.rs"),
            Path::new("/w/src/main.rs"),
        ];
        assert_eq!(route_batch(&m, mixed), Route::Restart);
        assert_eq!(
            route_batch(
                &m,
                [Path::new("/w/Cargo.lock"), Path::new("/w/src/main.rs")]
            ),
            Route::Rebuild
        );
    }
}
