//! Metric families and samples, the machine's and pod status families,
//! and the walk over all of a snapshot's samples ([`visit_samples`]); the
//! per-container families are a table of their own
//! ([`super::container`]).

use std::collections::HashMap;
use std::num::NonZeroI64;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::container::{CONTAINER_METRICS, Context, ExtraLabels, read_at};
use crate::snapshot::{ContainerSample, Snapshot};
use MetricKind::{Counter as C, Gauge as G};

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
/// Built for the machine's and pod status families, the agent's own, and
/// by [`snapshot_families`]; the containers' samples (~80 000 at 2000
/// cgroups) are written as they are found instead.
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

/// Builds the machine's and the pod status families (a few dozen samples:
/// built as [`Family`]s; the containers' go through the
/// [`CONTAINER_METRICS`] table).
#[derive(Default)]
struct Builder {
    families: Vec<Family>,
    index: HashMap<&'static str, usize>,
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
        let i = *self.index.entry(name).or_insert_with(|| {
            self.families.push(Family {
                name,
                help,
                kind,
                samples: Vec::new(),
            });
            self.families.len() - 1
        });
        self.families[i].samples.push(Sample {
            base: base.clone(),
            extra: extra.into_boxed_slice(),
            value,
            timestamp_ms: None,
        });
    }
}

/// One sample of a snapshot, borrowed from it while a reader (remote-write,
/// [`snapshot_families`]) walks them with [`visit_samples`].
pub struct SampleView<'a> {
    /// Metric name.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Type.
    pub kind: MetricKind,
    /// The labels shared by the container's (or the machine's) samples.
    pub base: &'a BaseLabels,
    /// The labels of this sample only.
    pub extra: ExtraLabels<'a>,
    /// The value, in the metric's base unit.
    pub value: f64,
    /// As [`Sample::timestamp_ms`].
    pub timestamp_ms: Option<NonZeroI64>,
}

