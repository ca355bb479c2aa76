//! Filesystem usage: the node's mounted filesystems (`statvfs`, cheap) and
//! the writable layer of each container (a directory walk, expensive).
//!
//! Directory walks are what made cAdvisor and the kubelet burn whole cores
//! (`du` storms, one walker per container every minute). Here one
//! [`LayerWalker`] serves every container in turn: each call walks at most
//! `max_entries` directory entries in total and remembers where it stopped,
//! so the cost per tick is bounded whatever the number of containers and
//! files, and a container's figure is simply as old as one full round.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::discovery::mountinfo::unescape_octal;
use crate::stats::FilesystemStats;

/// Filesystem types worth reporting on the node: block-backed and the
/// usual network/overlay ones; pseudo filesystems (proc, sysfs, cgroup …)
/// are left out as cAdvisor does.
const REPORTED_FS_TYPES: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "overlay", "tmpfs", "nfs", "nfs4", "f2fs",
    "vfat", "squashfs", "fuseblk",
];

/// One mount from `/proc/<pid>/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Major:minor of the filesystem.
    pub dev: (u64, u64),
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// Filesystem type.
    pub fs_type: String,
    /// Mount source (`/dev/vda`, `overlay`, …).
    pub source: String,
    /// Superblock options (holds `upperdir=` for overlay mounts).
    pub super_options: String,
}

/// Parses mountinfo text into mounts; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let _id = l.next()?;
    let _parent = l.next()?;
    let (maj, min) = l.next()?.split_once(':')?;
    let _root = l.next()?;
    let mountpoint = unescape_octal(l.next()?);
    let mut r = right.split(' ');
    let fs_type = r.next()?.to_string();
    let source = unescape_octal(r.next()?);
    let super_options = r.next().unwrap_or("").to_string();
    Some(Mount {
        dev: (maj.parse().ok()?, min.parse().ok()?),
        mountpoint: PathBuf::from(mountpoint),
        fs_type,
        source,
        super_options,
    })
}

/// `statvfs` figures of the node's real filesystems, one entry per device
/// (bind mounts of the same device are reported once, at the first mount).
pub fn node_filesystems(mounts: &[Mount]) -> Vec<FilesystemStats> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for m in mounts {
        if !REPORTED_FS_TYPES.contains(&m.fs_type.as_str()) || !seen.insert(m.dev) {
            continue;
        }
        match rustix::fs::statvfs(&m.mountpoint) {
            Ok(st) => {
                let frsize = st.f_frsize.max(1);
                let total = st.f_blocks * frsize;
                let free = st.f_bfree * frsize;
                // Block devices are named by their node (`/dev/vda`);
                // tmpfs, overlay and friends share a meaningless source
                // ("tmpfs"), so they are named by where they are mounted,
                // as cAdvisor does, keeping every series distinct.
                let device = if m.source.starts_with('/') {
                    m.source.clone()
                } else {
                    m.mountpoint.display().to_string()
                };
                out.push(FilesystemStats {
                    device,
                    mountpoint: Some(m.mountpoint.display().to_string()),
                    fs_type: Some(m.fs_type.clone()),
                    usage: total.saturating_sub(free),
                    limit: total,
                    available: st.f_bavail * frsize,
                    inodes: st.f_files,
                    inodes_free: st.f_ffree,
                });
            }
            Err(e) => {
                tracing::debug!(mount = %m.mountpoint.display(), error = %e, "statvfs failed")
            }
        }
    }
    out
}

/// `statvfs` figures of the filesystem holding `dir` (the kubelet's root
/// directory), or of `fallback` (the root filesystem) when `dir` does not
/// exist. The device is named as in [`node_filesystems`] when a mount of
/// the same device is known, else by the directory measured.
pub fn filesystem_of(dir: &Path, fallback: &Path, mounts: &[Mount]) -> Option<FilesystemStats> {
    let (path, meta) = match std::fs::metadata(dir) {
        Ok(m) => (dir, m),
        Err(_) => (fallback, std::fs::metadata(fallback).ok()?),
    };
    let st = match rustix::fs::statvfs(path) {
        Ok(st) => st,
        Err(e) => {
            tracing::debug!(dir = %path.display(), error = %e, "statvfs failed");
            return None;
        }
    };
    let dev = meta.dev();
    let dev = (rustix::fs::major(dev) as u64, rustix::fs::minor(dev) as u64);
    let mount = mounts.iter().find(|m| m.dev == dev);
    let device = match mount {
        Some(m) if m.source.starts_with('/') => m.source.clone(),
        Some(m) => m.mountpoint.display().to_string(),
        None => path.display().to_string(),
    };
    let frsize = st.f_frsize.max(1);
    let total = st.f_blocks * frsize;
    Some(FilesystemStats {
        device,
        mountpoint: mount.map(|m| m.mountpoint.display().to_string()),
        fs_type: mount.map(|m| m.fs_type.clone()),
        usage: total.saturating_sub(st.f_bfree * frsize),
        limit: total,
        available: st.f_bavail * frsize,
        inodes: st.f_files,
        inodes_free: st.f_ffree,
    })
}

