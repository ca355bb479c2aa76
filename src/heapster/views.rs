//! Which stored cAdvisor series make each Heapster metric of each entity,
//! and their evaluation over a time range (Heapster §10.2, §11).
//!
//! A metric of an entity is a [`Plan`]: the cgroup series in scope
//! (matchers), how they split into *members* (containers of a pod, pods of
//! a namespace, nodes of the cluster), a [`Recipe`] turning one cgroup's
//! raw series into values, and how members combine. Each cgroup is one
//! *incarnation* of its member: a restarted container has a new cgroup, so
//! its counters restart in a new series and rates stay non-negative.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use super::catalogue::MetricDef;
use super::derive::{self, Combine};
use super::model::Entity;
use crate::storage::{Labels, MatchOp, Matcher, Sample, Series, Storage, StorageError};

/// How far before `start` samples are read, so that the first point in
/// range has a rate.
pub const LOOKBACK_MS: i64 = 5 * 60_000;

/// Byte limits at or above this mean "unlimited" (Heapster shows 0).
const UNLIMITED_BYTES: f64 = 4_611_686_018_427_387_904.0;

/// How one cgroup's raw series become a metric's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Recipe {
    /// A gauge (sub-series summed), times `scale`.
    Gauge {
        /// Source metric.
        metric: &'static str,
        /// Extra label constraints on the source.
        filter: Vec<(&'static str, String)>,
        /// Unit conversion factor.
        scale: f64,
    },
    /// A byte limit: 0 when unset or unlimited.
    ByteLimit {
        /// Source metric.
        metric: &'static str,
    },
    /// A counter's per-second rate (sub-series summed first), times `scale`.
    Rate {
        /// Source counter.
        metric: &'static str,
        /// Extra label constraints.
        filter: Vec<(&'static str, String)>,
        /// Unit conversion factor.
        scale: f64,
    },
    /// Milliseconds since the cgroup started.
    Uptime,
    /// CPU limit in millicores from the CFS quota and period; 0 without a
    /// quota.
    CpuLimit,
    /// CPU request in millicores from the CPU shares the kubelet derives
    /// from it (`shares = request × 1024 / 1000`, 2 when unset → 0).
    CpuRequest,
    /// A figure of the node's `Node` object (kube-state-metrics'
    /// `kube_node_status_capacity|allocatable{resource}`), times `scale`,
    /// rounded (`3920m` cores are 3920 millicores, not 3919.999…).
    NodeStatus {
        /// Source metric.
        metric: &'static str,
        /// kube-state-metrics' `resource` label.
        resource: &'static str,
        /// Unit conversion factor.
        scale: f64,
    },
    /// A pod container's ephemeral storage: its writable layer
    /// (`container_fs_usage_bytes`, every device) plus its kubelet log
    /// files (`container_logs_usage_bytes`), as the kubelet counts it
    /// without volumes; a point wherever either is known.
    Ephemeral,
}

const START: &str = "container_start_time_seconds";
const QUOTA: &str = "container_spec_cpu_quota";
const PERIOD: &str = "container_spec_cpu_period";
const SHARES: &str = "container_spec_cpu_shares";
const FS_USAGE: &str = "container_fs_usage_bytes";
/// The node's `Node` object's figures (agent with the API server source).
const NODE_CAPACITY: &str = "kube_node_status_capacity";
const NODE_ALLOCATABLE: &str = "kube_node_status_allocatable";
/// The filesystem holding the kubelet's root directory (shipped by every
/// agent).
const NODE_EPHEMERAL_USAGE: &str = "node_ephemeral_storage_usage_bytes";
const NODE_EPHEMERAL_CAPACITY: &str = "node_ephemeral_storage_capacity_bytes";
const LOG_USAGE: &str = "container_logs_usage_bytes";
/// kube-state-metrics' restart counter (shipped by the agent from the pod
/// list).
const RESTARTS: &str = "kube_pod_container_status_restarts_total";

impl Recipe {
    /// The source metrics with their label constraints; the first one
    /// gives the timestamps.
    fn inputs(&self) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
        match self {
            Recipe::Gauge { metric, filter, .. } | Recipe::Rate { metric, filter, .. } => {
                vec![(metric, filter.clone())]
            }
            Recipe::ByteLimit { metric } => vec![(metric, vec![])],
            Recipe::NodeStatus {
                metric, resource, ..
            } => vec![(metric, vec![("resource", resource.to_string())])],
            Recipe::Uptime => vec![(START, vec![])],
            Recipe::CpuLimit => vec![(START, vec![]), (QUOTA, vec![]), (PERIOD, vec![])],
            Recipe::CpuRequest => vec![(START, vec![]), (SHARES, vec![])],
            Recipe::Ephemeral => vec![(START, vec![]), (FS_USAGE, vec![]), (LOG_USAGE, vec![])],
        }
    }

    /// Whether values are whole numbers, truncated per cgroup before they
    /// are summed (Heapster's integer millicore rates); only the
    /// per-second float rates are not.
    fn integer(&self) -> bool {
        match self {
            Recipe::Rate { metric, .. } => *metric == CPU,
            _ => true,
        }
    }

    /// Values of one cgroup from its inputs (each already summed over
    /// sub-series), in the order of [`Recipe::inputs`].
    fn compute(&self, inputs: &[Vec<Sample>]) -> Vec<Sample> {
        let base = &inputs[0];
        let map =
            |f: &dyn Fn(&Sample) -> f64| base.iter().map(|s| Sample::new(s.t, f(s))).collect();
        match self {
            Recipe::Gauge { scale, .. } => map(&|s| s.v * scale),
            Recipe::NodeStatus { scale, .. } => map(&|s| (s.v * scale).round()),
            Recipe::ByteLimit { .. } => map(&|s| {
                if s.v >= UNLIMITED_BYTES || s.v < 0.0 {
                    0.0
                } else {
                    s.v
                }
            }),
            Recipe::Rate { scale, .. } => derive::counter_rate(base, *scale),
            Recipe::Uptime => map(&|s| (s.t as f64 - s.v * 1000.0).max(0.0)),
            Recipe::CpuLimit => map(&|s| {
                let quota = derive::sample_at(&inputs[1], s.t).unwrap_or(0.0);
                let period = derive::sample_at(&inputs[2], s.t).unwrap_or(0.0);
                if quota > 0.0 && period > 0.0 {
                    (quota * 1000.0 / period).round()
                } else {
                    0.0
                }
            }),
            Recipe::CpuRequest => map(&|s| {
                let shares = derive::sample_at(&inputs[1], s.t).unwrap_or(0.0);
                if shares > 2.0 {
                    (shares * 1000.0 / 1024.0).round()
                } else {
                    0.0
                }
            }),
            Recipe::Ephemeral => base
                .iter()
                .filter_map(|s| {
                    let layer = derive::sample_at(&inputs[1], s.t);
                    let logs = derive::sample_at(&inputs[2], s.t);
                    (layer.is_some() || logs.is_some())
                        .then(|| Sample::new(s.t, layer.unwrap_or(0.0) + logs.unwrap_or(0.0)))
                })
                .collect(),
        }
    }
}

