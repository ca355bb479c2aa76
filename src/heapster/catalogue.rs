//! Heapster's metric and label catalogue: every metric name the API knows
//! with its description, type, value type and units, which of them the
//! export schema lists (and in which order), the label descriptors, and the
//! legacy dash-style aliases (reference §5, §10, §12).

use serde::Serialize;

/// Whether a metric accumulates or is a point-in-time value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    /// Grows from the entity's start (counters, uptime).
    Cumulative,
    /// A value at an instant.
    Gauge,
}

/// How a value is represented on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// Whole numbers.
    Int64,
    /// Floating point.
    Double,
}

/// The unit a metric is declared in. `Count` renders as no unit at all,
/// which is why `cpu/limit` (millicores in practice) carries none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Units {
    /// Plain count (omitted from the schema).
    Count,
    /// Bytes.
    Bytes,
    /// Milliseconds.
    Milliseconds,
    /// Nanoseconds.
    Nanoseconds,
    /// Thousandths of a CPU core.
    Millicores,
}

impl Units {
    /// The schema's rendering, `None` for a count.
    pub fn as_schema(self) -> Option<&'static str> {
        match self {
            Units::Count => None,
            Units::Bytes => Some("bytes"),
            Units::Milliseconds => Some("ms"),
            Units::Nanoseconds => Some("ns"),
            Units::Millicores => Some("millicores"),
        }
    }
}

/// A label key and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LabelDescriptor {
    /// The key.
    pub key: &'static str,
    /// For a person.
    pub description: &'static str,
}

/// The extra label of filesystem and disk series.
pub const RESOURCE_ID: LabelDescriptor = LabelDescriptor {
    key: "resource_id",
    description: "Identifier(s) specific to a metric",
};

/// The extra labels of accelerator series.
pub const ACCELERATOR_LABELS: [LabelDescriptor; 3] = [
    LabelDescriptor {
        key: "make",
        description: "Make of the accelerator (nvidia, amd, google etc.)",
    },
    LabelDescriptor {
        key: "model",
        description: "Model of the accelerator (tesla-p100, tesla-k80 etc.)",
    },
    LabelDescriptor {
        key: "accelerator_id",
        description: "ID of the accelerator",
    },
];

/// Labels every exported entity may carry (`common_labels` of the schema).
pub const COMMON_LABELS: [LabelDescriptor; 5] = [
    LabelDescriptor {
        key: "nodename",
        description: "nodename where the container ran",
    },
    LabelDescriptor {
        key: "hostname",
        description: "Hostname where the container ran",
    },
    LabelDescriptor {
        key: "host_id",
        description: "Identifier specific to a host. Set by cloud provider or user",
    },
    LabelDescriptor {
        key: "container_name",
        description: "User-provided name of the container or full cgroup name for system containers",
    },
    LabelDescriptor {
        key: "container_base_image",
        description: "User-defined image name that is run inside the container",
    },
];

/// Labels of pods and pod containers (`pod_labels` of the schema).
pub const POD_LABELS: [LabelDescriptor; 4] = [
    LabelDescriptor {
        key: "pod_name",
        description: "The name of the pod",
    },
    LabelDescriptor {
        key: "pod_id",
        description: "The unique ID of the pod",
    },
    LabelDescriptor {
        key: "namespace_id",
        description: "The UID of namespace of the pod",
    },
    LabelDescriptor {
        key: "labels",
        description: "Comma-separated list of user-provided labels",
    },
];

/// Which extra labels select one series of a labeled metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricLabels {
    /// A scalar metric: one series per entity.
    None,
    /// One series per filesystem or disk device (`resource_id`).
    ResourceId,
    /// One series per accelerator (`make`, `model`, `accelerator_id`).
    Accelerator,
}

impl MetricLabels {
    /// The label descriptors, in schema order.
    pub fn descriptors(self) -> &'static [LabelDescriptor] {
        match self {
            MetricLabels::None => &[],
            MetricLabels::ResourceId => std::slice::from_ref(&RESOURCE_ID),
            MetricLabels::Accelerator => &ACCELERATOR_LABELS,
        }
    }
}

/// One metric of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// Heapster's name (`cpu/usage_rate`).
    pub name: &'static str,
    /// What it measures.
    pub description: &'static str,
    /// Cumulative or gauge.
    pub kind: MetricType,
    /// Integer or float.
    pub value_type: ValueType,
    /// Declared units.
    pub units: Units,
    /// Extra labels, for labeled metrics.
    pub labels: MetricLabels,
    /// Listed by `/api/v1/metric-export-schema` and exported by
    /// `/api/v1/metric-export`.
    pub exported: bool,
}

