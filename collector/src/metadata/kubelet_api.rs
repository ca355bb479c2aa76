//! The kubelet's read-only pod list (`GET /pods`, a `PodList`), for pod
//! labels and for names the node's files do not give. Fetched on demand,
//! at most every [`super::MetadataConfig::kubelet_min_interval`], never
//! per tick.
//!
//! The client is blocking: call it from the collection thread, not from
//! inside an async runtime.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::MetadataError;

/// A pod as the kubelet lists it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KubeletPod {
    /// Pod name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Pod labels.
    pub labels: BTreeMap<String, String>,
    /// Restart count of each regular container (`status.containerStatuses[]
    /// .restartCount`), by container name, in the status' order.
    pub restarts: Vec<(String, u64)>,
    /// Requests and limits of each regular container, in the spec's order.
    pub resources: Vec<ContainerResources>,
}

/// A namespace as the API server describes it (`GET
/// /api/v1/namespaces/<name>`); the kubelet's pod list has none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespaceInfo {
    /// The namespace's UID (Heapster's `namespace_id`).
    pub uid: String,
    /// `metadata.creationTimestamp`, seconds since the epoch.
    pub created_seconds: Option<f64>,
}

/// A container as the kubelet's pod statuses list it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeletContainer {
    /// The pod's uid.
    pub pod_uid: String,
    /// The container's name.
    pub name: String,
    /// The image as the kubelet reports it.
    pub image: String,
}

/// One fetched pod list, indexed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KubeletPods {
    /// Pods by uid.
    pub pods: HashMap<String, KubeletPod>,
    /// Containers (regular, init and ephemeral) by 64-hex id. Sandboxes
    /// are never listed.
    pub containers: HashMap<String, KubeletContainer>,
    /// The pods' namespaces by name, when the source can describe them
    /// (the API server; not the kubelet).
    pub namespaces: HashMap<String, NamespaceInfo>,
    /// This node's capacity and allocatable resources, when the source can
    /// read the `Node` object (the API server; not the kubelet).
    pub node: Option<NodeResources>,
}

/// A node's `status.capacity` and `status.allocatable` (`GET
/// /api/v1/nodes/<name>`), as numbers: CPU in cores, memory and storage
/// in bytes, by Kubernetes resource name (`cpu`, `ephemeral-storage` …).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeResources {
    /// `status.capacity`.
    pub capacity: BTreeMap<String, f64>,
    /// `status.allocatable`.
    pub allocatable: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
struct PodList {
    #[serde(default)]
    items: Vec<Pod>,
}

#[derive(Deserialize)]
struct Pod {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: PodSpec,
    #[serde(default)]
    status: PodStatus,
}

#[derive(Deserialize, Default)]
struct PodSpec {
    #[serde(default)]
    containers: Vec<ContainerSpec>,
}

#[derive(Deserialize, Default)]
struct ContainerSpec {
    #[serde(default)]
    name: String,
    #[serde(default)]
    resources: Resources,
}

#[derive(Deserialize, Default)]
struct Resources {
    #[serde(default)]
    requests: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    limits: BTreeMap<String, serde_json::Value>,
}

/// A regular container's resource requests and limits from the pod spec,
/// as numbers (CPU in cores, memory and storage in bytes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerResources {
    /// Container name.
    pub name: String,
    /// `resources.requests`, by resource name (`ephemeral-storage` …).
    pub requests: BTreeMap<String, f64>,
    /// `resources.limits`.
    pub limits: BTreeMap<String, f64>,
}

/// The value of a Kubernetes resource quantity (`100m`, `1Gi`, `1.5`,
/// `2e3`, `512Mi` …); `None` when it is not one.
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * factor)
}

/// Quantities of a requests/limits map (strings, or plain numbers as some
/// clients write them); unparsable ones are left out.
pub(crate) fn quantities(map: BTreeMap<String, serde_json::Value>) -> BTreeMap<String, f64> {
    map.into_iter()
        .filter_map(|(k, v)| {
            let n = match v {
                serde_json::Value::String(s) => parse_quantity(&s)?,
                serde_json::Value::Number(n) => n.as_f64()?,
                _ => return None,
            };
            Some((k, n))
        })
        .collect()
}

