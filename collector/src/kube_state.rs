//! Pod and namespace state from the pod lists the agent already reads
//! (the API server's or the kubelet's, see [`crate::metadata`]), shipped
//! under kube-state-metrics' names:
//!
//! - `kube_pod_container_status_restarts_total{namespace,pod,uid,container}`:
//!   `status.containerStatuses[].restartCount` of every regular container
//!   of the node's pods (a counter, as in kube-state-metrics);
//! - `kube_namespace_created{namespace,uid}`: the creation time of each
//!   namespace with pods on the node, seconds since the epoch. The `uid`
//!   label (Heapster's `namespace_id`) is Osprey's addition to the
//!   kube-state-metrics series; it needs `get` on namespaces, which only
//!   the API server source has.
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
        for list in lists {
            for (uid, pod) in &list.pods {
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
}