/// Calls `f` with every sample of a snapshot, family by family (a family's
/// samples one after the other), without building them: machine facts,
/// then each per-container family ([`CONTAINER_METRICS`]), then pod
/// status.
pub fn visit_samples(
    snap: &Snapshot,
    opts: &ExposeOptions,
    devices: &DeviceNames,
    mut f: impl FnMut(&SampleView<'_>),
) {
    visit_families(&machine_families(snap), &mut f);
    let bases: Vec<(BaseLabels, Option<NonZeroI64>)> = snap
        .containers
        .iter()
        .map(|c| (base_labels(c, opts), read_at(snap, c)))
        .collect();
    let cx = Context { snap, devices };
    for m in CONTAINER_METRICS {
        for (c, (base, timestamp_ms)) in snap.containers.iter().zip(&bases) {
            m.samples(&cx, c, &mut |extra, value| {
                f(&SampleView {
                    name: m.name,
                    help: m.help,
                    kind: m.kind,
                    base,
                    extra,
                    value,
                    timestamp_ms: *timestamp_ms,
                })
            });
        }
    }
    visit_families(&kube_families(snap), &mut f);
}

fn visit_families(families: &[Family], f: &mut impl FnMut(&SampleView<'_>)) {
    for family in families {
        for s in &family.samples {
            let extra: Vec<(&'static str, &str)> =
                s.extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            f(&SampleView {
                name: family.name,
                help: family.help,
                kind: family.kind,
                base: &s.base,
                extra: &extra,
                value: s.value,
                timestamp_ms: s.timestamp_ms,
            });
        }
    }
}

/// Builds every family of a snapshot (see [`visit_samples`]), for tests
/// and library users: a scrape, `--once` and remote-write never build
/// the container samples.
pub fn snapshot_families(
    snap: &Snapshot,
    opts: &ExposeOptions,
    devices: &DeviceNames,
) -> Vec<Family> {
    let mut families: Vec<Family> = Vec::new();
    visit_samples(snap, opts, devices, |s| {
        let sample = Sample {
            base: s.base.clone(),
            extra: s.extra.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            value: s.value,
            timestamp_ms: s.timestamp_ms,
        };
        match families.last_mut() {
            Some(f) if f.name == s.name => f.samples.push(sample),
            _ => families.push(Family {
                name: s.name,
                help: s.help,
                kind: s.kind,
                samples: vec![sample],
            }),
        }
    });
    families
}

/// Pod status under kube-state-metrics' names (see [`crate::kube_state`]).
pub fn kube_families(snap: &Snapshot) -> Vec<Family> {
    let mut b = Builder::default();
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
    b.families
}

/// Facts about the machine: cores, memory, swap, the kubelet's filesystem,
/// `machine_info`.
pub fn machine_families(snap: &Snapshot) -> Vec<Family> {
    let mut b = Builder::default();
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
    b.families
}

/// A container's labels, shared by each of its samples.
pub fn base_labels(c: &ContainerSample, opts: &ExposeOptions) -> BaseLabels {
    let mut pairs = Vec::with_capacity(6 + opts.container_labels.len());
    for_each_base_label(c, opts, |k, v| pairs.push((k.to_string(), v.to_string())));
    LabelSet::new(pairs)
}

/// A container's labels as text (`name="value",…`), as [`LabelSet::text`]
/// renders them, without keeping the pairs.
pub fn base_labels_text(c: &ContainerSample, opts: &ExposeOptions) -> Box<[u8]> {
    let mut buf = Vec::with_capacity(256);
    for_each_base_label(c, opts, |k, v| {
        if !buf.is_empty() {
            buf.push(b',');
        }
        super::text::write_label(&mut buf, k, v);
    });
    buf.into_boxed_slice()
}

/// Calls `f` with each of a container's labels, in the order they are
/// written: cAdvisor's fixed set, then the runtime labels the operator
/// chose.
fn for_each_base_label(c: &ContainerSample, opts: &ExposeOptions, mut f: impl FnMut(&str, &str)) {
    let i = &c.info;
    f("container", &i.container);
    f("id", &i.id);
    f("image", &i.image);
    // cAdvisor sets `name` from a container's first alias; raw cgroups
    // (root, pods, slices, services) have none, and dashboards rely on
    // `name!=""` to select containers.
    f("name", if i.kind == "container" { &i.name } else { "" });
    f("namespace", &i.namespace);
    f("pod", &i.pod);
    for (n, key) in opts.container_labels.iter().enumerate() {
        let name = sanitize_label_name(key);
        // Two keys sanitising alike: the first wins, as in cAdvisor.
        if opts.container_labels[..n]
            .iter()
            .any(|k| sanitize_label_name(k) == name)
        {
            continue;
        }
        f(
            &format!("container_label_{name}"),
            i.label(key).unwrap_or_default(),
        );
    }
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

/// Resolves block devices' `major:minor` to `/dev/<name>` through
/// `/sys/dev/block`, remembering every answer (devices don't get renamed
/// under a running agent often enough to matter).
#[derive(Debug, Default)]
pub struct DeviceNames {
    sys_root: PathBuf,
    cache: std::sync::Mutex<HashMap<(u64, u64), Arc<str>>>,
}

impl DeviceNames {
    /// Resolves names under `sys_root` (normally `/sys`).
    pub fn new(sys_root: &Path) -> Self {
        Self {
            sys_root: sys_root.to_path_buf(),
            cache: Default::default(),
        }
    }

    /// Calls `f` with the device's name, `/dev/<name>`, or `major:minor`
    /// when unknown (no copy: it is on each of a device's samples).
    pub fn with_name<R>(&self, major: u64, minor: u64, f: impl FnOnce(&str) -> R) -> R {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let name = cache
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
                    .into()
            })
            .clone();
        // Not under the lock: `f` may be anything.
        drop(cache);
        f(&name)
    }
}
