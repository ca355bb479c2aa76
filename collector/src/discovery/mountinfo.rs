//! Finds the cgroup hierarchies of this node from `/proc/self/mountinfo`
//! and turns them into a [`CgroupLayout`].
//!
//! # Rules
//!
//! * A `cgroup` (v1) mount carries every controller named in its
//!   super-block options (`rw,cpu,cpuacct` → `cpu` and `cpuacct`). Only
//!   the kernel's controller names count ([`V1_CONTROLLERS`]); named
//!   hierarchies such as `name=systemd` and options like `xattr` or
//!   `release_agent=…` do not. When two mounts carry the same controller
//!   the first one listed wins (cAdvisor does the same).
//! * A `cgroup2` mount is the unified hierarchy; the first one wins.
//!   [`CgroupLayout::unified_has_controllers`] is decided from the mount's
//!   `cgroup.controllers` file: it is true when that file lists at least
//!   one controller the agent reads statistics from (`cpu`, `memory`, `io`,
//!   `pids`). "Non-empty" alone is not enough: on a hybrid node the
//!   systemd tree often carries a leftover controller nobody bound to v1
//!   (this VM's lists `hugetlb`) while CPU and memory stay on v1.
//! * Mount points are decoded: the kernel writes space, tab, newline and
//!   backslash as `\040`, `\011`, `\012` and `\134`.
//! * Malformed lines are skipped with a warning, never fatal: one odd
//!   mount must not blind the agent to the cgroup ones.
//!
//! # A configured cgroup root
//!
//! When [`LayoutOptions::cgroup_root`] is set (the host's cgroupfs mounted
//! elsewhere when the agent runs in a container, or a fixture tree in
//! tests), each mount point is rebased onto it: the part below
//! `/sys/fs/cgroup` is kept (`/sys/fs/cgroup/memory` → `<root>/memory`,
//! `/sys/fs/cgroup` → `<root>`); a mount elsewhere keeps only its last
//! component. Rebased mounts whose directory does not exist are dropped.
//! If none is left, the layout is detected from the root's own
//! directories instead ([`detect_from_tree`]): `cgroup.controllers` at the
//! top means a pure v2 tree; otherwise each subdirectory named after
//! controllers (`memory`, `cpu,cpuacct`) is a v1 hierarchy and a
//! subdirectory holding `cgroup.controllers` (`unified`) is the v2 one.
//!
//! `procfs` has a mountinfo parser, but it keeps mount points escaped and
//! rejects the whole file when one line is malformed, hence this module.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::layout::CgroupLayout;

/// The kernel's cgroup v1 controller names (`/proc/cgroups`). Any other
/// super-block option of a `cgroup` mount is not a controller.
pub const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// v2 controllers whose presence makes the unified hierarchy the source
/// of statistics.
const V2_STAT_CONTROLLERS: &[&str] = &["cpu", "memory", "io", "pids"];

/// Where the cgroup hierarchies are looked for.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LayoutOptions {
    /// The proc filesystem to read `self/mountinfo` from. Default `/proc`;
    /// `/rootfs/proc` when the agent runs in a container with the host's
    /// `/` mounted at `/rootfs`.
    pub proc_root: PathBuf,
    /// Where the cgroup hierarchies really are, when not where mountinfo
    /// says (see the module docs for the rebasing rule). Default: unset,
    /// mount points are used as listed.
    pub cgroup_root: Option<PathBuf>,
}

impl Default for LayoutOptions {
    fn default() -> Self {
        Self {
            proc_root: PathBuf::from("/proc"),
            cgroup_root: None,
        }
    }
}