const fn m(
    name: &'static str,
    description: &'static str,
    kind: MetricType,
    value_type: ValueType,
    units: Units,
    labels: MetricLabels,
    exported: bool,
) -> MetricDef {
    MetricDef {
        name,
        description,
        kind,
        value_type,
        units,
        labels,
        exported,
    }
}

use MetricLabels::{Accelerator as ACC, None as SCALAR, ResourceId as RID};
use MetricType::{Cumulative as CUM, Gauge as GAUGE};
use Units::{Bytes, Count, Milliseconds, Nanoseconds};
use ValueType::{Double, Int64};

/// Every metric, exported ones first in the schema's order (standard
/// metrics, the two limits, labeled metrics), then the model-only ones
/// (rates, requests, node capacity and utilisation).
#[rustfmt::skip]
pub const METRICS: &[MetricDef] = &[
    m("uptime", "Number of milliseconds since the container was started", CUM, Int64, Milliseconds, SCALAR, true),
    m("cpu/usage", "Cumulative CPU usage on all cores", CUM, Int64, Nanoseconds, SCALAR, true),
    m("cpu/load", "CPU load", GAUGE, Int64, Count, SCALAR, true),
    m("ephemeral_storage/usage", "Ephemeral storage usage", GAUGE, Int64, Bytes, SCALAR, true),
    m("memory/usage", "Total memory usage", GAUGE, Int64, Bytes, SCALAR, true),
    m("memory/rss", "RSS memory usage", GAUGE, Int64, Bytes, SCALAR, true),
    m("memory/cache", "Cache memory usage", GAUGE, Int64, Bytes, SCALAR, true),
    m("memory/working_set", "Total working set usage. Working set is the memory being used and not easily dropped by the kernel", GAUGE, Int64, Bytes, SCALAR, true),
    m("memory/page_faults", "Number of page faults", CUM, Int64, Count, SCALAR, true),
    m("memory/major_page_faults", "Number of major page faults", CUM, Int64, Count, SCALAR, true),
    m("network/rx", "Cumulative number of bytes received over the network", CUM, Int64, Bytes, SCALAR, true),
    m("network/rx_errors", "Cumulative number of errors while receiving over the network", CUM, Int64, Count, SCALAR, true),
    m("network/tx", "Cumulative number of bytes sent over the network", CUM, Int64, Bytes, SCALAR, true),
    m("network/tx_errors", "Cumulative number of errors while sending over the network", CUM, Int64, Count, SCALAR, true),
    m("cpu/limit", "CPU hard limit in millicores.", GAUGE, Int64, Count, SCALAR, true),
    m("memory/limit", "Memory hard limit in bytes.", GAUGE, Int64, Bytes, SCALAR, true),
    m("disk/io_read_bytes", "Number of bytes read from a disk partition", CUM, Int64, Bytes, RID, true),
    m("disk/io_read_bytes_rate", "Number of bytes read from a disk partition per second", GAUGE, Double, Count, RID, true),
    m("disk/io_write_bytes", "Number of bytes written to a disk partition", CUM, Int64, Bytes, RID, true),
    m("disk/io_write_bytes_rate", "Number of bytes written to a disk partition per second", GAUGE, Double, Count, RID, true),
    m("filesystem/usage", "Total number of bytes consumed on a filesystem", GAUGE, Int64, Bytes, RID, true),
    m("filesystem/limit", "The total size of filesystem in bytes", GAUGE, Int64, Bytes, RID, true),
    m("filesystem/available", "The number of available bytes remaining in a the filesystem", GAUGE, Int64, Bytes, RID, true),
    m("filesystem/inodes", "The number of available inodes in a the filesystem", GAUGE, Int64, Bytes, RID, true),
    m("filesystem/inodes_free", "The number of free inodes remaining in a the filesystem", GAUGE, Int64, Bytes, RID, true),
    m("accelerator/memory_total", "Memory capacity of an accelerator.", GAUGE, Int64, Bytes, ACC, true),
    m("accelerator/memory_used", "Memory used of an accelerator.", GAUGE, Int64, Bytes, ACC, true),
    m("accelerator/duty_cycle", "Duty cycle of an accelerator.", GAUGE, Int64, Count, ACC, true),
    // Model-only metrics.
    m("cpu/usage_rate", "CPU usage on all cores in millicores", GAUGE, Int64, Count, SCALAR, false),
    m("cpu/request", "CPU request (the guaranteed amount of resources) in millicores.", GAUGE, Int64, Count, SCALAR, false),
    m("memory/request", "Memory request (the guaranteed amount of resources) in bytes.", GAUGE, Int64, Bytes, SCALAR, false),
    m("memory/page_faults_rate", "Number of page faults per second", GAUGE, Double, Count, SCALAR, false),
    m("memory/major_page_faults_rate", "Number of major page faults per second", GAUGE, Double, Count, SCALAR, false),
    m("network/rx_rate", "Number of bytes received over the network per second", GAUGE, Double, Count, SCALAR, false),
    m("network/rx_errors_rate", "Number of errors while receiving over the network per second", GAUGE, Double, Count, SCALAR, false),
    m("network/tx_rate", "Number of bytes sent over the network per second", GAUGE, Double, Count, SCALAR, false),
    m("network/tx_errors_rate", "Number of errors while sending over the network per second", GAUGE, Double, Count, SCALAR, false),
    m("cpu/node_capacity", "Cpu capacity of a node", GAUGE, Double, Count, SCALAR, false),
    m("cpu/node_allocatable", "Cpu allocatable of a node", GAUGE, Double, Count, SCALAR, false),
    m("cpu/node_reservation", "Share of cpu that is reserved on the node allocatable", GAUGE, Double, Count, SCALAR, false),
    m("cpu/node_utilization", "CPU utilization as a share of node allocatable", GAUGE, Double, Count, SCALAR, false),
    m("memory/node_capacity", "Memory capacity of a node", GAUGE, Double, Count, SCALAR, false),
    m("memory/node_allocatable", "Memory allocatable of a node", GAUGE, Double, Count, SCALAR, false),
    m("memory/node_reservation", "Share of memory that is reserved on the node allocatable", GAUGE, Double, Count, SCALAR, false),
    m("memory/node_utilization", "Memory utilization as a share of memory allocatable", GAUGE, Double, Count, SCALAR, false),
    m("ephemeral_storage/node_capacity", "Ephemeral storage capacity of a node", GAUGE, Double, Count, SCALAR, false),
    m("ephemeral_storage/node_allocatable", "Ephemeral storage allocatable of a node", GAUGE, Double, Count, SCALAR, false),
    m("ephemeral_storage/node_reservation", "Share of ephemeral storage that is reserved on the node allocatable", GAUGE, Double, Count, SCALAR, false),
    m("ephemeral_storage/node_utilization", "Ephemeral storage utilization as a share of ephemeral storage allocatable", GAUGE, Double, Count, SCALAR, false),
    m("ephemeral_storage/request", "Ephemeral storage request (the guaranteed amount of resources) in bytes.", GAUGE, Int64, Bytes, SCALAR, false),
    m("ephemeral_storage/limit", "Ephemeral storage hard limit in bytes.", GAUGE, Int64, Bytes, SCALAR, false),
    m("restart_count", "Number of container restarts", CUM, Int64, Count, SCALAR, false),
];

