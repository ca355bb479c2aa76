//! The agent with a real Prometheus: its `/metrics` passes `promtool check
//! metrics`, and its remote-write stream survives Prometheus going away
//! and coming back without losing a sample.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn metrics_pass_promtool_check() {
    let dir = artifact_dir("promtool");
    let agent = AgentProcess::start(&["--interval", "1s"], &dir);
    // Wait for a collection that includes the containers' series.
    let text = wait_for(
        Duration::from_secs(20),
        "container series on /metrics",
        || {
            let t = agent.metrics();
            t.contains("container_cpu_usage_seconds_total{")
                .then_some(t)
        },
    );
    std::fs::write(dir.join("metrics.txt"), &text).unwrap();
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics found problems:\n{report}"
    );
    // No per-CPU explosion: exactly one cpu usage series per cgroup.
    assert!(
        !text.contains("cpu=\"cpu0"),
        "per-CPU series are off by default"
    );
}

/// Raw samples `(timestamp_ms, value)` of one series over the last `range`.
fn raw_samples(prom: &PrometheusProcess, selector: &str, range: &str) -> Vec<(i64, f64)> {
    let result = prom.query(&format!("{selector}[{range}]"));
    let mut out = Vec::new();
    for series in result {
        for v in series["values"].as_array().unwrap() {
            let ts = (v[0].as_f64().unwrap() * 1000.0).round() as i64;
            out.push((ts, v[1].as_str().unwrap().parse().unwrap()));
        }
    }
    out.sort_by_key(|s| s.0);
    out
}

#[test]
fn remote_write_loses_nothing_while_prometheus_is_down() {
    let dir = artifact_dir("remote-write-outage");
    let mut prom = PrometheusProcess::start(&dir.join("prometheus-data"), &dir);
    let agent_data = dir.join("agent-data");
    let url = format!("{}/api/v1/write", prom.base);
    let mut agent = AgentProcess::start(
        &[
            "--interval",
            "1s",
            "--remote-write",
            &url,
            "--data-dir",
            agent_data.to_str().unwrap(),
            "--node-name",
            "e2e-node",
        ],
        &dir,
    );
    let series = r#"container_last_seen{id="/",node="e2e-node",job="osprey-agent"}"#;
    wait_for(
        Duration::from_secs(30),
        "samples arriving in Prometheus",
        || (raw_samples(&prom, series, "10m").len() >= 3).then_some(()),
    );

    // Outage: stop Prometheus while the agent keeps collecting, until at
    // least five collections are queued.
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    prom.stop();
    let outage_start = now_ms();
    wait_for(
        Duration::from_secs(30),
        "batches queued while Prometheus is down",
        || {
            let q = metric_value(
                &agent.metrics(),
                "osprey_agent_remote_write_queue_batches",
                &[],
            )?;
            (q >= 5.0).then_some(())
        },
    );
    let outage_end = now_ms();
    prom.restart();
    wait_for(Duration::from_secs(60), "the queue to drain", || {
        let t = agent.metrics();
        let q = metric_value(&t, "osprey_agent_remote_write_queue_batches", &[])?;
        (q == 0.0).then_some(())
    });
    // A graceful stop flushes the last collections.
    assert!(
        agent.guard.terminate(Duration::from_secs(30)).is_some(),
        "agent stops on SIGTERM"
    );

    let samples = raw_samples(&prom, series, "10m");
    assert!(samples.len() >= 8, "only {} samples", samples.len());
    let during = samples
        .iter()
        .filter(|(ts, _)| (outage_start..outage_end).contains(ts))
        .count();
    assert!(
        during >= 4,
        "collections made while Prometheus was down must arrive ({during} did)"
    );
    // container_last_seen's value is the collection time: each sample is
    // one collection, on a 1 s grid. Every collection between the first
    // and the last must be there, once.
    for (ts, value) in &samples {
        assert_eq!(
            *ts,
            (value * 1000.0).round() as i64,
            "value is the collection time"
        );
    }
    for pair in samples.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap > 0, "duplicate or disordered sample at {}", pair[1].0);
        assert!(
            gap < 1_600,
            "a collection is missing between {} and {} ({gap} ms)",
            pair[0].0,
            pair[1].0
        );
    }
    let log =
        std::fs::read_to_string(dir.join(format!("{}.log", agent.guard.name))).unwrap_or_default();
    assert!(!log.contains("dropping"), "nothing may be dropped:\n{log}");
}
