//! Heapster's entity model built from the labels of the stored cAdvisor
//! series: nodes (a node's root cgroup `id="/"`), system ("free")
//! containers (the node's other cgroups outside any pod), namespaces, pods
//! (`namespace`, `pod`) and pod containers (`namespace`, `pod`,
//! `container`), with the labels Heapster attaches to each (§12).

use std::collections::{BTreeMap, BTreeSet};

use crate::storage::{Labels, Matcher, Storage, StorageError};

/// The series every cgroup ships on every collection: its start time. Its
/// presence in a window is what makes an entity exist in that window.
pub const PRESENCE_METRIC: &str = "container_start_time_seconds";

/// A machine fact shipped once per node, carrying the host identifiers.
pub const MACHINE_METRIC: &str = "machine_cpu_cores";

/// kube-state-metrics' namespace series; the Osprey agent adds the
/// namespace's `uid` label (Heapster's `namespace_id`).
pub const NAMESPACE_METRIC: &str = "kube_namespace_created";

/// One thing Heapster keeps metrics for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entity {
    /// The whole cluster.
    Cluster,
    /// A node, by name.
    Node {
        /// The node name (`node` label).
        node: String,
    },
    /// A cgroup of a node outside any pod (systemd unit, plain cgroup,
    /// container not in a pod).
    FreeContainer {
        /// The node.
        node: String,
        /// Its name (see [`free_container_name`]).
        name: String,
    },
    /// A namespace.
    Namespace {
        /// The namespace name.
        namespace: String,
    },
    /// A pod.
    Pod {
        /// Its namespace.
        namespace: String,
        /// The pod name.
        pod: String,
    },
    /// A container of a pod.
    PodContainer {
        /// Its namespace.
        namespace: String,
        /// Its pod.
        pod: String,
        /// The container name within the pod.
        container: String,
    },
}

impl Entity {
    /// Heapster's metric-set key (`node:n1/container:kubelet`, …), as
    /// `debug/allkeys` lists them.
    pub fn key(&self) -> String {
        match self {
            Entity::Cluster => "cluster".into(),
            Entity::Node { node } => format!("node:{node}"),
            Entity::FreeContainer { node, name } => format!("node:{node}/container:{name}"),
            Entity::Namespace { namespace } => format!("namespace:{namespace}"),
            Entity::Pod { namespace, pod } => format!("namespace:{namespace}/pod:{pod}"),
            Entity::PodContainer {
                namespace,
                pod,
                container,
            } => format!("namespace:{namespace}/pod:{pod}/container:{container}"),
        }
    }
}

/// What a cgroup series is, from its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupRole {
    /// The node's root cgroup: node totals.
    NodeRoot,
    /// A container of a pod.
    PodContainer,
    /// A pod-level cgroup without a container name (sandbox, pod slice).
    PodLevel,
    /// A cgroup of the Kubernetes hierarchy with no pod identity (QoS
    /// slices, pods whose metadata is unknown): belongs to no entity.
    KubeHierarchy,
    /// A system container.
    Free,
}

/// Classifies a series by its `id`, `pod` and `container` labels.
pub fn role(labels: &Labels) -> CgroupRole {
    let id = labels.get("id").unwrap_or("");
    let has = |k: &str| labels.get(k).is_some_and(|v| !v.is_empty());
    if id == "/" {
        CgroupRole::NodeRoot
    } else if has("pod") && has("namespace") {
        if has("container") {
            CgroupRole::PodContainer
        } else {
            CgroupRole::PodLevel
        }
    } else if id.split('/').any(|c| c.starts_with("kubepods")) {
        CgroupRole::KubeHierarchy
    } else {
        CgroupRole::Free
    }
}

/// The name a system container is listed under: its `name` label, else the
/// last element of its cgroup path (`/system.slice/docker.service` →
/// `docker.service`).
pub fn free_container_name(labels: &Labels) -> String {
    if let Some(n) = labels.get("name").filter(|n| !n.is_empty()) {
        return n.to_string();
    }
    let id = labels.get("id").unwrap_or("");
    id.rsplit('/')
        .find(|c| !c.is_empty())
        .unwrap_or(id)
        .to_string()
}

