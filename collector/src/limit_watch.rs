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

use std::collections::BTreeMap;
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

/// The watches of one cgroup's files, made one after the other: the
/// kernel numbers a watch one above the last, so their ids run from the
/// group's key up (a group per cgroup, not an entry per file: at 2000
/// cgroups, a table of 16 000 files was ~1.6 MiB of the agent's RSS).
struct Group {
    cgroup: Arc<str>,
    files: Box<[(WatchDescriptor, Written)]>,
}

/// A cgroup's watches, for [`LimitWatch::unwatch`]: the smallest id.
pub type WatchKey = i32;

/// `IN_MODIFY` watches on cgroups' limit files and task lists.
pub struct LimitWatch {
    inotify: Inotify,
    /// By their smallest watch id.
    groups: BTreeMap<WatchKey, Group>,
    /// Files watched, over every group.
    count: usize,
    buffer: Vec<u8>,
}

impl LimitWatch {
    /// Creates the inotify instance; nothing is watched yet.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            inotify: Inotify::init()?,
            groups: BTreeMap::new(),
            count: 0,
            buffer: vec![0; EVENT_BUFFER_BYTES],
        })
    }

    /// Watches `files` of cgroup `cgroup` for writes, each telling what a
    /// write to it changes. A file that does not exist is skipped. Returns
    /// the key for [`LimitWatch::unwatch`], `None` when no file exists. On
    /// an error (watches exhausted: `fs.inotify.max_user_watches`) none is
    /// left watched.
    pub fn watch(
        &mut self,
        cgroup: &Arc<str>,
        files: &[(&Path, Written)],
    ) -> io::Result<Option<WatchKey>> {
        let mut watched = Vec::with_capacity(files.len());
        for (file, written) in files {
            match self.inotify.watches().add(file, WatchMask::MODIFY) {
                Ok(wd) => watched.push((wd, *written)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    for (wd, _) in watched {
                        let _ = self.inotify.watches().remove(wd);
                    }
                    return Err(e);
                }
            }
        }
        let Some(key) = watched
            .iter()
            .map(|(wd, _)| wd.get_watch_descriptor_id())
            .min()
        else {
            return Ok(None);
        };
        self.count += watched.len();
        let group = Group {
            cgroup: Arc::clone(cgroup),
            files: watched.into_boxed_slice(),
        };
        self.groups.insert(key, group);
        Ok(Some(key))
    }

    /// Removes a cgroup's watches (it was removed, or is no longer read).
    pub fn unwatch(&mut self, key: WatchKey) {
        if let Some(group) = self.groups.remove(&key) {
            self.count -= group.files.len();
            for (wd, _) in group.files {
                // Fails harmlessly when the kernel already dropped it.
                let _ = self.inotify.watches().remove(wd);
            }
        }
    }

    /// The number of files watched.
    pub fn watch_count(&self) -> usize {
        self.count
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
                if event.mask.contains(EventMask::IGNORED) {
                    // The file is gone and the kernel dropped its watch
                    // (plain filesystems; cgroupfs waits for `unwatch`,
                    // which then fails harmlessly for this one).
                    continue;
                }
                if let Some((cgroup, written)) =
                    lookup(&self.groups, event.wd.get_watch_descriptor_id())
                {
                    let seen = writes.cgroups.entry(Arc::clone(cgroup)).or_insert(written);
                    *seen = (*seen).max(written);
                }
            }
        }
        Ok(writes)
    }
}

/// The cgroup and kind of the watch numbered `id`.
fn lookup(groups: &BTreeMap<WatchKey, Group>, id: i32) -> Option<(&Arc<str>, Written)> {
    let (_, group) = groups.range(..=id).next_back()?;
    let (_, written) = group
        .files
        .iter()
        .find(|(wd, _)| wd.get_watch_descriptor_id() == id)?;
    Some((&group.cgroup, *written))
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
        let a_key = watch
            .watch(
                &ca,
                &[
                    (a_procs.as_path(), Written::Tasks),
                    (a_limit.as_path(), Written::Limits),
                    (missing.as_path(), Written::Limits),
                ],
            )
            .unwrap();
        assert!(a_key.is_some());
        assert_eq!(watch.watch_count(), 2, "the missing file is skipped");
        let b_key = watch
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
            vec![(ca, Written::Limits), (cb.clone(), Written::Tasks)]
        );
        assert!(!writes.overflowed);

        watch.unwatch(b_key.unwrap());
        assert_eq!(watch.watch_count(), 2);
        assert_eq!(
            watch
                .watch(&cb, &[(missing.as_path(), Written::Limits)])
                .unwrap(),
            None,
            "nothing to watch"
        );
        fs::write(&b_limit, "2").unwrap();
        assert_eq!(
            watch.poll().unwrap(),
            Writes::default(),
            "no longer watched"
        );
    }
}