/// Legacy dash-style names still accepted by every `{metric-name}` route.
pub const ALIASES: [(&str, &str); 5] = [
    ("cpu-usage", "cpu/usage_rate"),
    ("cpu-limit", "cpu/limit"),
    ("memory-limit", "memory/limit"),
    ("memory-usage", "memory/usage"),
    ("memory-working", "memory/working_set"),
];

/// The metric a name (or legacy alias) refers to.
pub fn lookup(name: &str) -> Option<&'static MetricDef> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, target)| target);
    METRICS.iter().find(|d| d.name == name)
}

/// The metrics `/api/v1/metric-export-schema` lists, in its order.
pub fn exported() -> impl Iterator<Item = &'static MetricDef> {
    METRICS.iter().filter(|d| d.exported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_aliases_resolve() {
        for (i, a) in METRICS.iter().enumerate() {
            assert!(
                METRICS[i + 1..].iter().all(|b| b.name != a.name),
                "{} twice",
                a.name
            );
        }
        for (alias, target) in ALIASES {
            assert_eq!(lookup(alias).map(|d| d.name), Some(target));
        }
        assert!(lookup("cpu/nonsense").is_none());
    }

    #[test]
    fn exported_metrics_come_first() {
        let first_model_only = METRICS.iter().position(|d| !d.exported).unwrap();
        assert!(METRICS[first_model_only..].iter().all(|d| !d.exported));
        assert_eq!(exported().count(), 28);
    }
}
