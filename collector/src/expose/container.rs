//! The per-container metrics, as a table: one entry per family, each
//! saying how to find a container's samples of it.
//!
//! A table rather than code that adds samples container by container,
//! because a scrape is written family by family (the text format wants a
//! family's samples together): with the table, the scrape's text
//! ([`super::text::TextChunks`]) and remote-write ([`crate::ship`]) walk
//! the snapshot family by family and write each sample as they find it.
//! The agent used to build every sample first, ~80 000 of them at 2000
//! cgroups, which was a quarter of a scrape's time and set the agent's
//! peak memory.

use std::num::NonZeroI64;

use super::families::{DeviceNames, MetricKind};
use crate::snapshot::{ContainerSample, Snapshot};
use crate::stats::{BlkioDevice, CfsStats, FilesystemStats, InterfaceStats};

use MetricKind::{Counter as C, Gauge as G};

/// The labels a sample has besides its container's: `interface`,
/// `device`, `cpu` … (at most four).
pub type ExtraLabels<'a> = &'a [(&'static str, &'a str)];

/// Receives a container's samples of one family: extra labels and value.
pub type Emit<'e> = dyn FnMut(ExtraLabels<'_>, f64) + 'e;

/// What a family's sample function may look at besides the container.
pub struct Context<'a> {
    /// The snapshot the container is in (its time, the node's
    /// filesystems, the per-cgroup lists kept beside the containers).
    pub snap: &'a Snapshot,
    /// Block device names for `device` labels.
    pub devices: &'a DeviceNames,
}

/// One per-container metric family: its name, help and type, and how to
/// find a container's samples of it.
pub struct ContainerMetric {
    /// Metric name (cAdvisor's).
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Type.
    pub kind: MetricKind,
    samples: Samples,
}

