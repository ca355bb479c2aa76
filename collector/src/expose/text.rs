//! The Prometheus text exposition format.
//!
//! The container families (tens of thousands of samples on a busy node) are
//! written straight into one buffer: going through the `prometheus`
//! crate's model first allocates two strings per label per sample, and on
//! a 1000-container node each scrape grew the agent's heap by ~20 MiB that
//! the allocator kept. The agent's own, small registry still goes through
//! the crate's encoder, and the output of both is checked by `promtool
//! check metrics` in the tests.

use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use std::num::NonZeroI64;
use std::sync::Arc;

use super::container::{CONTAINER_METRICS, Context, read_at};
use super::families::{
    DeviceNames, ExposeOptions, Family, MetricKind, base_labels_text, kube_families,
    machine_families,
};
use crate::snapshot::Snapshot;

/// Converts families into the `prometheus` crate's model.
pub fn to_proto(families: &[Family]) -> Vec<MetricFamily> {
    families
        .iter()
        .filter(|f| !f.samples.is_empty())
        .map(|f| {
            let mut mf = MetricFamily::default();
            mf.set_name(f.name.to_string());
            mf.set_help(f.help.to_string());
            mf.set_field_type(match f.kind {
                MetricKind::Counter => MetricType::COUNTER,
                MetricKind::Gauge => MetricType::GAUGE,
            });
            let metrics = f
                .samples
                .iter()
                .map(|s| {
                    let mut m = proto::Metric::default();
                    let labels = s
                        .labels()
                        .map(|(k, v)| {
                            let mut lp = LabelPair::default();
                            lp.set_name(k.to_string());
                            lp.set_value(v.to_string());
                            lp
                        })
                        .collect();
                    m.set_label(labels);
                    if let Some(t) = s.timestamp_ms {
                        m.set_timestamp_ms(t.get());
                    }
                    match f.kind {
                        MetricKind::Counter => {
                            let mut c = proto::Counter::default();
                            c.set_value(s.value);
                            m.set_counter(c);
                        }
                        MetricKind::Gauge => {
                            let mut g = proto::Gauge::default();
                            g.set_value(s.value);
                            m.set_gauge(g);
                        }
                    }
                    m
                })
                .collect();
            mf.set_metric(metrics);
            mf
        })
        .collect()
}

/// Encodes families, then any already-built ones (e.g. the agent's own
/// registry), as Prometheus text, all in one buffer (for `--once` and
/// tests; `/metrics` streams [`TextChunks`]).
pub fn encode(
    families: Vec<Family>,
    extra: Vec<MetricFamily>,
) -> Result<Vec<u8>, prometheus::Error> {
    let mut chunks = TextChunks::new(families, extra);
    let mut buf = Vec::new();
    while chunks.fill(&mut buf, usize::MAX)? {}
    Ok(buf)
}

/// The text exposition of a snapshot (or of families), then of
/// already-built families, produced a chunk at a time as the reader takes
/// it: a dense node's text is tens of megabytes (cAdvisor's label set on
/// each of ~80 000 lines) and built whole it set the agent's peak memory,
/// twice its steady size. A snapshot's container samples are written as
/// they are found, never built (see [`super::container`]).
#[derive(Debug)]
pub struct TextChunks {
    /// Families written first (a snapshot's machine facts).
    head: FamilyText,
    /// A snapshot's per-container families.
    containers: Option<ContainerText>,
    /// Families written after those (a snapshot's pod status).
    tail: FamilyText,
    extra: Vec<MetricFamily>,
    extra_written: bool,
    chunk_size: usize,
}

/// What one chunk of `/metrics` holds, about: large enough that writing a
/// chunk costs little beside its text, small enough to stay below the
/// allocator's mmap threshold (1 MiB in the agent) and so be reused.
pub const CHUNK_SIZE: usize = 128 * 1024;

impl TextChunks {
    /// The text of `families` (empty ones are left out), then `extra`.
    pub fn new(families: Vec<Family>, extra: Vec<MetricFamily>) -> Self {
        TextChunks {
            head: FamilyText::new(families),
            containers: None,
            tail: FamilyText::new(Vec::new()),
            extra,
            extra_written: false,
            chunk_size: CHUNK_SIZE,
        }
    }

