//! [`Builder`]: the options a [`HotLib`](crate::HotLib) opens with, from the variables the runner
//! sets or from the host; and where the artifact is found when no runner names it.

use crate::symbols::Symbols;
use crate::{Error, protocol};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// When a prepared reload becomes the running code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SwapPolicy {
    /// As soon as no call is in flight: the control thread waits for running calls (and held
    /// [`Guard`](crate::Guard)s) to end, then swaps. The runner hears "swapped" without the host
    /// doing anything.
    #[default]
    WhenIdle,
    /// Only inside [`HotLib::update`](crate::HotLib::update) or
    /// [`HotLib::wait_for_reload`](crate::HotLib::wait_for_reload), at a point the host chose
    /// (e.g. the top of its frame). The new version is loaded in the background meanwhile.
    OnUpdate,
}

/// A validation hook: runs on each new version before it may replace the old one.
pub(crate) type Validator<S> = Box<dyn Fn(&S) -> Result<(), String> + Send + Sync>;

/// Options for opening a [`HotLib`](crate::HotLib); [`Builder::from_env`] fills them the way the
/// runner expects.
pub struct Builder<S> {
    pub(crate) name: String,
    pub(crate) artifact: Option<PathBuf>,
    pub(crate) hash: Option<String>,
    pub(crate) socket: Option<PathBuf>,
    pub(crate) copies_base: Option<PathBuf>,
    pub(crate) policy: SwapPolicy,
    pub(crate) validate: Option<Validator<S>>,
    pub(crate) hang: Option<Duration>,
    pub(crate) unload: bool,
    /// The runner's protocol ([`ENV_PROTOCOL`](protocol::ENV_PROTOCOL)), when it says.
    pub(crate) runner_protocol: Option<u32>,
}

impl<S: Symbols> Builder<S> {
    /// Options for library `name` with nothing set: the artifact is searched next to the
    /// executable and nothing reloads.
    pub fn new(name: &str) -> Self {
        Builder {
            name: name.to_string(),
            artifact: None,
            hash: None,
            socket: None,
            copies_base: None,
            policy: SwapPolicy::default(),
            validate: None,
            hang: None,
            unload: false,
            runner_protocol: None,
        }
    }

    /// Options from the variables the runner sets (see the [crate docs](crate)); without them,
    /// the same as [`Builder::new`].
    pub fn from_env(name: &str) -> Self {
        let var = |key: &str| std::env::var_os(key).filter(|v| !v.is_empty());
        let mut b = Builder::new(name);
        b.artifact = var(&protocol::lib_env_var(name)).map(PathBuf::from);
        b.hash = var(&protocol::hash_env_var(name)).map(|v| v.to_string_lossy().into_owned());
        b.socket = var(protocol::ENV_SOCKET).map(PathBuf::from);
        b.copies_base = var(protocol::ENV_DIR).map(PathBuf::from);
        b.hang = var(protocol::ENV_HANG_MS)
            .and_then(|v| v.to_str()?.parse().ok())
            .map(Duration::from_millis);
        b.runner_protocol = var(protocol::ENV_PROTOCOL).and_then(|v| v.to_str()?.parse().ok());
        b
    }

    /// Reports a call into the library that runs longer than `threshold` to the runner as stuck
    /// (default: `DYLIB_DEV_HANG_MS`, else 10 s). Only with a runner connected.
    pub fn hang_after(mut self, threshold: Duration) -> Self {
        self.hang = Some(threshold);
        self
    }

    /// Closes (`dlclose`) each old version once it is swapped out, so its memory can go back,
    /// instead of keeping it mapped for the life of the process (the default).
    ///
    /// Only for logic that is self-contained: nothing of a version may run or be reached after
    /// the swap. A thread it started (`std::thread::spawn`, rayon, tokio), a panic hook or logger
    /// it installed, `tracing` callsites it registered, or a `Box<dyn Trait>`, closure or
    /// `&'static str` it handed the host point into its code or data, and the host dies with
    /// SIGSEGV when they are next used. Libraries that share `libstd` and have thread-locals of
    /// their own stay mapped anyway (glibc would unmap them under pending thread-local
    /// destructors), and a library the loader keeps mapped despite `dlclose` (checked in
    /// `/proc/self/maps`) is still counted in
    /// [`Swapped::lingering`](crate::protocol::Swapped::lingering).
    pub fn unload_old_versions(mut self, unload: bool) -> Self {
        self.unload = unload;
        self
    }

    /// Loads this artifact instead of searching for one.
    pub fn artifact(mut self, path: impl Into<PathBuf>) -> Self {
        self.artifact = Some(path.into());
        self
    }

    /// Refuses the initial artifact unless its hash (`blake3:<hex>`, see
    /// [`hash_file`](crate::hash_file)) is this.
    pub fn hash(mut self, hash: impl Into<String>) -> Self {
        self.hash = Some(hash.into());
        self
    }

    /// Connects to the runner's control socket, which makes the library reloadable.
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket = Some(path.into());
        self
    }

    /// Makes the private directory for copies under `dir` (default: `$XDG_RUNTIME_DIR` or the
    /// system temp directory).
    pub fn copies_in(mut self, dir: impl Into<PathBuf>) -> Self {
        self.copies_base = Some(dir.into());
        self
    }

    /// Chooses when reloads take effect.
    pub fn policy(mut self, policy: SwapPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Runs `check` on every new version before the swap; an `Err` refuses it (e.g. a layout
    /// fingerprint exported by the library that differs from the host's).
    pub fn validate(
        mut self,
        check: impl Fn(&S) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.validate = Some(Box::new(check));
        self
    }
}

/// The file name cargo gives library `lib` on this platform, e.g. `liblogic.so`.
pub fn artifact_file_name(lib: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        lib.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

/// Finds the artifact of a host started without the runner: next to the executable, in `deps/`
/// beside it, or one level up when the executable is an example or a test (`examples/`, `deps/`).
pub(crate) fn locate(lib: &str) -> Result<PathBuf, Error> {
    let file = artifact_file_name(lib);
    let mut tried = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .as_deref()
        .and_then(Path::parent)
    {
        tried.push(dir.join(&file));
        tried.push(dir.join("deps").join(&file));
        if matches!(
            dir.file_name().and_then(|n| n.to_str()),
            Some("examples" | "deps")
        ) && let Some(up) = dir.parent()
        {
            tried.push(up.join(&file));
        }
    }
    match tried.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(Error::NotFound {
            lib: lib.to_string(),
            var: protocol::lib_env_var(lib),
            tried,
        }),
    }
}
