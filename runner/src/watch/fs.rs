//! File events: every source directory of the workspace watched (not `target/`, `.git/`, or what
//! `.gitignore` excludes), with a short trailing-edge debounce.
//!
//! Directories are watched one by one (non-recursively) because a recursive inotify watch on the
//! workspace root would also add a watch for every directory of `target/`, which holds thousands.
//! So the watcher adds the watches itself: for a directory that appears while watching (created,
//! also several levels at once, or moved in), and for every directory again when the kernel
//! reports lost events.
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use notify_debouncer_full::notify::event::{ModifyKind, RenameMode};
use notify_debouncer_full::notify::{self, EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which paths matter.
#[derive(Debug)]
pub struct PathFilter {
    root: PathBuf,
    skip_dirs: Vec<PathBuf>,
    gitignore: Gitignore,
}

impl PathFilter {
    /// A filter for the workspace at `root`; `target_dirs` are never watched.
    pub fn new(root: &Path, target_dirs: &[PathBuf]) -> PathFilter {
        let mut builder = GitignoreBuilder::new(root);
        // Missing files are fine; a malformed line is skipped by the builder.
        let _ = builder.add(root.join(".gitignore"));
        let _ = builder.add(root.join(".ignore"));
        let gitignore = builder.build().unwrap_or_else(|_| Gitignore::empty());
        let mut skip_dirs: Vec<PathBuf> = target_dirs.to_vec();
        skip_dirs.push(root.join("target"));
        skip_dirs.push(root.join(".git"));
        PathFilter {
            root: root.to_path_buf(),
            skip_dirs,
            gitignore,
        }
    }

    /// Whether a change of `path` is worth a look.
    pub fn wants(&self, path: &Path) -> bool {
        if self.skip_dirs.iter().any(|d| path.starts_with(d)) {
            return false;
        }
        if path
            .components()
            .any(|c| matches!(c.as_os_str().to_str(), Some(".git" | "target")))
        {
            return false;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Editor scratch files: vim swap/backup and its `4913` probe, emacs locks, atomic-save temps.
        let scratch = name.ends_with('~')
            || name.ends_with(".swp")
            || name.ends_with(".swx")
            || name == "4913"
            || name.starts_with(".#")
            || name.starts_with(".dylib-dev-");
        if scratch {
            return false;
        }
        let is_dir = path.is_dir();
        !path.starts_with(&self.root)
            || !self
                .gitignore
                .matched_path_or_any_parents(path, is_dir)
                .is_ignore()
    }
}

/// What the watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// These paths changed (sorted, each once). A directory that appeared (created, `mkdir -p`,
    /// moved in) comes with every wanted file below it: those were written before it was watched.
    Paths(Vec<PathBuf>),
    /// Events were lost (the kernel's event queue overflowed, or the watcher reported an error):
    /// anything may have changed. The directory watches have been renewed by the time this comes.
    Rescan,
}

/// A running watcher; dropping it stops watching.
pub struct FsWatcher {
    shared: Arc<Shared>,
}

/// What the watcher and its event handler (on the debouncer's thread) share.
struct Shared {
    /// `None` only while [`FsWatcher::start`] creates it. The handler adds watches through it,
    /// for directories that appear while watching.
    debouncer: Mutex<Option<Debouncer<notify::RecommendedWatcher, RecommendedCache>>>,
    filter: Arc<PathFilter>,
    roots: Vec<PathBuf>,
    /// Tests: drop every event, as a kernel whose queue overflowed does.
    #[cfg(test)]
    deaf: std::sync::atomic::AtomicBool,
}

impl FsWatcher {
    /// Watches every wanted directory under `roots`; what changed goes to `on_change`.
    pub fn start(
        roots: &[PathBuf],
        filter: PathFilter,
        debounce: Duration,
        on_change: impl Fn(Change) + Send + 'static,
    ) -> notify::Result<FsWatcher> {
        let shared = Arc::new(Shared {
            debouncer: Mutex::new(None),
            filter: Arc::new(filter),
            roots: roots.to_vec(),
            #[cfg(test)]
            deaf: std::sync::atomic::AtomicBool::new(false),
        });
        // Weak: the debouncer's thread owns the handler, and a strong reference there would keep
        // the debouncer (and so that thread) alive after the watcher is dropped.
        let weak = Arc::downgrade(&shared);
        let handler = move |result: DebounceEventResult| {
            let Some(shared) = weak.upgrade() else {
                return;
            };
            #[cfg(test)]
            if shared.deaf.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            if let Some(change) = shared.handle(result) {
                on_change(change);
            }
        };
        let debouncer = new_debouncer(debounce, None, handler)?;
        *shared.lock() = Some(debouncer);
        for root in roots {
            shared.watch_tree(root)?;
        }
        Ok(FsWatcher { shared })
    }

    /// Watches `dir` and every wanted directory below it.
    pub fn watch_tree(&self, dir: &Path) -> notify::Result<()> {
        self.shared.watch_tree(dir)
    }
}

impl Shared {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<Debouncer<notify::RecommendedWatcher, RecommendedCache>>>
    {
        self.debouncer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Turns a batch of debounced events into what changed, adding watches for directories that
    /// appeared and renewing all of them when events were lost.
    fn handle(&self, result: DebounceEventResult) -> Option<Change> {
        let events = match result {
            Ok(events) => events,
            Err(errors) => {
                // inotify reports a failed read of its queue this way: events may be gone.
                for e in errors {
                    tracing::warn!("file watcher: {e}");
                }
                self.rewatch();
                return Some(Change::Rescan);
            }
        };
        if events.iter().any(|e| e.need_rescan()) {
            // IN_Q_OVERFLOW: the kernel dropped events, among them perhaps the creation of a
            // directory that is now not watched.
            tracing::debug!("file watcher: the kernel's event queue overflowed");
            self.rewatch();
            return Some(Change::Rescan);
        }
        let mut paths = Vec::new();
        let mut appeared = Vec::new();
        for event in events {
            if event.kind.is_access() {
                continue;
            }
            // Created, or moved in (`To`; `Both` names the source first; `Any`: other backends).
            let arrived = matches!(
                event.kind,
                EventKind::Create(_)
                    | EventKind::Modify(ModifyKind::Name(
                        RenameMode::To | RenameMode::Both | RenameMode::Any
                    ))
            );
            for path in event.event.paths {
                if !self.filter.wants(&path) {
                    continue;
                }
                if arrived && path.is_dir() {
                    appeared.push(path.clone());
                }
                paths.push(path);
            }
        }
        for dir in appeared {
            // Watch first, then list: a file written after its directory's watch is added comes
            // as an event, one written before is found by the listing.
            match self.watch_tree(&dir) {
                Ok(()) => paths.extend(self.files_under(&dir)),
                Err(e) => tracing::warn!("file watcher: cannot watch `{}`: {e}", dir.display()),
            }
        }
        paths.sort();
        paths.dedup();
        (!paths.is_empty()).then_some(Change::Paths(paths))
    }

    /// Adds a watch for every wanted directory under every root again (the kernel keeps one watch
    /// per directory, so this adds only the missing ones).
    fn rewatch(&self) {
        for root in &self.roots {
            if let Err(e) = self.watch_tree(root) {
                tracing::warn!("file watcher: cannot watch `{}`: {e}", root.display());
            }
        }
    }

    /// A walk of the wanted entries under `dir`; `dirs_only` skips files.
    fn walk(&self, dir: &Path, dirs_only: bool) -> ignore::Walk {
        let filter = Arc::clone(&self.filter);
        ignore::WalkBuilder::new(dir)
            .hidden(false)
            .git_ignore(true)
            .parents(true)
            .filter_entry(move |e| {
                (!dirs_only || e.file_type().is_some_and(|t| t.is_dir())) && filter.wants(e.path())
            })
            .build()
    }

    fn watch_tree(&self, dir: &Path) -> notify::Result<()> {
        let mut count = 0;
        for entry in self.walk(dir, true).flatten() {
            let mut guard = self.lock();
            let Some(debouncer) = guard.as_mut() else {
                return Ok(());
            };
            match debouncer.watch(entry.path(), RecursiveMode::NonRecursive) {
                Ok(()) => count += 1,
                // Removed since the walk saw it: nothing to watch.
                Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        tracing::debug!("watching {count} directories under {}", dir.display());
        Ok(())
    }

    /// Every wanted file below `dir`.
    fn files_under(&self, dir: &Path) -> Vec<PathBuf> {
        self.walk(dir, false)
            .flatten()
            .filter(|e| e.file_type().is_some_and(|t| !t.is_dir()))
            .map(ignore::DirEntry::into_path)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_skips_build_output_vcs_scratch_and_gitignored() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "/data/\n*.log\n").unwrap();
        let f = PathFilter::new(root, &[root.join("out")]);
        assert!(f.wants(&root.join("src/main.rs")));
        assert!(!f.wants(&root.join("target/debug/x")));
        assert!(!f.wants(&root.join("out/dylib-dev/x")));
        assert!(!f.wants(&root.join(".git/index")));
        assert!(!f.wants(&root.join("src/.main.rs.swp")));
        assert!(!f.wants(&root.join("src/main.rs~")));
        assert!(!f.wants(&root.join("data/big.csv")));
        assert!(!f.wants(&root.join("run.log")));
    }

    use notify_debouncer_full::DebouncedEvent;
    use notify_debouncer_full::notify::event::{Event, Flag};
    use std::sync::atomic::Ordering;
    use std::sync::mpsc::{Receiver, channel};
    use std::time::Instant;

    /// Held while a watcher opens its inotify instance: the overflow test lowers the kernel's
    /// queue limit for exactly that moment, which no other test's watcher may share.
    static OPENING: Mutex<()> = Mutex::new(());

    /// A watcher on `root` and what it reports.
    fn watch(root: &Path) -> (FsWatcher, Receiver<Change>) {
        let _opening = OPENING.lock().unwrap_or_else(|e| e.into_inner());
        open_watcher(root)
    }

    fn open_watcher(root: &Path) -> (FsWatcher, Receiver<Change>) {
        let (tx, rx) = channel();
        let filter = PathFilter::new(root, &[]);
        let watcher = FsWatcher::start(
            &[root.to_path_buf()],
            filter,
            Duration::from_millis(10),
            move |c| {
                let _ = tx.send(c);
            },
        )
        .unwrap();
        (watcher, rx)
    }

    /// Waits (at most 20 s: a loaded 2-core CI machine) until a batch names `path`; fails with
    /// everything reported meanwhile.
    fn expect_path(rx: &Receiver<Change>, path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(Change::Paths(paths)) if paths.iter().any(|p| p == path) => return,
                Ok(other) => seen.push(other),
                Err(_) => break,
            }
        }
        panic!("no change of {} reported; got {seen:?}", path.display());
    }

    /// Lets the events of earlier writes arrive, then forgets them.
    fn settle(rx: &Receiver<Change>) {
        std::thread::sleep(Duration::from_millis(150));
        while rx.try_recv().is_ok() {}
    }

    #[test]
    fn directories_made_while_watching_are_watched_with_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("src")).unwrap();
        let (_watcher, rx) = watch(&root);
        // `mkdir -p` of three levels and a file right away, before any watch could be added.
        let file = root.join("src/a/b/c/x.rs");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "// 1").unwrap();
        expect_path(&rx, &file);
        // Later saves come from the new directory's own watch.
        for n in 2..4 {
            settle(&rx);
            std::fs::write(&file, format!("// {n}")).unwrap();
            expect_path(&rx, &file);
        }
    }

    #[test]
    fn directories_moved_in_are_watched_with_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("w");
        std::fs::create_dir_all(root.join("src")).unwrap();
        let root = root.canonicalize().unwrap();
        let outside = dir.path().join("elsewhere/m");
        std::fs::create_dir_all(outside.join("n")).unwrap();
        std::fs::write(outside.join("n/y.rs"), "// 1").unwrap();
        let (_watcher, rx) = watch(&root);
        std::fs::rename(&outside, root.join("src/m")).unwrap();
        let file = root.join("src/m/n/y.rs");
        expect_path(&rx, &file);
        settle(&rx);
        std::fs::write(&file, "// 2").unwrap();
        expect_path(&rx, &file);
    }

    #[test]
    fn a_directory_renamed_inside_the_workspace_is_watched_under_its_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("src/a/sub")).unwrap();
        std::fs::write(root.join("src/a/sub/x.rs"), "// 1").unwrap();
        let (_watcher, rx) = watch(&root);
        std::fs::rename(root.join("src/a"), root.join("src/b")).unwrap();
        let file = root.join("src/b/sub/x.rs");
        expect_path(&rx, &file);
        settle(&rx);
        std::fs::write(&file, "// 2").unwrap();
        expect_path(&rx, &file);
    }

    #[test]
    fn lost_events_renew_every_watch_and_ask_for_a_rescan() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("src")).unwrap();
        let (watcher, rx) = watch(&root);
        // The kernel's queue overflows: the creation of this directory is never seen.
        watcher.shared.deaf.store(true, Ordering::SeqCst);
        let file = root.join("src/late/deeper/z.rs");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "// 1").unwrap();
        std::thread::sleep(Duration::from_millis(150));
        watcher.shared.deaf.store(false, Ordering::SeqCst);
        // What inotify's backend sends for IN_Q_OVERFLOW, as the debouncer passes it on.
        let overflow = Event::new(EventKind::Other).set_flag(Flag::Rescan);
        let change = watcher
            .shared
            .handle(Ok(vec![DebouncedEvent::new(overflow, Instant::now())]));
        assert_eq!(change, Some(Change::Rescan));
        settle(&rx);
        std::fs::write(&file, "// 2").unwrap();
        expect_path(&rx, &file);
    }

    #[test]
    fn watcher_errors_ask_for_a_rescan() {
        let dir = tempfile::tempdir().unwrap();
        let (watcher, _rx) = watch(dir.path());
        let failed = notify::Error::io(std::io::Error::other("read of the inotify queue failed"));
        assert_eq!(
            watcher.shared.handle(Err(vec![failed])),
            Some(Change::Rescan)
        );
    }

    /// Writes the original value of `/proc/sys/fs/inotify/max_queued_events` back on drop.
    struct RestoreQueueLimit(String);

    impl Drop for RestoreQueueLimit {
        fn drop(&mut self) {
            std::fs::write(QUEUE_LIMIT, &self.0).expect("restore max_queued_events");
        }
    }

    const QUEUE_LIMIT: &str = "/proc/sys/fs/inotify/max_queued_events";

    #[test]
    fn a_real_queue_overflow_asks_for_a_rescan() {
        // The kernel reads the limit once, when an inotify instance is opened: lowered only
        // around the start of this one watcher (well under a millisecond), then restored.
        // Locked across processes from before the read: two test runs at once would otherwise
        // each take the other's lowered limit for the original and leave the machine at four.
        let cross = std::fs::File::create(
            std::env::temp_dir().join("dylib-dev-test-inotify-queue-limit.lock"),
        )
        .and_then(|f| f.lock().map(|()| f));
        let Ok(_cross) = cross else {
            eprintln!("skipped: cannot lock the limit against other test runs");
            return;
        };
        let Ok(original) = std::fs::read_to_string(QUEUE_LIMIT) else {
            eprintln!("skipped: no {QUEUE_LIMIT}");
            return;
        };
        let original = original.trim().to_string();
        if std::fs::write(QUEUE_LIMIT, &original).is_err() {
            eprintln!(
                "skipped: {QUEUE_LIMIT} is not writable (needs root); \
                 `lost_events_renew_every_watch_and_ask_for_a_rescan` covers the handler"
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let (_watcher, rx) = {
            let _opening = OPENING.lock().unwrap_or_else(|e| e.into_inner());
            std::fs::write(QUEUE_LIMIT, "4").unwrap();
            let _restore = RestoreQueueLimit(original.clone());
            open_watcher(&root)
        };
        assert_eq!(
            std::fs::read_to_string(QUEUE_LIMIT).unwrap().trim(),
            original,
            "limit restored"
        );
        // Far more events than a queue of four holds before the reader thread drains it.
        for i in 0..300 {
            std::fs::write(root.join(format!("f{}.rs", i % 50)), "x").unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = 0;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(Change::Rescan) => return,
                Ok(_) => seen += 1,
                Err(_) => break,
            }
        }
        panic!("no rescan after the queue overflowed ({seen} batches of paths instead)");
    }
}