/// How a metric of an entity is computed.
#[derive(Debug, Clone)]
pub enum Plan {
    /// From cgroup series.
    Leaf {
        /// Which cgroup series.
        scope: Vec<Matcher>,
        /// Labels that tell members apart (empty: one member).
        members: &'static [&'static str],
        /// Per-cgroup computation.
        recipe: Recipe,
        /// Member combination.
        combine: Combine,
    },
    /// One plan divided by another (utilisation, reservation).
    Ratio(Box<Plan>, Box<Plan>),
    /// The first plan's points, and the second's where the first has none
    /// (a node's capacity from its `Node` object, else the machine's).
    Fallback(Box<Plan>, Box<Plan>),
}

fn eq(name: &str, value: &str) -> Matcher {
    Matcher::eq(name, value)
}

fn present(name: &str) -> Matcher {
    Matcher::ne(name, "")
}

fn gauge(metric: &'static str, scale: f64) -> Recipe {
    Recipe::Gauge {
        metric,
        filter: vec![],
        scale,
    }
}

fn rate(metric: &'static str, filter: Vec<(&'static str, String)>, scale: f64) -> Recipe {
    Recipe::Rate {
        metric,
        filter,
        scale,
    }
}

const CPU: &str = "container_cpu_usage_seconds_total";
const FAULTS: &str = "container_memory_failures_total";