    /// The text of a snapshot's families (as
    /// [`snapshot_families`](super::snapshot_families) builds them, in the
    /// same order), then `extra`.
    pub fn snapshot(
        snap: Arc<Snapshot>,
        opts: &ExposeOptions,
        devices: Arc<DeviceNames>,
        extra: Vec<MetricFamily>,
    ) -> Self {
        let bases = snap
            .containers
            .iter()
            .map(|c| base_labels_text(c, opts))
            .collect();
        TextChunks {
            head: FamilyText::new(machine_families(&snap)),
            tail: FamilyText::new(kube_families(&snap)),
            containers: Some(ContainerText {
                snap,
                devices,
                bases,
                metric: 0,
                container: 0,
                header_written: false,
            }),
            extra,
            extra_written: false,
            chunk_size: CHUNK_SIZE,
        }
    }

    /// Chunks of about `bytes` instead of [`CHUNK_SIZE`].
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// Appends whole lines of the text to `buf` until it holds at least
    /// `min` bytes or the text ends; `false` once nothing is left.
    pub fn fill(&mut self, buf: &mut Vec<u8>, min: usize) -> Result<bool, prometheus::Error> {
        if !self.head.fill(buf, min) {
            return Ok(true);
        }
        if let Some(containers) = &mut self.containers
            && !containers.fill(buf, min)
        {
            return Ok(true);
        }
        if !self.tail.fill(buf, min) {
            return Ok(true);
        }
        if self.extra_written {
            return Ok(false);
        }
        self.extra_written = true;
        TextEncoder::new().encode(&self.extra, buf)?;
        Ok(true)
    }
}

impl Iterator for TextChunks {
    type Item = Result<Vec<u8>, prometheus::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        // Room for one more line past the chunk size, so that a chunk is
        // one allocation.
        let mut buf = Vec::with_capacity(self.chunk_size + 4096);
        match self.fill(&mut buf, self.chunk_size) {
            Ok(_) if buf.is_empty() => None,
            Ok(_) => Some(Ok(buf)),
            Err(e) => Some(Err(e)),
        }
    }
}

/// Built families being written out: the family next, and its next sample.
#[derive(Debug)]
struct FamilyText {
    families: Vec<Family>,
    family: usize,
    sample: usize,
    /// Whether the current family's `# HELP`/`# TYPE` lines are out.
    header_written: bool,
}

impl FamilyText {
    fn new(families: Vec<Family>) -> Self {
        FamilyText {
            families: families
                .into_iter()
                .filter(|f| !f.samples.is_empty())
                .collect(),
            family: 0,
            sample: 0,
            header_written: false,
        }
    }

    /// Writes lines until `buf` holds `min` bytes; `true` once all are out.
    fn fill(&mut self, buf: &mut Vec<u8>, min: usize) -> bool {
        while buf.len() < min {
            let Some(f) = self.families.get(self.family) else {
                return true;
            };
            if !self.header_written {
                write_header(buf, f.name, f.help, f.kind);
                self.header_written = true;
            }
            let end = f.samples.len();
            while self.sample < end && buf.len() < min {
                let s = &f.samples[self.sample];
                let extra = s.extra.iter().map(|(k, v)| (*k, v.as_str()));
                write_sample(buf, f.name, s.base.text(), extra, s.value, s.timestamp_ms);
                self.sample += 1;
            }
            if self.sample == end {
                self.family += 1;
                self.sample = 0;
                self.header_written = false;
            }
        }
        self.family == self.families.len()
    }
}

/// A snapshot's per-container families being written out: family by
/// family ([`CONTAINER_METRICS`]), container by container.
struct ContainerText {
    snap: Arc<Snapshot>,
    devices: Arc<DeviceNames>,
    /// Each container's labels, rendered once: they are on each of its
    /// ~40 lines.
    bases: Vec<Box<[u8]>>,
    /// The family next, and the container next in it.
    metric: usize,
    container: usize,
    /// Whether the current family's `# HELP`/`# TYPE` lines are out (they
    /// are written with its first sample: a family no container has is
    /// left out).
    header_written: bool,
}

impl std::fmt::Debug for ContainerText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerText")
            .field("containers", &self.snap.containers.len())
            .field("metric", &self.metric)
            .field("container", &self.container)
            .finish_non_exhaustive()
    }
}