/// Why no cgroup layout could be found.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The mountinfo file could not be read.
    #[error("cannot read {path}: {source}; check `proc_root` points at a mounted proc filesystem")]
    ReadMountinfo {
        /// The file that was read.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Neither mountinfo nor the configured root shows a cgroup hierarchy.
    #[error(
        "no cgroup hierarchy found (looked in {mountinfo}{root}); mount cgroupfs, or set \
         `cgroup_root` to the directory holding the host's cgroup hierarchies"
    )]
    NoHierarchy {
        /// The mountinfo file that was read.
        mountinfo: PathBuf,
        /// `" and <cgroup_root>"` when a root was configured.
        root: String,
    },
}

/// The kind of a cgroup filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupFsType {
    /// `cgroup`: one v1 hierarchy.
    V1,
    /// `cgroup2`: the unified hierarchy.
    V2,
}

/// One cgroup mount listed in mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Where it is mounted, octal escapes decoded.
    pub mount_point: PathBuf,
    /// v1 or v2.
    pub fs_type: CgroupFsType,
    /// The v1 controllers it carries (empty for v2 and for named
    /// hierarchies such as `name=systemd`).
    pub controllers: Vec<String>,
}

/// Reads the layout as [`LayoutOptions`] say (see the module docs).
pub fn discover_layout(options: &LayoutOptions) -> Result<CgroupLayout, LayoutError> {
    let mountinfo = options.proc_root.join("self/mountinfo");
    let mounts = match fs::read_to_string(&mountinfo) {
        Ok(text) => parse_mountinfo(&text),
        // With a configured root, a missing mountinfo is survivable: the
        // tree itself tells the layout.
        Err(e) if options.cgroup_root.is_some() => {
            tracing::warn!(path = %mountinfo.display(), error = %e, "cannot read mountinfo; detecting the cgroup layout from cgroup_root");
            Vec::new()
        }
        Err(source) => {
            return Err(LayoutError::ReadMountinfo {
                path: mountinfo,
                source,
            });
        }
    };

    let layout = match &options.cgroup_root {
        None => layout_from_mounts(&mounts),
        Some(root) => {
            let rebased: Vec<CgroupMount> = mounts
                .into_iter()
                .map(|m| CgroupMount {
                    mount_point: rebase(&m.mount_point, root),
                    ..m
                })
                .filter(|m| m.mount_point.is_dir())
                .collect();
            if rebased.is_empty() {
                detect_from_tree(root)
            } else {
                layout_from_mounts(&rebased)
            }
        }
    };

    if layout.unified.is_none() && layout.v1.is_empty() {
        return Err(LayoutError::NoHierarchy {
            mountinfo,
            root: options
                .cgroup_root
                .as_ref()
                .map(|r| format!(" and {}", r.display()))
                .unwrap_or_default(),
        });
    }
    Ok(layout)
}

/// Builds a layout from cgroup mounts, in mountinfo order (first wins).
/// Reads the unified mount's `cgroup.controllers` to decide
/// `unified_has_controllers`.
pub fn layout_from_mounts(mounts: &[CgroupMount]) -> CgroupLayout {
    let mut layout = CgroupLayout::default();
    for mount in mounts {
        match mount.fs_type {
            CgroupFsType::V2 => {
                if layout.unified.is_none() {
                    layout.unified = Some(mount.mount_point.clone());
                }
            }
            CgroupFsType::V1 => {
                for controller in &mount.controllers {
                    layout
                        .v1
                        .entry(controller.clone())
                        .or_insert_with(|| mount.mount_point.clone());
                }
            }
        }
    }
    layout.unified_has_controllers = layout
        .unified
        .as_deref()
        .is_some_and(unified_carries_stat_controllers);
    layout
}

/// Parses mountinfo text into its cgroup mounts, skipping other
/// filesystems and malformed lines.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|line| match parse_line(line) {
            Ok(mount) => mount,
            Err(reason) => {
                tracing::warn!(line, reason, "skipping malformed mountinfo line");
                None
            }
        })
        .collect()
}