/// The pod UID from a cgroup path: `pod<uid>` (cgroupfs) or
/// `kubepods-<qos>-pod<uid_with_underscores>.slice` (systemd).
pub fn pod_uid(cgroup: &str) -> Option<String> {
    cgroup.split('/').find_map(|c| {
        let uid = match c.strip_suffix(".slice") {
            Some(slice) => &slice[slice.rfind("-pod")? + 4..],
            None => c.strip_prefix("pod")?,
        };
        (uid.len() >= 32
            && uid
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_'))
        .then(|| uid.replace('_', "-"))
    })
}

/// Heapster's `labels` label: the shipped `container_label_*` labels as
/// sorted `key:value` pairs joined by commas (runtime bookkeeping labels
/// `io_kubernetes_*`, `io_cri_*`, `annotation_*` left out).
pub fn user_labels(labels: &Labels) -> String {
    let mut pairs: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("container_label_")?;
            let bookkeeping = ["io_kubernetes", "io_cri", "annotation_", "io_containerd"]
                .iter()
                .any(|p| key.starts_with(p));
            (!bookkeeping && !v.is_empty()).then(|| format!("{key}:{v}"))
        })
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// One cgroup seen in the window, with what the model needs of its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// The node it runs on.
    pub node: String,
    /// Its cgroup path.
    pub id: String,
    /// What it is.
    pub role: CgroupRole,
    /// The system-container name (free containers only).
    pub free_name: String,
    /// Kubernetes namespace, pod and container name (empty when none).
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name within the pod.
    pub container: String,
    /// Image.
    pub image: String,
    /// Heapster's `labels` value.
    pub user_labels: String,
}

impl Cgroup {
    /// Reads a presence series' labels.
    pub fn from_labels(labels: &Labels) -> Cgroup {
        let get = |k: &str| labels.get(k).unwrap_or("").to_string();
        let role = role(labels);
        Cgroup {
            node: get("node"),
            id: get("id"),
            free_name: if role == CgroupRole::Free {
                free_container_name(labels)
            } else {
                String::new()
            },
            role,
            namespace: get("namespace"),
            pod: get("pod"),
            container: get("container"),
            image: get("image"),
            user_labels: user_labels(labels),
        }
    }
}

/// Every entity present in a window, found from the presence series.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// The cgroups, sorted by node then path.
    pub cgroups: Vec<Cgroup>,
    /// Host identifier per node (`system_uuid`, else `machine_id`).
    pub host_ids: BTreeMap<String, String>,
    /// Namespace UID per namespace name, from [`NAMESPACE_METRIC`].
    pub namespace_ids: BTreeMap<String, String>,
    /// Indices into `cgroups` of each pod's cgroups, by (namespace, pod).
    by_pod: BTreeMap<(String, String), Vec<usize>>,
    /// Indices into `cgroups` of each system container, by (node, name).
    by_free: BTreeMap<(String, String), Vec<usize>>,
    /// When each namespace's UID was last reported.
    namespace_seen: BTreeMap<String, i64>,
}

impl Inventory {
    /// Loads the cgroups and machines that reported in `[start_ms, end_ms]`.
    pub fn load(storage: &Storage, start_ms: i64, end_ms: i64) -> Result<Inventory, StorageError> {
        let mut labels = Vec::new();
        for s in storage.select(
            &[Matcher::eq("__name__", PRESENCE_METRIC)],
            start_ms,
            end_ms,
        )? {
            let s = s?;
            if !s.samples.is_empty() {
                labels.push(s.labels);
            }
        }
        let mut inv = Inventory::from_labels(labels.iter());
        for s in storage.select(&[Matcher::eq("__name__", MACHINE_METRIC)], start_ms, end_ms)? {
            let s = s?;
            if s.samples.is_empty() {
                continue;
            }
            if let Some(node) = s.labels.get("node") {
                let id = s
                    .labels
                    .get("system_uuid")
                    .filter(|v| !v.is_empty())
                    .or_else(|| s.labels.get("machine_id"))
                    .unwrap_or("");
                inv.host_ids.insert(node.to_string(), id.to_string());
            }
        }
        for s in storage.select(
            &[Matcher::eq("__name__", NAMESPACE_METRIC)],
            start_ms,
            end_ms,
        )? {
            let s = s?;
            if let (Some(ns), Some(uid), Some(last)) = (
                s.labels.get("namespace"),
                s.labels.get("uid").filter(|u| !u.is_empty()),
                s.samples.last(),
            ) {
                // A namespace re-created under the same name: the newest
                // UID wins.
                let newest = inv.namespace_seen.get(ns).is_none_or(|&t| t <= last.t);
                if newest {
                    inv.namespace_seen.insert(ns.to_string(), last.t);
                    inv.namespace_ids.insert(ns.to_string(), uid.to_string());
                }
            }
        }
        Ok(inv)
    }

