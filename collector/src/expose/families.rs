//! The mapping from [`Snapshot`] to metric families.

use std::collections::HashMap;
use std::num::NonZeroI64;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::snapshot::{ContainerSample, Snapshot};
use crate::stats::FilesystemStats;

/// Prometheus metric type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic counter.
    Counter,
    /// Value that goes up and down.
    Gauge,
}

/// Label pairs shared by every sample of one container.
pub type BaseLabels = Arc<LabelSet>;

/// Label pairs, and their text in the exposition format, rendered once:
/// a container's labels (its long cgroup id, image, pod …) are the same on
/// each of its ~40 lines, and escaping them again on every line was most
/// of the work of a scrape.
#[derive(Debug, Default)]
pub struct LabelSet {
    pairs: Vec<(String, String)>,
    text: OnceLock<Box<[u8]>>,
}

impl LabelSet {
    /// A shared set of `pairs`, in the order they are written.
    pub fn new(pairs: Vec<(String, String)>) -> BaseLabels {
        Arc::new(LabelSet {
            pairs,
            text: OnceLock::new(),
        })
    }

    /// `name="value",…` with values escaped, rendered on first use.
    pub fn text(&self) -> &[u8] {
        self.text.get_or_init(|| {
            let mut buf = Vec::new();
            for (i, (k, v)) in self.pairs.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                super::text::write_label(&mut buf, k, v);
            }
            buf.into_boxed_slice()
        })
    }
}

impl Deref for LabelSet {
    type Target = [(String, String)];

    fn deref(&self) -> &Self::Target {
        &self.pairs
    }
}

/// One sample: the container's base labels, extra labels of this metric
/// (`interface`, `device`, `cpu` …) and the value.
///
/// Kept to 40 bytes: a scrape of 2000 cgroups builds ~80 000 of them at
/// once, and they were the largest part of the agent's peak memory.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Base labels (shared).
    pub base: BaseLabels,
    /// Metric-specific labels.
    pub extra: Box<[(&'static str, String)]>,
    /// The value, in the metric's base unit.
    pub value: f64,
    /// When the value was read, ms since the epoch, if earlier than the
    /// snapshot it comes from (an aggregate cgroup read on a slower
    /// cadence); `None`: at the snapshot's time.
    pub timestamp_ms: Option<NonZeroI64>,
}

impl Sample {
    /// All labels of the sample, base first.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.base
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(self.extra.iter().map(|(k, v)| (*k, v.as_str())))
    }
}

/// A metric name with its help, type and samples.
#[derive(Debug, Clone)]
pub struct Family {
    /// Metric name.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Type.
    pub kind: MetricKind,
    /// Samples.
    pub samples: Vec<Sample>,
}

/// Options for the exposition.
#[derive(Debug, Clone, Default)]
pub struct ExposeOptions {
    /// Runtime/pod labels exported as `container_label_<sanitised name>`.
    pub container_labels: Vec<String>,
}

struct Builder {
    families: Vec<Family>,
    index: HashMap<&'static str, usize>,
    /// The timestamp of the samples being added (see [`Sample::timestamp_ms`]).
    timestamp_ms: Option<NonZeroI64>,
    /// The family after the one added to last: every container adds its
    /// series in the same order, so this is usually the next one, found
    /// without hashing the name (tens of thousands of times a scrape).
    next: usize,
}

