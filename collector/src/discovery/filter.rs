//! Which discovered cgroups are reported.

use serde::Deserialize;

use super::path::CgroupPath;
use super::runtime::{CgroupKind, identify};

/// Narrows the cgroups [`super::Discovery`] reports. The default reports
/// every cgroup, as cAdvisor does. The root `/` is always reported: it
/// carries the machine totals.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoveryFilter {
    /// Report only containers, pods and QoS-class cgroups (plus the
    /// root); drop systemd units and plain cgroups. Like cAdvisor's
    /// `--docker_only`, extended to every runtime and to Kubernetes.
    pub containers_only: bool,
    /// When non-empty, report only cgroups at or below one of these
    /// paths (e.g. `/kubepods.slice`, `/docker`), plus the root. Like
    /// cAdvisor's `--raw_cgroup_prefix_whitelist`, but matched on whole
    /// path components.
    pub subtrees: Vec<String>,
}

impl DiscoveryFilter {
    /// Whether the cgroup at `path` is reported.
    pub fn accepts(&self, path: &CgroupPath) -> bool {
        if path.is_root() {
            return true;
        }
        if !self.subtrees.is_empty()
            && !self
                .subtrees
                .iter()
                .any(|s| path.starts_with(&CgroupPath::new(s)))
        {
            return false;
        }
        if self.containers_only {
            return matches!(
                identify(path.as_str()).kind,
                CgroupKind::Container | CgroupKind::Pod | CgroupKind::QosClass
            );
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f2a5e4d2f1b0e3c7d9a8b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e";

    #[test]
    fn default_accepts_everything() {
        let f = DiscoveryFilter::default();
        for p in ["/", "/system.slice/ssh.service", "/anything/at/all"] {
            assert!(f.accepts(&CgroupPath::new(p)), "{p}");
        }
    }

    #[test]
    fn containers_only_keeps_root_containers_and_pods() {
        let f = DiscoveryFilter {
            containers_only: true,
            ..Default::default()
        };
        assert!(f.accepts(&CgroupPath::root()));
        assert!(f.accepts(&CgroupPath::new(&format!("/docker/{ID}"))));
        assert!(f.accepts(&CgroupPath::new("/kubepods/burstable")));
        assert!(!f.accepts(&CgroupPath::new("/system.slice/ssh.service")));
        assert!(!f.accepts(&CgroupPath::new("/docker")));
    }

    #[test]
    fn subtrees_match_whole_components() {
        let f = DiscoveryFilter {
            subtrees: vec!["/docker".into(), "kubepods.slice/".into()],
            ..Default::default()
        };
        assert!(f.accepts(&CgroupPath::root()));
        assert!(f.accepts(&CgroupPath::new("/docker")));
        assert!(f.accepts(&CgroupPath::new("/docker/x")));
        assert!(f.accepts(&CgroupPath::new("/kubepods.slice/a")));
        assert!(!f.accepts(&CgroupPath::new("/dockerd")));
        assert!(!f.accepts(&CgroupPath::new("/system.slice")));
    }
}
