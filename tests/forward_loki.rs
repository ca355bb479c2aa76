//! The Loki forwarding sink against a real HTTP receiver: selection by
//! stream selectors, Loki's JSON push body, retries on 503 with order kept,
//! batches that survive a crash (the forwarder dropped without shutdown)
//! and resume on the next start, and 400 answers dropped and counted.

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