    /// An inventory of the given presence-series labels.
    pub fn from_labels<'a>(labels: impl Iterator<Item = &'a Labels>) -> Inventory {
        let mut cgroups: Vec<Cgroup> = labels
            .map(Cgroup::from_labels)
            .filter(|c| !c.node.is_empty() || c.role == CgroupRole::PodContainer)
            .collect();
        cgroups.sort_by(|a, b| (&a.node, &a.id).cmp(&(&b.node, &b.id)));
        let mut by_pod: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
        let mut by_free: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
        for (i, c) in cgroups.iter().enumerate() {
            if Self::in_pod(c) {
                by_pod
                    .entry((c.namespace.clone(), c.pod.clone()))
                    .or_default()
                    .push(i);
            } else if c.role == CgroupRole::Free {
                by_free
                    .entry((c.node.clone(), c.free_name.clone()))
                    .or_default()
                    .push(i);
            }
        }
        Inventory {
            cgroups,
            host_ids: BTreeMap::new(),
            namespace_ids: BTreeMap::new(),
            by_pod,
            by_free,
            namespace_seen: BTreeMap::new(),
        }
    }

    /// The cgroups of a pod.
    fn pod_cgroups(&self, namespace: &str, pod: &str) -> impl Iterator<Item = &Cgroup> {
        self.by_pod
            .get(&(namespace.to_string(), pod.to_string()))
            .into_iter()
            .flatten()
            .map(|&i| &self.cgroups[i])
    }

    /// Node names (nodes whose root cgroup reported).
    pub fn nodes(&self) -> Vec<String> {
        self.set(|c| (c.role == CgroupRole::NodeRoot).then(|| c.node.clone()))
    }

    /// System-container names of a node.
    pub fn free_containers(&self, node: &str) -> Vec<String> {
        self.by_free
            .keys()
            .filter(|(n, _)| n == node)
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// The cgroup paths a system container name stands for on a node
    /// (several when a container was recreated under a new path).
    pub fn free_container_ids(&self, node: &str, name: &str) -> Vec<String> {
        self.by_free
            .get(&(node.to_string(), name.to_string()))
            .into_iter()
            .flatten()
            .map(|&i| self.cgroups[i].id.clone())
            .collect()
    }

    /// Namespaces with at least one pod.
    pub fn namespaces(&self) -> Vec<String> {
        let mut out: Vec<String> = self.by_pod.keys().map(|(ns, _)| ns.clone()).collect();
        out.dedup();
        out
    }

    /// Pod names of a namespace.
    pub fn pods(&self, namespace: &str) -> Vec<String> {
        self.by_pod
            .keys()
            .filter(|(ns, _)| ns == namespace)
            .map(|(_, pod)| pod.clone())
            .collect()
    }

    /// Container names of a pod.
    pub fn containers(&self, namespace: &str, pod: &str) -> Vec<String> {
        let set: BTreeSet<String> = self
            .pod_cgroups(namespace, pod)
            .filter(|c| c.role == CgroupRole::PodContainer)
            .map(|c| c.container.clone())
            .collect();
        set.into_iter().collect()
    }

    /// Every entity: cluster, nodes and their system containers,
    /// namespaces, pods and pod containers.
    pub fn entities(&self) -> Vec<Entity> {
        let mut out = vec![Entity::Cluster];
        for node in self.nodes() {
            for name in self.free_containers(&node) {
                out.push(Entity::FreeContainer {
                    node: node.clone(),
                    name,
                });
            }
            out.push(Entity::Node { node });
        }
        for namespace in self.namespaces() {
            for pod in self.pods(&namespace) {
                for container in self.containers(&namespace, &pod) {
                    out.push(Entity::PodContainer {
                        namespace: namespace.clone(),
                        pod: pod.clone(),
                        container,
                    });
                }
                out.push(Entity::Pod {
                    namespace: namespace.clone(),
                    pod,
                });
            }
            out.push(Entity::Namespace { namespace });
        }
        out
    }

    /// Heapster's labels of an entity as `metric-export` shows them:
    /// `nodename`, `hostname`, `host_id`, `container_name` (`machine` for
    /// nodes, `/pod` for pods), `container_base_image`, `pod_name`,
    /// `pod_id`, `namespace_id` (when the agent read the namespace from the
    /// API server), `labels` (empty values left out).
    pub fn export_labels(&self, entity: &Entity) -> BTreeMap<&'static str, String> {
        let mut out = BTreeMap::new();
        let node_labels = |out: &mut BTreeMap<&'static str, String>, node: &str| {
            out.insert("nodename", node.to_string());
            out.insert("hostname", node.to_string());
            if let Some(id) = self.host_ids.get(node) {
                out.insert("host_id", id.clone());
            }
        };
        match entity {
            Entity::Node { node } => {
                node_labels(&mut out, node);
                out.insert("container_name", "machine".into());
            }
            Entity::FreeContainer { node, name } => {
                node_labels(&mut out, node);
                out.insert("container_name", name.clone());
                if let Some(c) = self
                    .by_free
                    .get(&(node.clone(), name.clone()))
                    .and_then(|ix| ix.last())
                    .map(|&i| &self.cgroups[i])
                {
                    out.insert("container_base_image", c.image.clone());
                }
            }
            Entity::Pod { namespace, pod } => {
                let members: Vec<&Cgroup> = self.pod_cgroups(namespace, pod).collect();
                if let Some(c) = members.last() {
                    node_labels(&mut out, &c.node);
                }
                out.insert("container_name", "/pod".into());
                Self::pod_labels(&mut out, pod, &members);
                self.namespace_label(&mut out, namespace);
            }
            Entity::PodContainer {
                namespace,
                pod,
                container,
            } => {
                let members: Vec<&Cgroup> = self.pod_cgroups(namespace, pod).collect();
                if let Some(c) = members.iter().rev().find(|c| &c.container == container) {
                    node_labels(&mut out, &c.node);
                    out.insert("container_base_image", c.image.clone());
                }
                out.insert("container_name", container.clone());
                Self::pod_labels(&mut out, pod, &members);
                self.namespace_label(&mut out, namespace);
            }
            Entity::Cluster | Entity::Namespace { .. } => {}
        }
        out.retain(|_, v| !v.is_empty());
        out
    }

    fn pod_labels(out: &mut BTreeMap<&'static str, String>, pod: &str, members: &[&Cgroup]) {
        out.insert("pod_name", pod.to_string());
        if let Some(uid) = members.iter().find_map(|c| pod_uid(&c.id)) {
            out.insert("pod_id", uid);
        }
        if let Some(l) = members
            .iter()
            .map(|c| &c.user_labels)
            .find(|l| !l.is_empty())
        {
            out.insert("labels", l.clone());
        }
    }

    fn namespace_label(&self, out: &mut BTreeMap<&'static str, String>, namespace: &str) {
        if let Some(uid) = self.namespace_ids.get(namespace) {
            out.insert("namespace_id", uid.clone());
        }
    }

    fn in_pod(c: &Cgroup) -> bool {
        matches!(c.role, CgroupRole::PodContainer | CgroupRole::PodLevel)
    }

    fn set(&self, f: impl FnMut(&Cgroup) -> Option<String>) -> Vec<String> {
        let set: BTreeSet<String> = self.cgroups.iter().filter_map(f).collect();
        set.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn roles_from_labels() {
        assert_eq!(
            role(&l(&[("id", "/"), ("node", "n")])),
            CgroupRole::NodeRoot
        );
        let c = l(&[
            ("id", "/kubepods/pod1/abc"),
            ("namespace", "ns"),
            ("pod", "p"),
            ("container", "c"),
        ]);
        assert_eq!(role(&c), CgroupRole::PodContainer);
        let sandbox = l(&[
            ("id", "/kubepods/pod1/def"),
            ("namespace", "ns"),
            ("pod", "p"),
        ]);
        assert_eq!(role(&sandbox), CgroupRole::PodLevel);
        assert_eq!(
            role(&l(&[("id", "/kubepods/burstable")])),
            CgroupRole::KubeHierarchy
        );
        let unit = l(&[("id", "/system.slice/docker.service")]);
        assert_eq!(role(&unit), CgroupRole::Free);
        assert_eq!(free_container_name(&unit), "docker.service");
        let named = l(&[("id", "/docker/0123"), ("name", "registry")]);
        assert_eq!(free_container_name(&named), "registry");
    }

    #[test]
    fn pod_uids_from_both_cgroup_drivers() {
        let uid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        assert_eq!(
            pod_uid(&format!("/kubepods/burstable/pod{uid}/abc")),
            Some(uid.into())
        );
        let systemd = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-x.scope",
            uid.replace('-', "_")
        );
        assert_eq!(pod_uid(&systemd), Some(uid.into()));
        assert_eq!(pod_uid("/system.slice/podman.service"), None);
    }

    #[test]
    fn user_labels_are_sorted_pairs_without_runtime_bookkeeping() {
        let labels = l(&[
            ("container_label_tier", "web"),
            ("container_label_app", "shop"),
            ("container_label_io_kubernetes_pod_name", "p"),
            ("id", "/x"),
        ]);
        assert_eq!(user_labels(&labels), "app:shop,tier:web");
    }
}
