//! Names a cgroup (container name, image, Kubernetes pod and namespace,
//! labels, init pid) from what the node keeps on disk, with no network
//! call per tick.
//!
//! Sources, tried in this order for a container id:
//! 1. Docker's `config.v2.json` and `hostconfig.json` ([`docker`]);
//! 2. containerd's / CRI-O's OCI bundle annotations and pid file ([`oci`]);
//! 3. the kubelet's log directories ([`kubelet_logs`]) for pod, namespace
//!    and container names still missing;
//! 4. optionally the kubelet's read-only `/pods` endpoint
//!    ([`kubelet_api`]), fetched at most every
//!    [`MetadataConfig::kubelet_min_interval`], for pod labels and
//!    whatever is still missing;
//! 5. optionally the Kubernetes API server's pod list for this node
//!    ([`kube_api`], with the pod's service account), at the same
//!    cadence, for the same.
//!
//! [`MetadataCache`] keeps the result per cgroup path; the collection loop
//! calls [`MetadataCache::forget`] on discovery events.
//!
//! # Which cgroup carries a pod's network
//!
//! Every container of a pod shares the sandbox's network namespace, so the
//! pod's interface counters must be reported once (cAdvisor §3):
//! [`ContainerMetadata::carries_network`] is true for the root (host
//! interfaces through pid 1), for a container outside any pod that does not
//! join another container's namespace (Docker `NetworkMode=container:…`),
//! and for a pod's sandbox: Docker/CRI-O `io.kubernetes.container.name=POD`
//! (or cri-dockerd's `io.kubernetes.docker.type=podsandbox`), containerd's
//! `io.cri-containerd.kind=sandbox` / OCI annotation
//! `io.kubernetes.cri.container-type=sandbox`, CRI-O's
//! `io.kubernetes.cri-o.ContainerType=sandbox`. It is false for the other
//! containers of a pod and for every non-container cgroup (no pid), and
//! `None` for a container in a pod whose runtime record was not found (the
//! sandbox cannot be told apart). The integrator should additionally read
//! network counters only when the pid's `/proc/<pid>/ns/net` differs from
//! the host's (pid 1's), and may de-duplicate the `None` cases by netns
//! inode.

pub mod docker;
pub mod kube_api;
pub mod kubelet_api;
pub mod kubelet_logs;
pub mod oci;

mod cache;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::discovery::runtime::{CgroupKind, Runtime};

pub use cache::MetadataCache;

/// What a cgroup is called and which labels it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerMetadata {
    /// The Prometheus `name` label: the Docker container name (no leading
    /// `/`), the container id for other runtimes (as cAdvisor does for
    /// containerd), the unit name for systemd units, `/` for the root and
    /// the cgroup path for other cgroups.
    pub name: String,
    /// The image reference; empty when unknown or not a container.
    pub image: String,
    /// Kubernetes namespace; empty when unknown or not in a pod.
    pub namespace: String,
    /// Kubernetes pod name; empty when unknown or not in a pod.
    pub pod: String,
    /// Kubernetes pod uid; empty when not in a pod.
    pub pod_uid: String,
    /// Kubernetes container name; empty for sandboxes and non-pod cgroups.
    pub container: String,
    /// Runtime labels (Docker `Config.Labels`; for containerd and CRI-O the
    /// Kubernetes labels rebuilt from the bundle annotations) and, for pods
    /// and their containers, the pod's labels from the kubelet or the API
    /// server when configured (a container's own labels win on a clash).
    pub labels: BTreeMap<String, String>,
    /// The container's init process, when running and known.
    pub pid: Option<u32>,
    /// Whether this is a pod's sandbox (pause) container.
    pub is_pod_sandbox: bool,
    /// What the cgroup is.
    pub kind: CgroupKind,
    /// The runtime, as the path or a runtime record says.
    pub runtime: Option<Runtime>,
    /// The 64-hex container id.
    pub container_id: Option<String>,
    /// Whether the container joins another container's network namespace
    /// (Docker `NetworkMode=container:…`).
    pub shares_another_netns: bool,
    /// Whether a runtime record (Docker or OCI bundle) was found.
    pub runtime_record_found: bool,
}

impl ContainerMetadata {
    /// Metadata holding only a name, for cgroups nothing more is known of.
    pub fn named(name: impl Into<String>, kind: CgroupKind) -> Self {
        Self {
            name: name.into(),
            image: String::new(),
            namespace: String::new(),
            pod: String::new(),
            pod_uid: String::new(),
            container: String::new(),
            labels: BTreeMap::new(),
            pid: None,
            is_pod_sandbox: false,
            kind,
            runtime: None,
            container_id: None,
            shares_another_netns: false,
            runtime_record_found: false,
        }
    }

