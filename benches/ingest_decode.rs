//! CPU cost of the ingest path per sample, in process: the remote-write
//! body of one simulated node (100 containers × 45 series, labels as the
//! agent ships them, one sample each, like `server_load`) goes through what
//! `POST /api/v1/write` does with it — snappy, protobuf decode, validation,
//! series lookup, WAL record, head append — for every node, round after
//! round (10 s apart). Prints the thread CPU time per sample and CPU-seconds
//! per million samples, split into decode and append. Asserts nothing.
//!
//! ```text
//! cargo bench --bench ingest_decode -- [--nodes N] [--rounds R]
//! ```
//!
//! The WAL is synced by the background thread (`every_second`), so the
//! figures are the CPU work of ingest without the (per-request, constant)
//! fsync. For instruction counts of the steady state only (series already
//! known), run the bench binary under callgrind with collection limited to
//! the measured rounds:
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured_rounds*' \
//!     target/release/deps/ingest_decode-* --nodes 4 --rounds 3 --path inplace
//! ```
//!
//! (`--path prost` for the previous decoding: prost's structs and owned
//! labels into the same storage.) Without `--path` both run, alternating.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use osprey::server::forward::Forwarders;
use osprey::server::ingest;
use osprey::storage::{
    FsyncPolicy, Labels, Sample as StorageSample, SeriesSamples, Storage, StorageOptions,
};
use osprey_collector::ship::remote_write::{
    self, Label, Sample, TimeSeries, WriteRequest, encode_snappy,
};

const CONTAINERS: usize = 100;
const METRICS: usize = 45;
const MAX_DECODED: usize = 128 << 20;

/// One simulated node: its series' label sets and current values.
struct Node {
    series: Vec<(Vec<Label>, f64)>,
}

impl Node {
    fn new(index: usize) -> Self {
        let node = format!("node-{index:04}");
        let mut series = Vec::new();
        for c in 0..CONTAINERS {
            let id = format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{index:04}_{c:04}.slice/cri-containerd-{:064x}.scope",
                index * 1000 + c
            );
            for m in 0..METRICS {
                let mut labels = vec![
                    Label::new("__name__", format!("container_metric_number_{m:02}_total")),
                    Label::new("container", format!("c{}", c % 3)),
                    Label::new("id", id.clone()),
                    Label::new("image", format!("registry.example/app:{}", c % 5)),
                    Label::new("job", "osprey-agent"),
                    Label::new("name", format!("{:064x}", index * 1000 + c)),
                    Label::new("namespace", format!("team-{}", c % 8)),
                    Label::new("node", node.clone()),
                    Label::new("pod", format!("app-{}-{c:03}", index % 17)),
                ];
                labels.sort_by(|a, b| a.name.cmp(&b.name));
                series.push((labels, (c * 1000) as f64));
            }
        }
        Self { series }
    }

    /// The request body of one collection at `timestamp`.
    fn body(&mut self, timestamp: i64, rng: &mut u64) -> Vec<u8> {
        let timeseries = self
            .series
            .iter_mut()
            .map(|(labels, value)| {
                *rng ^= *rng << 13;
                *rng ^= *rng >> 7;
                *rng ^= *rng << 17;
                *value += (*rng % 1000) as f64;
                TimeSeries {
                    labels: labels.clone(),
                    samples: vec![Sample::new(timestamp, *value)],
                }
            })
            .collect();
        encode_snappy(&WriteRequest {
            timeseries,
            metadata: Vec::new(),
        })
        .expect("encodable")
    }
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    h
}

#[derive(Default)]
struct Totals {
    decode: Duration,
    append: Duration,
    samples: u64,
}

/// How the handler decoded a body before the in-place decoder: prost's
/// structs (a `String` per label name and value), the spec's checks, owned
/// `Labels` per series, then [`Storage::append`]. Kept for an A/B in the
/// same run; the storage behind it is the current one.
fn ingest_one_prost(storage: &Storage, body: &[u8], totals: &mut Totals) {
    let t0 = thread_cpu();
    let request = remote_write::decode_snappy(body, MAX_DECODED).expect("valid request");
    let mut batch = Vec::with_capacity(request.timeseries.len());
    for series in request.timeseries {
        series.validate().expect("valid series");
        let labels = Labels::from_pairs(series.labels.into_iter().map(|l| (l.name, l.value)));
        let samples = series
            .samples
            .iter()
            .map(|s| StorageSample::new(s.timestamp, s.value))
            .collect();
        batch.push(SeriesSamples { labels, samples });
    }
    let t1 = thread_cpu();
    let report = storage.append(&batch).expect("append");
    drop(batch);
    let t2 = thread_cpu();
    assert_eq!(report.rejected(), 0);
    totals.decode += t1 - t0;
    totals.append += t2 - t1;
    totals.samples += report.accepted;
}

