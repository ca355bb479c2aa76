//! Forwarding to a real Prometheus (Debian's `prometheus` with its
//! remote-write receiver) and to a real HTTP receiver that refuses:
//! selection by matchers, a target outage (60 s by default, set
//! `OSPREY_FORWARD_OUTAGE_SECS`), kill -9 of the server while the target is
//! down, non-retryable refusals, retries, and the lag metrics.

mod common;
mod forward_receiver;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{
    PrometheusProcess, ServerProcess, artifact_dir, metric_value, now_ms, post_write,
    remote_write_body, wait_for,
};
use forward_receiver::Receiver;

/// The series the tests write: name, labels, and whether the target's
/// matchers (`{job="fwd"}` or `container_cpu_usage_seconds_total`) select it.
type Labels = &'static [(&'static str, &'static str)];

const SERIES: &[(&str, Labels, bool)] = &[
    (
        "fwd_selected_total",
        &[("job", "fwd"), ("instance", "a")],
        true,
    ),
    (
        "container_cpu_usage_seconds_total",
        &[("job", "other"), ("namespace", "x")],
        true,
    ),
    ("fwd_other_total", &[("job", "other")], false),
];

const MATCHERS: &str = r#"matchers = ['{job="fwd"}', 'container_cpu_usage_seconds_total']"#;

fn write_config(dir: &Path, url: &str, extra: &str) -> PathBuf {
    let path = dir.join("osprey.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\n[[server.forward.remote_write]]\nname = \"target\"\nurl = \"{url}\"\n\
             min_backoff = \"50ms\"\nmax_backoff = \"500ms\"\ntimeout = \"5s\"\n{extra}\n"
        ),
    )
    .unwrap();
    path
}

/// Writes batches of one sample per series and remembers what the server
/// acknowledged.
struct Writer {
    base_ms: i64,
    next: i64,
    acked: BTreeMap<&'static str, Vec<(i64, f64)>>,
}

impl Writer {
    fn new() -> Self {
        Self {
            // Half an hour back: inside Prometheus's head window, and the
            // whole run stays in the past.
            base_ms: now_ms() - 30 * 60 * 1000,
            next: 0,
            acked: BTreeMap::new(),
        }
    }

    /// Writes one batch; true when the server acknowledged it.
    fn batch(&mut self, server: &str) -> bool {
        let i = self.next;
        self.next += 1;
        let ts = self.base_ms + i * 100;
        let value = i as f64;
        let samples = [(ts, value)];
        let specs: Vec<common::SeriesSpec<'_>> = SERIES
            .iter()
            .map(|(name, labels, _)| (*name, *labels, &samples[..]))
            .collect();
        let (status, body) = post_write(server, remote_write_body(&specs), None);
        assert!(
            status == 204 || status >= 500,
            "write answered {status}: {body}"
        );
        if status != 204 {
            return false;
        }
        for (name, _, _) in SERIES {
            self.acked.entry(name).or_default().push((ts, value));
        }
        true
    }

    fn acked(&self, name: &str) -> &[(i64, f64)] {
        self.acked.get(name).map(Vec::as_slice).unwrap_or_default()
    }
}

/// Every raw sample Prometheus holds for the series named `name`.
fn prom_samples(prom: &PrometheusProcess, name: &str) -> Vec<(i64, f64)> {
    let result = prom.query(&format!("{name}[2h]"));
    result
        .iter()
        .flat_map(|series| series["values"].as_array().cloned().unwrap_or_default())
        .map(|pair| {
            let t = pair[0].as_f64().unwrap();
            let v: f64 = pair[1].as_str().unwrap().parse().unwrap();
            ((t * 1000.0).round() as i64, v)
        })
        .collect()
}