/// The recipe of a per-cgroup usage metric (what containers, system
/// containers and nodes report themselves), with the `device` of a labeled
/// metric.
fn cgroup_recipe(name: &str, device: Option<&str>) -> Option<Recipe> {
    let cpu = || vec![("cpu", "total".to_string())];
    let faults = |kind: &str| {
        vec![
            ("failure_type", kind.to_string()),
            ("scope", "container".to_string()),
        ]
    };
    let dev = |metric: &'static str, counter: bool| {
        let filter = vec![("device", device?.to_string())];
        Some(if counter {
            rate(metric, filter, 1.0)
        } else {
            Recipe::Gauge {
                metric,
                filter,
                scale: 1.0,
            }
        })
    };
    Some(match name {
        "uptime" => Recipe::Uptime,
        "cpu/usage" => Recipe::Gauge {
            metric: CPU,
            filter: cpu(),
            scale: 1e9,
        },
        "cpu/usage_rate" => rate(CPU, cpu(), 1000.0),
        "memory/usage" => gauge("container_memory_usage_bytes", 1.0),
        "memory/working_set" => gauge("container_memory_working_set_bytes", 1.0),
        "memory/rss" => gauge("container_memory_rss", 1.0),
        "memory/cache" => gauge("container_memory_cache", 1.0),
        "memory/page_faults" => Recipe::Gauge {
            metric: FAULTS,
            filter: faults("pgfault"),
            scale: 1.0,
        },
        "memory/major_page_faults" => Recipe::Gauge {
            metric: FAULTS,
            filter: faults("pgmajfault"),
            scale: 1.0,
        },
        "cpu/load" => gauge("container_cpu_load_average_10s", 1.0),
        "memory/page_faults_rate" => rate(FAULTS, faults("pgfault"), 1.0),
        "memory/major_page_faults_rate" => rate(FAULTS, faults("pgmajfault"), 1.0),
        "filesystem/usage" => return dev("container_fs_usage_bytes", false),
        "filesystem/limit" => return dev("container_fs_limit_bytes", false),
        "filesystem/available" => return dev("container_fs_available_bytes", false),
        "filesystem/inodes" => return dev("container_fs_inodes_total", false),
        "filesystem/inodes_free" => return dev("container_fs_inodes_free", false),
        "disk/io_read_bytes" => return dev("container_fs_reads_bytes_total", false),
        "disk/io_write_bytes" => return dev("container_fs_writes_bytes_total", false),
        "disk/io_read_bytes_rate" => return dev("container_fs_reads_bytes_total", true),
        "disk/io_write_bytes_rate" => return dev("container_fs_writes_bytes_total", true),
        _ => return None,
    })
}

/// Network metrics, summed over interfaces.
fn network_recipe(name: &str) -> Option<Recipe> {
    const RX: &str = "container_network_receive_bytes_total";
    const RXE: &str = "container_network_receive_errors_total";
    const TX: &str = "container_network_transmit_bytes_total";
    const TXE: &str = "container_network_transmit_errors_total";
    Some(match name {
        "network/rx" => gauge(RX, 1.0),
        "network/rx_errors" => gauge(RXE, 1.0),
        "network/tx" => gauge(TX, 1.0),
        "network/tx_errors" => gauge(TXE, 1.0),
        "network/rx_rate" => rate(RX, vec![], 1.0),
        "network/rx_errors_rate" => rate(RXE, vec![], 1.0),
        "network/tx_rate" => rate(TX, vec![], 1.0),
        "network/tx_errors_rate" => rate(TXE, vec![], 1.0),
        _ => return None,
    })
}

