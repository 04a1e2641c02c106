//! File events: every source directory of the workspace watched (not `target/`, `.git/`, or what
//! `.gitignore` excludes), with a short trailing-edge debounce.
//!
//! Directories are watched one by one (non-recursively) because a recursive inotify watch on the
//! workspace root would also add a watch for every directory of `target/`, which holds thousands.
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use notify_debouncer_full::notify::{self, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
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

/// A running watcher; dropping it stops watching.
pub struct FsWatcher {
    debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    filter: Arc<PathFilter>,
}

impl FsWatcher {
    /// Watches every wanted directory under `roots`; batches of changed paths go to `on_batch`.
    pub fn start(
        roots: &[PathBuf],
        filter: PathFilter,
        debounce: Duration,
        on_batch: impl Fn(Vec<PathBuf>) + Send + 'static,
    ) -> notify::Result<FsWatcher> {
        let filter = Arc::new(filter);
        let handler_filter = Arc::clone(&filter);
        let handler = move |result: DebounceEventResult| match result {
            Ok(events) => {
                let mut paths: Vec<PathBuf> = events
                    .into_iter()
                    .filter(|e| !e.kind.is_access())
                    .flat_map(|e| e.event.paths)
                    .filter(|p| handler_filter.wants(p))
                    .collect();
                paths.sort();
                paths.dedup();
                if !paths.is_empty() {
                    on_batch(paths);
                }
            }
            Err(errors) => {
                for e in errors {
                    tracing::warn!("file watcher: {e}");
                }
            }
        };
        let debouncer = new_debouncer(debounce, None, handler)?;
        let mut watcher = FsWatcher { debouncer, filter };
        for root in roots {
            watcher.watch_tree(root)?;
        }
        Ok(watcher)
    }

    /// Watches `dir` and every wanted directory below it (also used for directories created later).
    pub fn watch_tree(&mut self, dir: &Path) -> notify::Result<()> {
        let filter = Arc::clone(&self.filter);
        let walker = ignore::WalkBuilder::new(dir)
            .hidden(false)
            .git_ignore(true)
            .parents(true)
            .filter_entry(move |e| {
                e.file_type().is_some_and(|t| t.is_dir()) && filter.wants(e.path())
            })
            .build();
        let mut count = 0;
        for entry in walker.flatten() {
            self.debouncer
                .watch(entry.path(), RecursiveMode::NonRecursive)?;
            count += 1;
        }
        tracing::debug!("watching {count} directories under {}", dir.display());
        Ok(())
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
}