/// Waits until Prometheus holds exactly what was acknowledged for every
/// selected series, in order, and nothing of the others.
fn assert_all_arrived(prom: &PrometheusProcess, writer: &Writer, timeout: Duration) {
    for (name, _, selected) in SERIES.iter().filter(|s| s.2) {
        let want = writer.acked(name);
        assert!(*selected && !want.is_empty());
        let got = wait_for(
            timeout,
            &format!("every sample of {name} at Prometheus"),
            || {
                let got = prom_samples(prom, name);
                (got.len() >= want.len()).then_some(got)
            },
        );
        // A range query returns samples sorted by time, so compare with
        // what was written; the target refused nothing (checked through the
        // rejected counter), so the order of arrival was the order written.
        assert_eq!(got, want, "samples of {name} at Prometheus");
    }
    for (name, _, _) in SERIES.iter().filter(|s| !s.2) {
        assert_eq!(prom_samples(prom, name), [], "{name} must not be forwarded");
    }
}

fn metric(server: &ServerProcess, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut want = vec![("target", "target")];
    want.extend_from_slice(labels);
    metric_value(&server.metrics(), name, &want).unwrap_or_else(|| panic!("{name} missing"))
}

fn sent(server: &ServerProcess) -> f64 {
    metric(
        server,
        "osprey_forward_samples_total",
        &[("outcome", "sent")],
    )
}

#[test]
fn only_matching_series_reach_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let logs = artifact_dir("forward_selection");
    let prom = PrometheusProcess::start(&dir.path().join("prom"), &logs);
    let config = write_config(dir.path(), &format!("{}/api/v1/write", prom.base), MATCHERS);
    let server = ServerProcess::start(&dir.path().join("data"), Some(&config), &logs);
    let mut writer = Writer::new();
    for _ in 0..5 {
        assert!(writer.batch(&server.base));
    }
    assert_all_arrived(&prom, &writer, Duration::from_secs(60));
    // The server itself stored the unselected series.
    let stored = common::get_json(&format!(
        "{}/api/v1/query?query=count_over_time(fwd_other_total[2h])",
        server.base
    ));
    assert_eq!(stored["data"]["result"][0]["value"][1], "5", "{stored}");
    wait_for(Duration::from_secs(10), "sent counter", || {
        (sent(&server) == 10.0).then_some(())
    });
    let queued = metric(
        &server,
        "osprey_forward_samples_total",
        &[("outcome", "queued")],
    );
    assert_eq!(queued, 10.0);
    let rejected = metric(
        &server,
        "osprey_forward_samples_total",
        &[("outcome", "rejected")],
    );
    assert_eq!(rejected, 0.0);
    assert!(
        metric(
            &server,
            "osprey_forward_last_success_timestamp_seconds",
            &[]
        ) > 0.0
    );
}

fn outage() -> Duration {
    let secs = std::env::var("OSPREY_FORWARD_OUTAGE_SECS")
        .ok()
        .map(|s| {
            s.parse::<u64>()
                .expect("OSPREY_FORWARD_OUTAGE_SECS is seconds")
        })
        .unwrap_or(60);
    Duration::from_secs(secs)
}