/// Finds the writable layer of a container: Docker's overlay2 `diff`
/// directory (via `image/overlay2/layerdb/mounts/<id>/mount-id`), or the
/// `upperdir` of an overlay mount whose mount point names the container id
/// (containerd and CRI-O rootfs mounts, which cAdvisor does not measure).
pub fn writable_layer(docker_root: &Path, mounts: &[Mount], container_id: &str) -> Option<PathBuf> {
    let mount_id_file = docker_root
        .join("image/overlay2/layerdb/mounts")
        .join(container_id)
        .join("mount-id");
    if let Ok(mount_id) = fs::read_to_string(&mount_id_file) {
        let dir = docker_root
            .join("overlay2")
            .join(mount_id.trim())
            .join("diff");
        if dir.is_dir() {
            return Some(dir);
        }
    }
    mounts
        .iter()
        .filter(|m| m.fs_type == "overlay" && m.mountpoint.to_string_lossy().contains(container_id))
        .find_map(|m| {
            m.super_options
                .split(',')
                .find_map(|o| o.strip_prefix("upperdir="))
                .map(PathBuf::from)
        })
}

/// Bytes allocated to the regular files directly in `dir` (`st_blocks ×
/// 512`, as the walker counts); `None` when `dir` cannot be listed. For
/// small flat directories such as a container's kubelet log directory.
pub fn dir_file_bytes(dir: &Path) -> Option<u64> {
    let mut bytes = 0;
    for entry in fs::read_dir(dir).ok()?.flatten() {
        if let Ok(meta) = entry.metadata()
            && meta.is_file()
        {
            bytes += meta.blocks() * 512;
        }
    }
    Some(bytes)
}

/// Usage of one directory tree, as the walk found it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirUsage {
    /// Bytes allocated (`st_blocks × 512`), hard links counted once.
    pub bytes: u64,
    /// Inodes used.
    pub inodes: u64,
}

/// A walk in progress over one container's writable layer.
#[derive(Debug)]
struct Walk {
    key: String,
    root_dev: u64,
    stack: Vec<PathBuf>,
    open: Option<fs::ReadDir>,
    seen_links: HashSet<(u64, u64)>,
    acc: DirUsage,
}

/// Walks containers' writable layers round-robin under a per-call budget.
#[derive(Debug, Default)]
pub struct LayerWalker {
    max_entries: usize,
    queue: BTreeMap<String, PathBuf>,
    current: Option<Walk>,
    cursor: Option<String>,
    results: BTreeMap<String, DirUsage>,
}

