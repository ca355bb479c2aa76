//! The Heapster-compatible REST API (`/api/v1/metric-export-schema/`,
//! `/api/v1/metric-export`, `/api/v1/model/...`) as views over the stored
//! series.
//!
//! Nothing is stored twice: every answer is computed at query time from the
//! cAdvisor series the agents ship, so history is as long as the storage's
//! retention and survives restarts.
//!
//! - [`catalogue`]: metric and label descriptors, legacy aliases;
//! - [`model`]: nodes, system containers, namespaces, pods and containers
//!   from the series' labels;
//! - [`derive`]: rates, grid alignment, member sums;
//! - [`views`]: which series make which metric of which entity;
//! - [`api`]: the handlers and Heapster's JSON shapes.
//!
//! # Where Osprey differs from Heapster (deliberately or by necessity)
//!
//! - History: any `start` within the storage's retention; without `start`
//!   the last 15 minutes (Heapster's longest window). Entity lists and
//!   metric-name lists cover the last 15 minutes; `metric-export` the
//!   entities that reported in the last 2 minutes, newest point each.
//! - Points are per collection, stamped with the start of their
//!   collection-interval bucket (the interval is inferred from the data).
//!   A sum's newest bucket waits until as many members reported in it as
//!   in the one before.
//! - Rates are computed per cgroup: a restarted container is a new cgroup
//!   with a new counter, a counter drop inside one series counts the new
//!   value as the increase. No rate is ever negative (Heapster wrapped
//!   them to huge unsigned numbers).
//! - The cluster's usage is the sum of its nodes' root cgroups (Heapster
//!   summed namespaces, i.e. pods only); requests and limits are sums of
//!   pod containers at every level, as in Heapster.
//! - Without the Kubernetes API, requests and limits come from the cgroup
//!   spec: `cpu/limit` = CFS quota ÷ period, `cpu/request` = CPU shares ×
//!   1000 ÷ 1024 (0 for the minimum of 2 shares), `memory/limit` = the
//!   memory limit, `memory/request` = the memory reservation (soft limit;
//!   0 when unset).
//! - Node capacity and allocatable (`cpu|memory|ephemeral_storage/
//!   node_capacity|node_allocatable`) are kube-state-metrics'
//!   `kube_node_status_capacity|allocatable{resource}` (cpu × 1000,
//!   rounded, in millicores; memory and ephemeral storage in bytes), which
//!   the agent reads from its `Node` object (`kubernetes_api` and `get` on
//!   nodes; refreshed with the pod list). Without them (no API server
//!   source, or the read refused) they fall back per point: capacity =
//!   the machine's figures (`machine_cpu_cores` × 1000,
//!   `machine_memory_bytes`, the size of the kubelet root directory's
//!   filesystem, `node_ephemeral_storage_capacity_bytes`) and allocatable
//!   = capacity. `*/node_utilization` (the node's `cpu/usage_rate`,
//!   `memory/usage`, `ephemeral_storage/usage`) and `*/node_reservation`
//!   (Σ pod containers' `cpu|memory|ephemeral_storage/request`) divide by
//!   the allocatable, and are absent where it is 0, as in Heapster.
//! - Metrics the agent ships beyond cAdvisor's defaults, and how they
//!   are read:
//!   - `restart_count` (pod containers; pods: the sum over their
//!     containers) is kube-state-metrics'
//!     `kube_pod_container_status_restarts_total{namespace,pod,container}`,
//!     which the agent takes from the pod list's
//!     `status.containerStatuses[].restartCount` (needs `kubernetes_api`
//!     or `kubelet_pods_url`; refreshed every `pod_status_interval`).
//!   - `namespace_id` (pods and pod containers in `metric-export`) is the
//!     `uid` label of `kube_namespace_created{namespace,uid}`, which the
//!     agent reads from the API server (`get` on namespaces); absent with
//!     the kubelet's pod list only.
//!   - `cpu/load` is cAdvisor's `container_cpu_load_average_10s`
//!     (milliloads: runnable + uninterruptible tasks of the cgroup,
//!     averaged over 10 s), shipped only when the agent's opt-in
//!     `cpu_load` is on; pods sum their containers, nodes are the whole
//!     machine.
//!   - `filesystem/available` is `container_fs_available_bytes{device}`
//!     (statvfs `f_bavail`; an Osprey addition next to cAdvisor's
//!     `container_fs_limit_bytes`): the node's filesystems, and for a
//!     container the filesystem holding its writable layer.
//!   - `ephemeral_storage/usage` of a pod container is its writable layer
//!     (`container_fs_usage_bytes`, measured by the agent's bounded walk)
//!     plus its kubelet log files (`container_logs_usage_bytes`,
//!     `/var/log/pods/<ns>_<pod>_<uid>/<container>/`); a pod's is the sum
//!     over its containers. Unlike the kubelet, pods do not count their
//!     emptyDir volumes. A node's is the used bytes of the filesystem
//!     holding the kubelet's root directory
//!     (`node_ephemeral_storage_usage_bytes{device}`, statvfs by the
//!     agent every `fs_interval`; its `kubelet_root_dir`, by default
//!     `/var/lib/kubelet`, else its root filesystem), like the kubelet's
//!     `node.fs.usedBytes`.
//!   - `ephemeral_storage/request|limit` (pod containers; pods and nodes:
//!     sums) are kube-state-metrics'
//!     `kube_pod_container_resource_requests|limits{resource="ephemeral_storage"}`
//!     from the pod spec, shipped by the agent with the restart counts;
//!     only set values are shipped, so an unset one has no points where
//!     Heapster showed 0.
//! - Not available (the agent does not ship them): `accelerator/*` (no
//!   GPU reader), custom metrics; `host_id` is the
//!   node's `system_uuid` (else `machine_id`), `pod_id` comes from the
//!   cgroup path and `labels` from the shipped `container_label_*`.
//! - System containers are named by their `name` label or the last element
//!   of the cgroup path (`docker.service`); cgroups of the Kubernetes
//!   hierarchy without pod identity (QoS slices) belong to no entity.
//! - `floatValue` is filled for floating-point metrics; errors are the
//!   server's JSON error body (400 naming the bad parameter, 404 for
//!   routes Heapster did not serve) instead of plain text; unknown query
//!   parameters are refused.

pub mod api;
pub mod catalogue;
pub mod derive;
pub mod model;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::server::ServerState;

/// The Heapster routes.
pub fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/api/v1/metric-export-schema", get(api::export_schema))
        .route("/api/v1/metric-export-schema/", get(api::export_schema))
        .route("/api/v1/metric-export", get(api::export))
        .route("/api/v1/metric-export/", get(api::export))
        .route("/api/v1/model/{*path}", get(api::model))
}