/// Requests and limits of pod containers.
fn spec_recipe(name: &str) -> Option<Recipe> {
    Some(match name {
        "cpu/limit" => Recipe::CpuLimit,
        "cpu/request" => Recipe::CpuRequest,
        "memory/limit" => Recipe::ByteLimit {
            metric: "container_spec_memory_limit_bytes",
        },
        "memory/request" => Recipe::ByteLimit {
            metric: "container_spec_memory_reservation_limit_bytes",
        },
        _ => None?,
    })
}

/// Pod-container metrics that come from the pod's status or the
/// container's kubelet view rather than from its cgroup's own figures.
fn pod_container_recipe(name: &str) -> Option<Recipe> {
    Some(match name {
        "restart_count" => gauge(RESTARTS, 1.0),
        "ephemeral_storage/usage" => Recipe::Ephemeral,
        _ => kube_spec_recipe(name)?,
    })
}

/// Requests and limits the cgroup does not carry, from kube-state-metrics'
/// series of the pod spec (only those set are shipped: an unset one has
/// no points, where Heapster showed 0).
fn kube_spec_recipe(name: &str) -> Option<Recipe> {
    let ksm = |metric: &'static str| Recipe::Gauge {
        metric,
        filter: vec![("resource", "ephemeral_storage".to_string())],
        scale: 1.0,
    };
    Some(match name {
        "ephemeral_storage/request" => ksm("kube_pod_container_resource_requests"),
        "ephemeral_storage/limit" => ksm("kube_pod_container_resource_limits"),
        _ => None?,
    })
}

/// Usage metrics Heapster sums from containers into pods.
const POD_SUMMED: &[&str] = &[
    "restart_count",
    "ephemeral_storage/request",
    "ephemeral_storage/limit",
    "ephemeral_storage/usage",
    "cpu/load",
    "cpu/usage_rate",
    "memory/usage",
    "memory/working_set",
    "memory/rss",
    "memory/cache",
    "memory/page_faults_rate",
    "memory/major_page_faults_rate",
];

/// Metrics Heapster sums into namespaces and the cluster.
const NAMESPACE_SUMMED: &[&str] = &["cpu/usage_rate", "memory/usage"];

fn leaf(scope: Vec<Matcher>, members: &'static [&'static str], recipe: Recipe) -> Plan {
    Plan::Leaf {
        scope,
        members,
        recipe,
        combine: Combine::Sum,
    }
}

