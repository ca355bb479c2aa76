//! Pod and namespace state from the pod lists the agent already reads
//! (the API server's or the kubelet's, see [`crate::metadata`]), shipped
//! under kube-state-metrics' names:
//!
//! - `kube_pod_container_status_restarts_total{namespace,pod,uid,container}`:
//!   `status.containerStatuses[].restartCount` of every regular container
//!   of the node's pods (a counter, as in kube-state-metrics);
//! - `kube_pod_container_resource_requests` and `..._limits`
//!   `{namespace,pod,uid,container,resource,unit}`: the spec's requests and
//!   limits of regular containers (`resource` with `-`, `.` and `/` made
//!   `_`, e.g. `ephemeral_storage`; `unit` `core`, `byte` or `integer`),
//!   only those set, as kube-state-metrics ships them;
//! - `kube_namespace_created{namespace,uid}`: the creation time of each
//!   namespace with pods on the node, seconds since the epoch. The `uid`
//!   label (Heapster's `namespace_id`) is Osprey's addition to the
//!   kube-state-metrics series; it needs `get` on namespaces, which only
//!   the API server source has;
//! - `kube_node_status_capacity` and `kube_node_status_allocatable`
//!   `{node,resource,unit}`: this node's `status.capacity` and
//!   `status.allocatable` from its `Node` object (API server source only,
//!   `get` on nodes). The `node` label is the one the shipper puts on every
//!   series (the agent's node name, the name the `Node` was read by).
//!
//! The lists are refreshed on their own cadence
//! ([`crate::config::AgentConfig::pod_status_interval`]), never per tick:
//! between refreshes the last state is shipped again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metadata::kubelet_api::KubeletPods;

/// The pod and namespace state of the node's pods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeState {
    /// Restart counts, one entry per regular container of each pod.
    pub restarts: Vec<ContainerRestarts>,
    /// Namespaces of the node's pods whose UID is known.
    pub namespaces: Vec<NamespaceState>,
    /// Requests and limits set in the pods' specs.
    pub resources: Vec<ContainerResource>,
    /// This node's capacity and allocatable resources (empty without the
    /// API server source).
    #[serde(default)]
    pub node: Vec<NodeResource>,
}

/// One capacity or allocatable figure of the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeResource {
    /// kube-state-metrics' resource label (`cpu`, `memory`,
    /// `ephemeral_storage`, `pods` …).
    pub resource: String,
    /// `core`, `byte` or `integer`.
    pub unit: String,
    /// Allocatable (else capacity).
    pub allocatable: bool,
    /// In cores, bytes or units.
    pub value: f64,
}

/// One request or limit of one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerResource {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Pod UID.
    pub uid: String,
    /// Container name.
    pub container: String,
    /// kube-state-metrics' resource label (`cpu`, `memory`,
    /// `ephemeral_storage`, `nvidia_com_gpu` …).
    pub resource: String,
    /// `core`, `byte` or `integer`.
    pub unit: String,
    /// A limit (else a request).
    pub limit: bool,
    /// In cores, bytes or units.
    pub value: f64,
}

/// kube-state-metrics' `resource` and `unit` labels of a resource name.
pub fn resource_labels(name: &str) -> (String, &'static str) {
    let resource: String = name
        .chars()
        .map(|c| if matches!(c, '-' | '.' | '/') { '_' } else { c })
        .collect();
    let unit = match name {
        "cpu" => "core",
        "memory" | "ephemeral-storage" | "storage" => "byte",
        n if n.starts_with("hugepages-") => "byte",
        _ => "integer",
    };
    (resource, unit)
}

/// One container's restart count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRestarts {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Pod UID.
    pub uid: String,
    /// Container name.
    pub container: String,
    /// `restartCount` from the pod's status.
    pub restarts: u64,
}

/// A namespace's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamespaceState {
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// Creation time, seconds since the epoch (0 when unknown).
    pub created_seconds: f64,
}