#[derive(Deserialize, Default)]
struct ObjectMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodStatus {
    #[serde(default)]
    container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    init_container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    ephemeral_container_statuses: Vec<ContainerStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerStatus {
    #[serde(default)]
    name: String,
    #[serde(default)]
    image: String,
    /// `<runtime>://<id>`; absent while the container is being created.
    /// (Kubernetes spells it `containerID`, not camel case.)
    #[serde(default, rename = "containerID")]
    container_id: Option<String>,
    /// How often the kubelet restarted the container (0 when absent).
    #[serde(default)]
    restart_count: u64,
}

/// Parses a `PodList` JSON document.
pub fn parse_pod_list(json: &[u8]) -> Result<KubeletPods, serde_json::Error> {
    let list: PodList = serde_json::from_slice(json)?;
    let mut out = KubeletPods::default();
    for pod in list.items {
        let uid = pod.metadata.uid;
        if uid.is_empty() {
            continue;
        }
        let status = pod.status;
        let restarts = status
            .container_statuses
            .iter()
            .map(|c| (c.name.clone(), c.restart_count))
            .collect();
        for c in status
            .container_statuses
            .into_iter()
            .chain(status.init_container_statuses)
            .chain(status.ephemeral_container_statuses)
        {
            let Some(id) = c
                .container_id
                .as_deref()
                .and_then(|id| id.split_once("://"))
                .map(|(_, id)| id.to_owned())
            else {
                continue;
            };
            out.containers.insert(
                id,
                KubeletContainer {
                    pod_uid: uid.clone(),
                    name: c.name,
                    image: c.image,
                },
            );
        }
        out.pods.insert(
            uid,
            KubeletPod {
                name: pod.metadata.name,
                namespace: pod.metadata.namespace,
                labels: pod.metadata.labels.unwrap_or_default(),
                restarts,
                resources: pod
                    .spec
                    .containers
                    .into_iter()
                    .map(|c| ContainerResources {
                        name: c.name,
                        requests: quantities(c.resources.requests),
                        limits: quantities(c.resources.limits),
                    })
                    .collect(),
            },
        );
    }
    Ok(out)
}

/// A pod list the metadata cache can ask on a miss: the kubelet's
/// read-only `/pods` or the API server's list for this node
/// ([`super::kube_api`]).
pub trait PodSource: Send {
    /// The last pod list fetched (empty before the first fetch).
    fn snapshot(&self) -> &KubeletPods;
    /// Fetches the list again unless the last attempt is younger than the
    /// minimum interval. On failure the previous list is kept. Returns
    /// whether a fetch was attempted.
    fn refresh_if_due(&mut self) -> Result<bool, MetadataError>;
    /// What the source is, for logs.
    fn describe(&self) -> String;
}

/// The kubelet pod list, fetched lazily and rate-limited.
pub struct KubeletPodSource {
    url: String,
    client: reqwest::blocking::Client,
    min_interval: Duration,
    last_fetch: Option<Instant>,
    snapshot: KubeletPods,
}

impl KubeletPodSource {
    /// A source for `url` (e.g. `http://127.0.0.1:10255/pods`); nothing is
    /// fetched yet.
    pub fn new(
        url: String,
        timeout: Duration,
        min_interval: Duration,
    ) -> Result<Self, MetadataError> {
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| MetadataError::Kubelet {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            url,
            client,
            min_interval,
            last_fetch: None,
            snapshot: KubeletPods::default(),
        })
    }

    fn fetch(&self) -> Result<KubeletPods, MetadataError> {
        let error = |reason: String| MetadataError::Kubelet {
            url: self.url.clone(),
            reason,
        };
        let response = self
            .client
            .get(&self.url)
            .send()
            .and_then(|r| r.error_for_status())
            .map_err(|e| error(e.to_string()))?;
        let body = response.bytes().map_err(|e| error(e.to_string()))?;
        parse_pod_list(&body).map_err(|e| error(format!("not a PodList: {e}")))
    }
}

impl PodSource for KubeletPodSource {
    fn snapshot(&self) -> &KubeletPods {
        &self.snapshot
    }

    fn refresh_if_due(&mut self) -> Result<bool, MetadataError> {
        if self
            .last_fetch
            .is_some_and(|t| t.elapsed() < self.min_interval)
        {
            return Ok(false);
        }
        // Counted as an attempt even when it fails: a dead kubelet must not
        // be asked again on every lookup.
        self.last_fetch = Some(Instant::now());
        self.snapshot = self.fetch()?;
        Ok(true)
    }

    fn describe(&self) -> String {
        format!("kubelet ({})", self.url)
    }
}