/// How `metric` of `entity` is computed; `device` selects one series of a
/// labeled metric. `None` when Heapster has no such metric there.
/// `free_ids` are the cgroup paths of a system container.
pub fn plan(
    entity: &Entity,
    metric: &MetricDef,
    device: Option<&str>,
    free_ids: &[String],
) -> Option<Plan> {
    let name = metric.name;
    let own = |scope: Vec<Matcher>| -> Option<Plan> {
        let recipe = cgroup_recipe(name, device).or_else(|| network_recipe(name))?;
        Some(leaf(scope, &[], recipe))
    };
    const POD_CONTAINER: &[&str] = &["namespace", "pod", "container"];
    match entity {
        Entity::PodContainer {
            namespace,
            pod,
            container,
        } => {
            let scope = vec![
                eq("namespace", namespace),
                eq("pod", pod),
                eq("container", container),
            ];
            if let Some(r) = spec_recipe(name).or_else(|| pod_container_recipe(name)) {
                return Some(leaf(scope, &[], r));
            }
            // Pod containers share the pod's network: no network metrics.
            let recipe = cgroup_recipe(name, device)?;
            Some(leaf(scope, &[], recipe))
        }
        Entity::FreeContainer { node, .. } => {
            if free_ids.is_empty() {
                return None;
            }
            let ids = free_ids
                .iter()
                .map(|i| regex::escape(i))
                .collect::<Vec<_>>()
                .join("|");
            let scope = vec![eq("node", node), Matcher::re("id", ids).ok()?];
            own(scope)
        }
        Entity::Pod { namespace, pod } => {
            let scope = || vec![eq("namespace", namespace), eq("pod", pod)];
            let containers = || {
                let mut s = scope();
                s.push(present("container"));
                s
            };
            if let Some(r) = spec_recipe(name) {
                return Some(leaf(containers(), &["container"], r));
            }
            if let Some(r) = network_recipe(name) {
                // Whichever cgroups of the pod carry its network namespace.
                return Some(leaf(scope(), &["id"], r));
            }
            if name == "uptime" {
                return Some(Plan::Leaf {
                    scope: scope(),
                    members: &["id"],
                    recipe: Recipe::Uptime,
                    combine: Combine::Max,
                });
            }
            if POD_SUMMED.contains(&name) && device.is_none() {
                return Some(leaf(
                    containers(),
                    &["container"],
                    pod_container_recipe(name).or_else(|| cgroup_recipe(name, None))?,
                ));
            }
            None
        }
        Entity::Namespace { namespace } => {
            let scope = vec![
                eq("namespace", namespace),
                present("pod"),
                present("container"),
            ];
            let recipe = spec_recipe(name).or_else(|| {
                (NAMESPACE_SUMMED.contains(&name) && device.is_none())
                    .then(|| cgroup_recipe(name, None))
                    .flatten()
            })?;
            Some(leaf(scope, &["pod", "container"], recipe))
        }
        Entity::Node { node } => {
            let pods_on_node = || {
                vec![
                    eq("node", node),
                    present("namespace"),
                    present("pod"),
                    present("container"),
                ]
            };
            let machine = || vec![eq("node", node)];
            let capacity =
                |metric: &'static str, scale: f64| leaf(machine(), &[], gauge(metric, scale));
            let status = |metric: &'static str, resource: &'static str, scale: f64| {
                leaf(
                    machine(),
                    &[],
                    Recipe::NodeStatus {
                        metric,
                        resource,
                        scale,
                    },
                )
            };
            let fallback = |a: Plan, b: Plan| Plan::Fallback(Box::new(a), Box::new(b));
            // Capacity and allocatable from the Node object when the agent
            // ships it; else the machine's figures, allocatable = capacity.
            let cpu_cap = || {
                fallback(
                    status(NODE_CAPACITY, "cpu", 1000.0),
                    capacity("machine_cpu_cores", 1000.0),
                )
            };
            let cpu_alloc = || fallback(status(NODE_ALLOCATABLE, "cpu", 1000.0), cpu_cap());
            let mem_cap = || {
                fallback(
                    status(NODE_CAPACITY, "memory", 1.0),
                    capacity("machine_memory_bytes", 1.0),
                )
            };
            let mem_alloc = || fallback(status(NODE_ALLOCATABLE, "memory", 1.0), mem_cap());
            let eph_cap = || {
                fallback(
                    status(NODE_CAPACITY, "ephemeral_storage", 1.0),
                    capacity(NODE_EPHEMERAL_CAPACITY, 1.0),
                )
            };
            let eph_alloc = || {
                fallback(
                    status(NODE_ALLOCATABLE, "ephemeral_storage", 1.0),
                    eph_cap(),
                )
            };
            let own_usage = |metric: &str| {
                leaf(
                    vec![eq("node", node), eq("id", "/")],
                    &[],
                    cgroup_recipe(metric, None).expect("usage metric"),
                )
            };
            let requested = |metric: &str| {
                leaf(
                    pods_on_node(),
                    POD_CONTAINER,
                    spec_recipe(metric)
                        .or_else(|| kube_spec_recipe(metric))
                        .expect("spec metric"),
                )
            };
            let eph_usage = || capacity(NODE_EPHEMERAL_USAGE, 1.0);
            let ratio = |a: Plan, b: Plan| Some(Plan::Ratio(Box::new(a), Box::new(b)));
            match name {
                "cpu/node_capacity" => Some(cpu_cap()),
                "cpu/node_allocatable" => Some(cpu_alloc()),
                "memory/node_capacity" => Some(mem_cap()),
                "memory/node_allocatable" => Some(mem_alloc()),
                "ephemeral_storage/node_capacity" => Some(eph_cap()),
                "ephemeral_storage/node_allocatable" => Some(eph_alloc()),
                "ephemeral_storage/usage" => Some(eph_usage()),
                "cpu/node_utilization" => ratio(own_usage("cpu/usage_rate"), cpu_alloc()),
                "memory/node_utilization" => ratio(own_usage("memory/usage"), mem_alloc()),
                "ephemeral_storage/node_utilization" => ratio(eph_usage(), eph_alloc()),
                "cpu/node_reservation" => ratio(requested("cpu/request"), cpu_alloc()),
                "memory/node_reservation" => ratio(requested("memory/request"), mem_alloc()),
                "ephemeral_storage/node_reservation" => {
                    ratio(requested("ephemeral_storage/request"), eph_alloc())
                }
                _ => match spec_recipe(name).or_else(|| kube_spec_recipe(name)) {
                    Some(r) => Some(leaf(pods_on_node(), POD_CONTAINER, r)),
                    None => own(vec![eq("node", node), eq("id", "/")]),
                },
            }
        }
        Entity::Cluster => {
            if let Some(r) = spec_recipe(name) {
                return Some(leaf(
                    vec![present("namespace"), present("pod"), present("container")],
                    &["node", "namespace", "pod", "container"],
                    r,
                ));
            }
            (NAMESPACE_SUMMED.contains(&name) && device.is_none()).then(|| {
                leaf(
                    vec![eq("id", "/")],
                    &["node"],
                    cgroup_recipe(name, None).expect("usage metric"),
                )
            })
        }
    }
}

