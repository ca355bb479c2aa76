//! What forwarding costs the ingest path: the same agent-sized remote-write
//! requests (4 500 series, one sample each, like one node of 100
//! containers) appended to the storage alone, and through
//! `Forwarders::store_and_forward` with one target selecting every series
//! and one selecting a tenth of them. Each forwarded request is written to
//! the target's queue directory and fsynced before it returns (the
//! durability the server promises); the storage's WAL is fsynced per batch
//! in every mode. The target URL refuses connections, so the queue only
//! grows and delivery costs nothing here. Figures are per request, relative
//! within one run.
//!
//! Run: `cargo bench --bench forward` (`OSPREY_BENCH_REQUESTS=200`).

use std::time::{Duration, Instant};

use osprey::server::forward::{ForwardConfig, Forwarders, RemoteWriteTarget};
use osprey::storage::{Labels, Sample, SeriesSamples, Storage, StorageOptions};

const SERIES: usize = 4_500;

fn request(i: i64) -> Vec<SeriesSamples> {
    let t = 1_700_000_000_000 + i * 10_000;
    (0..SERIES)
        .map(|s| SeriesSamples {
            labels: Labels::from_pairs([
                (
                    "__name__".to_string(),
                    format!("container_metric_{}", s % 45),
                ),
                ("namespace".to_string(), format!("ns{}", (s / 45) % 10)),
                ("pod".to_string(), format!("pod-{}", s / 45)),
            ]),
            samples: vec![Sample::new(t, (i * s as i64) as f64)],
        })
        .collect()
}

fn target(matchers: &[&str]) -> RemoteWriteTarget {
    let mut t: RemoteWriteTarget = toml::from_str(
        "name = \"bench\"\nurl = \"http://127.0.0.1:9/api/v1/write\"\nmin_backoff = \"5s\"\nmax_backoff = \"5s\"",
    )
    .unwrap();
    t.matchers = matchers.iter().map(|m| m.to_string()).collect();
    t
}

fn run(name: &str, forward: Option<RemoteWriteTarget>, requests: i64) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&dir.path().join("tsdb"), StorageOptions::default()).unwrap();
    let config = ForwardConfig {
        remote_write: forward.into_iter().collect(),
        ..ForwardConfig::default()
    };
    let forwarders = Forwarders::start(&config, dir.path()).unwrap();
    // Warm up: series creation is a one-off cost.
    forwarders.store_and_forward(&storage, &request(0)).unwrap();
    let mut times = Vec::with_capacity(requests as usize);
    let batches: Vec<_> = (1..=requests).map(request).collect();
    let began = Instant::now();
    for batch in &batches {
        let t = Instant::now();
        forwarders.store_and_forward(&storage, batch).unwrap();
        times.push(t.elapsed());
    }
    let total = began.elapsed();
    times.sort();
    let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    let queued: u64 = forwarders
        .stats()
        .iter()
        .map(|t| t.shipper.queue_disk_bytes)
        .sum();
    println!(
        "| {name} | {requests} | {:.2} ms | {:.2} ms | {:.2} ms | {:.0} | {:.1} KiB |",
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(total / requests as u32),
        (requests as f64 * SERIES as f64) / total.as_secs_f64(),
        queued as f64 / (requests as f64 + 1.0) / 1024.0,
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let requests: i64 = std::env::var("OSPREY_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _enter = rt.enter();
    println!("| mode | requests | p50 | p99 | mean | samples/s | queued per request |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    run("storage only", None, requests);
    run("forward all series", Some(target(&[])), requests);
    run(
        "forward 1/10 of series",
        Some(target(&[r#"{namespace="ns3"}"#])),
        requests,
    );
}