/// One mountinfo line: `id parent major:minor root mount-point options
/// [optional fields…] - fstype source super-options`.
fn parse_line(line: &str) -> Result<Option<CgroupMount>, &'static str> {
    let fields: Vec<&str> = line.split(' ').collect();
    let separator = fields
        .iter()
        .position(|f| *f == "-")
        .ok_or("no ` - ` separator")?;
    if separator < 6 {
        return Err("fewer than 6 fields before the separator");
    }
    let after = &fields[separator + 1..];
    if after.len() < 3 {
        return Err("fewer than 3 fields after the separator");
    }
    let fs_type = match after[0] {
        "cgroup" => CgroupFsType::V1,
        "cgroup2" => CgroupFsType::V2,
        _ => return Ok(None),
    };
    let controllers = match fs_type {
        CgroupFsType::V2 => Vec::new(),
        CgroupFsType::V1 => after[2]
            .split(',')
            .filter(|opt| V1_CONTROLLERS.contains(opt))
            .map(str::to_owned)
            .collect(),
    };
    Ok(Some(CgroupMount {
        mount_point: PathBuf::from(unescape_octal(fields[4])),
        fs_type,
        controllers,
    }))
}

/// Decodes the kernel's `\ooo` escapes (space, tab, newline, backslash
/// and any other byte it chooses to escape). A backslash not followed by
/// three octal digits is kept as is.
pub fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..=i + 3]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..=i + 3]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Moves a listed mount point under a configured cgroup root.
fn rebase(mount_point: &Path, root: &Path) -> PathBuf {
    match mount_point.strip_prefix("/sys/fs/cgroup") {
        Ok(rest) if rest.as_os_str().is_empty() => root.to_path_buf(),
        Ok(rest) => root.join(rest),
        Err(_) => match mount_point.file_name() {
            Some(name) => root.join(name),
            None => root.to_path_buf(),
        },
    }
}

/// Detects the layout from the directories of a cgroup root alone (see
/// the module docs). Unknown subdirectories are ignored.
pub fn detect_from_tree(root: &Path) -> CgroupLayout {
    let mut layout = CgroupLayout::default();
    if root.join("cgroup.controllers").is_file() {
        layout.unified = Some(root.to_path_buf());
        layout.unified_has_controllers = unified_carries_stat_controllers(root);
        return layout;
    }
    let Ok(entries) = fs::read_dir(root) else {
        return layout;
    };
    // Sorted so the choice between two directories carrying the same
    // controller (`cpu` and `cpu,cpuacct`) does not depend on readdir order.
    let mut dirs: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .collect();
    dirs.sort();
    for (name, path) in dirs {
        if path.join("cgroup.controllers").is_file() {
            if layout.unified.is_none() {
                layout.unified_has_controllers = unified_carries_stat_controllers(&path);
                layout.unified = Some(path);
            }
            continue;
        }
        for controller in name.split(',') {
            if V1_CONTROLLERS.contains(&controller) {
                layout
                    .v1
                    .entry(controller.to_owned())
                    .or_insert_with(|| path.clone());
            }
        }
    }
    layout
}

