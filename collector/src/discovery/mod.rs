//! Finds every cgroup of the node and tells the collection loop which
//! appeared and which vanished since its last tick.
//!
//! * [`mountinfo`]: where the hierarchies are mounted ([`CgroupLayout`]);
//! * [`walk`]: listing a hierarchy's cgroup directories;
//! * [`watch`]: inotify watches on those directories;
//! * [`runtime`]: what a cgroup path says (container of which runtime,
//!   pod, systemd unit, …);
//! * [`Discovery`] ties them together for a synchronous loop.
//!
//! # Use
//!
//! ```no_run
//! use osprey_collector::discovery::{
//!     Discovery, DiscoveryEvent, DiscoveryFilter, DiscoveryOptions, identify,
//!     mountinfo::{LayoutOptions, discover_layout},
//! };
//! use osprey_collector::metadata::{MetadataCache, MetadataConfig};
//! # fn main() -> anyhow::Result<()> {
//! let layout = discover_layout(&LayoutOptions::default())?;
//! let mut discovery = Discovery::new(layout, DiscoveryFilter::default(), DiscoveryOptions::default())?;
//! let mut names = MetadataCache::new(MetadataConfig::default())?;
//! loop {
//!     for event in discovery.refresh() {
//!         match event {
//!             DiscoveryEvent::Added(path) => names.forget(&path), // a new cgroup under an old name
//!             DiscoveryEvent::Removed(path) => names.forget(&path), // and drop its samples
//!         }
//!     }
//!     for path in discovery.current() {
//!         let metadata = names.resolve(path, &identify(path.as_str()));
//!         // … read `path`'s stats, label them with `metadata` …
//!     }
//!     // … sleep one interval …
//! #   break;
//! }
//! # Ok(()) }
//! ```

pub mod filter;
pub mod mountinfo;
pub mod path;
pub mod runtime;
pub mod walk;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::layout::CgroupLayout;

pub use filter::DiscoveryFilter;
pub use path::CgroupPath;
pub use runtime::{CgroupIdentity, CgroupKind, Runtime, identify};

use watch::{TreeChange, TreeWatcher};

/// How [`Discovery`] notices changes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoveryOptions {
    /// Watch the hierarchies with inotify (default `true`). When `false`,
    /// or when inotify cannot be used, every [`Discovery::refresh`] walks
    /// the whole tree instead.
    pub inotify: bool,
    /// How often the whole tree is walked anyway, as a backstop for
    /// missed events (default 60 s, cAdvisor's global housekeeping).
    #[serde(with = "humantime_serde")]
    pub rescan_interval: Duration,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        Self {
            inotify: true,
            rescan_interval: Duration::from_secs(60),
        }
    }
}

/// A change in the set of cgroups.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DiscoveryEvent {
    /// The cgroup now exists (in at least one walked hierarchy).
    Added(CgroupPath),
    /// The cgroup is gone from every walked hierarchy.
    Removed(CgroupPath),
}

/// Why discovery cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The layout has no hierarchy to walk.
    #[error(
        "the cgroup layout has no hierarchy to walk (no cpu/cpuacct/memory/blkio/pids v1 mount \
         and no unified mount); check that cgroupfs is mounted or set `cgroup_root`"
    )]
    NoHierarchy,
}

/// The set of cgroups on the node, kept current by inotify plus a
/// periodic re-scan. Built for a synchronous loop that calls
/// [`Discovery::refresh`] once per tick.
///
/// A cgroup is present while its directory exists in any walked
/// hierarchy ([`walk::hierarchy_roots`]); on v1 that is the union over the
/// stat controllers, so a cgroup created in `memory` only is found.
pub struct Discovery {
    mounts: Vec<PathBuf>,
    filter: DiscoveryFilter,
    options: DiscoveryOptions,
    watcher: Option<TreeWatcher>,
    /// Every cgroup present, with one bit per hierarchy it exists in.
    presence: BTreeMap<CgroupPath, u32>,
    /// When the whole tree was last walked (or found to agree with what
    /// is known, see [`Discovery::tree_agrees`]).
    last_rescan: Option<Instant>,
    /// The kernel dropped inotify events since the last walk: the next
    /// re-scan walks the whole tree.
    events_lost: bool,
    /// Walks of the whole tree so far.
    full_walks: u64,
    /// Events found since the last `refresh`, already filtered.
    pending: Vec<DiscoveryEvent>,
}