    /// Whether this cgroup's pid's network counters should be reported
    /// (see the module docs): `Some(true)` for the root, stand-alone
    /// containers with their own namespace and pod sandboxes;
    /// `Some(false)` for containers sharing a sandbox's or another
    /// container's namespace and for cgroups that are not containers;
    /// `None` for a pod's container whose runtime record is missing.
    pub fn carries_network(&self) -> Option<bool> {
        match self.kind {
            CgroupKind::Root => Some(true),
            CgroupKind::Container => {
                if self.shares_another_netns {
                    Some(false)
                } else if self.is_pod_sandbox || self.pod_uid.is_empty() {
                    Some(true)
                } else if self.runtime_record_found {
                    Some(false)
                } else {
                    None
                }
            }
            _ => Some(false),
        }
    }

    /// Whether a container in a pod still lacks its pod's names, so the
    /// cache should look again soon.
    fn is_incomplete(&self) -> bool {
        !self.pod_uid.is_empty()
            && (self.pod.is_empty()
                || self.namespace.is_empty()
                || (self.kind == CgroupKind::Container
                    && self.container.is_empty()
                    && !self.is_pod_sandbox))
    }
}

/// Where the node keeps what names its containers, and how often it is
/// looked at again. Every field has a default for a stock node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetadataConfig {
    /// Docker's data root (`dockerd --data-root`); container records are
    /// read from `<docker_root>/containers/<id>/`. Default
    /// `/var/lib/docker`.
    pub docker_root: PathBuf,
    /// Directories holding OCI bundles named by container id:
    /// `<root>/<id>/config.json` (containerd) or
    /// `<root>/<id>/userdata/config.json` (CRI-O). Default: containerd's
    /// `k8s.io` and `default` namespaces and CRI-O's storage.
    pub oci_bundle_roots: Vec<PathBuf>,
    /// The kubelet's pod log root (`<namespace>_<pod>_<uid>/<container>/`).
    /// Default `/var/log/pods`.
    pub pod_log_root: PathBuf,
    /// The kubelet's container log symlinks
    /// (`<pod>_<namespace>_<container>-<id>.log`). Default
    /// `/var/log/containers`.
    pub container_log_root: PathBuf,
    /// The least time between two listings of a kubelet log root, which
    /// happen only when a lookup misses. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub log_index_min_interval: Duration,
    /// The proc filesystem, to check that a recorded pid is alive.
    /// Default `/proc`.
    pub proc_root: PathBuf,
    /// The kubelet's read-only pod list, e.g.
    /// `http://127.0.0.1:10255/pods`. Default: unset, never called.
    pub kubelet_pods_url: Option<String>,
    /// The least time between two fetches of `kubelet_pods_url`.
    /// Default 30 s.
    #[serde(with = "humantime_serde")]
    pub kubelet_min_interval: Duration,
    /// The Kubernetes API server's pod list for this node, read with a
    /// service account. Default: unset, never called.
    #[serde(skip)]
    pub kube_api: Option<kube_api::KubeApiConfig>,
    /// Timeout of one fetch of `kubelet_pods_url` or of the API server's
    /// pod list. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub kubelet_timeout: Duration,
    /// How long a resolved name is kept before being read again (labels
    /// and images rarely change; cAdvisor never re-reads them). Default
    /// 5 min.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// How long an incomplete name (a pod container whose pod or container
    /// name is still unknown, e.g. logs not yet created) is kept before
    /// trying again; twice as long after each try that still finds it
    /// incomplete, up to `refresh_interval`. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub incomplete_retry: Duration,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        Self {
            docker_root: PathBuf::from("/var/lib/docker"),
            oci_bundle_roots: vec![
                PathBuf::from("/run/containerd/io.containerd.runtime.v2.task/k8s.io"),
                PathBuf::from("/run/containerd/io.containerd.runtime.v2.task/default"),
                PathBuf::from("/run/containers/storage/overlay-containers"),
            ],
            pod_log_root: PathBuf::from("/var/log/pods"),
            container_log_root: PathBuf::from("/var/log/containers"),
            log_index_min_interval: Duration::from_secs(5),
            proc_root: PathBuf::from("/proc"),
            kubelet_pods_url: None,
            kube_api: None,
            kubelet_min_interval: Duration::from_secs(30),
            kubelet_timeout: Duration::from_secs(2),
            refresh_interval: Duration::from_secs(300),
            incomplete_retry: Duration::from_secs(10),
        }
    }
}

/// Why one metadata source could not be used. Logged and counted; the
/// cgroup is still named from the other sources.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// A runtime record exists but cannot be read.
    #[error("cannot read {path}: {source}; check the agent may read the runtime's state directory")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A runtime record is not the JSON expected.
    #[error(
        "cannot parse {path}: {source}; the file is damaged or from an unsupported runtime version"
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The kubelet pod list could not be fetched or parsed.
    #[error("cannot fetch the kubelet pod list from {url}: {reason}; check `kubelet_pods_url`")]
    Kubelet {
        /// The URL fetched.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The API server's pod list could not be fetched or parsed.
    #[error(
        "cannot list this node's pods from the Kubernetes API ({api}): {reason}; check `kubernetes_api`, the service account and its RBAC"
    )]
    KubeApi {
        /// The `kubernetes_api` setting.
        api: String,
        /// What went wrong.
        reason: String,
    },
}

#[cfg(test)]
mod tests;