#[test]
fn target_outage_loses_nothing_and_keeps_order_and_lag_metrics_follow() {
    let dir = tempfile::tempdir().unwrap();
    let logs = artifact_dir("forward_outage");
    let mut prom = PrometheusProcess::start(&dir.path().join("prom"), &logs);
    let config = write_config(dir.path(), &format!("{}/api/v1/write", prom.base), MATCHERS);
    let server = ServerProcess::start(&dir.path().join("data"), Some(&config), &logs);
    let mut writer = Writer::new();
    for _ in 0..5 {
        assert!(writer.batch(&server.base));
    }
    assert_all_arrived(&prom, &writer, Duration::from_secs(60));
    wait_for(Duration::from_secs(10), "an empty queue", || {
        (metric(&server, "osprey_forward_queue_batches", &[]) == 0.0).then_some(())
    });
    assert_eq!(metric(&server, "osprey_forward_lag_seconds", &[]), 0.0);

    prom.stop();
    let outage = outage();
    let began = Instant::now();
    let mut max_lag = 0.0f64;
    while began.elapsed() < outage {
        assert!(writer.batch(&server.base));
        max_lag = max_lag.max(metric(&server, "osprey_forward_lag_seconds", &[]));
        // Pace the writes like a scrape loop (not synchronisation).
        std::thread::sleep(Duration::from_millis(250));
    }
    // The lag grew with the outage, the queue holds the batches, and
    // failures were counted.
    let expected_lag = outage.as_secs_f64() * 0.8;
    assert!(
        max_lag >= expected_lag,
        "lag reached only {max_lag} s in a {outage:?} outage"
    );
    assert!(metric(&server, "osprey_forward_queue_bytes", &[]) > 0.0);
    assert!(metric(&server, "osprey_forward_failed_requests_total", &[]) > 0.0);
    let before = sent(&server);

    prom.restart();
    for _ in 0..5 {
        assert!(writer.batch(&server.base));
    }
    assert_all_arrived(&prom, &writer, Duration::from_secs(120));
    wait_for(Duration::from_secs(30), "the queue to drain", || {
        (metric(&server, "osprey_forward_queue_batches", &[]) == 0.0).then_some(())
    });
    assert_eq!(metric(&server, "osprey_forward_lag_seconds", &[]), 0.0);
    assert_eq!(metric(&server, "osprey_forward_queue_bytes", &[]), 0.0);
    let total = writer.acked(SERIES[0].0).len() as f64 * 2.0;
    assert_eq!(sent(&server), total);
    assert!(sent(&server) > before);
    assert_eq!(
        metric(
            &server,
            "osprey_forward_samples_total",
            &[("outcome", "rejected")]
        ),
        0.0
    );
    assert_eq!(
        metric(
            &server,
            "osprey_forward_samples_total",
            &[("outcome", "dropped")]
        ),
        0.0
    );
}

#[test]
fn server_killed_while_the_target_is_down_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let logs = artifact_dir("forward_kill9");
    let mut prom = PrometheusProcess::start(&dir.path().join("prom"), &logs);
    let config = write_config(dir.path(), &format!("{}/api/v1/write", prom.base), MATCHERS);
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(&data, Some(&config), &logs);
    let mut writer = Writer::new();
    for _ in 0..3 {
        assert!(writer.batch(&server.base));
    }
    assert_all_arrived(&prom, &writer, Duration::from_secs(60));

    wait_for(Duration::from_secs(10), "an empty queue", || {
        (metric(&server, "osprey_forward_queue_batches", &[]) == 0.0).then_some(())
    });
    prom.stop();
    let first_queued = Instant::now();
    for _ in 0..40 {
        assert!(writer.batch(&server.base));
    }
    assert!(metric(&server, "osprey_forward_queue_batches", &[]) >= 40.0);
    // SIGKILL: no shutdown, no flush.
    server.guard.child.kill().unwrap();
    server.guard.child.wait().unwrap();
    let port = server.port;
    drop(server);

    let server = ServerProcess::start_on(port, &data, Some(&config), &logs);
    // The queue was reloaded from disk, and the lag counts from when the
    // oldest batch was queued before the crash, not from the restart.
    assert!(metric(&server, "osprey_forward_queue_batches", &[]) >= 40.0);
    let lag = metric(&server, "osprey_forward_lag_seconds", &[]);
    let since = first_queued.elapsed().as_secs_f64();
    assert!(
        lag >= since - 1.5 && lag <= since + 1.5,
        "lag {lag} s, oldest batch queued {since} s ago"
    );
    for _ in 0..3 {
        assert!(writer.batch(&server.base));
    }
    prom.restart();
    assert_all_arrived(&prom, &writer, Duration::from_secs(120));
    wait_for(Duration::from_secs(30), "the queue to drain", || {
        (metric(&server, "osprey_forward_queue_batches", &[]) == 0.0).then_some(())
    });
    // Prometheus refuses out-of-order samples with 400, which would show
    // here: none means every series arrived in order.
    assert_eq!(
        metric(
            &server,
            "osprey_forward_samples_total",
            &[("outcome", "rejected")]
        ),
        0.0
    );
}