/// The raw sub-series of one cgroup, per recipe input.
type PerInput = Vec<Vec<Vec<Sample>>>;

/// Reads series for plans: one storage selection per source metric.
pub struct Evaluator<'a> {
    storage: &'a Storage,
    /// How far before a range's start samples are read.
    lookback_ms: i64,
    /// With [`Evaluator::with_cache`]: series read once per source metric
    /// for a fixed window and looked up in memory per entity.
    cache: Option<Cache>,
}

/// Series of one source metric over the cache window, indexed by the
/// labels entity scopes pin down.
struct CachedMetric {
    series: Vec<Fetched>,
    index: HashMap<(&'static str, String), Vec<usize>>,
}

/// The labels [`CachedMetric`] indexes, most selective first.
const INDEXED: [&str; 3] = ["pod", "id", "node"];

struct Cache {
    from: i64,
    to: i64,
    metrics: RefCell<HashMap<String, Rc<CachedMetric>>>,
}

/// The values of one plan: points on the collection grid, oldest first.
pub type Points = Vec<Sample>;

/// A series read for a plan. The labels are shared with the cache, so
/// handing a cached series to one of many entities copies no string.
struct Fetched {
    labels: Rc<Labels>,
    samples: Vec<Sample>,
}

impl From<Series> for Fetched {
    fn from(s: Series) -> Self {
        Fetched {
            labels: Rc::new(s.labels),
            samples: s.samples,
        }
    }
}

impl<'a> Evaluator<'a> {
    /// An evaluator over `storage`.
    pub fn new(storage: &'a Storage) -> Self {
        Evaluator {
            storage,
            lookback_ms: LOOKBACK_MS,
            cache: None,
        }
    }

    /// An evaluator for many entities over one window (`metric-export`):
    /// each source metric is read once for `[from_ms - lookback_ms, to_ms]`
    /// and split per entity in memory.
    pub fn with_cache(storage: &'a Storage, from_ms: i64, to_ms: i64, lookback_ms: i64) -> Self {
        Evaluator {
            storage,
            lookback_ms,
            cache: Some(Cache {
                from: from_ms - lookback_ms,
                to: to_ms,
                metrics: RefCell::new(HashMap::new()),
            }),
        }
    }

