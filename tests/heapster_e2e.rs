//! End to end with the real binary: `osprey server` on a temporary data
//! directory receives the synthetic cluster by remote-write, answers the
//! Heapster API, is stopped with SIGTERM and started again on the same
//! directory, and gives the same answers (Heapster lost everything on
//! restart).

mod common;
mod heapster_fixture;

use std::time::Duration;

use common::{ChildGuard, free_port, get, get_json, osprey, wait_for};
use heapster_fixture::{Fixture, STEP_MS, TICKS, cpu_rate};
use osprey::heapster::api::go_time;

fn start_server(
    port: u16,
    data: &std::path::Path,
    logs: &std::path::Path,
    name: &str,
) -> ChildGuard {
    let mut cmd = osprey();
    cmd.args([
        "server",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
    ])
    .arg(data);
    let guard = ChildGuard::spawn(cmd, name, logs);
    wait_for(
        Duration::from_secs(30),
        "the server to answer /readyz",
        || get(&format!("http://127.0.0.1:{port}/readyz")).filter(|(s, _)| *s == 200),
    );
    guard
}

#[test]
fn heapster_answers_survive_a_server_restart() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_server(port, data.path(), logs.path(), "server-1");

    let now = chrono::Utc::now().timestamp_millis();
    let fx = Fixture::new((now - 6 * 60_000).div_euclid(STEP_MS) * STEP_MS);
    let resp = reqwest::blocking::Client::new()
        .post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .body(fx.body())
        .send()
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        204,
        "{}",
        resp.text().unwrap_or_default()
    );

    let start = go_time(fx.t0);
    let end = go_time(fx.bucket(TICKS - 1));
    let queries = [
        "/api/v1/model/nodes".to_string(),
        "/api/v1/model/namespaces/shop/pods".to_string(),
        format!("/api/v1/model/nodes/n1/metrics/cpu/usage_rate?start={start}&end={end}"),
        format!("/api/v1/model/namespaces/shop/metrics/memory/usage?start={start}&end={end}"),
        format!(
            "/api/v1/model/namespaces/shop/pod-list/web-1,web-2/metrics/cpu-usage?start={start}&end={end}"
        ),
        format!("/api/v1/model/metrics/memory/usage?start={start}&end={end}"),
        "/api/v1/metric-export-schema/".to_string(),
        format!(
            "/api/v1/model/namespaces/shop/pods/web-1/metrics/restart_count?start={start}&end={end}"
        ),
        format!(
            "/api/v1/model/namespaces/shop/pods/web-1/containers/nginx/metrics/ephemeral_storage/usage?start={start}&end={end}"
        ),
        format!("/api/v1/model/nodes/n2/metrics/cpu/node_allocatable?start={start}&end={end}"),
        format!(
            "/api/v1/model/nodes/n1/metrics/ephemeral_storage/node_utilization?start={start}&end={end}"
        ),
    ];
    let before: Vec<serde_json::Value> = queries
        .iter()
        .map(|q| get_json(&format!("{base}{q}")))
        .collect();

    // Plausible values: the node's CPU rate is the fixture's.
    let root1 = fx.find(|c| c.node == "n1" && c.id == "/")[0];
    let rates = before[2]["metrics"].as_array().unwrap();
    assert_eq!(rates.len(), TICKS - 1);
    for (i, p) in rates.iter().enumerate() {
        assert_eq!(
            p["value"].as_f64().unwrap(),
            cpu_rate(root1, i + 1).unwrap()
        );
    }
    assert_eq!(before[0], serde_json::json!(["n1", "n2"]));
    assert_eq!(before[4]["items"].as_array().unwrap().len(), 2);
    // The pod-status and ephemeral-storage series are stored like the rest.
    let restarts = before[7]["metrics"].as_array().unwrap();
    assert_eq!(restarts.len(), TICKS);
    assert_eq!(
        restarts.last().unwrap()["value"],
        1,
        "the sidecar restarted once"
    );
    assert_eq!(before[8]["metrics"].as_array().unwrap().len(), TICKS);
    // So are the Node object's figures and the kubelet filesystem's.
    // n2 reports 3 s after the grid: its last tick is after `end`.
    let alloc = before[9]["metrics"].as_array().unwrap();
    assert_eq!(alloc.len(), TICKS - 1);
    assert_eq!(alloc.last().unwrap()["value"], 7910);
    assert_eq!(before[10]["metrics"].as_array().unwrap().len(), TICKS);

    let status = server
        .terminate(Duration::from_secs(30))
        .expect("the server stops on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    let _server = start_server(port, data.path(), logs.path(), "server-2");
    for (q, want) in queries.iter().zip(&before) {
        assert_eq!(
            &get_json(&format!("{base}{q}")),
            want,
            "{q} after the restart"
        );
    }
}