/// How a family finds a container's samples.
enum Samples {
    /// At most one, without extra labels (most families).
    One(fn(&Context<'_>, &ContainerSample) -> Option<f64>),
    /// One per block device with data, labelled `device`.
    PerDevice(fn(&BlkioDevice) -> u64),
    /// One per network interface, labelled `interface`.
    PerInterface(fn(&InterfaceStats) -> u64),
    /// One per filesystem, labelled `device`.
    PerFilesystem(fn(&FilesystemStats) -> u64),
    /// Any number, each with its own extra labels.
    Many(fn(&Context<'_>, &ContainerSample, &mut Emit<'_>)),
}

impl ContainerMetric {
    /// Calls `emit` once for each of the container's samples of this
    /// family (not at all when the container has no such figure).
    pub fn samples(&self, cx: &Context<'_>, c: &ContainerSample, emit: &mut Emit<'_>) {
        match self.samples {
            Samples::One(value) => {
                if let Some(v) = value(cx, c) {
                    emit(&[], v)
                }
            }
            Samples::PerDevice(value) => {
                for d in &c.stats.blkio {
                    cx.devices.with_name(d.major, d.minor, |dev| {
                        emit(&[("device", dev)], value(d) as f64)
                    });
                }
            }
            Samples::PerInterface(value) => {
                for i in &c.stats.network {
                    emit(&[("interface", &i.name)], value(i) as f64);
                }
            }
            Samples::PerFilesystem(value) => {
                for f in filesystems(cx, c) {
                    emit(&[("device", &f.device)], value(f) as f64);
                }
            }
            Samples::Many(samples) => samples(cx, c, emit),
        }
    }
}

/// When a container's samples were read, if earlier than the snapshot
/// they are in (an aggregate cgroup read on a slower cadence, carried
/// over); `None`: at the snapshot's time.
pub fn read_at(snap: &Snapshot, c: &ContainerSample) -> Option<NonZeroI64> {
    let at = c.stats.timestamp_ms;
    NonZeroI64::new(at).filter(|_| at > 0 && at < snap.timestamp_ms)
}

/// The value recorded for cgroup `id` in one of the snapshot's sorted
/// per-cgroup lists.
fn by_id<T: Copy>(list: &[(String, T)], id: &str) -> Option<T> {
    list.binary_search_by(|(k, _)| k.as_str().cmp(id))
        .ok()
        .map(|i| list[i].1)
}

/// Filesystems of a container's `container_fs_*` series: the node's for
/// the root cgroup, the writable layer's for the others.
fn filesystems<'a>(cx: &Context<'a>, c: &'a ContainerSample) -> &'a [FilesystemStats] {
    if c.info.id == "/" {
        &cx.snap.node_filesystems
    } else {
        &c.stats.filesystem
    }
}

/// A family with at most one sample per container and no extra labels.
const fn one(
    name: &'static str,
    help: &'static str,
    kind: MetricKind,
    value: fn(&Context<'_>, &ContainerSample) -> Option<f64>,
) -> ContainerMetric {
    ContainerMetric {
        name,
        help,
        kind,
        samples: Samples::One(value),
    }
}

/// A family with any number of samples per container, with extra labels.
const fn many(
    name: &'static str,
    help: &'static str,
    kind: MetricKind,
    samples: fn(&Context<'_>, &ContainerSample, &mut Emit<'_>),
) -> ContainerMetric {
    ContainerMetric {
        name,
        help,
        kind,
        samples: Samples::Many(samples),
    }
}

/// A block I/O family: one sample per device with data.
const fn per_device(
    name: &'static str,
    help: &'static str,
    value: fn(&BlkioDevice) -> u64,
) -> ContainerMetric {
    ContainerMetric {
        name,
        help,
        kind: C,
        samples: Samples::PerDevice(value),
    }
}

/// A network family: one sample per interface, all counters.
const fn per_interface(
    name: &'static str,
    help: &'static str,
    value: fn(&InterfaceStats) -> u64,
) -> ContainerMetric {
    ContainerMetric {
        name,
        help,
        kind: C,
        samples: Samples::PerInterface(value),
    }
}

/// A filesystem family: one sample per filesystem.
const fn per_filesystem(
    name: &'static str,
    help: &'static str,
    kind: MetricKind,
    value: fn(&FilesystemStats) -> u64,
) -> ContainerMetric {
    ContainerMetric {
        name,
        help,
        kind,
        samples: Samples::PerFilesystem(value),
    }
}

const NS: f64 = 1e-9;
const US: f64 = 1e-6;

/// Every per-container family, in the order they are written. cAdvisor's
/// names, types, units and labels (`cadvisor.md` §7.2).
pub const CONTAINER_METRICS: &[ContainerMetric] = &[
    one(
        "container_last_seen",
        "Last time a container was seen by the exporter",
        G,
        |cx, c| {
            let at = read_at(cx.snap, c).map_or(cx.snap.timestamp_ms, NonZeroI64::get);
            Some(at as f64 / 1000.0)
        },
    ),
    one(
        "container_start_time_seconds",
        "Start time of the container since unix epoch in seconds.",
        G,
        |_, c| Some(c.info.creation_time_seconds),
    ),
    one(
        "container_creation_time_seconds",
        "Creation time of the container since unix epoch in seconds.",
        G,
        |_, c| Some(c.info.creation_time_seconds),
    ),
    // Limits.
    one(
        "container_spec_cpu_period",
        "CPU period of the container.",
        G,
        |_, c| c.info.spec.cpu_period_us.map(|v| v as f64),
    ),
    one(
        "container_spec_cpu_quota",
        "CPU quota of the container.",
        G,
        |_, c| c.info.spec.cpu_quota_us.map(|v| v as f64),
    ),
    one(
        "container_spec_cpu_shares",
        "CPU share of the container.",
        G,
        |_, c| c.info.spec.cpu_shares.map(|v| v as f64),
    ),
    one(
        "container_spec_memory_limit_bytes",
        "Memory limit for the container.",
        G,
        |_, c| Some(c.info.spec.memory_limit.unwrap_or(0) as f64),
    ),
    one(
        "container_spec_memory_swap_limit_bytes",
        "Memory swap limit for the container.",
        G,
        |_, c| Some(c.info.spec.memory_swap_limit.unwrap_or(0) as f64),
    ),
    one(
        "container_spec_memory_reservation_limit_bytes",
        "Memory reservation limit for the container.",
        G,
        |_, c| Some(c.info.spec.memory_reservation.unwrap_or(0) as f64),
    ),
    // CPU.
    many(
        "container_cpu_usage_seconds_total",
        "Cumulative cpu time consumed in seconds.",
        C,
        |_, c, emit| {
            if c.stats.cpu.usage_ns > 0 {
                emit(&[("cpu", "total")], c.stats.cpu.usage_ns as f64 * NS)
            }
        },
    ),
    one(
        "container_cpu_user_seconds_total",
        "Cumulative user cpu time consumed in seconds.",
        C,
        |_, c| Some(c.stats.cpu.user_ns as f64 * NS),
    ),
    one(
        "container_cpu_system_seconds_total",
        "Cumulative system cpu time consumed in seconds.",
        C,
        |_, c| Some(c.stats.cpu.system_ns as f64 * NS),
    ),
    // cAdvisor emits throttling only for containers with a quota.
    one(
        "container_cpu_cfs_periods_total",
        "Number of elapsed enforcement period intervals.",
        C,
        |_, c| cfs(c).map(|s| s.periods as f64),
    ),
    one(
        "container_cpu_cfs_throttled_periods_total",
        "Number of throttled period intervals.",
        C,
        |_, c| cfs(c).map(|s| s.throttled_periods as f64),
    ),
    one(
        "container_cpu_cfs_throttled_seconds_total",
        "Total time duration the container has been throttled.",
        C,
        |_, c| cfs(c).map(|s| s.throttled_ns as f64 * NS),
    ),
    one(
        "container_cpu_cfs_burst_periods_total",
        "Number of periods when burst occurs.",
        C,
        |_, c| cfs(c).and_then(|s| s.burst_periods).map(|v| v as f64),
    ),
    one(
        "container_cpu_cfs_burst_seconds_total",
        "Total time duration the container has been bursted.",
        C,
        |_, c| cfs(c).and_then(|s| s.burst_ns).map(|v| v as f64 * NS),
    ),
    // Memory.
    one(
        "container_memory_cache",
        "Number of bytes of page cache memory.",
        G,
        |_, c| Some(c.stats.memory.cache as f64),
    ),
    one(
        "container_memory_rss",
        "Size of RSS in bytes.",
        G,
        |_, c| Some(c.stats.memory.rss as f64),
    ),
    one(
        "container_memory_kernel_usage",
        "Size of kernel memory allocated in bytes.",
        G,
        |_, c| Some(c.stats.memory.kernel as f64),
    ),
    one(
        "container_memory_mapped_file",
        "Size of memory mapped files in bytes.",
        G,
        |_, c| Some(c.stats.memory.mapped_file as f64),
    ),
    one(
        "container_memory_swap",
        "Container swap usage in bytes.",
        G,
        |_, c| Some(c.stats.memory.swap as f64),
    ),
    one(
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
        G,
        |_, c| Some(c.stats.memory.usage as f64),
    ),
    one(
        "container_memory_working_set_bytes",
        "Current working set in bytes.",
        G,
        |_, c| Some(c.stats.memory.working_set as f64),
    ),
    one(
        "container_memory_total_active_file_bytes",
        "Current total active file in bytes.",
        G,
        |_, c| Some(c.stats.memory.active_file as f64),
    ),
    one(
        "container_memory_total_inactive_file_bytes",
        "Current total inactive file in bytes.",
        G,
        |_, c| Some(c.stats.memory.inactive_file as f64),
    ),
    one(
        "container_memory_max_usage_bytes",
        "Maximum memory usage recorded in bytes",
        G,
        |_, c| c.stats.memory.max_usage.map(|v| v as f64),
    ),
    one(
        "container_memory_failcnt",
        "Number of memory usage hits limits",
        G,
        |_, c| Some(c.stats.memory.failcnt as f64),
    ),
    many(
        "container_memory_failures_total",
        "Cumulative count of memory allocation failures.",
        C,
        |_, c, emit| {
            let m = &c.stats.memory;
            for (kind, v) in [("pgfault", m.pgfault), ("pgmajfault", m.pgmajfault)] {
                emit(&[("failure_type", kind), ("scope", "container")], v as f64);
            }
        },
    ),
    one(
        "container_oom_events_total",
        "Count of out of memory events observed for the container",
        C,
        |_, c| Some(c.stats.memory.oom_kills as f64),
    ),
    // Block I/O.
    per_device(
        "container_fs_reads_bytes_total",
        "Cumulative count of bytes read",
        |d| d.read_bytes,
    ),
    per_device(
        "container_fs_writes_bytes_total",
        "Cumulative count of bytes written",
        |d| d.write_bytes,
    ),
    per_device(
        "container_fs_reads_total",
        "Cumulative count of reads completed",
        |d| d.reads,
    ),
    per_device(
        "container_fs_writes_total",
        "Cumulative count of writes completed",
        |d| d.writes,
    ),
    many(
        "container_blkio_device_usage_total",
        "Blkio Device bytes usage",
        C,
        |cx, c, emit| {
            for d in &c.stats.blkio {
                cx.devices.with_name(d.major, d.minor, |dev| {
                    let (mut major, mut minor) = (itoa::Buffer::new(), itoa::Buffer::new());
                    let (major, minor) = (major.format(d.major), minor.format(d.minor));
                    for (op, v) in [("Read", d.read_bytes), ("Write", d.write_bytes)] {
                        let labels = [
                            ("device", dev),
                            ("major", major),
                            ("minor", minor),
                            ("operation", op),
                        ];
                        emit(&labels, v as f64);
                    }
                })
            }
        },
    ),
    // Tasks.
    one(
        "container_threads",
        "Number of threads running inside the container",
        G,
        |_, c| c.stats.pids.current.map(|n| n as f64),
    ),
    one(
        "container_threads_max",
        "Maximum number of threads allowed inside the container, infinity if value is zero",
        G,
        |_, c| {
            let p = &c.stats.pids;
            p.current.map(|_| p.limit.unwrap_or(0) as f64)
        },
    ),
    // Pressure (v2 only).
    one(
        "container_pressure_cpu_waiting_seconds_total",
        "Total time duration tasks in the container have waited due to CPU pressure.",
        C,
        |_, c| {
            c.stats
                .pressure
                .as_ref()
                .map(|p| p.cpu.some_total_us as f64 * US)
        },
    ),
    one(
        "container_pressure_cpu_stalled_seconds_total",
        "Total time duration no tasks in the container could make progress due to CPU congestion.",
        C,
        |_, c| {
            c.stats
                .pressure
                .as_ref()
                .map(|p| p.cpu.full_total_us as f64 * US)
        },
    ),
    one(
        "container_pressure_memory_waiting_seconds_total",
        "Total time duration tasks in the container have waited due to memory pressure.",
        C,
        |_, c| {
            c.stats
                .pressure
                .as_ref()
                .map(|p| p.memory.some_total_us as f64 * US)
        },
    ),
    one(
        "container_pressure_memory_stalled_seconds_total",
        "Total time duration no tasks in the container could make progress due to memory congestion.",
        C,
        |_, c| {
            c.stats
                .pressure
                .as_ref()
                .map(|p| p.memory.full_total_us as f64 * US)
        },
    ),
    one(
        "container_pressure_io_waiting_seconds_total",
        "Total time duration tasks in the container have waited due to IO pressure.",
        C,
        |_, c| {
            c.stats
                .pressure
                .as_ref()
                .map(|p| p.io.some_total_us as f64 * US)
        },
    ),
    one(
        "container_pressure_io_stalled_seconds_total",
        "Total time duration no tasks in the container could make progress due to IO congestion.",
        C,
        |_, c| {
            c.stats
                .pressure
                .as_ref()
                .map(|p| p.io.full_total_us as f64 * US)
        },
    ),
    // Network (containers with their own network namespace, once per pod).
    per_interface(
        "container_network_receive_bytes_total",
        "Cumulative count of bytes received",
        |i| i.rx_bytes,
    ),
    per_interface(
        "container_network_receive_packets_total",
        "Cumulative count of packets received",
        |i| i.rx_packets,
    ),
    per_interface(
        "container_network_receive_packets_dropped_total",
        "Cumulative count of packets dropped while receiving",
        |i| i.rx_dropped,
    ),
    per_interface(
        "container_network_receive_errors_total",
        "Cumulative count of errors encountered while receiving",
        |i| i.rx_errors,
    ),
    per_interface(
        "container_network_transmit_bytes_total",
        "Cumulative count of bytes transmitted",
        |i| i.tx_bytes,
    ),
    per_interface(
        "container_network_transmit_packets_total",
        "Cumulative count of packets transmitted",
        |i| i.tx_packets,
    ),
    per_interface(
        "container_network_transmit_packets_dropped_total",
        "Cumulative count of packets dropped while transmitting",
        |i| i.tx_dropped,
    ),
    per_interface(
        "container_network_transmit_errors_total",
        "Cumulative count of errors encountered while transmitting",
        |i| i.tx_errors,
    ),
    one(
        "container_cpu_load_average_10s",
        "Value of container cpu load average over the last 10 seconds.",
        G,
        |cx, c| by_id(&cx.snap.cpu_load, &c.info.id),
    ),
    one(
        "container_logs_usage_bytes",
        "Bytes of the container's log files kept by the kubelet (current and rotated).",
        G,
        |cx, c| by_id(&cx.snap.log_usage, &c.info.id).map(|v| v as f64),
    ),
    // Filesystems.
    per_filesystem(
        "container_fs_usage_bytes",
        "Number of bytes that are consumed by the container on this filesystem.",
        G,
        |f| f.usage,
    ),
    per_filesystem(
        "container_fs_limit_bytes",
        "Number of bytes that can be consumed by the container on this filesystem.",
        G,
        |f| f.limit,
    ),
    per_filesystem(
        "container_fs_available_bytes",
        "Number of bytes available to non-root users on this filesystem.",
        G,
        |f| f.available,
    ),
    per_filesystem("container_fs_inodes_total", "Number of Inodes", C, |f| {
        f.inodes
    }),
    per_filesystem(
        "container_fs_inodes_free",
        "Number of available Inodes",
        G,
        |f| f.inodes_free,
    ),
];

/// CFS throttling figures, for a container with a CPU quota.
fn cfs(c: &ContainerSample) -> Option<&CfsStats> {
    c.info.spec.cpu_quota_us.and(c.stats.cpu.cfs.as_ref())
}
