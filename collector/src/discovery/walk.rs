//! Lists the cgroup directories of the hierarchies statistics are read
//! from.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::layout::{CgroupLayout, CgroupMode, join_cgroup};

use super::path::CgroupPath;

/// The v1 controllers whose hierarchies are walked: those statistics are
/// read from. A cgroup present in any of them is found.
pub const STAT_CONTROLLERS: &[&str] = &["cpu", "cpuacct", "memory", "blkio", "pids"];

/// Deeper trees are cut here. cgroupfs cannot loop, but fixture trees are
/// plain directories and a runaway tree must not exhaust the agent.
pub const MAX_DEPTH: usize = 32;

/// The mount points to walk and watch: on v1 the distinct mounts of
/// [`STAT_CONTROLLERS`] (a `cpu,cpuacct` mount once); on v2 the unified
/// mount. Falls back to whatever is mounted when neither is complete.
pub fn hierarchy_roots(layout: &CgroupLayout) -> Vec<PathBuf> {
    let candidates: Vec<&PathBuf> = match (layout.mode(), &layout.unified) {
        (CgroupMode::V2, Some(unified)) => vec![unified],
        _ => {
            let stat: Vec<&PathBuf> = STAT_CONTROLLERS
                .iter()
                .filter_map(|c| layout.v1.get(*c))
                .collect();
            if stat.is_empty() {
                layout.v1.values().collect()
            } else {
                stat
            }
        }
    };
    let mut roots: Vec<PathBuf> = Vec::new();
    for root in candidates {
        if !roots.contains(root) {
            roots.push(root.clone());
        }
    }
    roots
}

/// Whether a directory is skipped: systemd's `*.mount` cgroups, which
/// cAdvisor ignores too.
pub fn is_ignored(name: &str) -> bool {
    name.ends_with(".mount")
}

/// Every cgroup at or below `start` in the hierarchy mounted at `mount`,
/// `start` included, inserted into `out`. Symlinks are not followed and
/// `*.mount` directories are skipped with their subtrees. A directory
/// that vanishes mid-walk is skipped; an unreadable `start` is an error.
pub fn list_subtree(
    mount: &Path,
    start: &CgroupPath,
    out: &mut BTreeSet<CgroupPath>,
) -> io::Result<()> {
    walk_subtree(mount, start, out, |_, _| Ok(()))
}

/// [`list_subtree`], calling `before_listing(dir, cgroup)` on each
/// directory before its children are read. The watcher adds its inotify
/// watch there, so a child created at any moment is either listed or
/// reported by the watch. An error from `before_listing` ends the walk,
/// except `NotFound` (the directory vanished), which skips it.
pub fn walk_subtree<F>(
    mount: &Path,
    start: &CgroupPath,
    out: &mut BTreeSet<CgroupPath>,
    mut before_listing: F,
) -> io::Result<()>
where
    F: FnMut(&Path, &CgroupPath) -> io::Result<()>,
{
    let start_dir = join_cgroup(mount, start.as_str());
    before_listing(&start_dir, start)?;
    let entries = fs::read_dir(&start_dir)?;
    out.insert(start.clone());
    // Directories waiting to be listed, not their open handles: a
    // directory handle carries a 32 KiB buffer, and a level with a
    // thousand pods would otherwise hold a thousand of them at once.
    let mut pending: Vec<(CgroupPath, std::path::PathBuf, usize)> = Vec::new();
    let mut listing = Some((start.clone(), entries, start_depth(start)));
    while let Some((path, entries, depth)) = listing.take() {
        for entry in entries {
            let Ok(entry) = entry else { continue };
            // `DirEntry::file_type` does not follow symlinks.
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(name) = entry.file_name().into_string() else {
                tracing::debug!(dir = %entry.path().display(), "skipping cgroup with a non-UTF-8 name");
                continue;
            };
            if is_ignored(&name) {
                continue;
            }
            let child = path.join(&name);
            if depth + 1 > MAX_DEPTH {
                tracing::warn!(cgroup = %child, "cgroup tree deeper than {MAX_DEPTH} levels; not descending");
                continue;
            }
            let dir = entry.path();
            match before_listing(&dir, &child) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
            pending.push((child, dir, depth + 1));
        }
        while let Some((child, dir, depth)) = pending.pop() {
            match fs::read_dir(&dir) {
                Ok(grandchildren) => {
                    out.insert(child.clone());
                    listing = Some((child, grandchildren, depth));
                    break;
                }
                // Removed since it was seen: it is gone, not an error.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::debug!(cgroup = %child, error = %e, "cannot list cgroup; reporting it without children");
                    out.insert(child);
                }
            }
        }
    }
    Ok(())
}

/// Every cgroup of the hierarchy mounted at `mount`, the root `/` included.
pub fn list_hierarchy(mount: &Path) -> io::Result<BTreeSet<CgroupPath>> {
    let mut out = BTreeSet::new();
    list_subtree(mount, &CgroupPath::root(), &mut out)?;
    Ok(out)
}

fn start_depth(path: &CgroupPath) -> usize {
    path.as_str().split('/').filter(|c| !c.is_empty()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(set: &BTreeSet<CgroupPath>) -> Vec<&str> {
        set.iter().map(CgroupPath::as_str).collect()
    }

    #[test]
    fn lists_dirs_skips_mounts_files_and_symlinks() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for d in [
            "system.slice/ssh.service",
            "system.slice/boot.mount/inner",
            "docker/abc",
        ] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        fs::write(r.join("docker/abc/memory.stat"), "").unwrap();
        std::os::unix::fs::symlink(r, r.join("docker/loop")).unwrap();

        let found = list_hierarchy(r).unwrap();
        assert_eq!(
            paths(&found),
            vec![
                "/",
                "/docker",
                "/docker/abc",
                "/system.slice",
                "/system.slice/ssh.service"
            ]
        );

        let mut sub = BTreeSet::new();
        list_subtree(r, &CgroupPath::new("/docker"), &mut sub).unwrap();
        assert_eq!(paths(&sub), vec!["/docker", "/docker/abc"]);
    }

    #[test]
    fn deep_trees_are_cut_not_overflowed() {
        let root = tempfile::tempdir().unwrap();
        let deep: PathBuf = (0..MAX_DEPTH + 5).map(|i| format!("d{i}")).collect();
        fs::create_dir_all(root.path().join(&deep)).unwrap();
        let found = list_hierarchy(root.path()).unwrap();
        assert_eq!(found.len(), MAX_DEPTH + 1, "root plus {MAX_DEPTH} levels");
    }

    #[test]
    fn missing_start_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        assert!(list_hierarchy(&root.path().join("nope")).is_err());
    }

    #[test]
    fn v1_roots_are_the_stat_controllers_once_each() {
        let mut layout = CgroupLayout::default();
        let cpu = PathBuf::from("/c/cpu,cpuacct");
        layout.v1.insert("cpu".into(), cpu.clone());
        layout.v1.insert("cpuacct".into(), cpu.clone());
        layout.v1.insert("memory".into(), "/c/memory".into());
        layout.v1.insert("freezer".into(), "/c/freezer".into());
        layout.unified = Some("/c/unified".into());
        assert_eq!(
            hierarchy_roots(&layout),
            vec![cpu, PathBuf::from("/c/memory")]
        );

        let v2 = CgroupLayout {
            unified: Some("/c".into()),
            unified_has_controllers: true,
            ..Default::default()
        };
        assert_eq!(hierarchy_roots(&v2), vec![PathBuf::from("/c")]);
    }
}
