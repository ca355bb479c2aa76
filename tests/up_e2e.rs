//! `osprey up` end to end: agent and server in one process on this node,
//! a real cgroup under CPU load, and the Heapster API answering for it —
//! before and after a restart.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn start_up(
    port: u16,
    agent_port: u16,
    data: &std::path::Path,
    dir: &std::path::Path,
) -> ChildGuard {
    let mut cmd = osprey();
    cmd.args(["up", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--agent-listen", &format!("127.0.0.1:{agent_port}")])
        .arg("--data-dir")
        .arg(data)
        .args(["--interval", "1s", "--node-name", "e2e-node"]);
    let guard = ChildGuard::spawn(cmd, &format!("up-{port}"), dir);
    let ready = format!("http://127.0.0.1:{port}/readyz");
    wait_for(Duration::from_secs(60), "osprey up to be ready", || {
        get(&ready).filter(|(s, _)| *s == 200)
    });
    guard
}

fn json(url: &str) -> Option<Value> {
    let (status, body) = get(url)?;
    (status == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

fn points(v: &Value) -> Vec<f64> {
    v["metrics"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["value"].as_f64()).collect())
        .unwrap_or_default()
}

#[test]
fn up_serves_the_heapster_api_for_a_loaded_cgroup_and_keeps_history_across_restarts() {
    let dir = artifact_dir("up-e2e");
    let data = dir.join("data");
    let cg = RealCgroup::create("up");
    // The largest CFS weight: the loop keeps its core on a busy machine.
    cg.set("cpu", "cpu.shares", "262144");
    cg.set("cpu", "cpu.shares", "262144");
    let _spin = cg.spawn(
        "nice",
        &["-n", "-19", "sh", "-c", "while :; do :; done"],
        &dir,
        "spin",
    );
    let name = cg.path.trim_start_matches('/').to_string();
    let (port, agent_port) = (free_port(), free_port());
    let mut up = start_up(port, agent_port, &data, &dir);
    let base = format!("http://127.0.0.1:{port}/api/v1/model");

    wait_for(Duration::from_secs(30), "the node in the model", || {
        json(&format!("{base}/nodes/"))?
            .as_array()?
            .iter()
            .any(|n| n == "e2e-node")
            .then_some(())
    });
    wait_for(
        Duration::from_secs(30),
        "the loaded cgroup as a free container",
        || {
            json(&format!("{base}/nodes/e2e-node/freecontainers/"))?
                .as_array()?
                .iter()
                .any(|c| c == name.as_str())
                .then_some(())
        },
    );
    let rate_url = format!("{base}/nodes/e2e-node/freecontainers/{name}/metrics/cpu/usage_rate");
    let rates = wait_for(
        Duration::from_secs(30),
        "CPU rate points of the loaded cgroup",
        || {
            let p = points(&json(&rate_url)?);
            (p.len() >= 4).then_some(p)
        },
    );
    let last = *rates.last().unwrap();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    assert!(
        (850.0..=1150.0).contains(&last),
        "a busy loop is ~1000 millicores, got {last} (load {})",
        load.trim()
    );
    assert!(
        rates.iter().all(|r| *r >= 0.0),
        "rates are never negative: {rates:?}"
    );

    let node_mem = points(&json(&format!("{base}/nodes/e2e-node/metrics/memory/usage")).unwrap());
    assert!(
        node_mem.last().copied().unwrap_or(0.0) > 0.0,
        "node memory usage"
    );
    let schema = json(&format!(
        "http://127.0.0.1:{port}/api/v1/metric-export-schema/"
    ))
    .unwrap();
    assert!(
        schema["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "cpu/usage")
    );
    let export = json(&format!("http://127.0.0.1:{port}/api/v1/metric-export")).unwrap();
    assert!(
        export.to_string().contains("e2e-node"),
        "metric-export includes the node"
    );

    // Restart: the history written before is still there.
    let before = points(&json(&format!("{base}/nodes/e2e-node/metrics/cpu/usage")).unwrap());
    assert!(!before.is_empty());
    assert!(
        up.terminate(Duration::from_secs(30)).is_some(),
        "osprey up stops on SIGTERM"
    );
    let _up = start_up(port, agent_port, &data, &dir);
    let after = wait_for(
        Duration::from_secs(30),
        "node history after the restart",
        || {
            let p = points(&json(&format!("{base}/nodes/e2e-node/metrics/cpu/usage"))?);
            (p.len() > before.len()).then_some(p)
        },
    );
    assert!(
        after.len() > before.len(),
        "history kept and growing: {} then {}",
        before.len(),
        after.len()
    );
}
