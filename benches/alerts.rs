//! Alerting benchmarks (`cargo bench --bench alerts`):
//!
//! 1. Evaluation time per tick: 10 000 rules over 100 000 series held in
//!    an in-process [`Storage`], through the same PromQL source the server
//!    uses. Two workloads: threshold rules on a gauge (each rule's query
//!    selects 10 series) and PromQL rules `rate(counter[1m]) > x`.
//! 2. Latency from a sample crossing a threshold (appended to the
//!    storage) to the e-mail being accepted by a real SMTP server
//!    (Python's aiosmtpd writing to a Maildir), through the running
//!    alerting service (evaluation, grouping, chart, SMTP).
//!
//! Flags: `--series N` (100000), `--rules N` (10000), `--ticks N` (5),
//! `--trials N` (10).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use osprey::server::alerting::chart::DashboardRenderer;
use osprey::server::alerting::source::PromqlSource;
use osprey::storage::{FsyncPolicy, Labels, Sample, SeriesSamples, Storage, StorageOptions};
use osprey_alerts::config::AlertingConfig;
use osprey_alerts::engine::{Engine, EngineConfig};
use osprey_alerts::rule::RuleSpec;
use osprey_alerts::service::Alerting;
use serde_json::json;

struct Args {
    series: usize,
    rules: usize,
    ticks: usize,
    trials: usize,
}

fn args() -> Args {
    let mut a = Args {
        series: 100_000,
        rules: 10_000,
        ticks: 5,
        trials: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<usize>().ok()).unwrap_or(1);
        match flag.as_str() {
            "--series" => a.series = value().max(10),
            "--rules" => a.rules = value().max(1),
            "--ticks" => a.ticks = value().max(1),
            "--trials" => a.trials = value().max(1),
            _ => {}
        }
    }
    a
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn open_storage(dir: &Path) -> Arc<Storage> {
    Arc::new(
        Storage::open(
            dir,
            StorageOptions {
                fsync: FsyncPolicy::EverySecond,
                ..StorageOptions::default()
            },
        )
        .expect("storage opens"),
    )
}

/// `series` gauges `bench_cpu` and counters `bench_requests_total`, each
/// with 20 samples 15 s apart ending at `end`; label `shard` groups them
/// into `rules` shards.
fn load(storage: &Storage, series: usize, rules: usize, end: i64) {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut batch = Vec::with_capacity(5000);
    for i in 0..series {
        let shard = format!("s{}", i % rules);
        let pod = format!("pod-{i}");
        let ns = format!("ns-{}", i % 100);
        // About 1 % of the gauges sit above the 0.9 threshold.
        let level = if rng.f64() < 0.01 {
            0.95
        } else {
            rng.f64() * 0.8
        };
        let rate = if rng.f64() < 0.01 {
            20.0
        } else {
            rng.f64() * 4.0
        };
        for (name, counter) in [("bench_cpu", false), ("bench_requests_total", true)] {
            let labels = Labels::from_pairs([
                ("__name__", name),
                ("shard", shard.as_str()),
                ("pod", pod.as_str()),
                ("namespace", ns.as_str()),
            ]);
            let samples = (0..20)
                .map(|k| {
                    let t = end - (19 - k) * 15_000;
                    let v = if counter {
                        rate * 15.0 * k as f64
                    } else {
                        level + rng.f64() * 0.01
                    };
                    Sample { t, v }
                })
                .collect();
            batch.push(SeriesSamples { labels, samples });
        }
        if batch.len() >= 5000 {
            storage.append(&batch).expect("append");
            batch.clear();
        }
    }
    storage.append(&batch).expect("append");
}

fn rule(v: serde_json::Value) -> RuleSpec {
    serde_json::from_value(v).expect("valid rule")
}

fn tick_times(engine: &mut Engine, source: &PromqlSource, start: i64, ticks: usize) -> Vec<f64> {
    (0..ticks)
        .map(|k| {
            let t0 = Instant::now();
            let changes = engine.evaluate_due(source, start + k as i64 * 10_000);
            let el = t0.elapsed().as_secs_f64() * 1000.0;
            if k == 0 {
                println!("    first tick: {} alert state changes", changes.len());
            }
            el
        })
        .collect()
}

fn report(name: &str, rules: usize, mut times: Vec<f64>) {
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = times[times.len() / 2];
    println!(
        "  {name}: median {median:.0} ms per tick ({:.1} µs per rule), min {:.0} ms, max {:.0} ms over {} ticks",
        median * 1000.0 / rules as f64,
        times[0],
        times[times.len() - 1],
        times.len()
    );
}