/// Whether a unified mount's `cgroup.controllers` lists a controller the
/// agent reads statistics from. An unreadable file counts as "no".
fn unified_carries_stat_controllers(mount: &Path) -> bool {
    match fs::read_to_string(mount.join("cgroup.controllers")) {
        Ok(list) => list
            .split_whitespace()
            .any(|c| V2_STAT_CONTROLLERS.contains(&c)),
        Err(e) => {
            tracing::debug!(mount = %mount.display(), error = %e, "cannot read cgroup.controllers");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This VM's `/proc/self/mountinfo`, cgroup lines plus neighbours.
    const HYBRID: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A systemd-era v1 host: combined `cpu,cpuacct` and `net_cls,net_prio`
    /// mounts, systemd's named hierarchy with `xattr`.
    const V1_ONLY: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,net_cls,net_prio
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
32 25 0:29 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,blkio
33 25 0:30 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
";

    const V2_ONLY: &str = "\
26 21 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    fn controllers(layout: &CgroupLayout) -> Vec<(&str, &Path)> {
        layout
            .v1
            .iter()
            .map(|(c, p)| (c.as_str(), p.as_path()))
            .collect()
    }

    #[test]
    fn hybrid_lists_v1_controllers_and_unified_tree() {
        let mounts = parse_mountinfo(HYBRID);
        assert_eq!(mounts.len(), 10, "9 cgroup v1 mounts and 1 cgroup2");
        let systemd = mounts
            .iter()
            .find(|m| m.mount_point == Path::new("/sys/fs/cgroup/systemd"))
            .unwrap();
        assert!(
            systemd.controllers.is_empty(),
            "name=systemd is no controller"
        );

        let layout = layout_from_mounts(&mounts);
        assert_eq!(
            controllers(&layout),
            vec![
                ("blkio", Path::new("/sys/fs/cgroup/blkio")),
                ("cpu", Path::new("/sys/fs/cgroup/cpu")),
                ("cpuacct", Path::new("/sys/fs/cgroup/cpuacct")),
                ("cpuset", Path::new("/sys/fs/cgroup/cpuset")),
                ("devices", Path::new("/sys/fs/cgroup/devices")),
                ("freezer", Path::new("/sys/fs/cgroup/freezer")),
                ("memory", Path::new("/sys/fs/cgroup/memory")),
                ("pids", Path::new("/sys/fs/cgroup/pids")),
            ]
        );
        assert_eq!(
            layout.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(layout.mode(), crate::layout::CgroupMode::V1);
    }

    #[test]
    fn v1_combined_mounts_carry_each_controller() {
        let layout = layout_from_mounts(&parse_mountinfo(V1_ONLY));
        let cpu = Path::new("/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(layout.v1.get("cpu").map(PathBuf::as_path), Some(cpu));
        assert_eq!(layout.v1.get("cpuacct").map(PathBuf::as_path), Some(cpu));
        assert_eq!(
            layout.v1.get("net_prio").map(PathBuf::as_path),
            Some(Path::new("/sys/fs/cgroup/net_cls,net_prio"))
        );
        assert!(!layout.v1.contains_key("name=systemd"));
        assert!(!layout.v1.contains_key("xattr"));
        assert_eq!(layout.v1.len(), 7);
        assert_eq!(layout.unified, None);
    }

    #[test]
    fn first_mount_of_a_controller_wins() {
        let text = format!("{V1_ONLY}90 25 0:40 / /mnt/again rw - cgroup cgroup rw,memory\n");
        let layout = layout_from_mounts(&parse_mountinfo(&text));
        assert_eq!(
            layout.v1.get("memory").map(PathBuf::as_path),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
    }

    #[test]
    fn v2_only_is_unified() {
        let mounts = parse_mountinfo(V2_ONLY);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].fs_type, CgroupFsType::V2);
        let layout = layout_from_mounts(&mounts);
        assert!(layout.v1.is_empty());
        assert_eq!(layout.unified.as_deref(), Some(Path::new("/sys/fs/cgroup")));
        assert_eq!(layout.mode(), crate::layout::CgroupMode::V2);
    }

    #[test]
    fn escaped_mount_points_are_decoded() {
        let text = "50 25 0:40 / /mnt/my\\040cgroups/with\\011tab\\134x rw - cgroup cgroup rw,memory\n\
                    51 25 0:41 / /mnt/odd\\9 rw - cgroup2 cgroup2 rw\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(
            mounts[0].mount_point,
            Path::new("/mnt/my cgroups/with\ttab\\x")
        );
        // Not an octal escape: kept verbatim.
        assert_eq!(mounts[1].mount_point, Path::new("/mnt/odd\\9"));
        assert_eq!(unescape_octal("end\\04"), "end\\04");
    }

    #[test]
    fn malformed_lines_are_skipped_not_fatal() {
        let text = format!("garbage\n1 2 3\n40 31 0:37 / /x rw - cgroup\n{V2_ONLY}");
        let mounts = parse_mountinfo(&text);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_point, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn unified_has_controllers_needs_a_stat_controller() {
        let dir = tempfile::tempdir().unwrap();
        let unified = dir.path().join("unified");
        fs::create_dir(&unified).unwrap();
        let mount = CgroupMount {
            mount_point: unified.clone(),
            fs_type: CgroupFsType::V2,
            controllers: vec![],
        };
        fs::write(unified.join("cgroup.controllers"), "hugetlb\n").unwrap();
        assert!(!layout_from_mounts(std::slice::from_ref(&mount)).unified_has_controllers);
        fs::write(
            unified.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        assert!(layout_from_mounts(std::slice::from_ref(&mount)).unified_has_controllers);
    }

    #[test]
    fn this_machine_is_hybrid() {
        // Real /proc and /sys/fs/cgroup of the test machine (Debian VM with
        // per-controller v1 mounts and systemd's cgroup2 at `unified`).
        let layout = discover_layout(&LayoutOptions::default()).unwrap();
        assert!(layout.v1.contains_key("memory"), "layout: {layout:?}");
        assert!(layout.unified.is_some(), "layout: {layout:?}");
        assert!(!layout.unified_has_controllers, "layout: {layout:?}");
    }

    #[test]
    fn cgroup_root_rebases_listed_mounts() {
        let root = tempfile::tempdir().unwrap();
        let proc_root = tempfile::tempdir().unwrap();
        fs::create_dir_all(proc_root.path().join("self")).unwrap();
        fs::write(proc_root.path().join("self/mountinfo"), V1_ONLY).unwrap();
        for dir in ["cpu,cpuacct", "memory"] {
            fs::create_dir(root.path().join(dir)).unwrap();
        }
        let layout = discover_layout(&LayoutOptions {
            proc_root: proc_root.path().to_path_buf(),
            cgroup_root: Some(root.path().to_path_buf()),
        })
        .unwrap();
        assert_eq!(layout.v1["memory"], root.path().join("memory"));
        assert_eq!(layout.v1["cpuacct"], root.path().join("cpu,cpuacct"));
        // blkio, pids, net_cls are not in the fixture: dropped.
        assert_eq!(layout.v1.len(), 3);
    }

    #[test]
    fn cgroup_root_without_mountinfo_is_detected_from_its_tree() {
        let v1 = tempfile::tempdir().unwrap();
        for dir in ["cpu,cpuacct", "memory", "pids", "systemd", "unified"] {
            fs::create_dir(v1.path().join(dir)).unwrap();
        }
        fs::write(v1.path().join("unified/cgroup.controllers"), "").unwrap();
        let layout = discover_layout(&LayoutOptions {
            proc_root: v1.path().join("no-proc"),
            cgroup_root: Some(v1.path().to_path_buf()),
        })
        .unwrap();
        assert_eq!(layout.v1["cpu"], v1.path().join("cpu,cpuacct"));
        assert_eq!(layout.v1["memory"], v1.path().join("memory"));
        assert!(!layout.v1.contains_key("systemd"));
        assert_eq!(layout.unified, Some(v1.path().join("unified")));
        assert!(!layout.unified_has_controllers);

        let v2 = tempfile::tempdir().unwrap();
        fs::write(v2.path().join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        let layout = detect_from_tree(v2.path());
        assert_eq!(layout.unified.as_deref(), Some(v2.path()));
        assert!(layout.unified_has_controllers);
        assert!(layout.v1.is_empty());
    }

    #[test]
    fn nothing_found_is_an_error_that_says_what_to_do() {
        let empty = tempfile::tempdir().unwrap();
        let err = discover_layout(&LayoutOptions {
            proc_root: empty.path().to_path_buf(),
            cgroup_root: Some(empty.path().to_path_buf()),
        })
        .unwrap_err();
        assert!(err.to_string().contains("cgroup_root"), "{err}");
    }
}
