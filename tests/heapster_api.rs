//! Golden tests of the Heapster-compatible API: fixed synthetic cluster
//! data goes in through the real remote-write route, and every endpoint's
//! JSON is compared with values computed here from the same data.

mod heapster_fixture;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use heapster_fixture::*;
use osprey::heapster::api::go_time;
use osprey::server::{ServerConfig, ServerState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Harness {
    app: Router,
    fx: Fixture,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    harness_with(&|_, _| true).await
}

/// A server holding the fixture's samples that `keep` accepts.
async fn harness_with(keep: &dyn Fn(&str, usize) -> bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        data_dir: dir.path().to_path_buf(),
        ..ServerConfig::default()
    };
    let state: Arc<ServerState> = ServerState::open(config).unwrap();
    let app = router(state);
    // Tick 0 five minutes ago, on the 10 s grid: the last tick is about a
    // minute old, inside metric-export's 2-minute window and Heapster's
    // default 15-minute window.
    let now = chrono::Utc::now().timestamp_millis();
    let t0 = (now - 5 * 60_000).div_euclid(STEP_MS) * STEP_MS;
    let fx = Fixture::new(t0);
    let h = Harness { app, fx, _dir: dir };
    h.write(h.fx.body_where(keep)).await;
    h
}

impl Harness {
    async fn write(&self, body: Vec<u8>) {
        let resp = self
            .app
            .clone()
            .oneshot(
                Request::post("/api/v1/write")
                    .header("Content-Encoding", "snappy")
                    .header("Content-Type", "application/x-protobuf")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::NO_CONTENT,
            "remote write refused"
        );
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .unwrap();
        let v = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{path}: not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, v)
    }

    async fn ok(&self, path: &str) -> Value {
        let (s, v) = self.get(path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        v
    }

    /// A metric route's points as (timestamp ms, value, floatValue).
    async fn points(&self, path: &str) -> Vec<(i64, u64)> {
        let v = self.ok(path).await;
        check_metric_result_shape(&v);
        v["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let t = chrono::DateTime::parse_from_rfc3339(p["timestamp"].as_str().unwrap())
                    .unwrap()
                    .timestamp_millis();
                (t, p["value"].as_u64().unwrap())
            })
            .collect()
    }

    fn since(&self, k: usize) -> String {
        go_time(self.fx.bucket(k))
    }
}

fn check_metric_result_shape(v: &Value) {
    let obj = v.as_object().expect("object");
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        vec!["latestTimestamp", "metrics"],
        "{v}"
    );
    let pts = v["metrics"].as_array().unwrap();
    for p in pts {
        let keys: Vec<_> = p.as_object().unwrap().keys().cloned().collect();
        assert!(
            keys == ["timestamp", "value"] || keys == ["floatValue", "timestamp", "value"],
            "{p}"
        );
        let ts = p["timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() >= 20, "{ts}");
    }
    let latest = v["latestTimestamp"].as_str().unwrap();
    match pts.last() {
        Some(p) => assert_eq!(p["timestamp"].as_str().unwrap(), latest),
        None => assert_eq!(latest, "0001-01-01T00:00:00Z"),
    }
}

fn expect_series(f: impl Fn(usize) -> Option<f64>, fx: &Fixture) -> Vec<(i64, u64)> {
    (0..TICKS)
        .filter_map(|k| f(k).map(|v| (fx.bucket(k), v.trunc() as u64)))
        .collect()
}

const EMPTY: &str = r#"{"metrics":[],"latestTimestamp":"0001-01-01T00:00:00Z"}"#;