impl KubeState {
    /// The state the pod lists give; where several lists know a pod (the
    /// kubelet's and the API server's), the first one's figures are kept.
    pub fn from_pod_lists<'a>(lists: impl IntoIterator<Item = &'a KubeletPods>) -> KubeState {
        let mut restarts: BTreeMap<(String, String, String), ContainerRestarts> = BTreeMap::new();
        let mut namespaces: BTreeMap<String, NamespaceState> = BTreeMap::new();
        let mut node: Vec<NodeResource> = Vec::new();
        let mut resources: BTreeMap<(String, String, String, String, bool), ContainerResource> =
            BTreeMap::new();
        for list in lists {
            for (uid, pod) in &list.pods {
                for c in &pod.resources {
                    let kinds = [(false, &c.requests), (true, &c.limits)];
                    for (limit, map) in kinds {
                        for (name, value) in map {
                            let (resource, unit) = resource_labels(name);
                            let key = (
                                pod.namespace.clone(),
                                pod.name.clone(),
                                c.name.clone(),
                                resource.clone(),
                                limit,
                            );
                            resources.entry(key).or_insert_with(|| ContainerResource {
                                namespace: pod.namespace.clone(),
                                pod: pod.name.clone(),
                                uid: uid.clone(),
                                container: c.name.clone(),
                                resource,
                                unit: unit.to_string(),
                                limit,
                                value: *value,
                            });
                        }
                    }
                }
                for (container, count) in &pod.restarts {
                    restarts
                        .entry((pod.namespace.clone(), pod.name.clone(), container.clone()))
                        .or_insert_with(|| ContainerRestarts {
                            namespace: pod.namespace.clone(),
                            pod: pod.name.clone(),
                            uid: uid.clone(),
                            container: container.clone(),
                            restarts: *count,
                        });
                }
            }
            if let (true, Some(n)) = (node.is_empty(), &list.node) {
                for (allocatable, map) in [(false, &n.capacity), (true, &n.allocatable)] {
                    for (name, value) in map {
                        let (resource, unit) = resource_labels(name);
                        node.push(NodeResource {
                            resource,
                            unit: unit.to_string(),
                            allocatable,
                            value: *value,
                        });
                    }
                }
            }
            for (name, ns) in &list.namespaces {
                namespaces
                    .entry(name.clone())
                    .or_insert_with(|| NamespaceState {
                        name: name.clone(),
                        uid: ns.uid.clone(),
                        created_seconds: ns.created_seconds.unwrap_or(0.0),
                    });
            }
        }
        KubeState {
            restarts: restarts.into_values().collect(),
            namespaces: namespaces.into_values().collect(),
            resources: resources.into_values().collect(),
            node,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::kubelet_api::parse_pod_list;

    #[test]
    fn restart_counts_come_from_the_container_statuses() {
        let json = br#"{"kind":"PodList","items":[
          {"metadata":{"name":"web-0","namespace":"shop","uid":"u1"},
           "status":{"containerStatuses":[
              {"name":"nginx","restartCount":3,"containerID":"containerd://aa"},
              {"name":"sidecar","restartCount":0}],
            "initContainerStatuses":[{"name":"init","restartCount":7}]}},
          {"metadata":{"name":"pending","namespace":"shop","uid":"u2"},"status":{}}]}"#;
        let pods = parse_pod_list(json).unwrap();
        let state = KubeState::from_pod_lists([&pods]);
        let got: Vec<(&str, u64)> = state
            .restarts
            .iter()
            .map(|r| (r.container.as_str(), r.restarts))
            .collect();
        // Init containers are not regular containers (kube-state-metrics
        // has a family of their own for them).
        assert_eq!(got, vec![("nginx", 3), ("sidecar", 0)]);
        assert_eq!(state.restarts[0].uid, "u1");
        assert_eq!(state.restarts[0].pod, "web-0");
        assert!(
            state.namespaces.is_empty(),
            "the pod list has no namespaces"
        );
    }
    #[test]
    fn requests_and_limits_come_from_the_spec_in_base_units() {
        let json = br#"{"items":[{"metadata":{"name":"web-0","namespace":"shop","uid":"u1"},
          "spec":{"containers":[{"name":"nginx","resources":{
             "requests":{"cpu":"250m","memory":"64Mi","ephemeral-storage":"1Gi"},
             "limits":{"ephemeral-storage":"2G","nvidia.com/gpu":"1","bogus":"lots"}}},
           {"name":"sidecar"}]}}]}"#;
        let pods = parse_pod_list(json).unwrap();
        let state = KubeState::from_pod_lists([&pods]);
        let got: Vec<(&str, &str, bool, f64)> = state
            .resources
            .iter()
            .map(|r| (r.resource.as_str(), r.unit.as_str(), r.limit, r.value))
            .collect();
        assert_eq!(
            got,
            vec![
                ("cpu", "core", false, 0.25),
                ("ephemeral_storage", "byte", false, 1073741824.0),
                ("ephemeral_storage", "byte", true, 2e9),
                ("memory", "byte", false, 67108864.0),
                ("nvidia_com_gpu", "integer", true, 1.0),
            ]
        );
        assert!(
            state
                .resources
                .iter()
                .all(|r| r.container == "nginx" && r.uid == "u1")
        );
    }

    #[test]
    fn node_capacity_and_allocatable_get_kube_state_metrics_labels() {
        use crate::metadata::kube_api::parse_node;
        let node = parse_node(
            br#"{"status":{"capacity":{"cpu":"4","ephemeral-storage":"100Gi"},"allocatable":{"cpu":"3920m"}}}"#,
        )
        .unwrap();
        let pods = KubeletPods {
            node: Some(node),
            ..Default::default()
        };
        let state = KubeState::from_pod_lists([&KubeletPods::default(), &pods]);
        let got: Vec<(&str, &str, bool, f64)> = state
            .node
            .iter()
            .map(|r| (r.resource.as_str(), r.unit.as_str(), r.allocatable, r.value))
            .collect();
        assert_eq!(
            got,
            vec![
                ("cpu", "core", false, 4.0),
                ("ephemeral_storage", "byte", false, 100.0 * 1024f64.powi(3)),
                ("cpu", "core", true, 3.92),
            ]
        );
    }

    #[test]
    fn quantities_in_every_notation() {
        use crate::metadata::kubelet_api::parse_quantity as q;
        assert_eq!(q("100m"), Some(0.1));
        assert_eq!(q("1.5"), Some(1.5));
        assert_eq!(q("2Ki"), Some(2048.0));
        assert_eq!(q("3M"), Some(3e6));
        assert_eq!(q("1e3"), Some(1000.0));
        assert_eq!(q("12E"), Some(12e18));
        assert_eq!(q("5Gi"), Some(5.0 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(q("ten"), None);
        assert_eq!(q("1Qi"), None);
    }
}