/// What the write handler does with one body, timed in two parts.
fn ingest_one(storage: &Storage, headers: &HeaderMap, body: &[u8], totals: &mut Totals) {
    let forward = Forwarders::none();
    let t0 = thread_cpu();
    ingest::check_request(headers, body).expect("valid request");
    let protobuf = ingest::decompress(body, MAX_DECODED).expect("snappy");
    let batch = ingest::parse(&protobuf).expect("valid request");
    let t1 = thread_cpu();
    let report = ingest::store(&forward, storage, &batch)
        .map_err(|(_, e)| e)
        .expect("append");
    drop(batch);
    drop(protobuf);
    let t2 = thread_cpu();
    assert_eq!(report.rejected(), 0);
    totals.decode += t1 - t0;
    totals.append += t2 - t1;
    totals.samples += report.accepted;
}

#[inline(never)]
fn measured_rounds(storage: &Storage, bodies: &[Vec<Vec<u8>>]) -> Totals {
    let headers = headers();
    let mut totals = Totals::default();
    for round in bodies {
        for body in round {
            ingest_one(storage, &headers, body, &mut totals);
        }
    }
    totals
}

#[inline(never)]
fn measured_rounds_prost(storage: &Storage, bodies: &[Vec<Vec<u8>>]) -> Totals {
    let mut totals = Totals::default();
    for round in bodies {
        for body in round {
            ingest_one_prost(storage, body, &mut totals);
        }
    }
    totals
}

fn arg(name: &str, default: usize) -> usize {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|a| a == name)
        .and_then(|i| argv.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn open(dir: &std::path::Path) -> Storage {
    Storage::open(
        dir,
        StorageOptions {
            fsync: FsyncPolicy::EverySecond,
            ..StorageOptions::default()
        },
    )
    .expect("open")
}

fn main() {
    let nodes = arg("--nodes", 20);
    let rounds = arg("--rounds", 10);
    // `--path prost` measures only the old decoding (for callgrind runs).
    let argv: Vec<String> = std::env::args().collect();
    let only = argv
        .iter()
        .position(|a| a == "--path")
        .and_then(|i| argv.get(i + 1).cloned());
    let (dir, prost_dir) = (
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    );
    let (storage, prost_storage) = (open(dir.path()), open(prost_dir.path()));
    let mut all: Vec<Node> = (0..nodes).map(Node::new).collect();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let t0 = chrono::Utc::now().timestamp_millis() / 10_000 * 10_000 - (rounds as i64 + 2) * 10_000;
    // Warm-up: every series exists before measuring (series creation is
    // a one-off per series, not the steady state).
    let warm: Vec<Vec<u8>> = all.iter_mut().map(|n| n.body(t0, &mut rng)).collect();
    let (mut first, mut first_prost) = (Totals::default(), Totals::default());
    let headers = headers();
    for body in &warm {
        ingest_one(&storage, &headers, body, &mut first);
        ingest_one_prost(&prost_storage, body, &mut first_prost);
    }
    let bodies: Vec<Vec<Vec<u8>>> = (1..=rounds)
        .map(|r| {
            all.iter_mut()
                .map(|n| n.body(t0 + r as i64 * 10_000, &mut rng))
                .collect()
        })
        .collect();
    let body_bytes: usize = bodies[0].iter().map(Vec::len).sum::<usize>() / nodes;
    let (totals, totals_prost) = match only.as_deref() {
        Some("prost") => (None, Some(measured_rounds_prost(&prost_storage, &bodies))),
        Some(_) => (Some(measured_rounds(&storage, &bodies)), None),
        None => {
            // Halves of each round alternate between the two paths so that
            // a busy machine slows both alike.
            let (mut a, mut b) = (Totals::default(), Totals::default());
            for round in &bodies {
                for body in round {
                    ingest_one(&storage, &headers, body, &mut a);
                    ingest_one_prost(&prost_storage, body, &mut b);
                }
            }
            (Some(a), Some(b))
        }
    };
    println!(
        "ingest: {nodes} nodes × {} series, one sample each, {rounds} rounds; {} KiB body per node",
        CONTAINERS * METRICS,
        body_bytes / 1024
    );
    let per = |d: Duration, n: u64| d.as_secs_f64() * 1e9 / n as f64;
    println!(
        "{:<48} {:>14} {:>14} {:>22}",
        "path", "decode ns/smp", "append ns/smp", "CPU s per 1M samples"
    );
    let rows = [
        ("in place, first push (creates the series)", Some(&first)),
        ("in place, steady state (series known)", totals.as_ref()),
        ("prost + owned labels, first push", Some(&first_prost)),
        ("prost + owned labels, steady state", totals_prost.as_ref()),
    ];
    for (what, t) in rows {
        let Some(t) = t.filter(|t| t.samples > 0) else {
            continue;
        };
        println!(
            "{:<48} {:>14.0} {:>14.0} {:>22.3}",
            what,
            per(t.decode, t.samples),
            per(t.append, t.samples),
            (t.decode + t.append).as_secs_f64() * 1e6 / t.samples as f64
        );
    }
}