#[tokio::test]
async fn schema_lists_exactly_heapsters_metrics_and_labels() {
    let h = harness().await;
    for path in [
        "/api/v1/metric-export-schema",
        "/api/v1/metric-export-schema/",
    ] {
        let v = h.ok(path).await;
        let names: Vec<&str> = v["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        // Reference §5, in order.
        assert_eq!(
            names,
            [
                "uptime",
                "cpu/usage",
                "cpu/load",
                "ephemeral_storage/usage",
                "memory/usage",
                "memory/rss",
                "memory/cache",
                "memory/working_set",
                "memory/page_faults",
                "memory/major_page_faults",
                "network/rx",
                "network/rx_errors",
                "network/tx",
                "network/tx_errors",
                "cpu/limit",
                "memory/limit",
                "disk/io_read_bytes",
                "disk/io_read_bytes_rate",
                "disk/io_write_bytes",
                "disk/io_write_bytes_rate",
                "filesystem/usage",
                "filesystem/limit",
                "filesystem/available",
                "filesystem/inodes",
                "filesystem/inodes_free",
                "accelerator/memory_total",
                "accelerator/memory_used",
                "accelerator/duty_cycle",
            ]
        );
        let by_name: BTreeMap<&str, &Value> = v["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["name"].as_str().unwrap(), m))
            .collect();
        assert_eq!(
            by_name["uptime"],
            &json!({"name": "uptime", "description": "Number of milliseconds since the container was started", "type": "cumulative", "value_type": "int64", "units": "ms"})
        );
        assert_eq!(
            by_name["cpu/load"],
            &json!({"name": "cpu/load", "description": "CPU load", "type": "gauge", "value_type": "int64"})
        );
        assert_eq!(by_name["cpu/usage"]["units"], "ns");
        assert!(
            by_name["cpu/limit"].get("units").is_none(),
            "count unit omitted"
        );
        assert_eq!(by_name["memory/page_faults"]["type"], "cumulative");
        assert!(by_name["memory/page_faults"].get("units").is_none());
        assert_eq!(by_name["disk/io_read_bytes_rate"]["value_type"], "double");
        assert_eq!(by_name["filesystem/inodes"]["units"], "bytes");
        assert_eq!(
            by_name["filesystem/usage"]["labels"],
            json!([{"key": "resource_id", "description": "Identifier(s) specific to a metric"}])
        );
        let keys: Vec<&str> = by_name["accelerator/duty_cycle"]["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["make", "model", "accelerator_id"]);
        assert!(by_name["memory/usage"].get("labels").is_none());
        let label_keys = |k: &str| -> Vec<String> {
            v[k].as_array()
                .unwrap()
                .iter()
                .map(|l| l["key"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            label_keys("common_labels"),
            [
                "nodename",
                "hostname",
                "host_id",
                "container_name",
                "container_base_image"
            ]
        );
        assert_eq!(
            label_keys("pod_labels"),
            ["pod_name", "pod_id", "namespace_id", "labels"]
        );
        assert_eq!(
            v["common_labels"][1]["description"],
            "Hostname where the container ran"
        );
    }
}

#[tokio::test]
async fn entity_lists_follow_the_series_labels() {
    let h = harness().await;
    assert_eq!(h.ok("/api/v1/model/nodes").await, json!(["n1", "n2"]));
    assert_eq!(h.ok("/api/v1/model/nodes/").await, json!(["n1", "n2"]));
    assert_eq!(
        h.ok("/api/v1/model/namespaces").await,
        json!(["data", "shop"])
    );
    assert_eq!(
        h.ok("/api/v1/model/namespaces/shop/pods").await,
        json!(["web-1", "web-2"])
    );
    assert_eq!(
        h.ok("/api/v1/model/namespaces/shop/pods/web-1/containers")
            .await,
        json!(["nginx", "sidecar"])
    );
    assert_eq!(
        h.ok("/api/v1/model/nodes/n1/freecontainers").await,
        json!(["docker.service"])
    );
    assert_eq!(
        h.ok("/api/v1/model/nodes/n2/freecontainers/").await,
        json!(["kubelet.service"])
    );
    // Unknown entities: empty lists, not errors.
    assert_eq!(h.ok("/api/v1/model/namespaces/ghost/pods").await, json!([]));
    assert_eq!(
        h.ok("/api/v1/model/namespaces/shop/pods/ghost/containers")
            .await,
        json!([])
    );
    assert_eq!(
        h.ok("/api/v1/model/nodes/ghost/freecontainers").await,
        json!([])
    );
    let keys = h.ok("/api/v1/model/debug/allkeys").await;
    let keys: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    for k in [
        "cluster",
        "node:n1",
        "node:n1/container:docker.service",
        "namespace:shop",
        "namespace:shop/pod:web-1",
        "namespace:shop/pod:web-1/container:sidecar",
        "namespace:data/pod:db-0/container:postgres",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    assert_eq!(keys.len(), 1 + 2 + 2 + 2 + 3 + 4, "{keys:?}");
}

#[tokio::test]
async fn pod_container_gauges_counters_and_uptime() {
    let h = harness().await;
    let fx = &h.fx;
    let nginx = fx.container("shop", "web-1", "nginx")[0];
    let base = "/api/v1/model/namespaces/shop/pods/web-1/containers/nginx/metrics";
    assert_eq!(
        h.points(&format!("{base}/memory/usage")).await,
        expect_series(|k| Some(nginx.mem[k]), fx)
    );
    assert_eq!(
        h.points(&format!("{base}/memory/working_set")).await,
        expect_series(|k| Some(nginx.working_set[k]), fx)
    );
    // cpu/usage in nanoseconds.
    assert_eq!(
        h.points(&format!("{base}/cpu/usage")).await,
        expect_series(|k| Some(nginx.cpu[k] * 1e9), fx)
    );
    // uptime in milliseconds since the start time.
    assert_eq!(
        h.points(&format!("{base}/uptime")).await,
        expect_series(
            |k| Some((fx.t("n1", k) as f64) - nginx.start_s * 1000.0),
            fx
        )
    );
    // Limits and requests from the spec: quota 50000/100000 → 500 m,
    // shares 256 → 250 m.
    assert_eq!(
        h.points(&format!("{base}/cpu/limit")).await,
        expect_series(|_| Some(500.0), fx)
    );
    assert_eq!(
        h.points(&format!("{base}/cpu/request")).await,
        expect_series(|_| Some(250.0), fx)
    );
    assert_eq!(
        h.points(&format!("{base}/memory/limit")).await,
        expect_series(|_| Some(nginx.mem_limit), fx)
    );
    // Pod containers have no network metrics (the pod has them).
    assert_eq!(
        h.ok(&format!("{base}/network/rx")).await,
        serde_json::from_str::<Value>(EMPTY).unwrap()
    );
}

#[tokio::test]
async fn cpu_rate_is_never_negative_across_a_counter_drop_and_a_restart() {
    let h = harness().await;
    let fx = &h.fx;
    let nginx = fx.container("shop", "web-1", "nginx")[0];
    assert!(
        nginx.cpu[DROP_TICK] < nginx.cpu[DROP_TICK - 1],
        "the fixture has a drop"
    );
    let got = h
        .points("/api/v1/model/namespaces/shop/pods/web-1/containers/nginx/metrics/cpu/usage_rate")
        .await;
    assert_eq!(got, expect_series(|k| cpu_rate(nginx, k), fx));
    assert_eq!(got.len(), TICKS - 1);
    // The drop tick: the new value counts as the increase.
    let at_drop = got
        .iter()
        .find(|(t, _)| *t == fx.bucket(DROP_TICK))
        .unwrap()
        .1;
    assert_eq!(at_drop, (nginx.cpu[DROP_TICK] / 10.0 * 1000.0) as u64);
    assert!(
        got.iter().all(|(_, v)| *v < 1_000_000),
        "no wrapped negative: {got:?}"
    );

    // The sidecar restarted under a new cgroup: both incarnations, one
    // container, rates from each incarnation's own counter.
    let side = fx.container("shop", "web-1", "sidecar");
    assert_eq!(side.len(), 2);
    let got = h
        .points("/api/v1/model/namespaces/shop/pods/web-1/containers/sidecar/metrics/cpu-usage")
        .await;
    let want = expect_series(|k| side.iter().find_map(|c| cpu_rate(c, k)), fx);
    assert_eq!(got, want);
    assert!(
        !got.iter().any(|(t, _)| *t == fx.bucket(RESTART_TICK)),
        "no rate across the restart"
    );
    // The raw counter shows the new incarnation after the restart.
    let usage = h
        .points("/api/v1/model/namespaces/shop/pods/web-1/containers/sidecar/metrics/cpu/usage")
        .await;
    assert_eq!(
        usage,
        expect_series(
            |k| side.iter().find_map(|c| c.at(k).map(|i| c.cpu[i] * 1e9)),
            fx
        )
    );
}

#[tokio::test]
async fn pods_namespaces_nodes_and_cluster_sum_on_the_grid() {
    let h = harness().await;
    let fx = &h.fx;
    let sum = |cgs: &[&Cg], f: &dyn Fn(&Cg, usize) -> Option<f64>, k: usize| -> Option<f64> {
        let vals: Vec<f64> = cgs.iter().filter_map(|c| f(c, k)).collect();
        (!vals.is_empty()).then(|| vals.iter().sum())
    };
    let mem = |c: &Cg, k: usize| c.at(k).map(|i| c.mem[i]);
    let web1 = fx.find(|c| c.pod == "web-1" && !c.container.is_empty());
    // Pod = Σ containers (memory, cpu rate); the sandbox is not a container.
    assert_eq!(
        h.points("/api/v1/model/namespaces/shop/pods/web-1/metrics/memory/usage")
            .await,
        expect_series(|k| sum(&web1, &mem, k), fx)
    );
    assert_eq!(
        h.points("/api/v1/model/namespaces/shop/pods/web-1/metrics/cpu/usage_rate")
            .await,
        expect_series(|k| sum(&web1, &|c, k| cpu_rate(c, k), k), fx)
    );
    // Pod network from the sandbox, summed over interfaces, as a rate.
    let sandbox = fx.find(|c| c.pod == "web-1" && c.container.is_empty())[0];
    assert_eq!(
        h.points("/api/v1/model/namespaces/shop/pods/web-1/metrics/network/rx_rate")
            .await,
        expect_series(|k| byte_rate(&sandbox.rx[0].1, k), fx)
    );
    // Pod limits = Σ containers; sidecar has neither quota nor request.
    assert_eq!(
        h.points("/api/v1/model/namespaces/shop/pods/web-1/metrics/cpu/limit")
            .await,
        expect_series(|_| Some(500.0), fx)
    );
    assert_eq!(
        h.points("/api/v1/model/namespaces/shop/pods/web-1/metrics/cpu/request")
            .await,
        expect_series(|_| Some(250.0 + 100.0), fx),
        "sidecar shares 102 → 100 m"
    );
    // Namespace = Σ pods across nodes (node 2 is 3 s late: same bucket).
    let shop = fx.find(|c| c.namespace == "shop" && !c.container.is_empty());
    assert_eq!(
        h.points("/api/v1/model/namespaces/shop/metrics/memory/usage")
            .await,
        expect_series(|k| sum(&shop, &mem, k), fx)
    );
    assert_eq!(
        h.points("/api/v1/model/namespaces/shop/metrics/memory-usage")
            .await,
        expect_series(|k| sum(&shop, &mem, k), fx)
    );
    assert_eq!(
        h.points("/api/v1/model/namespaces/shop/metrics/memory/limit")
            .await,
        expect_series(|_| Some(134_217_728.0 + 268_435_456.0), fx)
    );
    // Node usage = its root cgroup; node limits = Σ pods on the node.
    let root1 = fx.find(|c| c.node == "n1" && c.id == "/")[0];
    assert_eq!(
        h.points("/api/v1/model/nodes/n1/metrics/memory/usage")
            .await,
        expect_series(|k| Some(root1.mem[k]), fx)
    );
    assert_eq!(
        h.points("/api/v1/model/nodes/n1/metrics/network/rx_rate")
            .await,
        expect_series(
            |k| Some(byte_rate(&root1.rx[0].1, k)? + byte_rate(&root1.rx[1].1, k)?),
            fx
        )
    );
    assert_eq!(
        h.points("/api/v1/model/nodes/n2/metrics/memory/limit")
            .await,
        expect_series(|_| Some(268_435_456.0 + 1_073_741_824.0), fx)
    );
    assert_eq!(
        h.points("/api/v1/model/nodes/n1/metrics/cpu/node_capacity")
            .await,
        expect_series(|_| Some(4000.0), fx)
    );
    let util = h
        .ok("/api/v1/model/nodes/n1/metrics/cpu/node_utilization")
        .await;
    let last = util["metrics"].as_array().unwrap().last().unwrap().clone();
    let want = cpu_rate(root1, TICKS - 1).unwrap() / 4000.0;
    assert!(
        (last["floatValue"].as_f64().unwrap() - want).abs() < 1e-9,
        "{last}"
    );
    // Cluster = Σ nodes.
    let roots = fx.find(|c| c.id == "/");
    assert_eq!(
        h.points("/api/v1/model/metrics/memory/usage").await,
        expect_series(|k| sum(&roots, &mem, k), fx)
    );
    assert_eq!(
        h.points("/api/v1/model/metrics/cpu/usage_rate").await,
        expect_series(|k| sum(&roots, &|c, k| cpu_rate(c, k), k), fx)
    );
    // System container.
    let docker = fx.find(|c| c.id == "/system.slice/docker.service")[0];
    assert_eq!(
        h.points("/api/v1/model/nodes/n1/freecontainers/docker.service/metrics/memory/usage")
            .await,
        expect_series(|k| Some(docker.mem[k]), fx)
    );
}

#[tokio::test]
async fn labeled_metrics_start_end_and_aliases() {
    let h = harness().await;
    let fx = &h.fx;
    let root1 = fx.find(|c| c.node == "n1" && c.id == "/")[0];
    let fs = root1.fs_usage.as_ref().unwrap();
    assert_eq!(
        h.points("/api/v1/model/nodes/n1/metrics/filesystem/usage?labels=resource_id:/dev/sda1")
            .await,
        expect_series(|k| Some(fs[k]), fx)
    );
    // Labeled metrics need exactly their labels.
    let empty: Value = serde_json::from_str(EMPTY).unwrap();
    assert_eq!(
        h.ok("/api/v1/model/nodes/n1/metrics/filesystem/usage")
            .await,
        empty
    );
    assert_eq!(
        h.ok("/api/v1/model/nodes/n1/metrics/filesystem/usage?labels=resource_id:/dev/nope")
            .await,
        empty
    );
    assert_eq!(
        h.ok("/api/v1/model/nodes/n1/metrics/filesystem/usage?labels=device:/dev/sda1")
            .await,
        empty
    );
    assert_eq!(
        h.ok("/api/v1/model/nodes/n1/metrics/memory/usage?labels=resource_id:/dev/sda1")
            .await,
        empty
    );
    // start/end are inclusive and select a sub-range.
    let (a, b) = (5, 9);
    let path = format!(
        "/api/v1/model/nodes/n1/metrics/memory/usage?start={}&end={}",
        h.since(a),
        h.since(b)
    );
    assert_eq!(
        h.points(&path).await,
        expect_series(|k| (a..=b).contains(&k).then(|| root1.mem[k]), fx)
    );
    // The first point of a rate range still has a rate (looks back).
    let path = format!(
        "/api/v1/model/nodes/n1/metrics/cpu/usage_rate?start={}",
        h.since(a)
    );
    assert_eq!(
        h.points(&path).await,
        expect_series(|k| (k >= a).then(|| cpu_rate(root1, k)).flatten(), fx)
    );
    // Aliases.
    for (alias, name) in [
        ("cpu-usage", "cpu/usage_rate"),
        ("cpu-limit", "cpu/limit"),
        ("memory-limit", "memory/limit"),
        ("memory-usage", "memory/usage"),
        ("memory-working", "memory/working_set"),
    ] {
        let p = "/api/v1/model/namespaces/shop/pods/web-2/containers/nginx/metrics";
        let by_alias = h.ok(&format!("{p}/{alias}")).await;
        assert!(
            !by_alias["metrics"].as_array().unwrap().is_empty(),
            "{alias}"
        );
        assert_eq!(by_alias, h.ok(&format!("{p}/{name}")).await, "{alias}");
    }
}

#[tokio::test]
async fn pod_list_and_unknown_entities() {
    let h = harness().await;
    let v = h
        .ok("/api/v1/model/namespaces/shop/pod-list/web-2,ghost,web-1/metrics/memory/usage")
        .await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(v.as_object().unwrap().len(), 1);
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[0],
        h.ok("/api/v1/model/namespaces/shop/pods/web-2/metrics/memory/usage")
            .await
    );
    assert_eq!(items[1], serde_json::from_str::<Value>(EMPTY).unwrap());
    assert_eq!(
        items[2],
        h.ok("/api/v1/model/namespaces/shop/pods/web-1/metrics/memory/usage")
            .await
    );
    for item in items {
        check_metric_result_shape(item);
    }
    let empty: Value = serde_json::from_str(EMPTY).unwrap();
    for path in [
        "/api/v1/model/nodes/ghost/metrics/memory/usage",
        "/api/v1/model/nodes/ghost/freecontainers/x/metrics/memory/usage",
        "/api/v1/model/namespaces/ghost/metrics/memory/usage",
        "/api/v1/model/namespaces/shop/pods/ghost/metrics/cpu/usage_rate",
        "/api/v1/model/namespaces/shop/pods/web-1/containers/ghost/metrics/memory/usage",
        "/api/v1/model/nodes/n1/metrics/custom/qps",
        // n2's agent does not measure CPU load (it is opt-in).
        "/api/v1/model/nodes/n2/metrics/cpu/load",
    ] {
        assert_eq!(h.ok(path).await, empty, "{path}");
    }
    assert_eq!(h.ok("/api/v1/model/nodes/ghost/metrics").await, json!([]));
}

#[tokio::test]
async fn metric_name_lists() {
    let h = harness().await;
    let names = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    };
    let node = names(h.ok("/api/v1/model/nodes/n1/metrics").await);
    for m in [
        "cpu/usage_rate",
        "memory/usage",
        "network/rx_rate",
        "cpu/node_capacity",
        "uptime",
        "cpu/limit",
    ] {
        assert!(
            node.contains(&m.to_string()),
            "{m} missing for node: {node:?}"
        );
    }
    assert!(
        !node.iter().any(|m| m.starts_with("filesystem/")),
        "labeled metrics unlisted"
    );
    let c = names(
        h.ok("/api/v1/model/namespaces/shop/pods/web-1/containers/nginx/metrics/")
            .await,
    );
    assert!(
        c.contains(&"cpu/usage".to_string()) && !c.iter().any(|m| m.starts_with("network/")),
        "{c:?}"
    );
    let ns = names(h.ok("/api/v1/model/namespaces/shop/metrics").await);
    assert_eq!(
        ns,
        [
            "cpu/limit",
            "cpu/request",
            "cpu/usage_rate",
            "memory/limit",
            "memory/request",
            "memory/usage"
        ]
    );
    let cluster = names(h.ok("/api/v1/model/metrics").await);
    assert_eq!(cluster, ns);
}

#[tokio::test]
async fn metric_export_has_the_latest_point_of_each_entity() {
    let h = harness().await;
    let fx = &h.fx;
    let v = h.ok("/api/v1/metric-export").await;
    let all = v.as_array().unwrap();
    let find = |f: &dyn Fn(&Value) -> bool| all.iter().find(|ts| f(&ts["labels"])).cloned();
    // Node n1.
    let n1 = find(&|l| l["nodename"] == "n1" && l["container_name"] == "machine").expect("node n1");
    assert_eq!(
        n1["labels"],
        json!({"container_name": "machine", "host_id": "uuid-n1", "hostname": "n1", "nodename": "n1"})
    );
    let root1 = fx.find(|c| c.node == "n1" && c.id == "/")[0];
    let last = go_time(fx.bucket(TICKS - 1));
    assert_eq!(
        n1["metrics"]["memory/usage"],
        json!([{"start": last, "end": last, "value": root1.mem[TICKS - 1] as i64}])
    );
    let cpu = &n1["metrics"]["cpu/usage"][0];
    assert_eq!(
        cpu["start"],
        go_time((root1.start_s * 1000.0) as i64),
        "cumulative from the start"
    );
    assert_eq!(cpu["value"], (root1.cpu[TICKS - 1] * 1e9) as i64);
    assert_eq!(
        n1["metrics"]["filesystem/usage"],
        json!([{"start": last, "end": last, "labels": {"resource_id": "/dev/sda1"}, "value": root1.fs_usage.as_ref().unwrap()[TICKS - 1] as i64}])
    );
    assert!(
        n1["metrics"].get("cpu/usage_rate").is_none(),
        "rates are not exported"
    );
    // Pod container web-1/nginx with pod labels.
    let nginx =
        find(&|l| l["pod_name"] == "web-1" && l["container_name"] == "nginx").expect("nginx");
    assert_eq!(
        nginx["labels"],
        json!({
            "container_base_image": "registry/app:1", "container_name": "nginx", "host_id": "uuid-n1",
            "hostname": "n1", "labels": "app:web", "namespace_id": SHOP_UID, "nodename": "n1",
            "pod_id": uid("web-1"), "pod_name": "web-1"
        })
    );
    assert_eq!(nginx["metrics"]["cpu/limit"][0]["value"], 500);
    // Pod web-1 with its network.
    let pod = find(&|l| l["pod_name"] == "web-1" && l["container_name"] == "/pod").expect("pod");
    let sandbox = fx.find(|c| c.pod == "web-1" && c.container.is_empty())[0];
    assert_eq!(
        pod["metrics"]["network/rx"][0]["value"],
        sandbox.rx[0].1[TICKS - 1] as i64
    );
    assert_eq!(pod["metrics"]["memory/usage"][0]["value"], {
        let w: f64 = fx
            .find(|c| c.pod == "web-1" && !c.container.is_empty() && c.at(TICKS - 1).is_some())
            .iter()
            .map(|c| c.mem[c.at(TICKS - 1).unwrap()])
            .sum();
        w as i64
    });
    // Node 2 collects 3 s into each interval: its cumulative start is still
    // its exact start time.
    let n2 = find(&|l| l["nodename"] == "n2" && l["container_name"] == "machine").expect("node n2");
    let root2 = fx.find(|c| c.node == "n2" && c.id == "/")[0];
    assert_eq!(
        n2["metrics"]["cpu/usage"][0]["start"],
        go_time((root2.start_s * 1000.0) as i64)
    );
    // System container; no namespace or cluster sets.
    assert!(find(&|l| l["container_name"] == "kubelet.service" && l["nodename"] == "n2").is_some());
    // 2 nodes + 2 system containers + 3 pods + 4 pod containers.
    assert_eq!(all.len(), 11, "{v}");
}

/// The metrics the agent ships beyond cAdvisor's defaults: restart counts
/// and namespace UIDs from the pod list, CPU load, available bytes and
/// ephemeral storage (writable layer + kubelet logs).
#[tokio::test]
async fn restart_count_load_available_bytes_and_ephemeral_storage() {
    let h = harness().await;
    let fx = &h.fx;
    let web1 = "/api/v1/model/namespaces/shop/pods/web-1";
    let counts = |c: &str| {
        fx.restarts
            .iter()
            .find(|r| r.pod == "web-1" && r.container == c)
            .unwrap()
            .counts
            .clone()
    };
    let (nginx_restarts, sidecar_restarts) = (counts("nginx"), counts("sidecar"));
    // A container's restart count is the pod status' value, whichever of
    // its cgroups is current; the pod's is the sum over its containers.
    assert_eq!(
        h.points(&format!("{web1}/containers/sidecar/metrics/restart_count"))
            .await,
        expect_series(|k| Some(sidecar_restarts[k]), fx)
    );
    assert_eq!(
        h.points(&format!("{web1}/metrics/restart_count")).await,
        expect_series(|k| Some(nginx_restarts[k] + sidecar_restarts[k]), fx)
    );
    assert_eq!(
        h.points("/api/v1/model/namespaces/shop/pods/web-2/metrics/restart_count")
            .await,
        expect_series(|_| Some(3.0), fx)
    );

    // CPU load: the gauge as shipped (milliloads); pods sum containers.
    let nginx = fx.container("shop", "web-1", "nginx")[0];
    let side_b = fx
        .container("shop", "web-1", "sidecar")
        .into_iter()
        .find(|c| c.load.is_some())
        .unwrap();
    let root1 = fx.find(|c| c.node == "n1" && c.id == "/")[0];
    assert_eq!(
        h.points(&format!("{web1}/containers/nginx/metrics/cpu/load"))
            .await,
        expect_series(|k| Some(nginx.load.as_ref().unwrap()[k]), fx)
    );
    assert_eq!(
        h.points("/api/v1/model/nodes/n1/metrics/cpu/load").await,
        expect_series(|k| Some(root1.load.as_ref().unwrap()[k]), fx)
    );
    assert_eq!(
        h.points(&format!("{web1}/metrics/cpu/load")).await,
        expect_series(
            |k| Some(
                nginx.load.as_ref().unwrap()[k]
                    + side_b
                        .at(k)
                        .map_or(0.0, |i| side_b.load.as_ref().unwrap()[i])
            ),
            fx
        )
    );

    // Available bytes per device, node and container.
    assert_eq!(
        h.points(
            "/api/v1/model/nodes/n1/metrics/filesystem/available?labels=resource_id:/dev/sda1"
        )
        .await,
        expect_series(|k| Some(root1.fs_available.as_ref().unwrap()[k]), fx)
    );
    assert_eq!(
        h.points(&format!(
            "{web1}/containers/nginx/metrics/filesystem/available?labels=resource_id:/dev/sda1"
        ))
        .await,
        expect_series(|k| Some(nginx.fs_available.as_ref().unwrap()[k]), fx)
    );

    // Ephemeral storage: writable layer + logs; a container with logs but
    // no measured layer yet counts its logs; the pod sums.
    let nginx_eph =
        |k: usize| nginx.fs_usage.as_ref().unwrap()[k] + nginx.logs.as_ref().unwrap()[k];
    let side_eph = |k: usize| side_b.at(k).map(|i| side_b.logs.as_ref().unwrap()[i]);
    assert_eq!(
        h.points(&format!(
            "{web1}/containers/nginx/metrics/ephemeral_storage/usage"
        ))
        .await,
        expect_series(|k| Some(nginx_eph(k)), fx)
    );
    assert_eq!(
        h.points(&format!(
            "{web1}/containers/sidecar/metrics/ephemeral_storage/usage"
        ))
        .await,
        expect_series(side_eph, fx)
    );
    assert_eq!(
        h.points(&format!("{web1}/metrics/ephemeral_storage/usage"))
            .await,
        expect_series(|k| Some(nginx_eph(k) + side_eph(k).unwrap_or(0.0)), fx)
    );
    // Requests and limits from the pod specs: containers, pods (sums),
    // nodes (sums over their pods); an unset one has no points.
    let spec = |pod: &str, c: &str| {
        fx.ephemeral_spec
            .iter()
            .find(|e| e.pod == pod && e.container == c)
            .unwrap()
            .clone()
    };
    let (nginx_spec, sidecar_spec) = (spec("web-1", "nginx"), spec("web-1", "sidecar"));
    assert_eq!(
        h.points(&format!(
            "{web1}/containers/nginx/metrics/ephemeral_storage/limit"
        ))
        .await,
        expect_series(|_| nginx_spec.limit, fx)
    );
    assert_eq!(
        h.ok(&format!(
            "{web1}/containers/sidecar/metrics/ephemeral_storage/limit"
        ))
        .await,
        serde_json::from_str::<Value>(EMPTY).unwrap()
    );
    let web1_request = nginx_spec.request.unwrap() + sidecar_spec.request.unwrap();
    assert_eq!(
        h.points(&format!("{web1}/metrics/ephemeral_storage/request"))
            .await,
        expect_series(|_| Some(web1_request), fx)
    );
    assert_eq!(
        h.points("/api/v1/model/nodes/n1/metrics/ephemeral_storage/request")
            .await,
        expect_series(|_| Some(web1_request), fx)
    );
    assert_eq!(
        h.points("/api/v1/model/nodes/n2/metrics/ephemeral_storage/request")
            .await,
        expect_series(|_| spec("web-2", "nginx").request, fx)
    );
    // A node's own is its kubelet root filesystem's used bytes.
    let n1_fs = &fx.kubelet_fs[0];
    assert_eq!(n1_fs.0, "n1");
    assert_eq!(
        h.points("/api/v1/model/nodes/n1/metrics/ephemeral_storage/usage")
            .await,
        expect_series(|k| Some(n1_fs.3[k]), fx)
    );

    // Listed for the entities that have them.
    let names = h.ok(&format!("{web1}/containers/sidecar/metrics")).await;
    for m in ["restart_count", "cpu/load", "ephemeral_storage/usage"] {
        assert!(
            names.as_array().unwrap().contains(&json!(m)),
            "{m}: {names}"
        );
    }

    // metric-export: the new standard and labeled metrics, namespace_id on
    // pods and containers; restart_count is not exported (as in Heapster).
    let v = h.ok("/api/v1/metric-export").await;
    let all = v.as_array().unwrap();
    let find = |f: &dyn Fn(&Value) -> bool| all.iter().find(|ts| f(&ts["labels"])).unwrap();
    let last = TICKS - 1;
    let c = find(&|l| l["pod_name"] == "web-1" && l["container_name"] == "nginx");
    assert_eq!(
        c["metrics"]["cpu/load"][0]["value"],
        nginx.load.as_ref().unwrap()[last] as i64
    );
    assert_eq!(
        c["metrics"]["ephemeral_storage/usage"][0]["value"],
        nginx_eph(last) as i64
    );
    assert_eq!(
        c["metrics"]["filesystem/available"][0]["labels"],
        json!({"resource_id": "/dev/sda1"})
    );
    assert!(c["metrics"].get("restart_count").is_none());
    let db = find(&|l| l["pod_name"] == "db-0" && l["container_name"] == "/pod");
    assert_eq!(db["labels"]["namespace_id"], DATA_UID);
    let n1 = find(&|l| l["nodename"] == "n1" && l["container_name"] == "machine");
    assert!(n1["labels"].get("namespace_id").is_none());
    assert_eq!(
        n1["metrics"]["filesystem/available"][0]["value"],
        root1.fs_available.as_ref().unwrap()[last] as i64
    );
}

#[tokio::test]
async fn bad_parameters_answer_400_naming_them() {
    let h = harness().await;
    for (path, names) in [
        (
            "/api/v1/model/nodes/n1/metrics/memory/usage?start=yesterday",
            "start",
        ),
        (
            "/api/v1/model/nodes/n1/metrics/memory/usage?end=2018-13-01T00:00:00Z",
            "end",
        ),
        (
            "/api/v1/model/nodes/n1/metrics/memory/usage?labels=resource_id",
            "labels",
        ),
        (
            "/api/v1/model/nodes/n1/metrics/memory/usage?labels=:x",
            "labels",
        ),
        (
            "/api/v1/model/namespaces/shop/pod-list/a,b/metrics/cpu-usage?start=1",
            "start",
        ),
        (
            "/api/v1/model/nodes/n1/metrics/memory/usage?start=2030-01-01T00:00:00Z&end=2029-01-01T00:00:00Z",
            "start",
        ),
        ("/api/v1/model/nodes?verbose=1", "verbose"),
        ("/api/v1/metric-export?x=1", "x"),
    ] {
        let (status, v) = h.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], "bad_data");
        assert!(v["error"].as_str().unwrap().contains(names), "{path}: {v}");
    }
    let (status, v) = h.get("/api/v1/model/nodes/n1/stats").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["errorType"], "not_found");
}

#[tokio::test]
async fn sums_hold_back_a_bucket_until_every_node_reported() {
    let last = TICKS - 1;
    let h = harness_with(&|_, k| k < last).await;
    // Node 1 reports its last collection; node 2 (3 s later) not yet.
    h.write(h.fx.body_where(&|node, k| node == "n1" && k == last))
        .await;
    let fx = &h.fx;
    let ns = h
        .points("/api/v1/model/namespaces/shop/metrics/memory/usage")
        .await;
    assert_eq!(
        ns.last().unwrap().0,
        fx.bucket(last - 1),
        "partial bucket held back"
    );
    let node = h
        .points("/api/v1/model/nodes/n1/metrics/memory/usage")
        .await;
    assert_eq!(
        node.last().unwrap().0,
        fx.bucket(last),
        "a node's own series is complete"
    );
    // Node 2 reports: the bucket is complete and appears with the full sum.
    h.write(h.fx.body_where(&|node, k| node == "n2" && k == last))
        .await;
    let shop = fx.find(|c| c.namespace == "shop" && !c.container.is_empty());
    let want: f64 = shop
        .iter()
        .filter_map(|c| c.at(last).map(|i| c.mem[i]))
        .sum();
    let ns = h
        .points("/api/v1/model/namespaces/shop/metrics/memory/usage")
        .await;
    assert_eq!(*ns.last().unwrap(), (fx.bucket(last), want as u64));
}

#[tokio::test]
async fn the_heapster_api_needs_a_read_token_when_tokens_are_configured() {
    use osprey::server::config::{Role, TokenConfig};
    let dir = tempfile::tempdir().unwrap();
    let token = |name: &str, secret: &str, role| TokenConfig {
        name: name.into(),
        token: Some(secret.into()),
        token_file: None,
        role,
        namespaces: None,
    };
    let config = ServerConfig {
        data_dir: dir.path().to_path_buf(),
        tokens: vec![
            token("agent", "agent-secret-0123456789", Role::Write),
            token("viewer", "viewer-secret-0123456789", Role::Read),
        ],
        ..ServerConfig::default()
    };
    let app = router(ServerState::open(config).unwrap());
    let status = |auth: Option<&'static str>| {
        let app = app.clone();
        async move {
            let mut req = Request::get("/api/v1/model/nodes");
            if let Some(secret) = auth {
                req = req.header("Authorization", format!("Bearer {secret}"));
            }
            app.oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        status(Some("agent-secret-0123456789")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(Some("viewer-secret-0123456789")).await,
        StatusCode::OK
    );
}

/// The newest point's `floatValue` of a node metric.
async fn last_float(h: &Harness, node: &str, metric: &str) -> f64 {
    let v = h
        .ok(&format!("/api/v1/model/nodes/{node}/metrics/{metric}"))
        .await;
    let points = v["metrics"].as_array().unwrap();
    // Every tick, but a rate's first.
    assert!(points.len() >= TICKS - 1, "{node} {metric}: {v}");
    points.last().unwrap()["floatValue"]
        .as_f64()
        .unwrap_or_else(|| panic!("{node} {metric}: {v}"))
}

/// Node capacity and allocatable come from the `Node` object when the
/// agent ships it (n2), else from the machine (n1: allocatable =
/// capacity); utilisation and reservation divide by allocatable; the
/// ephemeral storage figures come from the kubelet root filesystem.
#[tokio::test]
async fn node_capacity_allocatable_utilisation_and_reservation() {
    let h = harness().await;
    let fx = &h.fx;
    let last = TICKS - 1;
    let status = |node: &str, allocatable: bool, resource: &str| {
        fx.node_status
            .iter()
            .find(|n| n.node == node && n.allocatable == allocatable && n.resource == resource)
            .map(|n| n.value)
            .unwrap()
    };
    let fs = |node: &str| fx.kubelet_fs.iter().find(|f| f.0 == node).unwrap();
    let (n1_fs, n2_fs) = (fs("n1"), fs("n2"));
    let cases: [(&str, &str, f64); 12] = [
        // Without the Node object: the machine's figures, allocatable =
        // capacity, the kubelet filesystem's size for ephemeral storage.
        ("n1", "cpu/node_capacity", 4000.0),
        ("n1", "cpu/node_allocatable", 4000.0),
        ("n1", "memory/node_capacity", 8e9),
        ("n1", "memory/node_allocatable", 8e9),
        ("n1", "ephemeral_storage/node_capacity", n1_fs.2),
        ("n1", "ephemeral_storage/node_allocatable", n1_fs.2),
        // From the Node object: 7.91 cores are 7910 millicores exactly.
        (
            "n2",
            "cpu/node_capacity",
            status("n2", false, "cpu") * 1000.0,
        ),
        ("n2", "cpu/node_allocatable", 7910.0),
        ("n2", "memory/node_capacity", status("n2", false, "memory")),
        (
            "n2",
            "memory/node_allocatable",
            status("n2", true, "memory"),
        ),
        (
            "n2",
            "ephemeral_storage/node_capacity",
            status("n2", false, "ephemeral_storage"),
        ),
        (
            "n2",
            "ephemeral_storage/node_allocatable",
            status("n2", true, "ephemeral_storage"),
        ),
    ];
    for (node, metric, want) in cases {
        assert_eq!(
            h.points(&format!("/api/v1/model/nodes/{node}/metrics/{metric}"))
                .await,
            expect_series(|_| Some(want), fx),
            "{node} {metric}"
        );
        assert_eq!(last_float(&h, node, metric).await, want, "{node} {metric}");
    }
    assert_ne!(
        status("n2", true, "memory"),
        8e9 * 2.0,
        "n2's allocatable differs from its machine figure"
    );

    let close = |got: f64, want: f64, what: &str| {
        assert!((got - want).abs() < 1e-12, "{what}: {got} != {want}");
    };
    let root = |node: &str| fx.find(|c| c.node == node && c.id == "/")[0];
    let n2_cpu_alloc = 7910.0;
    let n2_mem_alloc = status("n2", true, "memory");
    let n2_eph_alloc = status("n2", true, "ephemeral_storage");
    close(
        last_float(&h, "n2", "cpu/node_utilization").await,
        cpu_rate(root("n2"), last).unwrap().trunc() / n2_cpu_alloc,
        "n2 cpu utilisation",
    );
    close(
        last_float(&h, "n2", "memory/node_utilization").await,
        root("n2").mem[last] / n2_mem_alloc,
        "n2 memory utilisation",
    );
    close(
        last_float(&h, "n2", "ephemeral_storage/node_utilization").await,
        n2_fs.3[last] / n2_eph_alloc,
        "n2 ephemeral utilisation",
    );
    close(
        last_float(&h, "n1", "ephemeral_storage/node_utilization").await,
        n1_fs.3[last] / n1_fs.2,
        "n1 ephemeral utilisation",
    );
    let request = |node: &str| -> f64 {
        fx.ephemeral_spec
            .iter()
            .filter(|e| e.node == node)
            .filter_map(|e| e.request)
            .sum()
    };
    close(
        last_float(&h, "n2", "ephemeral_storage/node_reservation").await,
        request("n2") / n2_eph_alloc,
        "n2 ephemeral reservation",
    );
    close(
        last_float(&h, "n1", "ephemeral_storage/node_reservation").await,
        request("n1") / n1_fs.2,
        "n1 ephemeral reservation",
    );
    // cpu/memory reservation divide the same requests as before by the
    // allocatable now.
    let mem_request = h
        .points("/api/v1/model/nodes/n2/metrics/memory/request")
        .await;
    close(
        last_float(&h, "n2", "memory/node_reservation").await,
        mem_request.last().unwrap().1 as f64 / n2_mem_alloc,
        "n2 memory reservation",
    );
    assert_eq!(
        h.points("/api/v1/model/nodes/n2/metrics/ephemeral_storage/usage")
            .await,
        expect_series(|k| Some(n2_fs.3[k]), fx)
    );

    // Listed for nodes, and the node's usage is in metric-export.
    let names = h.ok("/api/v1/model/nodes/n2/metrics").await;
    for m in [
        "ephemeral_storage/usage",
        "ephemeral_storage/node_capacity",
        "ephemeral_storage/node_allocatable",
        "ephemeral_storage/node_utilization",
        "ephemeral_storage/node_reservation",
        "cpu/node_allocatable",
    ] {
        assert!(
            names.as_array().unwrap().contains(&json!(m)),
            "{m}: {names}"
        );
    }
    let v = h.ok("/api/v1/metric-export").await;
    let node = v
        .as_array()
        .unwrap()
        .iter()
        .find(|ts| ts["labels"]["container_name"] == "machine" && ts["labels"]["nodename"] == "n2")
        .unwrap_or_else(|| panic!("no n2 node in {v}"));
    assert_eq!(
        node["metrics"]["ephemeral_storage/usage"][0]["value"], n2_fs.3[last] as i64,
        "{node}"
    );
}

/// The fallback is per point: where a node's `Node` figures are missing
/// (an agent that had no API access for a while), the machine's fill in.
#[tokio::test]
async fn node_capacity_falls_back_to_the_machine_per_point() {
    use osprey_collector::ship::remote_write::{Sample, TimeSeries, WriteRequest, encode_snappy};
    let h = harness().await;
    let fx = &h.fx;
    const FROM: usize = 20;
    let labels = [
        ("job", "osprey-agent"),
        ("node", "n1"),
        ("resource", "cpu"),
        ("unit", "core"),
    ];
    let samples = |v: f64| -> Vec<Sample> {
        (FROM..TICKS)
            .map(|k| Sample::new(fx.t("n1", k), v))
            .collect()
    };
    let request = WriteRequest {
        timeseries: vec![
            TimeSeries::new("kube_node_status_capacity", labels, samples(4.0)),
            TimeSeries::new("kube_node_status_allocatable", labels, samples(3.5)),
        ],
        metadata: vec![],
    };
    h.write(encode_snappy(&request).unwrap()).await;
    assert_eq!(
        h.points("/api/v1/model/nodes/n1/metrics/cpu/node_allocatable")
            .await,
        expect_series(|k| Some(if k >= FROM { 3500.0 } else { 4000.0 }), fx)
    );
    assert_eq!(
        h.points("/api/v1/model/nodes/n1/metrics/cpu/node_capacity")
            .await,
        expect_series(|_| Some(4000.0), fx)
    );
}
