//! The fixed data set of the PromQL tests: a few series sampled every 10 s
//! for 10 minutes from `base` (a multiple of one hour), with a counter
//! reset, a gap, a staleness marker, join partners for `group_left`, ties
//! for `topk` and classic histogram buckets. The same data is loaded into
//! Osprey and, through remote-write, into a real Prometheus.

#![allow(dead_code)]

use osprey::storage::{Labels, Sample, SeriesSamples};
use osprey_collector::ship::remote_write::{self, WriteRequest};

/// The staleness marker's bit pattern.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Sample interval, milliseconds.
pub const INTERVAL_MS: i64 = 10_000;

/// Number of samples of a full series (0 s … 600 s).
pub const SAMPLES: i64 = 61;

fn series(
    name: &str,
    labels: &[(&str, &str)],
    points: Vec<(i64, f64)>,
) -> (Labels, Vec<(i64, f64)>) {
    let mut pairs: Vec<(String, String)> = vec![("__name__".into(), name.into())];
    pairs.extend(labels.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    (Labels::from_pairs(pairs), points)
}

fn full(f: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
    (0..SAMPLES).map(|i| (i * INTERVAL_MS, f(i))).collect()
}

/// The series, timestamps relative to the base (milliseconds).
pub fn relative() -> Vec<(Labels, Vec<(i64, f64)>)> {
    let stale = f64::from_bits(STALE_NAN);
    vec![
        // Counters: 1/s; 0.5/s reset to 0 at 300 s; 0.2/s.
        series(
            "req_total",
            &[("job", "api"), ("instance", "a")],
            full(|i| 10.0 * i as f64),
        ),
        series(
            "req_total",
            &[("job", "api"), ("instance", "b")],
            full(|i| {
                if i < 30 {
                    5.0 * i as f64
                } else {
                    5.0 * (i - 30) as f64
                }
            }),
        ),
        series(
            "req_total",
            &[("job", "web"), ("instance", "c")],
            full(|i| 2.0 * i as f64),
        ),
        // Gauges: `a` stops at 200 s (a gap, no staleness marker), `b` falls.
        series(
            "temp",
            &[("instance", "a")],
            (0..=20)
                .map(|i| (i * INTERVAL_MS, 20.0 + (i % 5) as f64))
                .collect(),
        ),
        series(
            "temp",
            &[("instance", "b")],
            full(|i| 30.0 - 0.5 * i as f64),
        ),
        // `up{instance="c"}` ends with a staleness marker at 110 s.
        series("up", &[("instance", "a")], full(|_| 1.0)),
        series(
            "up",
            &[("instance", "c")],
            (0..=11)
                .map(|i| (i * INTERVAL_MS, if i == 11 { stale } else { 1.0 }))
                .collect(),
        ),
        // Join partners.
        series(
            "node_info",
            &[("instance", "a"), ("node", "n1")],
            full(|_| 1.0),
        ),
        series(
            "node_info",
            &[("instance", "b"), ("node", "n2")],
            full(|_| 1.0),
        ),
        // Ties for topk/bottomk.
        series("tie", &[("s", "a")], full(|_| 1.0)),
        series("tie", &[("s", "b")], full(|_| 1.0)),
        series("tie", &[("s", "c")], full(|_| 2.0)),
        series("tie", &[("s", "d")], full(|_| 1.0)),
        // Classic histogram buckets.
        series("lat_bucket", &[("le", "0.1")], full(|i| i as f64)),
        series("lat_bucket", &[("le", "0.5")], full(|i| 3.0 * i as f64)),
        series("lat_bucket", &[("le", "+Inf")], full(|i| 4.0 * i as f64)),
    ]
}

/// The data as a storage batch, timestamps `base + relative`.
pub fn batch(base: i64) -> Vec<SeriesSamples> {
    relative()
        .into_iter()
        .map(|(labels, points)| SeriesSamples {
            labels,
            samples: points
                .into_iter()
                .map(|(t, v)| Sample::new(base + t, v))
                .collect(),
        })
        .collect()
}

/// The data as a remote-write request.
pub fn write_request(base: i64) -> WriteRequest {
    WriteRequest {
        timeseries: relative()
            .into_iter()
            .map(|(labels, points)| remote_write::TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| remote_write::Label::new(n, v))
                    .collect(),
                samples: points
                    .into_iter()
                    .map(|(t, v)| remote_write::Sample::new(base + t, v))
                    .collect(),
            })
            .collect(),
        metadata: Vec::new(),
    }
}