impl Discovery {
    /// Walks (and, unless disabled, watches) the hierarchies of `layout`.
    /// The first [`Discovery::refresh`] reports every cgroup as added.
    ///
    /// Fails only when the layout has nothing to walk; inotify trouble is
    /// logged and handled by re-scanning.
    pub fn new(
        layout: CgroupLayout,
        filter: DiscoveryFilter,
        options: DiscoveryOptions,
    ) -> Result<Self, DiscoveryError> {
        let mounts = walk::hierarchy_roots(&layout);
        // One presence bit per hierarchy; v1 has at most 14 controllers.
        if mounts.is_empty() || mounts.len() > 32 {
            return Err(DiscoveryError::NoHierarchy);
        }
        let watcher = if options.inotify {
            TreeWatcher::new(mounts.clone())
                .map_err(|e| {
                    tracing::warn!(error = %e, "cgroup discovery falls back to re-scanning every tick");
                })
                .ok()
        } else {
            None
        };
        let mut discovery = Self {
            mounts,
            filter,
            options,
            watcher,
            presence: BTreeMap::new(),
            last_rescan: None,
            events_lost: false,
            full_walks: 0,
            pending: Vec::new(),
        };
        discovery.rescan();
        Ok(discovery)
    }

    /// What changed since the last call (the first call: every cgroup, as
    /// `Added`). Never blocks: drains queued inotify events and walks the
    /// tree when the backstop interval has passed (or on every call when
    /// inotify is unavailable). Events of one call are in no particular
    /// order, except that a re-scan reports parents before children.
    pub fn refresh(&mut self) -> Vec<DiscoveryEvent> {
        let mut rescan_due = self.watcher.is_none()
            || self
                .last_rescan
                .is_none_or(|t| t.elapsed() >= self.options.rescan_interval);

        if let Some(watcher) = &mut self.watcher {
            match watcher.poll() {
                Ok(changes) => {
                    for change in changes {
                        match change {
                            TreeChange::Appeared(h, path) => self.mark_present(h, path),
                            TreeChange::Vanished(h, path) => self.mark_absent(h, &path),
                            TreeChange::Overflow => {
                                tracing::debug!("inotify queue overflowed; re-scanning cgroups");
                                self.events_lost = true;
                                rescan_due = true;
                            }
                        }
                    }
                }
                Err(e) => {
                    self.give_up_inotify(&e);
                    rescan_due = true;
                }
            }
        }
        if rescan_due {
            self.rescan();
        }
        std::mem::take(&mut self.pending)
    }

    /// The cgroups present now (as of the last [`Discovery::refresh`] or
    /// [`Discovery::new`]) that pass the filter, in path order.
    pub fn current(&self) -> impl Iterator<Item = &CgroupPath> {
        self.presence.keys().filter(|p| self.filter.accepts(p))
    }

    /// Whether changes are watched with inotify (false: re-scanning every
    /// tick, by option or after an inotify failure).
    pub fn is_watching(&self) -> bool {
        self.watcher.is_some()
    }

    /// The hierarchy mount points walked.
    pub fn hierarchies(&self) -> &[PathBuf] {
        &self.mounts
    }

    /// Walks of the whole tree so far (the first, those after lost
    /// events, and backstops that found a directory disagreeing).
    pub fn full_walks(&self) -> u64 {
        self.full_walks
    }

    /// The backstop: walks every hierarchy (adding watches on the way
    /// when watching) and diffs against what is known. While inotify has
    /// lost nothing, a cheap check comes first ([`Discovery::tree_agrees`]):
    /// at 2000 cgroups in five v1 hierarchies the walk lists ~10 000
    /// directories of control files, ~160 ms of CPU, and the check ~25 ms.
    fn rescan(&mut self) {
        if self.watcher.is_some()
            && !self.events_lost
            && self.last_rescan.is_some()
            && self.tree_agrees()
        {
            self.last_rescan = Some(Instant::now());
            return;
        }
        self.full_walks += 1;
        self.events_lost = false;
        let mut fresh: BTreeMap<CgroupPath, u32> = BTreeMap::new();
        for h in 0..self.mounts.len() {
            let mut found = BTreeSet::new();
            let walked = match &mut self.watcher {
                Some(watcher) => match watcher.watch_subtree(h, &CgroupPath::root(), &mut found) {
                    Ok(()) => Ok(()),
                    Err(watch::WatchError::Walk { source, .. }) => Err(source),
                    Err(e) => {
                        self.give_up_inotify(&e);
                        found.clear();
                        walk::list_subtree(&self.mounts[h], &CgroupPath::root(), &mut found)
                    }
                },
                None => walk::list_subtree(&self.mounts[h], &CgroupPath::root(), &mut found),
            };
            if let Err(e) = walked {
                // Keep what was known of this hierarchy: one failed walk
                // must not report every cgroup as removed.
                tracing::warn!(hierarchy = %self.mounts[h].display(), error = %e, "cannot walk cgroup hierarchy");
                for (path, bits) in &self.presence {
                    if bits & (1 << h) != 0 {
                        *fresh.entry(path.clone()).or_default() |= 1 << h;
                    }
                }
                continue;
            }
            for path in found {
                *fresh.entry(path).or_default() |= 1 << h;
            }
        }

        for path in self.presence.keys() {
            if !fresh.contains_key(path) && self.filter.accepts(path) {
                self.pending.push(DiscoveryEvent::Removed(path.clone()));
            }
        }
        for path in fresh.keys() {
            if !self.presence.contains_key(path) && self.filter.accepts(path) {
                self.pending.push(DiscoveryEvent::Added(path.clone()));
            }
        }
        if let Some(watcher) = &mut self.watcher {
            watcher.share_paths(&fresh);
        }
        self.presence = fresh;
        self.last_rescan = Some(Instant::now());
    }