impl LayerWalker {
    /// A walker that looks at no more than `max_entries` entries per call
    /// to [`LayerWalker::step`].
    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries: max_entries.max(1),
            ..Self::default()
        }
    }

    /// Registers (or updates) the layer directory of container `key`.
    pub fn track(&mut self, key: &str, dir: PathBuf) {
        self.queue.insert(key.to_string(), dir);
    }

    /// Stops tracking `key` (the container went away).
    pub fn forget(&mut self, key: &str) {
        self.queue.remove(key);
        self.results.remove(key);
        if self.current.as_ref().is_some_and(|w| w.key == key) {
            self.current = None;
        }
    }

    /// The last complete figure for `key`.
    pub fn usage(&self, key: &str) -> Option<DirUsage> {
        self.results.get(key).copied()
    }

    /// Does up to `max_entries` units of walking, moving on to the next
    /// container whenever one finishes. Returns the entries examined.
    pub fn step(&mut self) -> usize {
        let mut budget = self.max_entries;
        let mut done = 0;
        let mut started = 0;
        while budget > 0 {
            if self.current.is_none() {
                if started >= self.queue.len() {
                    break;
                }
                started += 1;
                let Some((key, dir)) = self.next_in_round() else {
                    break;
                };
                let root_dev = fs::symlink_metadata(&dir).map(|m| m.dev()).unwrap_or(0);
                self.current = Some(Walk {
                    key,
                    root_dev,
                    stack: vec![dir],
                    open: None,
                    seen_links: HashSet::new(),
                    acc: DirUsage::default(),
                });
            }
            let walk = self.current.as_mut().expect("set above");
            if walk.open.is_none() {
                let Some(dir) = walk.stack.pop() else {
                    let finished = self.current.take().expect("set above");
                    self.results.insert(finished.key, finished.acc);
                    continue;
                };
                budget -= 1;
                done += 1;
                walk.open = fs::read_dir(&dir).ok();
                continue;
            }
            let entries = walk.open.as_mut().expect("checked above");
            // Stop mid-directory when the budget runs out: the open
            // iterator is kept and resumed on the next call.
            for entry in entries.by_ref().flatten() {
                budget -= 1;
                done += 1;
                if let Ok(meta) = entry.metadata() {
                    let foreign = meta.dev() != walk.root_dev;
                    let repeat_link = meta.nlink() > 1
                        && !meta.is_dir()
                        && !walk.seen_links.insert((meta.dev(), meta.ino()));
                    // Other filesystems (mounts inside the layer) and extra
                    // names of a hard-linked file are not this layer's bytes.
                    if !foreign && !repeat_link {
                        walk.acc.bytes += meta.blocks() * 512;
                        walk.acc.inodes += 1;
                        if meta.is_dir() {
                            walk.stack.push(entry.path());
                        }
                    }
                }
                if budget == 0 {
                    return done;
                }
            }
            walk.open = None;
        }
        done
    }

    fn next_in_round(&mut self) -> Option<(String, PathBuf)> {
        let next = match &self.cursor {
            Some(c) => self
                .queue
                .range::<String, _>((
                    std::ops::Bound::Excluded(c.clone()),
                    std::ops::Bound::Unbounded,
                ))
                .next()
                .or_else(|| self.queue.iter().next()),
            None => self.queue.iter().next(),
        }
        .map(|(k, v)| (k.clone(), v.clone()))?;
        self.cursor = Some(next.0.clone());
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines_with_escapes_and_overlay_options() {
        let text = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n\
            99 27 0:50 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/abc123/rootfs rw - overlay overlay rw,lowerdir=/l,upperdir=/var/lib/containerd/snap/42/fs,workdir=/w\n\
            100 27 0:51 / /mnt/my\\040disk rw - xfs /dev/sdb1 rw\n\
            garbage line\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0].dev, (254, 0));
        assert_eq!(mounts[0].source, "/dev/vda");
        assert_eq!(mounts[2].mountpoint, PathBuf::from("/mnt/my disk"));
        let upper = writable_layer(Path::new("/nonexistent"), &mounts, "abc123");
        assert_eq!(upper, Some(PathBuf::from("/var/lib/containerd/snap/42/fs")));
    }

    #[test]
    fn the_kubelet_root_falls_back_to_the_root_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let here = filesystem_of(dir.path(), Path::new("/"), &[]).unwrap();
        assert!(here.limit > 0 && here.usage <= here.limit, "{here:?}");
        assert_eq!(here.device, dir.path().display().to_string());
        let missing = dir.path().join("no-such-dir");
        let root = filesystem_of(&missing, Path::new("/"), &[]).unwrap();
        assert_eq!(root.device, "/");
        assert!(filesystem_of(&missing, &missing, &[]).is_none());
    }

    #[test]
    fn node_filesystems_report_the_root_fs() {
        let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let fss = node_filesystems(&parse_mountinfo(&text));
        let root = fss.iter().find(|f| f.mountpoint.as_deref() == Some("/"));
        let root = root.expect("the root filesystem is reported");
        assert!(root.limit > 0 && root.usage > 0 && root.usage <= root.limit);
        assert!(root.inodes >= root.inodes_free);
    }

    #[test]
    fn walker_measures_layers_within_its_budget_and_counts_hard_links_once() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        fs::create_dir_all(a.join("sub/deeper")).unwrap();
        fs::write(a.join("f1"), vec![1u8; 64 * 1024]).unwrap();
        fs::write(a.join("sub/deeper/f2"), vec![1u8; 128 * 1024]).unwrap();
        fs::hard_link(a.join("f1"), a.join("f1-link")).unwrap();
        let b = tmp.path().join("b");
        fs::create_dir_all(&b).unwrap();
        for i in 0..50 {
            fs::write(b.join(format!("f{i}")), b"x").unwrap();
        }
        let mut walker = LayerWalker::new(7);
        walker.track("a", a.clone());
        walker.track("b", b.clone());
        let mut calls = 0;
        while walker.usage("a").is_none() || walker.usage("b").is_none() {
            assert!(walker.step() <= 7, "budget respected");
            calls += 1;
            assert!(calls < 100, "walk terminates");
        }
        let ua = walker.usage("a").unwrap();
        // f1 (64 KiB) once despite the hard link, f2 (128 KiB), two dirs.
        assert!(ua.bytes >= 192 * 1024 && ua.bytes < 256 * 1024, "{ua:?}");
        assert_eq!(ua.inodes, 4, "f1 (its hard link once), sub, deeper, f2");
        assert_eq!(walker.usage("b").unwrap().inodes, 50);
        walker.forget("a");
        assert!(walker.usage("a").is_none());
    }
}
