//! The agent's HTTP API over a fixture tree while it runs: the container
//! list and recent samples, clear JSON errors for bad requests, broken
//! cgroup files counted and logged once without hiding other cgroups, and
//! a Docker container's writable layer measured.

mod common;

use std::time::Duration;

use common::*;
use osprey_collector::fixture::{CgroupValues, FixtureTree, paths};
use serde_json::Value;

fn write_layer(docker_root: &std::path::Path, id: &str, bytes: usize) {
    let mounts = docker_root.join("image/overlay2/layerdb/mounts").join(id);
    std::fs::create_dir_all(&mounts).unwrap();
    std::fs::write(mounts.join("mount-id"), "layer-1234\n").unwrap();
    let diff = docker_root.join("overlay2/layer-1234/diff/var/log");
    std::fs::create_dir_all(&diff).unwrap();
    std::fs::write(diff.join("app.log"), vec![b'x'; bytes]).unwrap();
    let dir = docker_root.join("containers").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let config = serde_json::json!({
        "ID": id, "Name": "/layered", "Config": { "Image": "busybox:1.36", "Labels": {} },
        "State": { "Running": true, "Pid": 0 }, "HostConfig": { "NetworkMode": "default" }
    });
    std::fs::write(dir.join("config.v2.json"), config.to_string()).unwrap();
}

#[test]
fn api_lists_containers_serves_recent_samples_and_refuses_bad_requests() {
    let dir = artifact_dir("agent-api");
    let tree = FixtureTree::v2().unwrap();
    let docker_root = dir.join("docker");
    let good = paths::docker_systemd(&paths::container_id(1));
    tree.add_cgroup(&good, &CgroupValues::sample(1)).unwrap();
    write_layer(&docker_root, &paths::container_id(1), 256 * 1024);
    let broken = paths::docker_systemd(&paths::container_id(2));
    tree.add_cgroup(&broken, &CgroupValues::sample(2)).unwrap();
    tree.write_file("", &broken, "memory.stat", "anon not-a-number\n")
        .unwrap();

    let agent = AgentProcess::start(
        &[
            "--interval",
            "200ms",
            "--cgroup-root",
            tree.root().to_str().unwrap(),
            "--docker-root",
            docker_root.to_str().unwrap(),
        ],
        &dir,
    );

    // The list: the good container with its name and image and latest sample.
    let list = wait_for(Duration::from_secs(10), "the good container listed", || {
        let v = agent.json("/api/v1/containers");
        v["containers"]
            .as_array()?
            .iter()
            .any(|c| c["id"] == good.as_str())
            .then_some(v)
    });
    let c = list["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == good.as_str())
        .unwrap();
    assert_eq!(c["name"], "layered");
    assert_eq!(c["image"], "busybox:1.36");
    assert_eq!(
        c["latest"]["memory"]["usage"],
        CgroupValues::sample(1).memory_usage
    );

    // Recent samples, by path (raw and URL-encoded) and by container id.
    let samples = wait_for(Duration::from_secs(10), "several samples", || {
        let v = agent.json(&format!("/api/v1/containers{good}/stats"));
        (v["stats"].as_array()?.len() >= 3).then_some(v)
    });
    let stats = samples["stats"].as_array().unwrap();
    let ts: Vec<i64> = stats
        .iter()
        .map(|s| s["timestamp_ms"].as_i64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "oldest first: {ts:?}");
    let since = chrono::DateTime::from_timestamp_millis(ts[1])
        .unwrap()
        .to_rfc3339();
    let later = agent.json(&format!(
        "/api/v1/containers/{}/stats?since={}",
        paths::container_id(1),
        urlencode(&since)
    ));
    let later_ts: Vec<i64> = later["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["timestamp_ms"].as_i64().unwrap())
        .collect();
    assert!(
        later_ts.iter().all(|t| *t >= ts[1]) && !later_ts.is_empty(),
        "since filters: {later_ts:?}"
    );
    let encoded = agent.json(&format!("/api/v1/containers/{}/stats", urlencode(&good)));
    assert!(!encoded["stats"].as_array().unwrap().is_empty());

    // The writable layer, measured by the bounded walker.
    let fs = wait_for(Duration::from_secs(10), "writable layer usage", || {
        let v = agent.json(&format!("/api/v1/containers{good}"));
        let f = v["latest"]["filesystem"].as_array()?.first()?.clone();
        Some(f)
    });
    assert!(fs["usage"].as_u64().unwrap() >= 256 * 1024, "{fs}");
    assert!(fs["limit"].as_u64().unwrap() > fs["usage"].as_u64().unwrap());
    let text = agent.metrics();
    assert!(
        metric_value(&text, "container_fs_usage_bytes", &[("id", good.as_str())]).unwrap()
            >= 262144.0
    );

    // Bad requests: JSON errors that name the problem.
    let (status, body) = get(&format!(
        "{}/api/v1/containers{good}/stats?since=yesterday",
        agent.base
    ))
    .unwrap();
    assert_eq!(status, 400);
    let err: Value = serde_json::from_str(&body).unwrap();
    assert!(err["error"].as_str().unwrap().contains("since"), "{body}");
    let (status, body) = get(&format!(
        "{}/api/v1/containers/no/such/container/stats",
        agent.base
    ))
    .unwrap();
    assert_eq!(status, 404);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
    let (status, _) = get(&format!("{}/no-such-endpoint", agent.base)).unwrap();
    assert_eq!(status, 404);

    // The broken cgroup: counted on every tick, logged once, others unaffected.
    let errors = wait_for(
        Duration::from_secs(10),
        "parse errors counted over several ticks",
        || {
            let v = metric_value(
                &agent.metrics(),
                "osprey_agent_read_errors_total",
                &[("reason", "parse")],
            )?;
            (v >= 3.0).then_some(v)
        },
    );
    assert!(errors >= 3.0);
    assert!(
        !list["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == broken.as_str())
    );
    let log = std::fs::read_to_string(dir.join(format!("{}.log", agent.guard.name))).unwrap();
    let mentions = log
        .lines()
        .filter(|l| l.contains("cannot read cgroup") && l.contains(&paths::container_id(2)))
        .count();
    assert_eq!(mentions, 1, "logged once:\n{log}");
    assert_eq!(get(&format!("{}/healthz", agent.base)).unwrap().0, 200);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