    /// Whether every known directory still has exactly the known
    /// subdirectories. A directory's link count is 2 plus its
    /// subdirectories on cgroupfs (kernfs) and tmpfs, so one `stat` says
    /// so without listing it; a directory whose count disagrees is listed,
    /// and still agrees when the only subdirectories not known are those
    /// discovery skips (`*.mount`). A filesystem that counts otherwise
    /// (btrfs) disagrees everywhere, and is walked.
    ///
    /// A child removed and another made in the same directory between two
    /// checks keep the count: inotify reports those (a lost event makes
    /// the next re-scan walk), except in a directory it could not watch.
    fn tree_agrees(&self) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        let mut children: HashMap<(usize, &str), u64> = HashMap::new();
        for (path, bits) in &self.presence {
            let Some((parent, _)) = path.as_str().rsplit_once('/').filter(|_| !path.is_root())
            else {
                continue;
            };
            let parent = if parent.is_empty() { "/" } else { parent };
            for h in hierarchies_of(*bits, self.mounts.len()) {
                *children.entry((h, parent)).or_default() += 1;
            }
        }
        self.presence.iter().all(|(path, bits)| {
            hierarchies_of(*bits, self.mounts.len()).all(|h| {
                let dir = crate::layout::join_cgroup(&self.mounts[h], path.as_str());
                let known = children.get(&(h, path.as_str())).copied().unwrap_or(0);
                match std::fs::symlink_metadata(&dir) {
                    Ok(m) if m.is_dir() && m.nlink() == known + 2 => true,
                    Ok(m) if m.is_dir() => self.listing_agrees(h, &dir, path, known),
                    _ => false,
                }
            })
        })
    }

    /// Whether `dir` (cgroup `path` in hierarchy `h`) lists exactly its
    /// `known` subdirectories, besides those discovery skips.
    fn listing_agrees(
        &self,
        h: usize,
        dir: &std::path::Path,
        path: &CgroupPath,
        known: u64,
    ) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        let mut listed = 0;
        for entry in entries {
            let Ok(entry) = entry else { return false };
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(name) = entry.file_name().into_string() else {
                continue; // skipped by the walk too
            };
            if walk::is_ignored(&name) {
                continue;
            }
            match self.presence.get(&path.join(&name)) {
                Some(bits) if bits & (1 << h) != 0 => listed += 1,
                _ => return false,
            }
        }
        listed == known
    }

    fn mark_present(&mut self, hierarchy: usize, path: CgroupPath) {
        let bits = self.presence.entry(path.clone()).or_default();
        let was_absent = *bits == 0;
        *bits |= 1 << hierarchy;
        if was_absent && self.filter.accepts(&path) {
            self.pending.push(DiscoveryEvent::Added(path));
        }
    }

    fn mark_absent(&mut self, hierarchy: usize, top: &CgroupPath) {
        let gone: Vec<CgroupPath> = self
            .presence
            .range(top.clone()..)
            .take_while(|(p, _)| p.as_str().starts_with(top.as_str()))
            .filter(|(p, _)| p.starts_with(top))
            .map(|(p, _)| p.clone())
            .collect();
        for path in gone {
            let Some(bits) = self.presence.get_mut(&path) else {
                continue;
            };
            *bits &= !(1 << hierarchy);
            if *bits == 0 {
                self.presence.remove(&path);
                if self.filter.accepts(&path) {
                    self.pending.push(DiscoveryEvent::Removed(path));
                }
            }
        }
    }

    fn give_up_inotify(&mut self, error: &watch::WatchError) {
        if self.watcher.take().is_some() {
            tracing::warn!(%error, "cgroup discovery falls back to re-scanning every tick");
        }
    }
}

/// The hierarchies (indexes below `count`) whose bits are set.
fn hierarchies_of(bits: u32, count: usize) -> impl Iterator<Item = usize> {
    (0..count).filter(move |h| bits & (1 << h) != 0)
}

#[cfg(test)]
mod tests;