impl ContainerText {
    /// Writes a container's samples at a time until `buf` holds `min`
    /// bytes; `true` once all are out.
    fn fill(&mut self, buf: &mut Vec<u8>, min: usize) -> bool {
        let cx = Context {
            snap: &self.snap,
            devices: &self.devices,
        };
        while buf.len() < min {
            let Some(m) = CONTAINER_METRICS.get(self.metric) else {
                return true;
            };
            let Some(c) = cx.snap.containers.get(self.container) else {
                self.metric += 1;
                self.container = 0;
                self.header_written = false;
                continue;
            };
            let base = &self.bases[self.container];
            let timestamp_ms = read_at(cx.snap, c);
            let header_written = &mut self.header_written;
            m.samples(&cx, c, &mut |extra, value| {
                if !*header_written {
                    write_header(buf, m.name, m.help, m.kind);
                    *header_written = true;
                }
                write_sample(
                    buf,
                    m.name,
                    base,
                    extra.iter().copied(),
                    value,
                    timestamp_ms,
                );
            });
            self.container += 1;
        }
        self.metric == CONTAINER_METRICS.len()
    }
}

/// A family's `# HELP` and `# TYPE` lines.
fn write_header(buf: &mut Vec<u8>, name: &str, help: &str, kind: MetricKind) {
    let kind: &[u8] = match kind {
        MetricKind::Counter => b"counter",
        MetricKind::Gauge => b"gauge",
    };
    buf.extend_from_slice(b"# HELP ");
    buf.extend_from_slice(name.as_bytes());
    buf.push(b' ');
    escape_help(buf, help);
    buf.extend_from_slice(b"\n# TYPE ");
    buf.extend_from_slice(name.as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(kind);
    buf.push(b'\n');
}

/// One sample's line: name, labels (the shared ones pre-rendered, then
/// the sample's own), value, and the timestamp of a sample read at an
/// earlier tick.
fn write_sample<'a>(
    buf: &mut Vec<u8>,
    name: &str,
    base: &[u8],
    extra: impl Iterator<Item = (&'a str, &'a str)>,
    value: f64,
    timestamp_ms: Option<NonZeroI64>,
) {
    buf.extend_from_slice(name.as_bytes());
    let mut open = !base.is_empty();
    if open {
        buf.push(b'{');
        buf.extend_from_slice(base);
    }
    for (k, v) in extra {
        buf.push(if open { b',' } else { b'{' });
        open = true;
        write_label(buf, k, v);
    }
    if open {
        buf.push(b'}');
    }
    buf.push(b' ');
    write_value(buf, value);
    if let Some(t) = timestamp_ms {
        buf.push(b' ');
        buf.extend_from_slice(itoa::Buffer::new().format(t.get()).as_bytes());
    }
    buf.push(b'\n');
}

/// `name="value"`, the value escaped.
pub(super) fn write_label(buf: &mut Vec<u8>, name: &str, value: &str) {
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"=\"");
    escape_label_value(buf, value);
    buf.push(b'"');
}

/// Help text escaping: backslash and newline.
fn escape_help(buf: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            _ => buf.push(b),
        }
    }
}

/// Label value escaping: backslash, double quote and newline. The runs
/// between escapes are found with a SIMD search and copied whole: label
/// values (cgroup paths, images) rarely hold any, and a byte-at-a-time
/// push, then a byte-at-a-time search, were most of a scrape's time.
fn escape_label_value(buf: &mut Vec<u8>, s: &str) {
    let mut rest = s.as_bytes();
    while let Some(at) = memchr::memchr3(b'\\', b'"', b'\n', rest) {
        buf.extend_from_slice(&rest[..at]);
        buf.extend_from_slice(match rest[at] {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            _ => b"\\n",
        });
        rest = &rest[at + 1..];
    }
    buf.extend_from_slice(rest);
}

