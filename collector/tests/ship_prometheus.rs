//! End to end against a real Prometheus (`/usr/bin/prometheus` with its
//! remote-write receiver): samples shipped every ~150 ms while Prometheus
//! is stopped and restarted on the same data directory, and while the
//! shipper itself is restarted during the outage, must all be stored,
//! exactly once, in order.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use osprey_collector::ship::{
    RemoteWriteConfig, Sample, Shipper, ShipperHandle, ShipperStats, TimeSeries,
};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const METRIC: &str = "osprey_ship_test_value";
const SERIES: [&str; 3] = ["a", "b", "c"];

/// A Prometheus child process, killed on drop so a failing test leaves
/// nothing running.
struct Prometheus {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl Prometheus {
    fn start(dir: &Path, port: u16) -> Self {
        assert!(
            Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} is missing: install Debian's prometheus package (apt-get install prometheus)"
        );
        let config = dir.join("prometheus.yml");
        fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("prometheus.log"))
            .unwrap();
        let child = Command::new(PROMETHEUS)
            .arg("--web.enable-remote-write-receiver")
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--config.file={}", config.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Self {
            child: Some(child),
            dir: dir.to_path_buf(),
            port,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Polls `/-/ready` until it answers 200.
    async fn wait_ready(&mut self, client: &reqwest::Client) {
        let start = Instant::now();
        loop {
            if let Ok(response) = client.get(self.url("/-/ready")).send().await
                && response.status().is_success()
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("prometheus exited with {status}:\n{}", self.log_tail());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "prometheus not ready after 60 s:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    async fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // SAFETY: plain kill(2) on our own child's pid, which has not been
        // reaped yet, so it cannot name another process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "prometheus stopped badly ({status}):\n{}",
                    self.log_tail()
                );
                return;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("prometheus ignored SIGTERM for 30 s:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[path = "../../tests/support/ports.rs"]
mod ports;
use ports::free_port;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Ships one collection per tick and remembers every sample sent.
struct Collector {
    sent: Vec<Vec<(i64, f64)>>,
    last_ts: i64,
    tick: u64,
}

impl Collector {
    fn new() -> Self {
        Self {
            sent: vec![Vec::new(); SERIES.len()],
            last_ts: 0,
            tick: 0,
        }
    }

    fn collect(&mut self, shipper: &ShipperHandle) {
        let ts = now_ms().max(self.last_ts + 1);
        self.last_ts = ts;
        self.tick += 1;
        let batch = SERIES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let value = self.tick as f64 + i as f64 / 10.0;
                self.sent[i].push((ts, value));
                TimeSeries::new(
                    METRIC,
                    [("series", *name), ("job", "ship_test")],
                    vec![Sample::new(ts, value)],
                )
            })
            .collect();
        shipper.enqueue(batch);
    }

    /// Collects `ticks` times, ~150 ms apart.
    async fn run(&mut self, shipper: &ShipperHandle, ticks: u32) {
        let mut interval = tokio::time::interval(Duration::from_millis(150));
        for _ in 0..ticks {
            interval.tick().await;
            self.collect(shipper);
        }
    }
}

async fn wait_stats(
    shipper: &ShipperHandle,
    timeout: Duration,
    what: &str,
    done: impl Fn(&ShipperStats) -> bool,
) -> ShipperStats {
    let start = Instant::now();
    loop {
        let stats = shipper.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out waiting for {what}; stats: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every raw sample Prometheus stored for `series`, via an instant query
/// of a range selector (which returns raw samples, not evaluated points).
async fn stored_samples(
    client: &reqwest::Client,
    prometheus: &Prometheus,
    series: &str,
) -> Vec<(i64, f64)> {
    let query = format!("{METRIC}{{series=\"{series}\"}}[1h]");
    let time = format!("{:.3}", now_ms() as f64 / 1000.0 + 1.0);
    let url = reqwest::Url::parse_with_params(
        &prometheus.url("/api/v1/query"),
        [("query", query.as_str()), ("time", time.as_str())],
    )
    .unwrap();
    let response = client.get(url).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "query failed: {}",
        response.status()
    );
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let result = body["data"]["result"].as_array().expect("a matrix result");
    assert_eq!(result.len(), 1, "exactly one series {series}: {body}");
    result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            let ts = pair[0].as_f64().unwrap();
            let value: f64 = pair[1].as_str().unwrap().parse().unwrap();
            ((ts * 1000.0).round() as i64, value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_survives_a_prometheus_restart_exactly_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut prometheus = Prometheus::start(dir.path(), port);
    prometheus.wait_ready(&client).await;

    let config = RemoteWriteConfig {
        url: prometheus.url("/api/v1/write"),
        timeout: Duration::from_secs(2),
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        // Small, so the outage's batches spill to disk and come back.
        memory_bytes: 1024,
        spill_dir: Some(dir.path().join("remote-write-queue")),
        shutdown_flush_timeout: Duration::from_millis(500),
        ..RemoteWriteConfig::default()
    };
    let shipper = Shipper::spawn(config.clone()).unwrap();
    let mut collector = Collector::new();

    // Up: deliveries keep pace.
    collector.run(&shipper, 10).await;
    wait_stats(&shipper, Duration::from_secs(20), "first deliveries", |s| {
        s.batches_sent == 10
    })
    .await;

    // Down for ~3 s while collection goes on; halfway through, the agent
    // itself restarts gracefully (the queue is persisted and reloaded).
    prometheus.stop().await;
    collector.run(&shipper, 10).await;
    let before_restart = shipper.shutdown().await;
    assert!(
        before_restart.failed_attempts > 0,
        "sends failed while down: {before_restart:?}"
    );
    assert_eq!(before_restart.batches_sent, 10);
    assert_eq!(before_restart.queue_batches, 10, "{before_restart:?}");
    assert_eq!(
        before_restart.queue_memory_bytes, 0,
        "persisted at shutdown"
    );

    let shipper = Shipper::spawn(config.clone()).unwrap();
    assert_eq!(shipper.stats().queue_batches, 10, "reloaded on start");
    collector.run(&shipper, 10).await;
    let during = shipper.stats();
    assert_eq!(
        during.queue_batches, 20,
        "batches queued while down: {during:?}"
    );
    assert!(
        during.queue_disk_bytes > 0,
        "the queue spilled to disk: {during:?}"
    );
    assert_eq!(during.batches_sent, 0);

    // Back on the same data dir: the backlog drains, in order, while
    // collection goes on.
    let mut prometheus = Prometheus::start(dir.path(), port);
    prometheus.wait_ready(&client).await;
    collector.run(&shipper, 10).await;
    let stats = wait_stats(
        &shipper,
        Duration::from_secs(60),
        "backlog delivered",
        |s| s.batches_sent == 30 && s.queue_batches == 0,
    )
    .await;
    assert_eq!(stats.samples_sent, 30 * SERIES.len() as u64);
    let lost = before_restart.dropped_samples + before_restart.rejected_samples;
    assert_eq!(
        lost + stats.dropped_samples + stats.rejected_samples,
        0,
        "{stats:?}"
    );
    assert_eq!(stats.queue_disk_bytes, 0);
    shipper.shutdown().await;

    for (i, series) in SERIES.iter().enumerate() {
        let stored = stored_samples(&client, &prometheus, series).await;
        assert_eq!(
            stored, collector.sent[i],
            "series {series}: Prometheus must hold every sample sent, once, in order"
        );
    }
    drop(prometheus);
}
