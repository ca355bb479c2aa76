//! The Loki forwarding sink against a real HTTP receiver: selection by
//! stream selectors, Loki's JSON push body, retries on 503 with order kept,
//! batches that survive a crash (the forwarder dropped without shutdown)
//! and resume on the next start, and 400 answers dropped and counted.
//! End to end: lines pushed to a real `osprey server`'s
//! `/loki/api/v1/push` reach the target while it is down for a while and
//! the server is killed (SIGKILL) and restarted in between.

mod common;
mod forward_receiver;

use std::time::{Duration, Instant};

use forward_receiver::Receiver;
use osprey::server::forward::{ForwardConfig, Forwarders, LogStream, LokiTarget};

fn target(url: &str) -> LokiTarget {
    toml::from_str(&format!(
        "name = \"loki\"\nurl = \"{url}\"\nselectors = ['{{namespace=\"prod\"}}']\n\
         min_backoff = \"20ms\"\nmax_backoff = \"200ms\"\n"
    ))
    .unwrap()
}

fn stream(namespace: &str, first: i64, lines: i64) -> LogStream {
    LogStream {
        labels: vec![
            ("namespace".into(), namespace.into()),
            ("pod".into(), "api-1".into()),
        ],
        entries: (first..first + lines)
            .map(|i| (1_700_000_000_000_000_000 + i, format!("line {i}")))
            .collect(),
    }
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `(ns, line)` values of every accepted push, in arrival order.
fn delivered(receiver: &Receiver) -> Vec<(String, String, String)> {
    receiver
        .received()
        .iter()
        .filter(|r| r.status == 204)
        .flat_map(|r| {
            let push: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            push["streams"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| {
                    let ns = s["stream"]["namespace"].as_str().unwrap().to_string();
                    s["values"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(move |v| {
                            (
                                ns.clone(),
                                v[0].as_str().unwrap().to_string(),
                                v[1].as_str().unwrap().to_string(),
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn stats(f: &Forwarders) -> osprey_collector::ship::ShipperStats {
    f.stats()[0].shipper.clone()
}

#[test]
fn selected_streams_reach_loki_in_order_across_failures_and_a_crash() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _enter = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(204);
    let config = ForwardConfig {
        loki: vec![target(&format!("{}/loki/api/v1/push", receiver.base))],
        ..ForwardConfig::default()
    };
    let forwarders = Forwarders::start(&config, dir.path()).unwrap();
    assert!(forwarders.forwards_logs() && !forwarders.forwards_series());

    forwarders
        .forward_logs(&[stream("prod", 0, 3), stream("dev", 0, 2)])
        .unwrap();
    wait_for("the first push", || {
        (stats(&forwarders).samples_sent == 3).then_some(())
    });
    let first = &receiver.received()[0];
    assert_eq!(first.path, "/loki/api/v1/push");
    assert_eq!(first.headers["content-type"], "application/json");
    assert!(first.headers.get("content-encoding").is_none());
    assert_eq!(delivered(&receiver).len(), 3);
    assert!(delivered(&receiver).iter().all(|(ns, _, _)| ns == "prod"));

    // The receiver fails: pushes are retried, later ones wait behind.
    receiver.set_status(503);
    forwarders.forward_logs(&[stream("prod", 3, 2)]).unwrap();
    wait_for("retries", || {
        (stats(&forwarders).retries >= 2).then_some(())
    });
    forwarders.forward_logs(&[stream("prod", 5, 2)]).unwrap();
    assert_eq!(stats(&forwarders).queue_batches, 2);
    assert!(stats(&forwarders).oldest_queued.is_some());
    // A crash: the forwarder and its runtime go away without shutdown.
    drop(forwarders);
    drop(_enter);
    drop(rt);

    receiver.set_status(204);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _enter = rt.enter();
    let forwarders = Forwarders::start(&config, dir.path()).unwrap();
    assert_eq!(stats(&forwarders).queue_batches, 2, "the queue survived");
    wait_for("the queued pushes", || {
        (stats(&forwarders).samples_sent == 4).then_some(())
    });
    let lines: Vec<String> = delivered(&receiver)
        .into_iter()
        .map(|(_, _, l)| l)
        .collect();
    assert_eq!(
        lines,
        (0..7).map(|i| format!("line {i}")).collect::<Vec<_>>()
    );
    assert_eq!(stats(&forwarders).oldest_queued, None);

    // 400: dropped and counted, not retried; later pushes still go.
    receiver.set_status(400);
    let before = receiver.received().len();
    forwarders.forward_logs(&[stream("prod", 7, 1)]).unwrap();
    wait_for("the rejection", || {
        (stats(&forwarders).rejected_samples == 1).then_some(())
    });
    assert_eq!(stats(&forwarders).queue_batches, 0);
    assert_eq!(receiver.received().len(), before + 1);
    receiver.set_status(204);
    forwarders.forward_logs(&[stream("prod", 8, 1)]).unwrap();
    wait_for("the next push", || {
        (stats(&forwarders).samples_sent == 5).then_some(())
    });
    rt.block_on(forwarders.shutdown());
}

#[test]
fn bad_selectors_and_names_are_refused_at_start() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _enter = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let mut bad = target("http://127.0.0.1:9/loki/api/v1/push");
    bad.selectors = vec!["up".into()];
    let config = ForwardConfig {
        loki: vec![bad],
        ..ForwardConfig::default()
    };
    let err = Forwarders::start(&config, dir.path()).unwrap_err();
    assert!(err.contains("stream selector"), "{err}");
    let twice = ForwardConfig {
        loki: vec![target("http://127.0.0.1:9/"), target("http://127.0.0.1:9/")],
        ..ForwardConfig::default()
    };
    let err = Forwarders::start(&twice, dir.path()).unwrap_err();
    assert!(err.contains("unique"), "{err}");
    let mut other = target("http://127.0.0.1:9/");
    other.name = "other".into();
    other.queue_dir = Some(dir.path().join("forward/loki"));
    let shared_dir = ForwardConfig {
        loki: vec![target("http://127.0.0.1:9/"), other],
        ..ForwardConfig::default()
    };
    let err = Forwarders::start(&shared_dir, dir.path()).unwrap_err();
    assert!(err.contains("its own"), "{err}");
}

/// Every `(stream, line)` a receiver accepted, in arrival order; streams
/// named `namespace/pod`.
fn accepted_lines(received: &[forward_receiver::Received]) -> Vec<(String, i64, String)> {
    received
        .iter()
        .filter(|r| r.status == 204)
        .flat_map(|r| {
            let push: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            let mut out = Vec::new();
            for s in push["streams"].as_array().unwrap() {
                let name = format!(
                    "{}/{}",
                    s["stream"]["namespace"].as_str().unwrap(),
                    s["stream"]["pod"].as_str().unwrap()
                );
                for v in s["values"].as_array().unwrap() {
                    out.push((
                        name.clone(),
                        v[0].as_str().unwrap().parse().unwrap(),
                        v[1].as_str().unwrap().to_string(),
                    ));
                }
            }
            out
        })
        .collect()
}

/// Pushes one request of `per_stream` lines to each of three streams
/// (two selected by `{namespace="prod"}`) through the server's Loki push
/// endpoint; returns the lines of the selected streams.
fn push_round(base: &str, round: usize, per_stream: usize) -> Vec<(String, i64, String)> {
    let t0 = common::now_ms() * 1_000_000;
    let mut streams = Vec::new();
    let mut selected = Vec::new();
    for (ns, pod) in [("prod", "api"), ("prod", "web"), ("dev", "api")] {
        let values: Vec<(i64, String)> = (0..per_stream)
            .map(|i| {
                (
                    t0 + i as i64,
                    format!("{ns}/{pod} round {round:03} line {i:03}"),
                )
            })
            .collect();
        if ns == "prod" {
            selected.extend(
                values
                    .iter()
                    .map(|(t, l)| (format!("{ns}/{pod}"), *t, l.clone())),
            );
        }
        streams.push(serde_json::json!({
            "stream": {"namespace": ns, "pod": pod, "container": "c"},
            "values": values.iter().map(|(t, l)| [t.to_string(), l.clone()]).collect::<Vec<_>>(),
        }));
    }
    let resp = reqwest::blocking::Client::new()
        .post(format!("{base}/loki/api/v1/push"))
        .header("Content-Type", "application/json")
        .body(serde_json::json!({ "streams": streams }).to_string())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204, "{}", resp.text().unwrap());
    selected
}

fn server_metric(server: &common::ServerProcess, name: &str) -> f64 {
    common::metric_value(&server.metrics(), name, &[("target", "loki")]).unwrap_or(-1.0)
}

#[test]
fn lines_pushed_to_the_server_reach_loki_across_an_outage_and_a_server_kill() {
    let dir = tempfile::tempdir().unwrap();
    let logs = common::artifact_dir("forward_loki_e2e");
    let port = common::free_port();
    let receiver = Receiver::start_on(port, 204);
    let config = dir.path().join("osprey.toml");
    std::fs::write(
        &config,
        format!(
            "[[server.forward.loki]]\nname = \"loki\"\nurl = \"http://127.0.0.1:{port}/loki/api/v1/push\"\n\
             selectors = ['{{namespace=\"prod\"}}']\nmin_backoff = \"50ms\"\nmax_backoff = \"300ms\"\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut server = common::ServerProcess::start(&data, Some(&config), &logs);
    let mut want = Vec::new();
    let mut round = 0;
    for _ in 0..3 {
        want.extend(push_round(&server.base, round, 20));
        round += 1;
    }
    wait_for("the first rounds at the target", || {
        (accepted_lines(&receiver.received()).len() == want.len()).then_some(())
    });
    let mut arrived = receiver.received();

    // The target goes away (connection refused): pushes are still
    // acknowledged, queued on disk, and the lag grows.
    drop(receiver);
    for _ in 0..5 {
        want.extend(push_round(&server.base, round, 20));
        round += 1;
    }
    wait_for("a lag while the target is down", || {
        (server_metric(&server, "osprey_forward_lag_seconds") > 0.0).then_some(())
    });
    assert!(server_metric(&server, "osprey_forward_queue_batches") >= 5.0);

    // The server is killed and started again while the target is down.
    server.guard.child.kill().unwrap();
    server.guard.child.wait().unwrap();
    let server_port = server.port;
    drop(server);
    let server = common::ServerProcess::start_on(server_port, &data, Some(&config), &logs);
    assert!(
        server_metric(&server, "osprey_forward_queue_batches") >= 5.0,
        "the queue survived the kill"
    );
    for _ in 0..3 {
        want.extend(push_round(&server.base, round, 20));
        round += 1;
    }

    // The target returns where it was.
    let receiver = Receiver::start_on(port, 204);
    wait_for("every line at the target", || {
        (accepted_lines(&receiver.received()).len() >= want.len() - accepted_lines(&arrived).len())
            .then_some(())
    });
    wait_for("the lag back to 0", || {
        (server_metric(&server, "osprey_forward_lag_seconds") == 0.0
            && server_metric(&server, "osprey_forward_queue_batches") == 0.0)
            .then_some(())
    });
    arrived.extend(receiver.received());
    let got = accepted_lines(&arrived);
    assert!(
        got.iter().all(|(s, _, _)| s.starts_with("prod/")),
        "only selected streams are forwarded"
    );
    // Every line once, and per stream in the order pushed.
    for stream in ["prod/api", "prod/web"] {
        let sent: Vec<&(String, i64, String)> = want.iter().filter(|l| l.0 == stream).collect();
        let came: Vec<&(String, i64, String)> = got.iter().filter(|l| l.0 == stream).collect();
        assert_eq!(
            came, sent,
            "{stream}: lines lost, duplicated or out of order"
        );
    }
    rt_free_shutdown(server);
}

/// Stops the server with SIGTERM (its queue is empty).
fn rt_free_shutdown(mut server: common::ServerProcess) {
    server.guard.terminate(Duration::from_secs(10));
}
