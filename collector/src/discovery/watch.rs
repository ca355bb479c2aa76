//! An inotify watch on every directory of the cgroup hierarchies, so a
//! cgroup's creation or removal is seen at the next tick without walking
//! the tree.
//!
//! Each watch reports `IN_CREATE`, `IN_DELETE`, `IN_MOVED_FROM` and
//! `IN_MOVED_TO` of its directory's subdirectories (`IN_ONLYDIR` makes
//! adding a watch on a non-directory fail). A new directory gets its watch
//! *before* it is listed, so a child created in between is either listed
//! or reported by the new watch: nothing slips through.
//!
//! The watcher never blocks: the inotify descriptor is non-blocking and
//! [`TreeWatcher::poll`] drains what is queued.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

use super::path::CgroupPath;
use super::walk::{is_ignored, walk_subtree};

/// A change seen in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeChange {
    /// The cgroup exists in hierarchy `.0` (new, or found again).
    Appeared(usize, CgroupPath),
    /// The cgroup and everything below it is gone from hierarchy `.0`.
    Vanished(usize, CgroupPath),
    /// The kernel dropped events (queue overflow): a full re-scan is due.
    Overflow,
}

/// Why the watcher cannot go on. Any of these makes [`super::Discovery`]
/// fall back to re-scanning on every tick.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The inotify instance could not be created.
    #[error(
        "cannot initialise inotify ({0}); raise fs.inotify.max_user_instances if it says \
         \"too many open files\""
    )]
    Init(#[source] io::Error),
    /// The per-user watch limit or descriptor limits are exhausted.
    #[error(
        "cannot add an inotify watch on {path} ({source}); raise fs.inotify.max_user_watches \
         if it says \"no space left on device\""
    )]
    Exhausted {
        /// The directory whose watch failed.
        path: PathBuf,
        /// The kernel's error.
        source: io::Error,
    },
    /// The subtree's top directory vanished or cannot be listed. Not a
    /// reason to stop watching: the caller decides what it means.
    #[error("cannot list {path}: {source}")]
    Walk {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Reading the event queue failed.
    #[error("cannot read inotify events: {0}")]
    Read(#[source] io::Error),
}

const DIR_EVENTS: WatchMask = WatchMask::CREATE
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::ONLYDIR);

/// Big enough for a burst of events (each is 16 bytes plus the name).
const EVENT_BUFFER_BYTES: usize = 64 * 1024;

/// inotify watches over the directories of several hierarchies (one per
/// v1 controller mount, or the unified mount). Hierarchies are named by
/// their index in the `mounts` given to [`TreeWatcher::new`].
pub struct TreeWatcher {
    inotify: Inotify,
    mounts: Vec<PathBuf>,
    watches: HashMap<WatchDescriptor, (usize, CgroupPath)>,
    buffer: Vec<u8>,
}

impl TreeWatcher {
    /// Creates the inotify instance; no watch is added yet (see
    /// [`TreeWatcher::watch_subtree`]).
    pub fn new(mounts: Vec<PathBuf>) -> Result<Self, WatchError> {
        let inotify = Inotify::init().map_err(WatchError::Init)?;
        Ok(Self {
            inotify,
            mounts,
            watches: HashMap::new(),
            buffer: vec![0; EVENT_BUFFER_BYTES],
        })
    }

    /// The number of directories watched.
    pub fn watch_count(&self) -> usize {
        self.watches.len()
    }

