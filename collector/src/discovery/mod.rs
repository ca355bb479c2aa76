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

use std::collections::{BTreeMap, BTreeSet};
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
    /// The backstop for changes inotify did not report (a directory it
    /// could not watch): every known directory is checked once in this
    /// period, a share of them at each [`Discovery::refresh`], and the
    /// tree is walked when one disagrees (default 5 min). Lost events
    /// (the kernel says so) make the next refresh walk at once.
    #[serde(with = "humantime_serde")]
    pub rescan_interval: Duration,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        Self {
            inotify: true,
            rescan_interval: Duration::from_secs(300),
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
    /// When the whole tree was last walked, or the last round of checks
    /// ([`Discovery::check_share`]) found every directory agreeing.
    last_rescan: Option<Instant>,
    /// The last cgroup checked in the current round, and when the last
    /// share was checked.
    check_cursor: Option<CgroupPath>,
    last_check: Option<Instant>,
    /// Cgroups' worth of checks earned and not yet made: the share of a
    /// call is the whole part, the rest carried to the next.
    check_credit: f64,
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
            check_cursor: None,
            last_check: None,
            check_credit: 0.0,
            events_lost: false,
            full_walks: 0,
            pending: Vec::new(),
        };
        discovery.walk_tree();
        Ok(discovery)
    }

    /// What changed since the last call (the first call: every cgroup, as
    /// `Added`). Never blocks: drains queued inotify events and checks
    /// the backstop's share of the known directories, walking the tree
    /// when one disagrees or events were lost (and on every call when
    /// inotify is unavailable). Events of one call are in no particular
    /// order, except that a walk reports parents before children.
    pub fn refresh(&mut self) -> Vec<DiscoveryEvent> {
        let mut rescan_due = self.watcher.is_none() || self.last_rescan.is_none();

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
        if rescan_due || self.events_lost {
            self.walk_tree();
        } else {
            self.check_share();
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

    /// Walks every hierarchy (adding watches on the way when watching)
    /// and diffs against what is known. At 2000 cgroups in five v1
    /// hierarchies the walk lists ~10 000 directories of control files,
    /// ~160 ms of CPU: while inotify has lost nothing, the backstop checks
    /// what is known instead ([`Discovery::check_share`]), and walks only
    /// when that disagrees.
    fn walk_tree(&mut self) {
        self.check_cursor = None;
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

    /// The backstop's share of this call: the directories of the next
    /// known cgroups (in path order, after the last call's), as many as
    /// make the whole tree once per `rescan_interval` at this pace (all of
    /// it when the interval is zero). A directory that disagrees with what
    /// is known makes the tree walked. At 2000 cgroups in five v1
    /// hierarchies the whole check is ~10 000 `stat`s, ~60 ms of CPU:
    /// spread, no tick carries it all. The pace is kept in fractions of a
    /// cgroup: rounded up to one a call, a node of 20 cgroups went round
    /// in 20 ticks rather than in `rescan_interval`, a `stat` of a deep
    /// path in five hierarchies at every tick for nothing.
    fn check_share(&mut self) {
        use std::ops::Bound;
        let now = Instant::now();
        let since_last = self.last_check.map_or(Duration::ZERO, |t| now - t);
        self.last_check = Some(now);
        let known = self.presence.len();
        let share = if self.options.rescan_interval.is_zero() {
            known
        } else {
            let earned = known as f64 * since_last.as_secs_f64()
                / self.options.rescan_interval.as_secs_f64();
            // A stalled loop catches up at most one round.
            self.check_credit = (self.check_credit + earned).min(known as f64);
            let share = self.check_credit.floor();
            self.check_credit -= share;
            share as usize
        };
        if share == 0 {
            return;
        }
        let after = match &self.check_cursor {
            Some(cursor) => Bound::Excluded(cursor),
            None => Bound::Unbounded,
        };
        let mut checked = 0;
        let mut last = None;
        for (path, bits) in self.presence.range((after, Bound::Unbounded)).take(share) {
            if !self.dir_agrees(path, *bits) {
                self.walk_tree();
                return;
            }
            checked += 1;
            last = Some(path);
        }
        let at_end = match last {
            Some(last) => self
                .presence
                .range((Bound::Excluded(last), Bound::Unbounded))
                .next()
                .is_none(),
            None => checked < share,
        };
        if at_end {
            // Every known cgroup agreed this round.
            self.check_cursor = None;
            self.last_rescan = Some(now);
        } else {
            self.check_cursor = last.cloned();
        }
    }

    /// Whether cgroup `path`'s directory in each hierarchy of `bits` still
    /// has exactly its known subdirectories. A directory's link count is 2
    /// plus its subdirectories on cgroupfs (kernfs) and tmpfs, so one
    /// `stat` says so without listing it; a directory whose count
    /// disagrees is listed, and still agrees when the only subdirectories
    /// not known are those discovery skips (`*.mount`). A filesystem that
    /// counts otherwise (btrfs) disagrees everywhere, and is walked.
    ///
    /// A child removed and another made in the same directory between two
    /// checks keep the count: inotify reports those (a lost event makes
    /// the next refresh walk), except in a directory it could not watch.
    fn dir_agrees(&self, path: &CgroupPath, bits: u32) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        hierarchies_of(bits, self.mounts.len()).all(|h| {
            let dir = crate::layout::join_cgroup(&self.mounts[h], path.as_str());
            let known = self.known_children(h, path);
            match std::fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() && m.nlink() == known + 2 => true,
                Ok(m) if m.is_dir() => self.listing_agrees(h, &dir, path, known),
                _ => false,
            }
        })
    }

    /// The known subdirectories of `path` in hierarchy `h`.
    fn known_children(&self, h: usize, path: &CgroupPath) -> u64 {
        let depth = path.as_str().matches('/').count() + usize::from(!path.is_root());
        self.presence
            .range(path.clone()..)
            .skip(1)
            // Descendants sort among the paths `path` prefixes (with
            // siblings such as `/a-b` after `/a`).
            .take_while(|(p, _)| p.as_str().starts_with(path.as_str()))
            .filter(|(p, b)| {
                *b & (1 << h) != 0
                    && p.starts_with(path)
                    && p.as_str().matches('/').count() == depth
            })
            .count() as u64
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
