//! A pod container's ephemeral storage, end to end: the agent measures its
//! Docker overlay2 writable layer and its kubelet log files (real files,
//! sizes from the kernel), ships them with the filesystem's free space and
//! the node's CPU load to a real `osprey server`, and the Heapster API
//! serves `ephemeral_storage/usage` (layer + logs), `filesystem/available`
//! and `cpu/load`.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use common::*;
use osprey_collector::fixture::{CgroupValues, FixtureTree, paths};

/// Allocated bytes of a file, as the agent counts them.
fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn ephemeral_storage_is_the_writable_layer_plus_the_kubelet_logs() {
    let tree = FixtureTree::v2().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::create_dir_all(t.join("sys")).unwrap();
    let docker_root = t.join("docker");
    let pod_logs = t.join("pods");

    let id = paths::container_id(7);
    let uid = paths::pod_uid(7);
    let path = paths::kubepods_systemd(paths::Qos::Burstable, &uid, paths::Runtime::Docker, &id);
    tree.add_cgroup(&path, &CgroupValues::sample(7)).unwrap();
    // Docker's record of a Kubernetes container (cri-dockerd) ...
    let record = docker_root.join("containers").join(&id);
    std::fs::create_dir_all(&record).unwrap();
    let config = serde_json::json!({
        "ID": id, "Name": "/k8s_api_api-7d9_prod_x_0", "Driver": "overlay2",
        "Created": "2026-11-20T10:00:00.000000000Z",
        "Config": { "Image": "registry/api:2.1", "Labels": {
            "io.kubernetes.pod.namespace": "prod", "io.kubernetes.pod.name": "api-7d9",
            "io.kubernetes.pod.uid": uid, "io.kubernetes.container.name": "api" } },
        "State": { "Running": true, "Pid": 0 },
        "HostConfig": { "NetworkMode": "default" }
    });
    std::fs::write(
        record.join("config.v2.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    // ... its overlay2 writable layer with what the container wrote ...
    let layerdb = docker_root.join("image/overlay2/layerdb/mounts").join(&id);
    std::fs::create_dir_all(&layerdb).unwrap();
    std::fs::write(layerdb.join("mount-id"), "m7\n").unwrap();
    let diff = docker_root.join("overlay2/m7/diff");
    std::fs::create_dir_all(&diff).unwrap();
    std::fs::write(diff.join("cache.bin"), vec![7u8; 96 * 1024]).unwrap();
    std::fs::write(diff.join("pid"), b"1\n").unwrap();
    let layer = allocated(&diff.join("cache.bin")) + allocated(&diff.join("pid"));
    // ... and its kubelet logs, current and rotated.
    let log_dir = pod_logs.join(format!("prod_api-7d9_{uid}")).join("api");
    std::fs::create_dir_all(&log_dir).unwrap();
    std::fs::write(log_dir.join("0.log"), vec![b'x'; 40 * 1024]).unwrap();
    std::fs::write(
        log_dir.join("0.log.20261127-010203.gz"),
        vec![1u8; 8 * 1024],
    )
    .unwrap();
    let logs =
        allocated(&log_dir.join("0.log")) + allocated(&log_dir.join("0.log.20261127-010203.gz"));

    let artifacts = artifact_dir("agent_ephemeral");
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path(), None, &artifacts);
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let agent = AgentProcess::start(
        &[
            "--interval",
            "1s",
            "--node-name",
            "node-e",
            "--cpu-load",
            "--remote-write",
            &format!("{}/api/v1/write", server.base),
            "--cgroup-root",
            &s(tree.root()),
            "--sys-root",
            &s(&t.join("sys")),
            "--docker-root",
            &s(&docker_root),
            "--pod-log-root",
            &s(&pod_logs),
            "--container-log-root",
            &s(&t.join("no-containers")),
            "--data-dir",
            &s(&t.join("data")),
        ],
        &artifacts,
    );

    // The agent's exposition.
    let text = agent.metrics();
    let on = [("id", path.as_str())];
    assert_eq!(
        metric_value(&text, "container_logs_usage_bytes", &on),
        Some(logs as f64),
        "{text}"
    );
    assert_eq!(
        metric_value(&text, "container_fs_usage_bytes", &on),
        Some(layer as f64),
        "the layer's files"
    );
    let available = metric_value(&text, "container_fs_available_bytes", &on).unwrap();
    let limit = metric_value(&text, "container_fs_limit_bytes", &on).unwrap();
    assert!(
        available > 0.0 && available <= limit,
        "{available} of {limit}"
    );
    assert!(
        metric_value(&text, "container_fs_available_bytes", &[("id", "/")]).is_some(),
        "the node's filesystems have theirs"
    );
    assert!(metric_value(&text, "container_cpu_load_average_10s", &[("id", "/")]).is_some());

    // The Heapster API, from what the agent shipped.
    let latest = |route: &str| {
        let v = get_json(&format!("{}/api/v1/model/{route}", server.base));
        v["metrics"]
            .as_array()
            .and_then(|m| m.last())
            .map(|p| p["value"].as_u64().unwrap())
    };
    let c = "namespaces/prod/pods/api-7d9/containers/api/metrics";
    let eph = wait_for(Duration::from_secs(30), "ephemeral_storage/usage", || {
        latest(&format!("{c}/ephemeral_storage/usage"))
    });
    assert_eq!(eph, layer + logs);
    assert_eq!(
        latest("namespaces/prod/pods/api-7d9/metrics/ephemeral_storage/usage"),
        Some(layer + logs),
        "the pod sums its one container"
    );
    let device = text
        .lines()
        .find(|l| l.starts_with("container_fs_available_bytes{") && l.contains(&path))
        .and_then(|l| l.split("device=\"").nth(1))
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let avail = wait_for(Duration::from_secs(30), "filesystem/available", || {
        latest(&format!(
            "{c}/filesystem/available?labels=resource_id:{device}"
        ))
    });
    assert!(avail > 0 && avail as f64 <= limit, "{avail}");
    wait_for(Duration::from_secs(30), "the node's cpu/load", || {
        latest("nodes/node-e/metrics/cpu/load")
    });
}