#[test]
fn refused_batches_are_dropped_and_counted_and_5xx_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let logs = artifact_dir("forward_refusals");
    let receiver = Receiver::start(400);
    let config = write_config(
        dir.path(),
        &format!("{}/api/v1/write", receiver.base),
        MATCHERS,
    );
    let server = ServerProcess::start(&dir.path().join("data"), Some(&config), &logs);
    let mut writer = Writer::new();
    for _ in 0..3 {
        assert!(writer.batch(&server.base));
    }
    // Each batch is tried once (merged or not, a rejected merge is retried
    // batch by batch), then dropped and counted.
    wait_for(Duration::from_secs(30), "three batches rejected", || {
        let rejected = metric(
            &server,
            "osprey_forward_samples_total",
            &[("outcome", "rejected")],
        );
        (rejected == 6.0 && metric(&server, "osprey_forward_queue_batches", &[]) == 0.0)
            .then_some(())
    });
    let received = receiver.received();
    assert!(
        (3..=5).contains(&received.len()),
        "{} requests for 3 rejected batches",
        received.len()
    );
    for r in &received {
        assert_eq!(r.path, "/api/v1/write");
        assert_eq!(r.headers["content-encoding"], "snappy");
        assert_eq!(r.headers["content-type"], "application/x-protobuf");
        assert_eq!(r.headers["x-prometheus-remote-write-version"], "0.1.0");
        assert!(
            r.headers["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("osprey-server/")
        );
    }
    assert_eq!(sent(&server), 0.0);

    // 503: retried until the receiver takes it.
    receiver.set_status(503);
    assert!(writer.batch(&server.base));
    let before = receiver.received().len();
    wait_for(Duration::from_secs(30), "retries of the 503", || {
        (receiver.received().len() >= before + 3).then_some(())
    });
    assert!(metric(&server, "osprey_forward_retries_total", &[]) >= 2.0);
    receiver.set_status(204);
    wait_for(
        Duration::from_secs(30),
        "the retried batch delivered",
        || (sent(&server) == 2.0).then_some(()),
    );
    let last = receiver.received().pop().unwrap();
    let request = osprey_collector::ship::remote_write::decode_snappy(&last.body, 1 << 20).unwrap();
    assert_eq!(request.timeseries.len(), 2);
    assert_eq!(metric(&server, "osprey_forward_queue_batches", &[]), 0.0);

    // 429 with Retry-After: retried, no sooner than the receiver asked
    // (the configured backoff is at most 500 ms).
    receiver.set_status(429);
    receiver.set_retry_after(Some("2"));
    let before = receiver.received().len();
    assert!(writer.batch(&server.base));
    let tries = wait_for(Duration::from_secs(30), "a retry of the 429", || {
        let got = receiver.received();
        (got.len() >= before + 2).then(|| got[before..].to_vec())
    });
    let gap = tries[1].at - tries[0].at;
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}");
    receiver.set_retry_after(None);
    receiver.set_status(204);
    wait_for(Duration::from_secs(30), "the batch after the 429s", || {
        (sent(&server) == 4.0).then_some(())
    });
    assert_eq!(
        metric(
            &server,
            "osprey_forward_samples_total",
            &[("outcome", "rejected")]
        ),
        6.0,
        "429 is not a rejection"
    );
}

#[test]
fn a_bad_matcher_stops_the_server_at_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "http://127.0.0.1:9/api/v1/write",
        "matchers = ['rate(x[5m])']",
    );
    let out = common::osprey()
        .arg("--config")
        .arg(&config)
        .arg("server")
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", common::free_port()))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("forward target target") && stderr.contains("rate(x[5m])"),
        "{stderr}"
    );
    // The effective configuration shows the target.
    let printed = common::osprey()
        .arg("--config")
        .arg(&config)
        .arg("server")
        .arg("--print-config")
        .output()
        .unwrap();
    let printed: toml::Value = toml::from_str(&String::from_utf8_lossy(&printed.stdout)).unwrap();
    assert_eq!(
        printed["server"]["forward"]["remote_write"][0]["name"].as_str(),
        Some("target")
    );
}