impl Builder {
    fn add(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: MetricKind,
        base: &BaseLabels,
        extra: Vec<(&'static str, String)>,
        value: f64,
    ) {
        let i = match self.families.get(self.next) {
            Some(f) if std::ptr::eq(f.name, name) || f.name == name => self.next,
            _ => *self.index.entry(name).or_insert_with(|| {
                self.families.push(Family {
                    name,
                    help,
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }),
        };
        self.next = i + 1;
        self.families[i].samples.push(Sample {
            base: base.clone(),
            extra: extra.into_boxed_slice(),
            value,
            timestamp_ms: self.timestamp_ms,
        });
    }
}

const NS: f64 = 1e-9;
const US: f64 = 1e-6;
use MetricKind::{Counter as C, Gauge as G};

/// Builds every family of a snapshot: machine facts, then each container's
/// CPU, memory, block I/O, pids, pressure, network and filesystem series.
pub fn snapshot_families(
    snap: &Snapshot,
    opts: &ExposeOptions,
    devices: &DeviceNames,
) -> Vec<Family> {
    let mut b = Builder {
        families: Vec::with_capacity(64),
        index: HashMap::with_capacity(64),
        timestamp_ms: None,
        next: 0,
    };
    machine_families(&mut b, snap);
    for c in &snap.containers {
        // A sample read at an earlier tick keeps that time (0: not set).
        let read_at = c.stats.timestamp_ms;
        b.timestamp_ms =
            NonZeroI64::new(read_at).filter(|_| read_at > 0 && read_at < snap.timestamp_ms);
        container_families(&mut b, snap, c, opts, devices);
    }
    kube_families(&mut b, snap);
    b.families
}

/// The value recorded for cgroup `id` in one of the snapshot's sorted
/// per-cgroup lists.
fn by_id<T: Copy>(list: &[(String, T)], id: &str) -> Option<T> {
    list.binary_search_by(|(k, _)| k.as_str().cmp(id))
        .ok()
        .map(|i| list[i].1)
}

/// Pod status under kube-state-metrics' names (see [`crate::kube_state`]).
fn kube_families(b: &mut Builder, snap: &Snapshot) {
    for r in &snap.kube.restarts {
        let base = LabelSet::new(vec![
            ("namespace".into(), r.namespace.clone()),
            ("pod".into(), r.pod.clone()),
            ("uid".into(), r.uid.clone()),
            ("container".into(), r.container.clone()),
        ]);
        b.add(
            "kube_pod_container_status_restarts_total",
            "The number of container restarts per container.",
            C,
            &base,
            Vec::new(),
            r.restarts as f64,
        );
    }
    for r in &snap.kube.resources {
        let base = LabelSet::new(vec![
            ("namespace".into(), r.namespace.clone()),
            ("pod".into(), r.pod.clone()),
            ("uid".into(), r.uid.clone()),
            ("container".into(), r.container.clone()),
            ("resource".into(), r.resource.clone()),
            ("unit".into(), r.unit.clone()),
        ]);
        let (name, help) = if r.limit {
            (
                "kube_pod_container_resource_limits",
                "The number of requested limit resource by a container.",
            )
        } else {
            (
                "kube_pod_container_resource_requests",
                "The number of requested request resource by a container.",
            )
        };
        b.add(name, help, G, &base, Vec::new(), r.value);
    }
    for r in &snap.kube.node {
        // No `node` label here: the shipper puts the node's name on every
        // series (a scrape of /metrics adds `instance`).
        let base = LabelSet::new(vec![
            ("resource".into(), r.resource.clone()),
            ("unit".into(), r.unit.clone()),
        ]);
        let (name, help) = if r.allocatable {
            (
                "kube_node_status_allocatable",
                "The allocatable for different resources of a node that are available for scheduling.",
            )
        } else {
            (
                "kube_node_status_capacity",
                "The capacity for different resources of a node.",
            )
        };
        b.add(name, help, G, &base, Vec::new(), r.value);
    }
    for ns in &snap.kube.namespaces {
        let base = LabelSet::new(vec![
            ("namespace".into(), ns.name.clone()),
            ("uid".into(), ns.uid.clone()),
        ]);
        b.add(
            "kube_namespace_created",
            "Unix creation timestamp",
            G,
            &base,
            Vec::new(),
            ns.created_seconds,
        );
    }
}

fn machine_families(b: &mut Builder, snap: &Snapshot) {
    let m = &snap.machine;
    let base = LabelSet::new(vec![
        ("boot_id".into(), m.boot_id.clone()),
        ("machine_id".into(), m.machine_id.clone()),
        ("system_uuid".into(), m.system_uuid.clone()),
    ]);
    let none = Vec::new;
    b.add(
        "machine_cpu_cores",
        "Number of logical CPU cores.",
        G,
        &base,
        none(),
        m.num_cores as f64,
    );
    b.add(
        "machine_cpu_physical_cores",
        "Number of physical CPU cores.",
        G,
        &base,
        none(),
        m.num_physical_cores as f64,
    );
    b.add(
        "machine_cpu_sockets",
        "Number of CPU sockets.",
        G,
        &base,
        none(),
        m.num_sockets as f64,
    );
    b.add(
        "machine_memory_bytes",
        "Amount of memory installed on the machine.",
        G,
        &base,
        none(),
        m.memory_bytes as f64,
    );
    if let Some(fs) = &snap.kubelet_filesystem {
        let labels = || vec![("device", fs.device.clone())];
        b.add(
            "node_ephemeral_storage_usage_bytes",
            "Bytes used on the filesystem holding the kubelet's root directory (the node's ephemeral storage).",
            G,
            &base,
            labels(),
            fs.usage as f64,
        );
        b.add(
            "node_ephemeral_storage_capacity_bytes",
            "Size of the filesystem holding the kubelet's root directory (the node's ephemeral storage capacity).",
            G,
            &base,
            labels(),
            fs.limit as f64,
        );
    }
    b.add(
        "machine_swap_bytes",
        "Amount of swap memory available on the machine.",
        G,
        &base,
        none(),
        m.swap_bytes as f64,
    );
    // Facts that are text, as labels of a constant 1 (like
    // node_exporter's `node_uname_info`): the dashboard's node address.
    b.add(
        "machine_info",
        "Facts about the machine as labels: its address, kernel and OS; the value is 1.",
        G,
        &base,
        vec![
            ("address", m.address.clone()),
            ("kernel_version", m.kernel_version.clone()),
            ("os_version", m.os_version.clone()),
        ],
        1.0,
    );
}

fn base_labels(c: &ContainerSample, opts: &ExposeOptions) -> BaseLabels {
    let i = &c.info;
    let mut v = vec![
        ("container".to_string(), i.container.clone()),
        ("id".to_string(), i.id.clone()),
        ("image".to_string(), i.image.clone()),
        // cAdvisor sets `name` from a container's first alias; raw cgroups
        // (root, pods, slices, services) have none, and dashboards rely on
        // `name!=""` to select containers.
        (
            "name".to_string(),
            if i.kind == "container" {
                i.name.clone()
            } else {
                String::new()
            },
        ),
        ("namespace".to_string(), i.namespace.clone()),
        ("pod".to_string(), i.pod.clone()),
    ];
    for key in &opts.container_labels {
        let name = format!("container_label_{}", sanitize_label_name(key));
        if v.iter().any(|(k, _)| *k == name) {
            continue; // two keys sanitising alike: the first wins, as cAdvisor
        }
        v.push((name, i.label(key).unwrap_or_default().to_string()));
    }
    LabelSet::new(v)
}

/// Replaces every character outside `[a-zA-Z0-9_]` with `_`.
pub fn sanitize_label_name(key: &str) -> String {
    key.chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '_' {
                ch
            } else {
                '_'
            }
        })
        .collect()
}

fn container_families(
    b: &mut Builder,
    snap: &Snapshot,
    c: &ContainerSample,
    opts: &ExposeOptions,
    devices: &DeviceNames,
) {
    let base = base_labels(c, opts);
    let s = &c.stats;
    let spec = &c.info.spec;
    let none = Vec::new;

    b.add(
        "container_last_seen",
        "Last time a container was seen by the exporter",
        G,
        &base,
        none(),
        b.timestamp_ms.map_or(snap.timestamp_ms, NonZeroI64::get) as f64 / 1000.0,
    );
    b.add(
        "container_start_time_seconds",
        "Start time of the container since unix epoch in seconds.",
        G,
        &base,
        none(),
        c.info.creation_time_seconds,
    );
    b.add(
        "container_creation_time_seconds",
        "Creation time of the container since unix epoch in seconds.",
        G,
        &base,
        none(),
        c.info.creation_time_seconds,
    );

    // Limits.
    if let Some(p) = spec.cpu_period_us {
        b.add(
            "container_spec_cpu_period",
            "CPU period of the container.",
            G,
            &base,
            none(),
            p as f64,
        );
    }
    if let Some(q) = spec.cpu_quota_us {
        b.add(
            "container_spec_cpu_quota",
            "CPU quota of the container.",
            G,
            &base,
            none(),
            q as f64,
        );
    }
    if let Some(sh) = spec.cpu_shares {
        b.add(
            "container_spec_cpu_shares",
            "CPU share of the container.",
            G,
            &base,
            none(),
            sh as f64,
        );
    }
    b.add(
        "container_spec_memory_limit_bytes",
        "Memory limit for the container.",
        G,
        &base,
        none(),
        spec.memory_limit.unwrap_or(0) as f64,
    );
    b.add(
        "container_spec_memory_swap_limit_bytes",
        "Memory swap limit for the container.",
        G,
        &base,
        none(),
        spec.memory_swap_limit.unwrap_or(0) as f64,
    );
    b.add(
        "container_spec_memory_reservation_limit_bytes",
        "Memory reservation limit for the container.",
        G,
        &base,
        none(),
        spec.memory_reservation.unwrap_or(0) as f64,
    );

    // CPU.
    if s.cpu.usage_ns > 0 {
        b.add(
            "container_cpu_usage_seconds_total",
            "Cumulative cpu time consumed in seconds.",
            C,
            &base,
            vec![("cpu", "total".to_string())],
            s.cpu.usage_ns as f64 * NS,
        );
    }
    b.add(
        "container_cpu_user_seconds_total",
        "Cumulative user cpu time consumed in seconds.",
        C,
        &base,
        none(),
        s.cpu.user_ns as f64 * NS,
    );
    b.add(
        "container_cpu_system_seconds_total",
        "Cumulative system cpu time consumed in seconds.",
        C,
        &base,
        none(),
        s.cpu.system_ns as f64 * NS,
    );
    // cAdvisor emits throttling only for containers with a quota.
    if let (Some(cfs), Some(_)) = (&s.cpu.cfs, spec.cpu_quota_us) {
        b.add(
            "container_cpu_cfs_periods_total",
            "Number of elapsed enforcement period intervals.",
            C,
            &base,
            none(),
            cfs.periods as f64,
        );
        b.add(
            "container_cpu_cfs_throttled_periods_total",
            "Number of throttled period intervals.",
            C,
            &base,
            none(),
            cfs.throttled_periods as f64,
        );
        b.add(
            "container_cpu_cfs_throttled_seconds_total",
            "Total time duration the container has been throttled.",
            C,
            &base,
            none(),
            cfs.throttled_ns as f64 * NS,
        );
        if let Some(n) = cfs.burst_periods {
            b.add(
                "container_cpu_cfs_burst_periods_total",
                "Number of periods when burst occurs.",
                C,
                &base,
                none(),
                n as f64,
            );
        }
        if let Some(n) = cfs.burst_ns {
            b.add(
                "container_cpu_cfs_burst_seconds_total",
                "Total time duration the container has been bursted.",
                C,
                &base,
                none(),
                n as f64 * NS,
            );
        }
    }

    // Memory.
    let m = &s.memory;
    let gauges: [(&'static str, &'static str, u64); 9] = [
        (
            "container_memory_cache",
            "Number of bytes of page cache memory.",
            m.cache,
        ),
        ("container_memory_rss", "Size of RSS in bytes.", m.rss),
        (
            "container_memory_kernel_usage",
            "Size of kernel memory allocated in bytes.",
            m.kernel,
        ),
        (
            "container_memory_mapped_file",
            "Size of memory mapped files in bytes.",
            m.mapped_file,
        ),
        (
            "container_memory_swap",
            "Container swap usage in bytes.",
            m.swap,
        ),
        (
            "container_memory_usage_bytes",
            "Current memory usage in bytes, including all memory regardless of when it was accessed",
            m.usage,
        ),
        (
            "container_memory_working_set_bytes",
            "Current working set in bytes.",
            m.working_set,
        ),
        (
            "container_memory_total_active_file_bytes",
            "Current total active file in bytes.",
            m.active_file,
        ),
        (
            "container_memory_total_inactive_file_bytes",
            "Current total inactive file in bytes.",
            m.inactive_file,
        ),
    ];
    for (name, help, v) in gauges {
        b.add(name, help, G, &base, none(), v as f64);
    }
    if let Some(max) = m.max_usage {
        b.add(
            "container_memory_max_usage_bytes",
            "Maximum memory usage recorded in bytes",
            G,
            &base,
            none(),
            max as f64,
        );
    }
    b.add(
        "container_memory_failcnt",
        "Number of memory usage hits limits",
        G,
        &base,
        none(),
        m.failcnt as f64,
    );
    for (kind, v) in [("pgfault", m.pgfault), ("pgmajfault", m.pgmajfault)] {
        b.add(
            "container_memory_failures_total",
            "Cumulative count of memory allocation failures.",
            C,
            &base,
            vec![
                ("failure_type", kind.to_string()),
                ("scope", "container".to_string()),
            ],
            v as f64,
        );
    }
    b.add(
        "container_oom_events_total",
        "Count of out of memory events observed for the container",
        C,
        &base,
        none(),
        m.oom_kills as f64,
    );

    // Block I/O.
    for d in &s.blkio {
        let dev = devices.name(d.major, d.minor);
        let dl = || vec![("device", dev.clone())];
        b.add(
            "container_fs_reads_bytes_total",
            "Cumulative count of bytes read",
            C,
            &base,
            dl(),
            d.read_bytes as f64,
        );
        b.add(
            "container_fs_writes_bytes_total",
            "Cumulative count of bytes written",
            C,
            &base,
            dl(),
            d.write_bytes as f64,
        );
        b.add(
            "container_fs_reads_total",
            "Cumulative count of reads completed",
            C,
            &base,
            dl(),
            d.reads as f64,
        );
        b.add(
            "container_fs_writes_total",
            "Cumulative count of writes completed",
            C,
            &base,
            dl(),
            d.writes as f64,
        );
        for (op, v) in [("Read", d.read_bytes), ("Write", d.write_bytes)] {
            b.add(
                "container_blkio_device_usage_total",
                "Blkio Device bytes usage",
                C,
                &base,
                vec![
                    ("device", dev.clone()),
                    ("major", d.major.to_string()),
                    ("minor", d.minor.to_string()),
                    ("operation", op.to_string()),
                ],
                v as f64,
            );
        }
    }

    // Tasks.
    if let Some(n) = s.pids.current {
        b.add(
            "container_threads",
            "Number of threads running inside the container",
            G,
            &base,
            none(),
            n as f64,
        );
        b.add(
            "container_threads_max",
            "Maximum number of threads allowed inside the container, infinity if value is zero",
            G,
            &base,
            none(),
            s.pids.limit.unwrap_or(0) as f64,
        );
    }

    // Pressure.
    if let Some(p) = &s.pressure {
        for (res, psi) in [("cpu", &p.cpu), ("memory", &p.memory), ("io", &p.io)] {
            let (waiting, stalled) = psi_names(res);
            b.add(
                waiting.0,
                waiting.1,
                C,
                &base,
                none(),
                psi.some_total_us as f64 * US,
            );
            b.add(
                stalled.0,
                stalled.1,
                C,
                &base,
                none(),
                psi.full_total_us as f64 * US,
            );
        }
    }

    // Network.
    for i in &s.network {
        let il = || vec![("interface", i.name.clone())];
        let rows: [(&'static str, &'static str, u64); 8] = [
            (
                "container_network_receive_bytes_total",
                "Cumulative count of bytes received",
                i.rx_bytes,
            ),
            (
                "container_network_receive_packets_total",
                "Cumulative count of packets received",
                i.rx_packets,
            ),
            (
                "container_network_receive_packets_dropped_total",
                "Cumulative count of packets dropped while receiving",
                i.rx_dropped,
            ),
            (
                "container_network_receive_errors_total",
                "Cumulative count of errors encountered while receiving",
                i.rx_errors,
            ),
            (
                "container_network_transmit_bytes_total",
                "Cumulative count of bytes transmitted",
                i.tx_bytes,
            ),
            (
                "container_network_transmit_packets_total",
                "Cumulative count of packets transmitted",
                i.tx_packets,
            ),
            (
                "container_network_transmit_packets_dropped_total",
                "Cumulative count of packets dropped while transmitting",
                i.tx_dropped,
            ),
            (
                "container_network_transmit_errors_total",
                "Cumulative count of errors encountered while transmitting",
                i.tx_errors,
            ),
        ];
        for (name, help, v) in rows {
            b.add(name, help, C, &base, il(), v as f64);
        }
    }

    if let Some(v) = by_id(&snap.cpu_load, &c.info.id) {
        b.add(
            "container_cpu_load_average_10s",
            "Value of container cpu load average over the last 10 seconds.",
            G,
            &base,
            none(),
            v,
        );
    }
    if let Some(v) = by_id(&snap.log_usage, &c.info.id) {
        b.add(
            "container_logs_usage_bytes",
            "Bytes of the container's log files kept by the kubelet (current and rotated).",
            G,
            &base,
            none(),
            v as f64,
        );
    }

    // Filesystems: the node's for the root cgroup, the writable layer for
    // containers.
    let fss: &[FilesystemStats] = if c.info.id == "/" {
        &snap.node_filesystems
    } else {
        &s.filesystem
    };
    for f in fss {
        let dl = || vec![("device", f.device.clone())];
        b.add(
            "container_fs_usage_bytes",
            "Number of bytes that are consumed by the container on this filesystem.",
            G,
            &base,
            dl(),
            f.usage as f64,
        );
        b.add(
            "container_fs_limit_bytes",
            "Number of bytes that can be consumed by the container on this filesystem.",
            G,
            &base,
            dl(),
            f.limit as f64,
        );
        b.add(
            "container_fs_available_bytes",
            "Number of bytes available to non-root users on this filesystem.",
            G,
            &base,
            dl(),
            f.available as f64,
        );
        b.add(
            "container_fs_inodes_total",
            "Number of Inodes",
            C,
            &base,
            dl(),
            f.inodes as f64,
        );
        b.add(
            "container_fs_inodes_free",
            "Number of available Inodes",
            G,
            &base,
            dl(),
            f.inodes_free as f64,
        );
    }
}

fn psi_names(res: &str) -> ((&'static str, &'static str), (&'static str, &'static str)) {
    match res {
        "cpu" => (
            (
                "container_pressure_cpu_waiting_seconds_total",
                "Total time duration tasks in the container have waited due to CPU pressure.",
            ),
            (
                "container_pressure_cpu_stalled_seconds_total",
                "Total time duration no tasks in the container could make progress due to CPU congestion.",
            ),
        ),
        "memory" => (
            (
                "container_pressure_memory_waiting_seconds_total",
                "Total time duration tasks in the container have waited due to memory pressure.",
            ),
            (
                "container_pressure_memory_stalled_seconds_total",
                "Total time duration no tasks in the container could make progress due to memory congestion.",
            ),
        ),
        _ => (
            (
                "container_pressure_io_waiting_seconds_total",
                "Total time duration tasks in the container have waited due to IO pressure.",
            ),
            (
                "container_pressure_io_stalled_seconds_total",
                "Total time duration no tasks in the container could make progress due to IO congestion.",
            ),
        ),
    }
}

/// Resolves block devices' `major:minor` to `/dev/<name>` through
/// `/sys/dev/block`, remembering every answer (devices don't get renamed
/// under a running agent often enough to matter).
#[derive(Debug, Default)]
pub struct DeviceNames {
    sys_root: PathBuf,
    cache: std::sync::Mutex<HashMap<(u64, u64), String>>,
}

impl DeviceNames {
    /// Resolves names under `sys_root` (normally `/sys`).
    pub fn new(sys_root: &Path) -> Self {
        Self {
            sys_root: sys_root.to_path_buf(),
            cache: Default::default(),
        }
    }

    /// `/dev/<name>` for the device, or `major:minor` when unknown.
    pub fn name(&self, major: u64, minor: u64) -> String {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry((major, minor))
            .or_insert_with(|| {
                let link = self.sys_root.join(format!("dev/block/{major}:{minor}"));
                std::fs::read_link(&link)
                    .ok()
                    .and_then(|t| {
                        t.file_name()
                            .map(|n| format!("/dev/{}", n.to_string_lossy()))
                    })
                    .unwrap_or_else(|| format!("{major}:{minor}"))
            })
            .clone()
    }
}
