//! The agent with a real Prometheus: its `/metrics` passes `promtool check
//! metrics` and is scraped by a Prometheus set up as for cAdvisor (gzip
//! included), and its remote-write stream survives Prometheus going away
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

/// `GET /metrics` with `Accept-Encoding: accept` (if any): the status, the
/// `Content-Encoding` and `Vary` headers, and the body as sent.
fn fetch_metrics(
    base: &str,
    accept: Option<&str>,
) -> (u16, Option<String>, Option<String>, Vec<u8>) {
    // reqwest here has no gzip feature: it neither asks for gzip nor
    // decodes it, so the body is what the agent sent.
    let mut request = reqwest::blocking::Client::new().get(format!("{base}/metrics"));
    if let Some(accept) = accept {
        request = request.header("Accept-Encoding", accept);
    }
    let response = request.send().expect("agent answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (encoding, vary) = (header("content-encoding"), header("vary"));
    let status = response.status().as_u16();
    (status, encoding, vary, response.bytes().unwrap().to_vec())
}

#[test]
fn metrics_are_gzipped_for_a_scraper_that_accepts_it() {
    use std::io::Read as _;
    let dir = artifact_dir("metrics-gzip");
    let agent = AgentProcess::start(&["--interval", "1s"], &dir);
    wait_for(
        Duration::from_secs(20),
        "container series on /metrics",
        || {
            agent
                .metrics()
                .contains("container_cpu_usage_seconds_total{")
                .then_some(())
        },
    );

    let (status, encoding, vary, plain) = fetch_metrics(&agent.base, None);
    assert_eq!(status, 200);
    assert_eq!(encoding, None, "no gzip unless asked for");
    assert_eq!(vary.as_deref(), Some("Accept-Encoding"));
    let plain = String::from_utf8(plain).unwrap();

    let (status, encoding, vary, body) = fetch_metrics(&agent.base, Some("deflate, gzip;q=0.9"));
    assert_eq!(status, 200);
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert_eq!(vary.as_deref(), Some("Accept-Encoding"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .read_to_string(&mut text)
        .expect("a whole gzip member");
    assert!(
        body.len() * 4 < text.len(),
        "{} bytes compressed to {}",
        text.len(),
        body.len()
    );
    // The same exposition: the root cgroup's series and the same families.
    let families = |t: &str| {
        let mut f: Vec<String> = t
            .lines()
            .filter(|l| l.starts_with("# TYPE "))
            .map(str::to_string)
            .collect();
        f.sort();
        f
    };
    assert_eq!(families(&text), families(&plain));
    for t in [&text, &plain] {
        assert!(metric_value(t, "container_cpu_usage_seconds_total", &[("id", "/")]).is_some());
    }
    // A refused gzip is honoured.
    let (_, encoding, _, _) = fetch_metrics(&agent.base, Some("gzip;q=0, identity"));
    assert_eq!(encoding, None);
    // The agent counts its scrapes by encoding (this one's own included).
    let text = agent.metrics();
    assert_eq!(
        metric_value(&text, "osprey_agent_scrapes_total", &[("encoding", "gzip")]),
        Some(1.0)
    );

    // Told not to, it sends plain text to a scraper that accepts gzip.
    let plain_only = AgentProcess::start(&["--interval", "1s", "--no-metrics-gzip"], &dir);
    let (status, encoding, _, body) = fetch_metrics(&plain_only.base, Some("gzip"));
    assert_eq!((status, encoding), (200, None));
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("osprey_agent_scrapes_total")
    );
}

#[test]
fn prometheus_scrapes_the_agent_with_gzip() {
    let dir = artifact_dir("prometheus-scrape");
    let agent = AgentProcess::start(&["--interval", "1s"], &dir);
    let target = agent.base.trim_start_matches("http://").to_string();
    let prom = PrometheusProcess::start_scraping(&dir.join("prometheus-data"), &dir, &target);
    // The root cgroup's CPU time, as Prometheus stored it from a scrape.
    let stored = wait_for(
        Duration::from_secs(60),
        "the agent's series in Prometheus",
        || {
            let up = prom.query("up{job=\"osprey-agent\"} == 1");
            let cpu =
                prom.query("container_cpu_usage_seconds_total{job=\"osprey-agent\",id=\"/\"}");
            (!up.is_empty() && !cpu.is_empty()).then_some(cpu)
        },
    );
    let value: f64 = stored[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(value > 0.0, "the root cgroup has used CPU: {value}");
    // Prometheus asked for gzip and got it (the agent counts by encoding).
    let scraped_gzip = wait_for(Duration::from_secs(20), "a gzip scrape counted", || {
        metric_value(
            &agent.metrics(),
            "osprey_agent_scrapes_total",
            &[("encoding", "gzip")],
        )
        .filter(|n| *n >= 1.0)
    });
    assert!(scraped_gzip >= 1.0);
    // Every sample of a scrape was taken: none dropped as unparsable.
    let samples = prom.query("scrape_samples_scraped{job=\"osprey-agent\"}");
    let samples: f64 = samples[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(samples > 100.0, "{samples} samples a scrape");
    let added = prom.query("scrape_samples_post_metric_relabeling{job=\"osprey-agent\"}");
    let added: f64 = added[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert_eq!(added, samples);
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
