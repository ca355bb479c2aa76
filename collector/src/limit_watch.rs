//! Writes to cgroup limits and task lists, reported by inotify.
//!
//! A cgroup's limits (`cpu.cfs_quota_us`, `memory.limit_in_bytes`,
//! `cpu.max`, `pids.max` …) change only when somebody writes them, and the
//! kernel reports every `write(2)` to a file as `IN_MODIFY` to a watch on
//! it, cgroupfs included. Watching each cgroup's limit files lets the
//! collector re-read its limits at the tick after a write, instead of
//! re-reading seven files per cgroup every minute for a change that rarely
//! comes: at 2000 cgroups that was 14 000 opens a minute, the dearest part
//! of the agent's housekeeping. A watch on `cgroup.procs` reports tasks
//! moved in, whose network namespace may be the cgroup's own.
//!
//! The files are watched, not their directories. A directory watching its
//! children for `IN_MODIFY` makes the kernel look at the parent's watches
//! on every read of every file in it (`__fsnotify_parent`), and the
//! collector reads thousands of files a tick from those directories: that
//! cost ~1.5 ms a tick at 2000 cgroups, most of what the watches saved.
//!
//! A watched file keeps its inode, and kernfs reports no `IN_IGNORED` when
//! a cgroup is removed: [`LimitWatch::unwatch`] must be called then.
//!
//! This is an inotify instance of its own, not discovery's: a flood of
//! writes overflowing its queue must cost a re-read of the limits, not a
//! walk of the whole tree.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::sync::Arc;

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

/// What a write to a watched file may have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Written {
    /// The cgroup's tasks (`cgroup.procs`): a task moved in may bring a
    /// network namespace.
    Tasks,
    /// The cgroup's limits.
    Limits,
}

/// The writes seen since the last [`LimitWatch::poll`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Writes {
    /// Each cgroup written to, with the most telling kind of write
    /// ([`Written::Limits`] over [`Written::Tasks`]).
    pub cgroups: BTreeMap<Arc<str>, Written>,
    /// The kernel dropped events (its queue overflowed): any cgroup's
    /// limits may have been written unseen.
    pub overflowed: bool,
}

/// Big enough for a burst of events (16 bytes each: a file's events carry
/// no name).
const EVENT_BUFFER_BYTES: usize = 16 * 1024;

struct Watched {
    cgroup: Arc<str>,
    written: Written,
    wd: WatchDescriptor,
}

/// `IN_MODIFY` watches on cgroups' limit files and task lists.
pub struct LimitWatch {
    inotify: Inotify,
    /// By the watch's id.
    watches: HashMap<i32, Watched>,
    buffer: Vec<u8>,
}

impl LimitWatch {
    /// Creates the inotify instance; nothing is watched yet.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            inotify: Inotify::init()?,
            watches: HashMap::new(),
            buffer: vec![0; EVENT_BUFFER_BYTES],
        })
    }

    /// Watches `files` of cgroup `cgroup` for writes, each telling what a
    /// write to it changes. A file that does not exist is skipped. Returns
    /// the watches' ids, for [`LimitWatch::unwatch`]. On an error (watches
    /// exhausted: `fs.inotify.max_user_watches`) none is left watched.
    pub fn watch(&mut self, cgroup: &Arc<str>, files: &[(&Path, Written)]) -> io::Result<Vec<i32>> {
        let mut ids = Vec::with_capacity(files.len());
        for (file, written) in files {
            match self.inotify.watches().add(file, WatchMask::MODIFY) {
                Ok(wd) => {
                    let id = wd.get_watch_descriptor_id();
                    ids.push(id);
                    let watched = Watched {
                        cgroup: Arc::clone(cgroup),
                        written: *written,
                        wd,
                    };
                    self.watches.insert(id, watched);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    self.unwatch(&ids);
                    return Err(e);
                }
            }
        }
        Ok(ids)
    }

    /// Removes the watches `ids` (of a cgroup removed, or no longer read).
    pub fn unwatch(&mut self, ids: &[i32]) {
        for id in ids {
            if let Some(watched) = self.watches.remove(id) {
                // Fails harmlessly when the kernel already dropped it.
                let _ = self.inotify.watches().remove(watched.wd);
            }
        }
    }

    /// The number of files watched.
    pub fn watch_count(&self) -> usize {
        self.watches.len()
    }

    /// Drains the queued events. Never blocks.
    pub fn poll(&mut self) -> io::Result<Writes> {
        let mut writes = Writes::default();
        loop {
            let events = match self.inotify.read_events(&mut self.buffer) {
                Ok(events) => events,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for event in events {
                if event.mask.contains(EventMask::Q_OVERFLOW) {
                    writes.overflowed = true;
                    continue;
                }
                let id = event.wd.get_watch_descriptor_id();
                if event.mask.contains(EventMask::IGNORED) {
                    // The file is gone and the kernel dropped its watch
                    // (plain filesystems; cgroupfs waits for `unwatch`).
                    self.watches.remove(&id);
                    continue;
                }
                if let Some(watched) = self.watches.get(&id) {
                    let seen = writes
                        .cgroups
                        .entry(Arc::clone(&watched.cgroup))
                        .or_insert(watched.written);
                    *seen = (*seen).max(watched.written);
                }
            }
        }
        Ok(writes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn writes_are_reported_once_per_cgroup_with_the_most_telling_kind() {
        let root = tempfile::tempdir().unwrap();
        let file = |cgroup: &str, name: &str| {
            let dir = root.path().join(cgroup);
            fs::create_dir_all(&dir).unwrap();
            let path = dir.join(name);
            fs::write(&path, "0").unwrap();
            path
        };
        let (a_procs, a_limit) = (file("a", "cgroup.procs"), file("a", "memory.max"));
        let (b_procs, b_limit) = (file("b", "cgroup.procs"), file("b", "memory.max"));
        let c_events = file("c", "memory.events");
        let mut watch = LimitWatch::new().unwrap();
        let (ca, cb): (Arc<str>, Arc<str>) = ("/a".into(), "/b".into());
        let missing = root.path().join("a/pids.max");
        let a_ids = watch
            .watch(
                &ca,
                &[
                    (a_procs.as_path(), Written::Tasks),
                    (a_limit.as_path(), Written::Limits),
                    (missing.as_path(), Written::Limits),
                ],
            )
            .unwrap();
        assert_eq!(a_ids.len(), 2, "the missing file is skipped");
        let b_ids = watch
            .watch(
                &cb,
                &[
                    (b_procs.as_path(), Written::Tasks),
                    (b_limit.as_path(), Written::Limits),
                ],
            )
            .unwrap();
        assert_eq!(watch.watch_count(), 4);
        assert_eq!(
            watch.poll().unwrap(),
            Writes::default(),
            "nothing written yet"
        );

        fs::write(&a_procs, "1").unwrap();
        fs::write(&a_limit, "1").unwrap();
        fs::write(&a_procs, "2").unwrap();
        fs::write(&b_procs, "1").unwrap();
        fs::write(&c_events, "1").unwrap();
        // Read, not written: nothing to report.
        fs::read(&b_limit).unwrap();
        let writes = watch.poll().unwrap();
        assert_eq!(
            writes.cgroups.into_iter().collect::<Vec<_>>(),
            vec![(ca, Written::Limits), (cb, Written::Tasks)]
        );
        assert!(!writes.overflowed);

        watch.unwatch(&b_ids);
        assert_eq!(watch.watch_count(), 2);
        fs::write(&b_limit, "2").unwrap();
        assert_eq!(
            watch.poll().unwrap(),
            Writes::default(),
            "no longer watched"
        );
    }
}