/// Values as the format wants them: `+Inf`, `-Inf`, `NaN`, else the
/// shortest representation that reads back to the same float.
fn write_value(buf: &mut Vec<u8>, v: f64) {
    use std::io::Write;
    if v.is_nan() {
        buf.extend_from_slice(b"NaN");
    } else if v == f64::INFINITY {
        buf.extend_from_slice(b"+Inf");
    } else if v == f64::NEG_INFINITY {
        buf.extend_from_slice(b"-Inf");
    } else if v.fract() == 0.0 && v.abs() < 1e15 && !(v == 0.0 && v.is_sign_negative()) {
        // Most values are whole counts (bytes, pages, events): written as
        // integers, the same text `{v}` gives, without the float
        // formatting.
        buf.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
    } else {
        let _ = write!(buf, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expose::families::{LabelSet, Sample};
    use crate::snapshot::Snapshot;

    #[test]
    fn whole_values_are_written_as_rust_formats_them() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -5.0,
            123_456_789.0,
            1e14,
            999_999_999_999_999.0,
            -999_999_999_999_999.0,
            1e15,
            1e16,
            1e21,
            u64::MAX as f64,
            0.5,
            -2.25,
            1.5e-9,
            4503599627370497.0,
        ] {
            let mut buf = Vec::new();
            write_value(&mut buf, v);
            assert_eq!(String::from_utf8(buf).unwrap(), format!("{v}"), "{v:?}");
        }
    }

    #[test]
    fn label_values_are_escaped_between_plain_runs() {
        for (value, escaped) in [
            ("", ""),
            ("plain/path", "plain/path"),
            ("\"", "\\\""),
            ("a\\b\"c\nd\n", "a\\\\b\\\"c\\nd\\n"),
            ("é\"ü", "é\\\"ü"),
        ] {
            let mut buf = Vec::new();
            escape_label_value(&mut buf, value);
            assert_eq!(String::from_utf8(buf).unwrap(), escaped, "{value:?}");
        }
    }

    #[test]
    fn writes_the_text_format_with_escapes_and_special_values() {
        let base = LabelSet::new(vec![("id".to_string(), "/a\"b\\c\nd".to_string())]);
        let fam = Family {
            name: "m_total",
            help: "Help with \\ and\nnewline.",
            kind: MetricKind::Counter,
            samples: vec![
                Sample {
                    base: base.clone(),
                    extra: vec![("cpu", "total".into())].into(),
                    value: 1.5,
                    timestamp_ms: None,
                },
                Sample {
                    base: LabelSet::new(Vec::new()),
                    extra: Box::default(),
                    value: f64::INFINITY,
                    timestamp_ms: None,
                },
                Sample {
                    base: base.clone(),
                    extra: Box::default(),
                    value: f64::NAN,
                    timestamp_ms: None,
                },
                Sample {
                    base,
                    extra: Box::default(),
                    value: 1e21,
                    timestamp_ms: None,
                },
            ],
        };
        let text = String::from_utf8(encode(vec![fam], Vec::new()).unwrap()).unwrap();
        let expected = "# HELP m_total Help with \\\\ and\\nnewline.\n# TYPE m_total counter\n\
            m_total{id=\"/a\\\"b\\\\c\\nd\",cpu=\"total\"} 1.5\n\
            m_total +Inf\n\
            m_total{id=\"/a\\\"b\\\\c\\nd\"} NaN\n\
            m_total{id=\"/a\\\"b\\\\c\\nd\"} 1000000000000000000000\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn chunks_are_whole_lines_that_add_up_to_the_whole_text() {
        let base = LabelSet::new(vec![
            ("id".to_string(), "/kubepods/pod1/abc".to_string()),
            ("image".to_string(), "nginx:1.25".to_string()),
        ]);
        let family = |name: &'static str, n: usize| Family {
            name,
            help: "Help.",
            kind: MetricKind::Gauge,
            samples: (0..n)
                .map(|i| Sample {
                    base: base.clone(),
                    extra: if i % 2 == 0 {
                        vec![("device", format!("sd{i}"))].into()
                    } else {
                        Box::default()
                    },
                    value: i as f64 * 1.5,
                    timestamp_ms: std::num::NonZeroI64::new(1_700_000_000_000 + i as i64)
                        .filter(|_| i % 3 == 0),
                })
                .collect(),
        };
        let families = vec![family("a", 5), family("empty", 0), family("b", 40)];
        let mut own = prometheus::proto::MetricFamily::default();
        own.set_name("osprey_agent_ticks_total".into());
        own.set_help("Ticks.".into());
        own.set_field_type(prometheus::proto::MetricType::COUNTER);
        let mut m = prometheus::proto::Metric::default();
        let mut c = prometheus::proto::Counter::default();
        c.set_value(3.0);
        m.set_counter(c);
        own.set_metric(vec![m]);
        let whole = encode(families.clone(), vec![own.clone()]).unwrap();
        let text = String::from_utf8(whole.clone()).unwrap();
        assert!(
            !text.contains("# HELP empty"),
            "empty families are left out"
        );
        assert!(text.ends_with("osprey_agent_ticks_total 3\n"), "{text}");
        assert_eq!(text.matches("\nb{").count(), 40);

        for size in [1, 7, 100, 1000, 1 << 20] {
            let chunks: Vec<Vec<u8>> = TextChunks::new(families.clone(), vec![own.clone()])
                .with_chunk_size(size)
                .map(Result::unwrap)
                .collect();
            assert_eq!(chunks.concat(), whole, "chunk size {size}");
            for chunk in &chunks[..chunks.len() - 1] {
                assert!(chunk.len() >= size, "chunk size {size}: {}", chunk.len());
                assert_eq!(chunk.last(), Some(&b'\n'), "whole lines");
            }
        }
    }

    /// A snapshot with a sample of every kind: the root cgroup (the node's
    /// filesystems), a container with a quota, block I/O on two devices,
    /// pressure, two interfaces, a writable layer, runtime labels, a
    /// carried sample, a label needing escapes, and pod status.
    fn snapshot_of_every_kind() -> Snapshot {
        use crate::kube_state::{ContainerRestarts, KubeState};
        use crate::snapshot::{ContainerInfo, ContainerSample};
        use crate::stats::{
            BlkioDevice, CfsStats, FilesystemStats, InterfaceStats, PressureStats, Psi,
        };
        let fs = |device: &str, usage| FilesystemStats {
            device: device.into(),
            usage,
            limit: 1 << 30,
            available: 1 << 29,
            inodes: 1000,
            inodes_free: 400,
            ..Default::default()
        };
        let mut root = ContainerSample {
            info: Arc::new(ContainerInfo {
                id: "/".into(),
                name: "/".into(),
                kind: "root".into(),
                ..Default::default()
            }),
            stats: Default::default(),
        };
        root.stats.cpu.usage_ns = 5_000_000_000;
        let mut app = ContainerSample {
            info: Arc::new(ContainerInfo {
                id: "/kubepods/burstable/pod1/abc".into(),
                name: "web\"1".into(),
                kind: "container".into(),
                image: "nginx:1.25".into(),
                namespace: "default".into(),
                pod: "web-1".into(),
                container: "nginx".into(),
                labels: [("app.kubernetes.io/name".to_string(), "web".to_string())].into(),
                qos_class: Some("burstable".into()),
                spec: crate::stats::ContainerSpec {
                    cpu_quota_us: Some(50_000),
                    cpu_period_us: Some(100_000),
                    cpu_shares: Some(512),
                    memory_limit: Some(1 << 28),
                    ..Default::default()
                },
                creation_time_seconds: 1_700_000_000.5,
                ..Default::default()
            }),
            stats: Default::default(),
        };
        let s = &mut app.stats;
        s.cpu.usage_ns = 1_500_000_000;
        s.cpu.user_ns = 1_000_000_000;
        s.cpu.system_ns = 500_000_000;
        s.cpu.cfs = Some(CfsStats {
            periods: 10,
            throttled_periods: 2,
            throttled_ns: 3_000_000,
            burst_periods: Some(1),
            burst_ns: None,
        });
        s.memory.usage = 4096;
        s.memory.max_usage = Some(8192);
        s.memory.pgfault = 7;
        s.blkio = vec![
            BlkioDevice {
                major: 8,
                minor: 0,
                read_bytes: 100,
                write_bytes: 200,
                reads: 1,
                writes: 2,
            },
            BlkioDevice {
                major: 253,
                minor: 1,
                read_bytes: 300,
                write_bytes: 400,
                reads: 3,
                writes: 4,
            },
        ];
        s.pids.current = Some(12);
        s.pressure = Some(PressureStats {
            cpu: Psi {
                some_total_us: 1_000,
                full_total_us: 0,
            },
            memory: Psi::default(),
            io: Psi {
                some_total_us: 5,
                full_total_us: 2,
            },
        });
        s.network = ["eth0", "eth1"]
            .iter()
            .enumerate()
            .map(|(n, name)| InterfaceStats {
                name: name.to_string(),
                rx_bytes: 1000 * n as u64 + 1,
                tx_errors: n as u64,
                ..Default::default()
            })
            .collect();
        s.filesystem = vec![fs("/dev/sda1", 12345)];
        let mut pod = ContainerSample {
            info: Arc::new(ContainerInfo {
                id: "/kubepods/burstable/pod1".into(),
                kind: "pod".into(),
                ..Default::default()
            }),
            stats: Default::default(),
        };
        // Read at an earlier tick and carried.
        pod.stats.timestamp_ms = 1_700_000_009_000;
        pod.stats.memory.usage = 99;
        Snapshot {
            timestamp_ms: 1_700_000_010_000,
            node_filesystems: Arc::new(vec![fs("/dev/sda1", 1 << 20), fs("tmpfs", 0)]),
            containers: vec![root, app, pod],
            cpu_load: vec![("/kubepods/burstable/pod1/abc".into(), 0.25)],
            log_usage: Arc::new(vec![("/kubepods/burstable/pod1/abc".into(), 777)]),
            kube: Arc::new(KubeState {
                restarts: vec![ContainerRestarts {
                    namespace: "default".into(),
                    pod: "web-1".into(),
                    uid: "1".into(),
                    container: "nginx".into(),
                    restarts: 3,
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_streamed_snapshot_is_the_text_of_its_built_families() {
        let snap = Arc::new(snapshot_of_every_kind());
        let opts = ExposeOptions {
            container_labels: vec!["app.kubernetes.io/name".into(), "qos_class".into()],
        };
        let devices = Arc::new(DeviceNames::new(std::path::Path::new("/nonexistent")));
        let families = crate::expose::snapshot_families(&snap, &opts, &devices);
        let built = encode(families, Vec::new()).unwrap();
        let text = String::from_utf8(built.clone()).unwrap();
        for line in [
            "container_blkio_device_usage_total{container=\"nginx\",id=\"/kubepods/burstable/pod1/abc\",image=\"nginx:1.25\",name=\"web\\\"1\",namespace=\"default\",pod=\"web-1\",container_label_app_kubernetes_io_name=\"web\",container_label_qos_class=\"burstable\",device=\"253:1\",major=\"253\",minor=\"1\",operation=\"Write\"} 400\n",
            "container_network_receive_bytes_total{container=\"nginx\",id=\"/kubepods/burstable/pod1/abc\",image=\"nginx:1.25\",name=\"web\\\"1\",namespace=\"default\",pod=\"web-1\",container_label_app_kubernetes_io_name=\"web\",container_label_qos_class=\"burstable\",interface=\"eth1\"} 1001\n",
            "container_fs_usage_bytes{container=\"\",id=\"/\",image=\"\",name=\"\",namespace=\"\",pod=\"\",container_label_app_kubernetes_io_name=\"\",container_label_qos_class=\"\",device=\"tmpfs\"} 0\n",
            "container_memory_usage_bytes{container=\"\",id=\"/kubepods/burstable/pod1\",image=\"\",name=\"\",namespace=\"\",pod=\"\",container_label_app_kubernetes_io_name=\"\",container_label_qos_class=\"\"} 99 1700000009000\n",
            "container_cpu_cfs_burst_periods_total{",
            "container_pressure_io_stalled_seconds_total{",
            "container_cpu_load_average_10s{",
            "container_logs_usage_bytes{",
            "kube_pod_container_status_restarts_total{namespace=\"default\",pod=\"web-1\",uid=\"1\",container=\"nginx\"} 3\n",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        // Families no container has are left out, headers included.
        assert!(!text.contains("container_cpu_cfs_burst_seconds_total"));
        assert_eq!(text.matches("# TYPE container_fs_usage_bytes ").count(), 1);

        for size in [1, 100, 4096, CHUNK_SIZE] {
            let streamed: Vec<Vec<u8>> =
                TextChunks::snapshot(snap.clone(), &opts, devices.clone(), Vec::new())
                    .with_chunk_size(size)
                    .map(Result::unwrap)
                    .collect();
            assert_eq!(
                String::from_utf8(streamed.concat()).unwrap(),
                text,
                "chunk size {size}"
            );
            for chunk in &streamed {
                assert_eq!(chunk.last(), Some(&b'\n'), "whole lines");
            }
        }
    }
}
