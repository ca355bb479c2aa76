//! Where the cgroup hierarchies are mounted on this node.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Which cgroup interface the agent reads statistics from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// Per-controller v1 hierarchies (also the "hybrid" layout, where a
    /// controller-less v2 hierarchy sits beside them for systemd).
    V1,
    /// The unified v2 hierarchy holds the controllers.
    V2,
}

/// The cgroup mounts found in `/proc/self/mountinfo`, rebased under the
/// configured cgroup root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupLayout {
    /// Mount point of the unified (v2) hierarchy, if any.
    pub unified: Option<PathBuf>,
    /// Whether the unified hierarchy carries controllers (pure v2) rather
    /// than being systemd's controller-less tracking tree (hybrid).
    pub unified_has_controllers: bool,
    /// v1 controller name (`cpu`, `cpuacct`, `memory`, `blkio`, `pids`,
    /// `cpuset`, …) to its mount point. When two mounts carry a
    /// controller the first one wins, as in cAdvisor.
    pub v1: BTreeMap<String, PathBuf>,
}

impl CgroupLayout {
    /// The interface statistics are read from: v1 whenever the CPU or
    /// memory controller is mounted as v1, otherwise v2.
    pub fn mode(&self) -> CgroupMode {
        if self.v1.contains_key("memory") || self.v1.contains_key("cpuacct") {
            CgroupMode::V1
        } else {
            CgroupMode::V2
        }
    }

    /// The directory of cgroup `path` (e.g. `/docker/abc`, `/` for the root)
    /// in the v1 hierarchy of `controller`.
    pub fn v1_dir(&self, controller: &str, path: &str) -> Option<PathBuf> {
        self.v1.get(controller).map(|m| join_cgroup(m, path))
    }

    /// The directory of cgroup `path` in the unified hierarchy.
    pub fn v2_dir(&self, path: &str) -> Option<PathBuf> {
        self.unified.as_ref().map(|m| join_cgroup(m, path))
    }
}

/// Joins a cgroup path (absolute within its hierarchy) onto a mount point.
pub fn join_cgroup(mount: &std::path::Path, path: &str) -> PathBuf {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        mount.to_path_buf()
    } else {
        mount.join(rel)
    }
}