    /// Series of `metric` (with the `filter` labels) within `scope` and
    /// their samples in `[from, to]`.
    fn fetch(
        &self,
        scope: &[Matcher],
        metric: &str,
        filter: &[(&'static str, String)],
        from: i64,
        to: i64,
    ) -> Result<Vec<Fetched>, StorageError> {
        let mut matchers = vec![Matcher::eq("__name__", metric)];
        matchers.extend(filter.iter().map(|(k, v)| Matcher::eq(*k, v.as_str())));
        let cache = match &self.cache {
            Some(c) if c.from <= from && to <= c.to => c,
            _ => {
                matchers.extend(scope.iter().cloned());
                let mut out = Vec::new();
                for s in self.storage.select(&matchers, from, to)? {
                    out.push(s?.into());
                }
                return Ok(out);
            }
        };
        let key = format!("{metric}{filter:?}");
        let cached = cache.metrics.borrow().get(&key).cloned();
        let cached = match cached {
            Some(c) => c,
            None => {
                let mut series: Vec<Fetched> = Vec::new();
                for s in self.storage.select(&matchers, cache.from, cache.to)? {
                    series.push(s?.into());
                }
                let mut index: HashMap<(&'static str, String), Vec<usize>> = HashMap::new();
                for (i, s) in series.iter().enumerate() {
                    for name in INDEXED {
                        if let Some(v) = s.labels.get(name) {
                            index.entry((name, v.to_string())).or_default().push(i);
                        }
                    }
                }
                let c = Rc::new(CachedMetric { series, index });
                cache.metrics.borrow_mut().insert(key, c.clone());
                c
            }
        };
        // Candidates from the shortest index list of the pinned labels (a
        // node's `id="/"` list holds every node, its `node` list one).
        let pinned = INDEXED
            .iter()
            .filter_map(|name| {
                let m = scope
                    .iter()
                    .find(|m| m.name == *name && m.op == MatchOp::Equal)?;
                Some(
                    cached
                        .index
                        .get(&(*name, m.value.clone()))
                        .map_or(&[][..], Vec::as_slice),
                )
            })
            .min_by_key(|list| list.len());
        let candidates: Box<dyn Iterator<Item = usize>> = match pinned {
            Some(list) => Box::new(list.iter().copied()),
            None => Box::new(0..cached.series.len()),
        };
        Ok(candidates
            .map(|i| &cached.series[i])
            .filter(|s| {
                scope
                    .iter()
                    .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
            })
            .map(|s| {
                // Sorted by time: the range is a slice.
                let lo = s.samples.partition_point(|x| x.t < from);
                let hi = s.samples.partition_point(|x| x.t <= to);
                Fetched {
                    labels: s.labels.clone(),
                    samples: s.samples[lo..hi.max(lo)].to_vec(),
                }
            })
            .collect())
    }

    /// Evaluates `plan` over `[start_ms, end_ms]` (inclusive). Integer
    /// values are truncated per cgroup, before summing (as Heapster's
    /// integer rates were).
    pub fn eval(&self, plan: &Plan, start_ms: i64, end_ms: i64) -> Result<Points, StorageError> {
        let mut points = self.eval_unclipped(plan, start_ms, end_ms)?;
        points.retain(|s| s.t >= start_ms && s.t <= end_ms);
        Ok(points)
    }

    fn eval_unclipped(
        &self,
        plan: &Plan,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Points, StorageError> {
        match plan {
            Plan::Ratio(num, den) => {
                let n = self.eval_unclipped(num, start_ms, end_ms)?;
                let d = self.eval_unclipped(den, start_ms, end_ms)?;
                Ok(derive::ratio(&n, &d))
            }
            Plan::Fallback(first, second) => {
                let mut points = self.eval_unclipped(first, start_ms, end_ms)?;
                let have: std::collections::HashSet<i64> = points.iter().map(|s| s.t).collect();
                let rest = self.eval_unclipped(second, start_ms, end_ms)?;
                points.extend(rest.into_iter().filter(|s| !have.contains(&s.t)));
                points.sort_by_key(|s| s.t);
                Ok(points)
            }
            Plan::Leaf {
                scope,
                members,
                recipe,
                combine,
            } => {
                let from = start_ms.saturating_sub(self.lookback_ms);
                let inputs = recipe.inputs();
                // cgroup (node, id) → per input, the sub-series.
                let mut cgroups: BTreeMap<(String, String), (Rc<Labels>, PerInput)> =
                    BTreeMap::new();
                for (i, (metric, filter)) in inputs.iter().enumerate() {
                    for s in self.fetch(scope, metric, filter, from, end_ms)? {
                        if s.samples.is_empty() {
                            continue;
                        }
                        let key = (
                            s.labels.get("node").unwrap_or("").to_string(),
                            s.labels.get("id").unwrap_or("").to_string(),
                        );
                        let entry = cgroups
                            .entry(key)
                            .or_insert_with(|| (s.labels.clone(), vec![Vec::new(); inputs.len()]));
                        entry.1[i].push(s.samples);
                    }
                }
                let res = derive::infer_resolution(
                    cgroups
                        .values()
                        .flat_map(|(_, inputs)| inputs.iter().flatten())
                        .map(|v| v.as_slice()),
                );
                let mut by_member: BTreeMap<Vec<String>, Vec<_>> = BTreeMap::new();
                for (labels, parts) in cgroups.into_values() {
                    if parts[0].is_empty() {
                        continue;
                    }
                    let summed: Vec<Vec<Sample>> =
                        parts.iter().map(|p| derive::sum_by_timestamp(p)).collect();
                    let mut values = recipe.compute(&summed);
                    if recipe.integer() {
                        values.iter_mut().for_each(|s| s.v = s.v.trunc());
                    }
                    let member: Vec<String> = members
                        .iter()
                        .map(|k| labels.get(k).unwrap_or("").to_string())
                        .collect();
                    let mut aligned = derive::align(&values, res);
                    if *recipe == Recipe::Uptime {
                        // Uptime at the point's (bucket) timestamp, so that
                        // timestamp − uptime is the start time exactly.
                        for (bucket, a) in aligned.iter_mut() {
                            a.v = (a.v - (a.t - bucket) as f64).max(0.0);
                        }
                    }
                    by_member.entry(member).or_default().push(aligned);
                }
                let members: Vec<_> = by_member.into_values().map(derive::newest).collect();
                Ok(derive::combine(members, *combine))
            }
        }
    }

    /// The `device` values a labeled metric has for the cgroups in `scope`
    /// of a plan (for `metric-export`): one per filesystem or disk.
    pub fn devices(
        &self,
        plan_without_device: &[Matcher],
        metric: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
        let mut out: Vec<String> = Vec::new();
        for s in self.fetch(plan_without_device, metric, &[], start_ms, end_ms)? {
            if let Some(d) = s.labels.get("device")
                && !s.samples.is_empty()
                && !out.iter().any(|o| o == d)
            {
                out.push(d.to_string());
            }
        }
        out.sort();
        Ok(out)
    }
}

/// The source metric of a labeled metric (to enumerate its devices).
pub fn labeled_source(name: &str) -> Option<&'static str> {
    Some(match name {
        "filesystem/usage" => "container_fs_usage_bytes",
        "filesystem/limit" => "container_fs_limit_bytes",
        "filesystem/available" => "container_fs_available_bytes",
        "filesystem/inodes" => "container_fs_inodes_total",
        "filesystem/inodes_free" => "container_fs_inodes_free",
        "disk/io_read_bytes" | "disk/io_read_bytes_rate" => "container_fs_reads_bytes_total",
        "disk/io_write_bytes" | "disk/io_write_bytes_rate" => "container_fs_writes_bytes_total",
        _ => return None,
    })
}

/// The cgroup series of an entity's own usage (for enumerating devices).
pub fn own_scope(entity: &Entity, free_ids: &[String]) -> Option<Vec<Matcher>> {
    Some(match entity {
        Entity::Node { node } => vec![eq("node", node), eq("id", "/")],
        Entity::PodContainer {
            namespace,
            pod,
            container,
        } => vec![
            eq("namespace", namespace),
            eq("pod", pod),
            eq("container", container),
        ],
        Entity::FreeContainer { node, .. } if !free_ids.is_empty() => {
            let ids = free_ids
                .iter()
                .map(|i| regex::escape(i))
                .collect::<Vec<_>>()
                .join("|");
            vec![eq("node", node), Matcher::re("id", ids).ok()?]
        }
        _ => return None,
    })
}
