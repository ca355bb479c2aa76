//! What one tick produced for the whole node: the unit the HTTP API, the
//! Prometheus exposition and the shipper read.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::kube_state::KubeState;
use crate::machine::MachineInfo;
use crate::stats::{ContainerSpec, ContainerStats, FilesystemStats};

/// The result of one collection cycle.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// When the cycle started, ms since the epoch.
    pub timestamp_ms: i64,
    /// Facts about the node.
    pub machine: Arc<MachineInfo>,
    /// The node's filesystems (statvfs), refreshed on the slow cadence.
    pub node_filesystems: Arc<Vec<FilesystemStats>>,
    /// The filesystem holding the kubelet's root directory (the node's
    /// ephemeral storage), refreshed on the filesystem cadence; `None`
    /// when it cannot be `statvfs`'d.
    #[serde(default)]
    pub kubelet_filesystem: Option<Arc<FilesystemStats>>,
    /// One entry per cgroup that could be read this tick.
    pub containers: Vec<ContainerSample>,
    /// Pod status from the pod list (restart counts, namespace UIDs),
    /// refreshed on its own cadence; empty without a pod source.
    #[serde(default)]
    pub kube: Arc<KubeState>,
    /// Each cgroup's 10 s CPU load average in milliloads, by cgroup path
    /// (sorted); empty unless `cpu_load` is on ([`crate::load`]).
    #[serde(default)]
    pub cpu_load: Vec<(String, f64)>,
    /// Bytes of each pod container's kubelet log files, by cgroup path
    /// (sorted), measured on the filesystem cadence.
    #[serde(default)]
    pub log_usage: Arc<Vec<(String, u64)>>,
}

/// One cgroup's identity and its sample of this tick.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSample {
    /// Identity, names and limits; shared between ticks (changes only on
    /// discovery events and spec refreshes).
    pub info: Arc<ContainerInfo>,
    /// The figures read this tick.
    pub stats: ContainerStats,
}

/// A cgroup as operators name it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// The cgroup path, cAdvisor's `id` label (`/`, `/docker/<id>`, …).
    pub id: String,
    /// Human name: container name, systemd unit, or the path (`name` label).
    pub name: String,
    /// What the cgroup is: `root`, `container`, `pod`, `qos`, `systemd`, `raw`.
    pub kind: String,
    /// Container runtime, when recognised (`docker`, `containerd`, `crio`, `podman`).
    pub runtime: Option<String>,
    /// Runtime container id (64 hex), when the cgroup is a container.
    pub container_id: Option<String>,
    /// Image reference.
    pub image: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// Kubernetes pod name.
    pub pod: String,
    /// Kubernetes pod UID.
    pub pod_uid: String,
    /// Container name within its pod.
    pub container: String,
    /// Runtime and pod labels.
    pub labels: BTreeMap<String, String>,
    /// The pod's QoS class (`guaranteed`, `burstable`, `besteffort`),
    /// from the kubelet's cgroup layout. A field rather than a label: a
    /// map holding one entry took ~600 bytes for each of thousands of pod
    /// cgroups. [`ContainerInfo::label`] answers for it as `qos_class`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_class: Option<String>,
    /// Limits and shares.
    pub spec: ContainerSpec,
    /// Creation time of the cgroup, seconds since the epoch.
    pub creation_time_seconds: f64,
}

impl ContainerInfo {
    /// The runtime or pod label `key`; `qos_class` is the pod's QoS
    /// class unless a label of that name exists.
    pub fn label(&self, key: &str) -> Option<&str> {
        match self.labels.get(key) {
            Some(v) => Some(v),
            None if key == "qos_class" => self.qos_class.as_deref(),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qos_class_answers_as_a_label_unless_one_has_its_name() {
        let mut info = ContainerInfo {
            qos_class: Some("burstable".into()),
            ..Default::default()
        };
        assert_eq!(info.label("qos_class"), Some("burstable"));
        assert_eq!(info.label("app"), None);
        info.labels
            .insert("qos_class".into(), "set-by-runtime".into());
        assert_eq!(info.label("qos_class"), Some("set-by-runtime"));
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["qos_class"], "burstable");
        info.qos_class = None;
        let json = serde_json::to_value(&info).unwrap();
        assert!(json.get("qos_class").is_none(), "left out when unknown");
    }
}