    /// Watches `start` and every directory below it in hierarchy
    /// `hierarchy`, inserting the cgroups found into `found`. Watching an
    /// already watched directory is harmless (the kernel returns the same
    /// watch). A vanished or unreadable `start` is [`WatchError::Walk`] and
    /// leaves `found` untouched.
    pub fn watch_subtree(
        &mut self,
        hierarchy: usize,
        start: &CgroupPath,
        found: &mut BTreeSet<CgroupPath>,
    ) -> Result<(), WatchError> {
        let Self {
            inotify,
            mounts,
            watches,
            ..
        } = self;
        let mut exhausted = None;
        let result = walk_subtree(&mounts[hierarchy], start, found, |dir, cgroup| {
            match inotify.watches().add(dir, DIR_EVENTS) {
                Ok(wd) => {
                    watches.insert(wd, (hierarchy, cgroup.clone()));
                    Ok(())
                }
                Err(e) if is_exhaustion(&e) => {
                    exhausted = Some(dir.to_path_buf());
                    Err(e)
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
                Err(e) => {
                    // EACCES and the like: list it anyway, the backstop
                    // re-scan covers what this watch would have seen.
                    tracing::debug!(dir = %dir.display(), error = %e, "cannot watch cgroup directory");
                    Ok(())
                }
            }
        });
        match (result, exhausted) {
            (Err(source), Some(path)) => Err(WatchError::Exhausted { path, source }),
            (Err(source), None) => Err(WatchError::Walk {
                path: crate::layout::join_cgroup(&mounts[hierarchy], start.as_str()),
                source,
            }),
            (Ok(()), _) => Ok(()),
        }
    }

    /// Drains the queued events into changes. Never blocks.
    pub fn poll(&mut self) -> Result<Vec<TreeChange>, WatchError> {
        let mut queued = Vec::new();
        loop {
            match self.inotify.read_events(&mut self.buffer) {
                Ok(events) => queued.extend(events.map(|e| {
                    let name = e.name.map(|n| n.to_string_lossy().into_owned());
                    (e.wd, e.mask, name)
                })),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(WatchError::Read(e)),
            }
        }

        let mut changes = Vec::new();
        for (wd, mask, name) in queued {
            if mask.contains(EventMask::Q_OVERFLOW) {
                changes.push(TreeChange::Overflow);
                continue;
            }
            if mask.contains(EventMask::IGNORED) {
                // The directory was removed (or unwatched): the kernel
                // dropped the watch.
                self.watches.remove(&wd);
                continue;
            }
            let (Some(name), true) = (name, mask.contains(EventMask::ISDIR)) else {
                continue;
            };
            let Some((hierarchy, parent)) = self.watches.get(&wd).cloned() else {
                continue;
            };
            if is_ignored(&name) || name.contains('/') {
                continue;
            }
            let child = parent.join(&name);
            if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
                let mut found = BTreeSet::new();
                match self.watch_subtree(hierarchy, &child, &mut found) {
                    Ok(()) => {}
                    // Created and removed before we looked: nothing to report.
                    Err(WatchError::Walk { .. }) => continue,
                    Err(e) => return Err(e),
                }
                changes.extend(
                    found
                        .into_iter()
                        .map(|p| TreeChange::Appeared(hierarchy, p)),
                );
            } else if mask.intersects(EventMask::DELETE | EventMask::MOVED_FROM) {
                if mask.contains(EventMask::MOVED_FROM) {
                    // The moved directory keeps its watches, now under a
                    // name we no longer know; drop them (the MOVED_TO side
                    // re-adds them under the new name).
                    self.unwatch_subtree(hierarchy, &child);
                }
                changes.push(TreeChange::Vanished(hierarchy, child));
            }
        }
        Ok(changes)
    }

    fn unwatch_subtree(&mut self, hierarchy: usize, top: &CgroupPath) {
        let stale: Vec<WatchDescriptor> = self
            .watches
            .iter()
            .filter(|(_, (h, p))| *h == hierarchy && p.starts_with(top))
            .map(|(wd, _)| wd.clone())
            .collect();
        for wd in stale {
            self.watches.remove(&wd);
            // Fails harmlessly when the kernel already dropped it.
            let _ = self.inotify.watches().remove(wd);
        }
    }

    /// Points each watch at `known`'s copy of its cgroup's path, where it
    /// has one. Every hierarchy's walk makes a copy of each path: at
    /// thousands of cgroups in five v1 hierarchies those copies were a
    /// tenth of the agent's memory.
    pub fn share_paths<V>(&mut self, known: &BTreeMap<CgroupPath, V>) {
        for (_, path) in self.watches.values_mut() {
            if let Some((shared, _)) = known.get_key_value(path) {
                *path = shared.clone();
            }
        }
    }

    /// The cgroup paths of the watches, one per watched directory.
    pub fn watched_paths(&self) -> impl Iterator<Item = &CgroupPath> {
        self.watches.values().map(|(_, path)| path)
    }

    /// The mount point of hierarchy `index`.
    pub fn mount(&self, index: usize) -> &Path {
        &self.mounts[index]
    }
}

/// Errors meaning "no more watches or descriptors", as opposed to a
/// problem with one directory.
fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC | libc::EMFILE | libc::ENFILE | libc::ENOMEM)
    )
}