fn evaluation(a: &Args) {
    let tmp = tempfile::tempdir().unwrap();
    let storage = open_storage(tmp.path());
    let end = now_ms();
    let t0 = Instant::now();
    load(&storage, a.series, a.rules, end);
    println!(
        "evaluation per tick: {} rules over {} series (x2 metrics), loaded in {:.1} s",
        a.rules,
        a.series,
        t0.elapsed().as_secs_f64()
    );
    let source = PromqlSource::new(storage.clone(), Duration::from_secs(30));
    let config = EngineConfig {
        default_interval: Duration::from_secs(10),
        ..EngineConfig::default()
    };

    let mut engine = Engine::new(config.clone());
    for j in 0..a.rules {
        engine.set_rule(
            rule(json!({
                "id": format!("t{j}"), "name": "BenchHighCPU",
                "condition": {"kind": "threshold", "query": format!("bench_cpu{{shard=\"s{j}\"}}"),
                              "op": "above", "threshold": 0.9},
                "for": "20s",
                "annotations": {"summary": "{{ $labels.pod }} at {{ $value }}"}
            })),
            end,
        );
    }
    report(
        "threshold rules",
        a.rules,
        tick_times(&mut engine, &source, end, a.ticks),
    );
    let firing = engine.alerts().count();
    println!("    alerts held: {firing}");

    let mut engine = Engine::new(config);
    for j in 0..a.rules {
        engine.set_rule(
            rule(json!({
                "id": format!("p{j}"), "name": "BenchHighRate",
                "condition": {"kind": "promql",
                              "expr": format!("rate(bench_requests_total{{shard=\"s{j}\"}}[1m]) > 10")},
            })),
            end,
        );
    }
    report(
        "PromQL rate() rules",
        a.rules,
        tick_times(&mut engine, &source, end, a.ticks),
    );
    println!("    alerts held: {}", engine.alerts().count());
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mail_count(maildir: &Path) -> usize {
    std::fs::read_dir(maildir.join("new"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn wait_mails(maildir: &Path, n: usize, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        if mail_count(maildir) >= n {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "no e-mail {n} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn latency(a: &Args, interval_ms: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let storage = open_storage(&tmp.path().join("tsdb"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let maildir = tmp.path().join("maildir");
    let _smtp = Killed(
        Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd)"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd does not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let config: AlertingConfig = serde_json::from_value(json!({
        "evaluation_interval": format!("{interval_ms}ms"),
        "external_url": "http://bench",
        // Every trial fires and resolves: not flapping for this purpose.
        "flap": {"max_flips": 0},
        "route": {"group_wait": "0s", "group_interval": "100ms", "repeat_interval": "1h"},
        "channels": [{"id": "mail", "type": "email", "to": ["ops@bench.test"],
                      "from": "osprey@bench.test", "smarthost": format!("127.0.0.1:{port}"),
                      "security": "none"}]
    }))
    .unwrap();
    let source = Arc::new(PromqlSource::new(storage.clone(), Duration::from_secs(10)));
    let alerting = Alerting::open(
        config,
        &tmp.path().join("alerting"),
        source,
        Some(Arc::new(DashboardRenderer)),
    )
    .unwrap();
    alerting
        .create_rule(rule(json!({
            "id": "probe", "name": "ProbeHigh",
            "condition": {"kind": "threshold", "query": "probe", "op": "above", "threshold": 0.5},
            "channels": ["mail"]
        })))
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = rt.spawn(alerting.clone().run(async {
        let _ = stop_rx.await;
    }));
    let labels = Labels::from_pairs([("__name__", "probe"), ("pod", "p")]);
    let put = |v: f64| {
        storage
            .append(&[SeriesSamples {
                labels: labels.clone(),
                samples: vec![Sample { t: now_ms(), v }],
            }])
            .unwrap();
    };
    let mut lat = Vec::new();
    for trial in 0..a.trials {
        put(0.0);
        // Start each trial at a different phase of the evaluation interval.
        std::thread::sleep(Duration::from_millis(137 * (trial as u64 % 7) + 50));
        let before = mail_count(&maildir);
        let t0 = Instant::now();
        put(1.0);
        let got = wait_mails(&maildir, before + 1, Duration::from_secs(30));
        lat.push(got.duration_since(t0).as_secs_f64() * 1000.0);
        put(0.0);
        // The resolved notice, so the next trial starts from a clean group.
        wait_mails(&maildir, before + 2, Duration::from_secs(30));
    }
    let _ = stop_tx.send(());
    let _ = rt.block_on(handle);
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "  evaluation interval {interval_ms} ms: median {:.0} ms, min {:.0} ms, max {:.0} ms over {} trials",
        lat[lat.len() / 2],
        lat[0],
        lat[lat.len() - 1],
        lat.len()
    );
}

fn main() {
    let a = args();
    evaluation(&a);
    println!("sample crossing a threshold → e-mail accepted by aiosmtpd (chart included):");
    latency(&a, 1000);
    latency(&a, 200);
}
