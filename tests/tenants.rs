//! Tenant-scoped tokens, end to end through a real server process: tenant
//! A (namespace `a`), tenant B (namespace `b`) and an admin; series and
//! log streams in `a`, `b`, `aa` (a prefix trap) and node-level ones,
//! pushed through remote-write and Loki push with the tenants' own write
//! tokens. Every API is asked with each token: A sees A's data only, B's
//! token on A's resources gets 403 or nothing, selectors written to widen
//! the scope do not, the admin sees everything, and a tampered token or
//! none gets 401.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const ADMIN: &str = "admin-secret-0000000001";
const A_READ: &str = "tenant-a-read-000000001";
const A_ADMIN: &str = "tenant-a-admin-00000001";
const A_WRITE: &str = "tenant-a-write-00000001";
const B_READ: &str = "tenant-b-read-000000001";
const B_WRITE: &str = "tenant-b-write-00000001";

fn config(dir: &Path) -> std::path::PathBuf {
    let token = |name: &str, secret: &str, role: &str, ns: Option<&str>| {
        let ns = ns
            .map(|n| format!("namespaces = [\"{n}\"]\n"))
            .unwrap_or_default();
        format!(
            "[[server.tokens]]\nname = \"{name}\"\ntoken = \"{secret}\"\nrole = \"{role}\"\n{ns}\n"
        )
    };
    let text = [
        token("admin", ADMIN, "admin", None),
        token("a-read", A_READ, "read", Some("a")),
        token("a-admin", A_ADMIN, "admin", Some("a")),
        token("a-write", A_WRITE, "write", Some("a")),
        token("b-read", B_READ, "read", Some("b")),
        token("b-write", B_WRITE, "write", Some("b")),
        "[server.logs]\ncommit_interval = \"50ms\"\n\n[server.alerting]\nevaluation_interval = \"1s\"\n"
            .to_string(),
    ]
    .concat();
    let path = dir.join("osprey.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// GET with a token; status and JSON body (`Null` when not JSON).
fn get_as(base: &str, token: Option<&str>, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let mut req = client().get(format!("{base}{path}")).query(params);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().expect("server answers");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn ok_as(base: &str, token: &str, path: &str, params: &[(&str, &str)]) -> Value {
    let (s, v) = get_as(base, Some(token), path, params);
    assert_eq!(s, 200, "{path} {params:?}: {v}");
    v
}

fn send_json(
    method: reqwest::Method,
    base: &str,
    token: &str,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let resp = client()
        .request(method, format!("{base}{path}"))
        .bearer_auth(token)
        .json(body)
        .send()
        .expect("server answers");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn post_json_as(base: &str, token: &str, path: &str, body: &Value) -> (u16, Value) {
    send_json(reqwest::Method::POST, base, token, path, body)
}

fn loki_push(base: &str, token: &str, body: &Value) -> (u16, String) {
    let resp = client()
        .post(format!("{base}/loki/api/v1/push"))
        .bearer_auth(token)
        .json(body)
        .send()
        .expect("server answers");
    (resp.status().as_u16(), resp.text().unwrap_or_default())
}

fn stream(labels: Value, lines: &[(i64, &str)]) -> Value {
    json!({
        "stream": labels,
        "values": lines.iter().map(|(t, l)| json!([t.to_string(), l])).collect::<Vec<_>>(),
    })
}

fn pod_labels(ns: &str) -> Vec<(String, String)> {
    vec![
        ("node".into(), "n1".into()),
        ("namespace".into(), ns.into()),
        ("pod".into(), format!("web-{ns}")),
        ("container".into(), "app".into()),
        ("image".into(), "registry/app:1".into()),
        (
            "id".into(),
            format!("/kubepods/burstable/pod{ns}{ns}00-0000/app"),
        ),
    ]
}

/// The namespaces of a PromQL vector or matrix result.
fn result_namespaces(v: &Value) -> Vec<String> {
    v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("a result: {v}"))
        .iter()
        .map(|s| s["metric"]["namespace"].as_str().unwrap_or("").to_string())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

struct World {
    base: String,
    now_ms: i64,
}

/// Pushes the data: cAdvisor-like series of pod `web-a` (namespace a) and
/// `web-b` (b) with the tenants' write tokens, node-level series and a
/// series of namespace `aa` with the admin's; log lines likewise.
fn ingest(base: &str) -> World {
    let now = now_ms().div_euclid(10_000) * 10_000;
    let ticks: Vec<i64> = (0..6).map(|k| now - 50_000 + k * 10_000).collect();
    let samples = |f: &dyn Fn(usize) -> f64| -> Vec<(i64, f64)> {
        ticks.iter().enumerate().map(|(i, t)| (*t, f(i))).collect()
    };
    for (ns, token, mem) in [("a", A_WRITE, 1000.0), ("b", B_WRITE, 2000.0)] {
        let l = pod_labels(ns);
        let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let start = samples(&|_| (now / 1000 - 3600) as f64);
        let cpu = samples(&|i| 10.0 + i as f64);
        let memory = samples(&|_| mem);
        let body = remote_write_body(&[
            ("container_start_time_seconds", &l, &start),
            ("container_cpu_usage_seconds_total", &l, &cpu),
            ("container_memory_working_set_bytes", &l, &memory),
            ("container_memory_usage_bytes", &l, &memory),
            ("tenant_probe", &[("namespace", ns)], &memory),
        ]);
        let (s, b) = post_write(base, body, Some(token));
        assert_eq!(s, 204, "{ns}: {b}");
    }
    // Node-level: the node's root cgroup, a system container, the machine.
    let root = [("node", "n1"), ("id", "/")];
    let docker = [("node", "n1"), ("id", "/system.slice/docker.service")];
    let machine = [("node", "n1"), ("system_uuid", "uuid-n1")];
    let start = samples(&|_| (now / 1000 - 7200) as f64);
    let mem = samples(&|_| 9e9);
    let cores = samples(&|_| 4.0);
    let aa = samples(&|_| 7.0);
    let body = remote_write_body(&[
        ("container_start_time_seconds", &root, &start),
        ("container_memory_usage_bytes", &root, &mem),
        ("container_start_time_seconds", &docker, &start),
        ("container_memory_usage_bytes", &docker, &mem),
        ("machine_cpu_cores", &machine, &cores),
        ("tenant_probe", &[("namespace", "aa")], &aa),
    ]);
    let (s, b) = post_write(base, body, Some(ADMIN));
    assert_eq!(s, 204, "{b}");

    let ns_ts = |k: i64| (now - 40_000 + k * 1000) * 1_000_000;
    for (ns, token) in [("a", A_WRITE), ("b", B_WRITE)] {
        let labels = json!({"namespace": ns, "pod": format!("web-{ns}"), "container": "app",
            "node": "n1", "job": "osprey/containers"});
        let l0 = format!("hello from {ns} zero");
        let l1 = format!("hello from {ns} one");
        let l2 = format!("error in {ns} two");
        let body = json!({"streams": [stream(labels, &[(ns_ts(0), &l0), (ns_ts(1), &l1), (ns_ts(2), &l2)])]});
        let (s, b) = loki_push(base, token, &body);
        assert_eq!(s, 204, "{ns}: {b}");
    }
    let node = json!({"node": "n1", "job": "osprey/journal", "unit": "kubelet.service"});
    let body = json!({"streams": [stream(node, &[(ns_ts(3), "kubelet: node secret")])]});
    let (s, b) = loki_push(base, ADMIN, &body);
    assert_eq!(s, 204, "{b}");
    let world = World {
        base: base.to_string(),
        now_ms: now,
    };
    // Every line is searchable before the checks start.
    wait_for(Duration::from_secs(30), "7 log lines", || {
        let v = world.logs(ADMIN, "/api/v1/logs/search", "");
        (v["data"]["lines"].as_array().unwrap().len() == 7).then_some(())
    });
    world
}

impl World {
    fn log_range(&self) -> Vec<(&'static str, String)> {
        vec![
            ("start", ((self.now_ms - 600_000) / 1000).to_string()),
            ("end", ((self.now_ms + 60_000) / 1000).to_string()),
        ]
    }

    fn logs(&self, token: &str, path: &str, query: &str) -> Value {
        let mut p: Vec<(&str, String)> = self.log_range();
        p.push(("query", query.to_string()));
        let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ok_as(&self.base, token, path, &p)
    }

    fn loki(&self, token: &str, path: &str, query: Option<&str>) -> Value {
        let start = ((self.now_ms - 600_000) * 1_000_000).to_string();
        let end = ((self.now_ms + 60_000) * 1_000_000).to_string();
        let mut p = vec![("start", start.as_str()), ("end", end.as_str())];
        if let Some(q) = query {
            p.push(("query", q));
        }
        ok_as(&self.base, token, path, &p)
    }

    fn instant(&self, token: &str, q: &str) -> Value {
        let t = (self.now_ms / 1000).to_string();
        ok_as(
            &self.base,
            token,
            "/api/v1/query",
            &[("query", q), ("time", &t)],
        )
    }

    fn range(&self, token: &str, q: &str) -> Value {
        let start = ((self.now_ms - 60_000) / 1000).to_string();
        let end = (self.now_ms / 1000).to_string();
        ok_as(
            &self.base,
            token,
            "/api/v1/query_range",
            &[
                ("query", q),
                ("start", &start),
                ("end", &end),
                ("step", "10"),
            ],
        )
    }
}

fn check_promql(w: &World) {
    let mem = "container_memory_working_set_bytes";
    assert_eq!(result_namespaces(&w.instant(A_READ, mem)), ["a"]);
    assert_eq!(result_namespaces(&w.instant(B_READ, mem)), ["b"]);
    assert_eq!(result_namespaces(&w.instant(ADMIN, mem)), ["a", "b"]);
    // Aggregations only ever see the tenant's series.
    let sum =
        |token| w.instant(token, &format!("sum({mem})"))["data"]["result"][0]["value"][1].clone();
    assert_eq!(sum(A_READ), "1000");
    assert_eq!(sum(ADMIN), "3000");
    // Selectors written to widen the scope, and B asking for A's data.
    for q in [
        "{__name__=~\".+\", namespace=~\".*\"}",
        "{namespace=~\".+\"}",
        "{__name__=~\".+\", namespace!=\"a\"}",
        "{namespace=~\"a|b|aa\"}",
        "{__name__=~\".+\"}",
        "tenant_probe or machine_cpu_cores",
        "label_replace(tenant_probe, \"namespace\", \"a\", \"\", \"\")",
    ] {
        let got = result_namespaces(&w.instant(A_READ, q));
        assert!(got.iter().all(|n| n == "a"), "{q}: {got:?}");
        let got = result_namespaces(&w.range(A_READ, q));
        assert!(got.iter().all(|n| n == "a"), "range {q}: {got:?}");
    }
    assert_eq!(
        result_namespaces(&w.instant(A_READ, "{__name__=~\".+\", namespace!=\"a\"}")).len(),
        0
    );
    assert_eq!(result_namespaces(&w.instant(A_READ, "tenant_probe")), ["a"]);
    assert_eq!(
        result_namespaces(&w.instant(ADMIN, "tenant_probe")),
        ["a", "aa", "b"]
    );
    assert!(result_namespaces(&w.instant(A_READ, "machine_cpu_cores")).is_empty());
    assert!(result_namespaces(&w.instant(B_READ, &format!("{mem}{{namespace=\"a\"}}"))).is_empty());
    assert!(result_namespaces(&w.range(B_READ, &format!("{mem}{{namespace=\"a\"}}"))).is_empty());
    assert_eq!(result_namespaces(&w.range(A_READ, mem)), ["a"]);
    assert_eq!(result_namespaces(&w.range(ADMIN, mem)), ["a", "b"]);

    // Metadata endpoints.
    let series = ok_as(
        &w.base,
        A_READ,
        "/api/v1/series",
        &[("match[]", "{__name__=~\".+\"}")],
    );
    let ns: Vec<&str> = series["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["namespace"].as_str().unwrap_or(""))
        .collect();
    assert!(!ns.is_empty() && ns.iter().all(|n| *n == "a"), "{series}");
    let b_on_a = ok_as(
        &w.base,
        B_READ,
        "/api/v1/series",
        &[("match[]", "{namespace=\"a\"}")],
    );
    assert_eq!(b_on_a["data"], json!([]));
    let labels = strings(&ok_as(&w.base, A_READ, "/api/v1/labels", &[])["data"]);
    assert!(labels.contains(&"pod".to_string()), "{labels:?}");
    assert!(!labels.contains(&"system_uuid".to_string()), "{labels:?}");
    let admin_labels = strings(&ok_as(&w.base, ADMIN, "/api/v1/labels", &[])["data"]);
    assert!(admin_labels.contains(&"system_uuid".to_string()));
    let values = |token, params: &[(&str, &str)]| {
        strings(&ok_as(&w.base, token, "/api/v1/label/namespace/values", params)["data"])
    };
    assert_eq!(values(A_READ, &[]), ["a"]);
    assert_eq!(values(B_READ, &[]), ["b"]);
    assert_eq!(values(ADMIN, &[]), ["a", "aa", "b"]);
    assert_eq!(
        values(
            A_READ,
            &[("match[]", "{__name__=~\".+\", namespace=~\".*\"}")]
        ),
        ["a"]
    );
    let pods = strings(&ok_as(&w.base, A_READ, "/api/v1/label/pod/values", &[])["data"]);
    assert_eq!(pods, ["web-a"]);
    let uuids = strings(&ok_as(&w.base, A_READ, "/api/v1/label/system_uuid/values", &[])["data"]);
    assert!(uuids.is_empty(), "{uuids:?}");
}

fn check_heapster(w: &World) {
    let get = |token, path: &str| get_as(&w.base, Some(token), path, &[]);
    let model = |p: &str| format!("/api/v1/model{p}");
    assert_eq!(get(A_READ, &model("/namespaces")).1, json!(["a"]));
    assert_eq!(get(B_READ, &model("/namespaces")).1, json!(["b"]));
    assert_eq!(get(ADMIN, &model("/namespaces")).1, json!(["a", "b"]));
    assert_eq!(
        get(A_READ, &model("/namespaces/a/pods")).1,
        json!(["web-a"])
    );
    assert_eq!(
        get(A_READ, &model("/namespaces/a/pods/web-a/containers")).1,
        json!(["app"])
    );
    let usage = get(
        A_READ,
        &model("/namespaces/a/pods/web-a/metrics/memory/usage"),
    );
    assert_eq!(usage.0, 200, "{}", usage.1);
    assert!(
        usage.1["metrics"].as_array().is_some_and(|m| !m.is_empty()),
        "A's own pod has points: {}",
        usage.1
    );
    let names = get(A_READ, &model("/namespaces/a/metrics"));
    assert_eq!(names.0, 200, "{}", names.1);
    // Other namespaces (existing or not), nodes, system containers and the
    // cluster: 403, the same whether the thing exists or not.
    for path in [
        "/namespaces/b/pods",
        "/namespaces/zzz/pods",
        "/namespaces/b/pods/web-b/containers",
        "/namespaces/b/metrics",
        "/namespaces/b/metrics/memory/usage",
        "/namespaces/b/pods/web-b/metrics/memory/usage",
        "/namespaces/b/pods/web-b/containers/app/metrics/memory/usage",
        "/namespaces/b/pod-list/web-b/metrics/memory/usage",
        "/nodes",
        "/nodes/n1/metrics",
        "/nodes/n1/metrics/memory/usage",
        "/nodes/n1/freecontainers",
        "/nodes/n1/freecontainers/docker.service/metrics/memory/usage",
        "/metrics",
        "/metrics/memory/usage",
    ] {
        let (s, v) = get(A_READ, &model(path));
        assert_eq!(s, 403, "{path}: {v}");
        assert_eq!(v["errorType"], "forbidden", "{path}: {v}");
    }
    let (s, v) = get(
        B_READ,
        &model("/namespaces/b/pods/web-b/metrics/memory/usage"),
    );
    assert_eq!(s, 200, "B reads its own pod: {v}");
    let (s, v) = get(ADMIN, &model("/nodes"));
    assert_eq!((s, v), (200, json!(["n1"])));
    let keys = strings(&get(A_READ, &model("/debug/allkeys")).1);
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k.contains("namespace:a")),
        "{keys:?}"
    );
    // metric-export: A's pod and container only.
    let export = get(A_READ, "/api/v1/metric-export").1;
    let entries = export.as_array().unwrap();
    assert!(!entries.is_empty(), "A's pod is exported");
    for e in entries {
        assert_eq!(e["labels"]["pod_name"], "web-a", "{e}");
        assert_ne!(e["labels"]["container_name"], "machine", "{e}");
    }
    let all = get(ADMIN, "/api/v1/metric-export").1;
    let all = all.as_array().unwrap();
    assert!(
        all.iter()
            .any(|e| e["labels"]["container_name"] == "machine")
    );
    assert!(all.iter().any(|e| e["labels"]["pod_name"] == "web-b"));
}

fn line_namespaces(v: &Value) -> Vec<String> {
    v["data"]["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("lines: {v}"))
        .iter()
        .map(|l| l["labels"]["namespace"].as_str().unwrap_or("").to_string())
        .collect()
}

fn check_logs(w: &World) {
    let search = "/api/v1/logs/search";
    assert_eq!(
        line_namespaces(&w.logs(A_READ, search, "")),
        ["a", "a", "a"]
    );
    assert_eq!(
        line_namespaces(&w.logs(B_READ, search, "")),
        ["b", "b", "b"]
    );
    assert_eq!(line_namespaces(&w.logs(ADMIN, search, "")).len(), 7);
    for q in [
        "namespace:b",
        "NOT namespace:a",
        "secret",
        "node:n1 AND NOT namespace:a",
        "labels:\"unit=kubelet.service\"",
    ] {
        let got = line_namespaces(&w.logs(A_READ, search, q));
        assert!(got.is_empty(), "{q}: {got:?}");
    }
    assert_eq!(
        line_namespaces(&w.logs(A_READ, search, "namespace:a OR namespace:b")),
        ["a", "a", "a"]
    );
    assert_eq!(line_namespaces(&w.logs(A_READ, search, "error")), ["a"]);
    assert!(line_namespaces(&w.logs(B_READ, search, "namespace:a")).is_empty());
    // The histogram counts the tenant's lines only.
    let total = |token| -> u64 {
        w.logs(token, "/api/v1/logs/histogram", "")["data"]["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(total(A_READ), 3);
    assert_eq!(total(ADMIN), 7);
    // Loki.
    let streams = |token, q| -> Vec<String> {
        w.loki(token, "/loki/api/v1/query_range", Some(q))["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["stream"]["namespace"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(streams(A_READ, "{namespace=~\".+\"}"), ["a"]);
    assert_eq!(streams(A_READ, "{job=~\".+\"}"), ["a"]);
    assert!(streams(A_READ, "{namespace=\"b\"}").is_empty());
    assert!(streams(A_READ, "{unit=\"kubelet.service\"}").is_empty());
    assert_eq!(streams(ADMIN, "{job=~\".+\"}").len(), 3);
    let names = strings(&w.loki(A_READ, "/loki/api/v1/labels", None)["data"]);
    assert!(names.contains(&"pod".to_string()), "{names:?}");
    assert!(!names.contains(&"unit".to_string()), "{names:?}");
    let admin_names = strings(&w.loki(ADMIN, "/loki/api/v1/labels", None)["data"]);
    assert!(admin_names.contains(&"unit".to_string()), "{admin_names:?}");
    let ns = |token| strings(&w.loki(token, "/loki/api/v1/label/namespace/values", None)["data"]);
    assert_eq!(ns(A_READ), ["a"]);
    assert_eq!(ns(B_READ), ["b"]);
    assert_eq!(ns(ADMIN), ["a", "b"]);
    assert!(streams(B_READ, "{namespace=\"a\"}").is_empty());
    assert_eq!(total(B_READ), 3);
    let pods = strings(&w.loki(B_READ, "/loki/api/v1/label/pod/values", None)["data"]);
    assert_eq!(pods, ["web-b"]);
    let jobs = strings(&w.loki(A_READ, "/loki/api/v1/label/job/values", None)["data"]);
    assert_eq!(jobs, ["osprey/containers"]);
    // Index stats count the tenant's streams only.
    let stats = |token, q| w.loki(token, "/loki/api/v1/index/stats", Some(q));
    let a = stats(A_READ, "{job=~\".+\"}");
    assert_eq!(
        (a["streams"].as_u64(), a["entries"].as_u64()),
        (Some(1), Some(3)),
        "{a}"
    );
    let a_bytes = ["hello from a zero", "hello from a one", "error in a two"]
        .iter()
        .map(|l| l.len())
        .sum::<usize>();
    assert_eq!(a["bytes"], a_bytes, "{a}");
    let admin = stats(ADMIN, "{job=~\".+\"}");
    assert_eq!(
        (admin["streams"].as_u64(), admin["entries"].as_u64()),
        (Some(3), Some(7)),
        "{admin}"
    );
    assert_eq!(stats(A_READ, "{namespace=\"b\"}")["entries"], 0);
    assert_eq!(stats(B_READ, "{unit=\"kubelet.service\"}")["streams"], 0);
    assert_eq!(stats(B_READ, "{namespace=~\"a|b\"}")["entries"], 3);
}

/// A live tail with A's token: B's and the node's new lines, pushed first,
/// never arrive; A's line after them does.
fn check_tail(w: &World) {
    let resp = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
        .get(format!("{}/api/v1/logs/tail", w.base))
        .query(&[("query", "")])
        .bearer_auth(A_READ)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(resp).lines() {
            let Ok(line) = line else { break };
            if let Some(data) = line.strip_prefix("data: ")
                && tx.send(data.to_string()).is_err()
            {
                break;
            }
        }
    });
    let t = (now_ms() * 1_000_000).to_string();
    let push = |token, ns: Option<&str>, line: &str| {
        let labels = match ns {
            Some(ns) => json!({"namespace": ns, "pod": format!("web-{ns}"), "job": "tail"}),
            None => json!({"node": "n1", "job": "tail"}),
        };
        let body = json!({"streams": [{"stream": labels, "values": [[t, line]]}]});
        let (s, b) = loki_push(&w.base, token, &body);
        assert_eq!(s, 204, "{b}");
    };
    // The tail subscribes when its response starts; push until A's line
    // arrives (the first pushes may precede the subscription).
    let got = wait_for(Duration::from_secs(30), "A's tailed line", || {
        push(B_WRITE, Some("b"), "tail line of b");
        push(ADMIN, None, "tail line of the node");
        push(A_WRITE, Some("a"), "tail line of a");
        rx.recv_timeout(Duration::from_secs(2)).ok()
    });
    let mut seen = vec![got];
    while let Ok(more) = rx.recv_timeout(Duration::from_millis(500)) {
        seen.push(more);
    }
    for line in &seen {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["labels"]["namespace"], "a", "{line}");
        assert_eq!(v["message"], "tail line of a", "{line}");
    }
}

fn check_pushes(w: &World) {
    // A's write token pushing a series of b (with one of a): 403, nothing
    // of the request stored.
    let now = now_ms();
    let body = remote_write_body(&[
        ("refused_probe", &[("namespace", "a")], &[(now, 1.0)]),
        ("refused_probe", &[("namespace", "b")], &[(now, 2.0)]),
    ]);
    let (s, b) = post_write(&w.base, body, Some(A_WRITE));
    assert_eq!(s, 403, "{b}");
    let body = remote_write_body(&[("refused_probe", &[("node", "n1")], &[(now, 3.0)])]);
    let (s, b) = post_write(&w.base, body, Some(A_WRITE));
    assert_eq!(s, 403, "a series without namespace: {b}");
    let t = (now / 1000).to_string();
    let v = ok_as(
        &w.base,
        ADMIN,
        "/api/v1/query",
        &[("query", "refused_probe"), ("time", &t)],
    );
    assert_eq!(v["data"]["result"], json!([]), "nothing stored");
    // A read token may not push at all.
    let body = remote_write_body(&[("refused_probe", &[("namespace", "a")], &[(now, 1.0)])]);
    assert_eq!(post_write(&w.base, body, Some(A_READ)).0, 403);

    let ts = (now * 1_000_000).to_string();
    let body = json!({"streams": [
        {"stream": {"namespace": "a"}, "values": [[ts, "refused marker"]]},
        {"stream": {"namespace": "b"}, "values": [[ts, "refused marker"]]},
    ]});
    let (s, b) = loki_push(&w.base, A_WRITE, &body);
    assert_eq!(s, 403, "{b}");
    let body = json!({"streams": [{"stream": {"node": "n1"}, "values": [[ts, "refused marker"]]}]});
    assert_eq!(loki_push(&w.base, A_WRITE, &body).0, 403);
    // Also when the outside stream's lines are too old to be kept anyway.
    let body = json!({"streams": [
        {"stream": {"namespace": "a"}, "values": [[ts, "refused marker"]]},
        {"stream": {"namespace": "b"}, "values": [["1000", "ancient"]]},
    ]});
    assert_eq!(loki_push(&w.base, A_WRITE, &body).0, 403);
    // A later accepted push commits; the refused lines never show up.
    let body =
        json!({"streams": [{"stream": {"namespace": "a"}, "values": [[ts, "accepted marker"]]}]});
    assert_eq!(loki_push(&w.base, A_WRITE, &body).0, 204);
    let range = [
        ("start", ((now - 60_000) / 1000).to_string()),
        ("end", ((now + 60_000) / 1000).to_string()),
    ];
    let search = |q: &str| {
        let mut p: Vec<(&str, &str)> = range.iter().map(|(k, v)| (*k, v.as_str())).collect();
        p.push(("query", q));
        ok_as(&w.base, ADMIN, "/api/v1/logs/search", &p)["data"]["lines"]
            .as_array()
            .unwrap()
            .len()
    };
    wait_for(Duration::from_secs(30), "the accepted marker", || {
        (search("\"accepted marker\"") == 1).then_some(())
    });
    assert_eq!(search("\"refused marker\""), 0);
}

fn check_dashboards(w: &World) {
    let base = &w.base;
    let titles = |token| -> Vec<String> {
        ok_as(base, token, "/api/v1/dashboards", &[])["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["title"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, v) = post_json_as(
        base,
        ADMIN,
        "/api/v1/dashboards",
        &json!({"title": "Ops", "uid": "ops"}),
    );
    assert_eq!(s, 200, "{v}");
    let panel = json!({"id": 1, "type": "timeseries", "title": "Memory", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
        "targets": [{"expr": "container_memory_working_set_bytes", "legendFormat": "{{namespace}}/{{pod}}"}]});
    // A read token may not save; a tenant admin may, and owns the result.
    let board = json!({"title": "Team A", "uid": "team-a", "panels": [panel]});
    assert_eq!(
        post_json_as(base, A_READ, "/api/v1/dashboards", &board).0,
        403
    );
    let (s, v) = post_json_as(base, A_ADMIN, "/api/v1/dashboards", &board);
    assert_eq!(s, 200, "{v}");
    let (s, v) = post_json_as(
        base,
        A_ADMIN,
        "/api/v1/dashboards",
        &json!({"title": "Claim", "ownerNamespaces": ["b"]}),
    );
    assert_eq!(s, 403, "{v}");
    // Overwriting the admin's dashboard through its uid is refused.
    let (s, v) = post_json_as(
        base,
        A_ADMIN,
        "/api/v1/dashboards",
        &json!({"dashboard": {"title": "Hijack", "uid": "ops"}, "overwrite": true}),
    );
    assert_eq!(s, 409, "{v}");
    let (s, _) = send_json(
        reqwest::Method::PUT,
        base,
        A_ADMIN,
        "/api/v1/dashboards/ops",
        &json!({"title": "Hijack"}),
    );
    assert_eq!(s, 404);
    assert_eq!(titles(A_READ), ["Pods", "Team A"]);
    assert_eq!(titles(B_READ), ["Pods"]);
    let admin_titles = titles(ADMIN);
    for t in ["Cluster", "Ops", "Pods", "Team A"] {
        assert!(admin_titles.contains(&t.to_string()), "{admin_titles:?}");
    }
    let got = ok_as(base, A_READ, "/api/v1/dashboards/team-a", &[]);
    assert_eq!(got["data"]["dashboard"]["ownerNamespaces"], json!(["a"]));
    for (token, uid) in [
        (B_READ, "team-a"),
        (A_READ, "ops"),
        (A_READ, "osprey-cluster"),
    ] {
        let (s, v) = get_as(base, Some(token), &format!("/api/v1/dashboards/{uid}"), &[]);
        assert_eq!(s, 404, "{uid}: {v}");
        let (s, _) = get_as(
            base,
            Some(token),
            &format!("/api/v1/dashboards/{uid}/panels/1/render"),
            &[],
        );
        assert_eq!(s, 404, "{uid} render");
    }
    let (s, _) = get_as(base, Some(A_READ), "/api/v1/dashboards/osprey-pods", &[]);
    assert_eq!(s, 200);
    // The panel renders for A (with A's scope) and for the admin.
    for token in [A_READ, ADMIN] {
        let resp = client()
            .get(format!("{base}/api/v1/dashboards/team-a/panels/1/render"))
            .query(&[("format", "png")])
            .bearer_auth(token)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(resp.bytes().unwrap().starts_with(b"\x89PNG"));
    }
    // The chart query behind dashboards and /api/v1/render: scoped.
    let start = ((w.now_ms - 60_000) / 1000).to_string();
    let end = (w.now_ms / 1000).to_string();
    let chart = |token, q: &str| -> Vec<String> {
        ok_as(
            base,
            token,
            "/api/v1/dashboard/query_range",
            &[("query", q), ("start", &start), ("end", &end)],
        )["data"]["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["metric"]["namespace"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(chart(A_READ, "container_memory_working_set_bytes"), ["a"]);
    assert_eq!(
        chart(ADMIN, "container_memory_working_set_bytes"),
        ["a", "b"]
    );
    assert!(chart(A_READ, "{__name__=~\".+\", namespace!=\"a\"}").is_empty());
    assert!(
        chart(
            B_READ,
            "container_memory_working_set_bytes{namespace=\"a\"}"
        )
        .is_empty()
    );
    // The batch of a dashboard's chart queries: the same scope for each.
    let batch = |token: Option<&str>, queries: &[&str]| -> (u16, Vec<Vec<String>>) {
        let body = json!({"queries": queries.iter()
            .map(|q| json!({"query": q, "start": start, "end": end}))
            .collect::<Vec<_>>()});
        let mut req = client()
            .post(format!("{base}/api/v1/dashboard/query_batch"))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().unwrap();
        if status != 200 {
            return (status, Vec::new());
        }
        assert_eq!(&bytes[..4], b"OSB1");
        let mut out = vec![Vec::new(); queries.len()];
        let mut at = 4;
        while at < bytes.len() {
            let word = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
            let (i, st, len) = (word(at), word(at + 4), word(at + 8));
            assert_eq!(st, 200, "query {i}");
            let body = &bytes[at + 12..at + 12 + len];
            let h = u32::from_le_bytes(body[4..8].try_into().unwrap()) as usize;
            let head: Value = serde_json::from_slice(&body[8..8 + h]).unwrap();
            out[i] = head["series"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["metric"]["namespace"].as_str().unwrap_or("").to_string())
                .collect();
            at += 12 + len;
        }
        (status, out)
    };
    let all = [
        "container_memory_working_set_bytes",
        "{__name__=~\".+\", namespace!=\"a\"}",
        "container_memory_working_set_bytes{namespace=\"b\"}",
    ];
    let (s, got) = batch(Some(A_READ), &all);
    assert_eq!(s, 200);
    assert_eq!(got[0], ["a"]);
    assert!(got[1].is_empty() && got[2].is_empty(), "{got:?}");
    let (s, got) = batch(Some(ADMIN), &all);
    assert_eq!(s, 200);
    assert_eq!(got[0], ["a", "b"]);
    assert_eq!(got[2], ["b"]);
    let (s, got) = batch(Some(B_READ), &all[..1]);
    assert_eq!((s, got), (200, vec![vec!["b".to_string()]]));
    assert_eq!(batch(None, &all).0, 401);
    let svg = |token| {
        client()
            .get(format!("{base}/api/v1/render"))
            .query(&[
                ("query", "container_memory_working_set_bytes"),
                ("legend", "{{namespace}}/{{pod}}"),
                ("format", "svg"),
                ("start", start.as_str()),
                ("end", end.as_str()),
            ])
            .bearer_auth(token)
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let (a, admin) = (svg(A_READ), svg(ADMIN));
    assert!(
        admin.contains("b/web-b") && admin.contains("a/web-a"),
        "legend drawn as text"
    );
    assert!(a.contains("a/web-a") && !a.contains("web-b"));
    // B may not delete A's board; A's admin may.
    let del = |token| {
        client()
            .delete(format!("{base}/api/v1/dashboards/team-a"))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(del(B_READ), 403, "role read");
    assert_eq!(del(A_ADMIN), 200);
}

fn check_alerts(w: &World) {
    let base = &w.base;
    let rule = |id: &str, expr: &str, labels: Value| {
        json!({"id": id, "name": id, "condition": {"kind": "promql", "expr": expr},
            "interval": "1s", "labels": labels})
    };
    for r in [
        rule(
            "mem-a",
            "container_memory_working_set_bytes{namespace=\"a\"} > 0",
            json!({"namespace": "a"}),
        ),
        rule(
            "mem-all",
            "container_memory_working_set_bytes > 0",
            json!({}),
        ),
        rule("node-up", "machine_cpu_cores > 0", json!({})),
    ] {
        let (s, v) = post_json_as(base, ADMIN, "/api/v1/alerting/rules", &r);
        assert_eq!(s, 201, "{v}");
    }
    // Tenants may not create rules, nor read channels.
    let r = rule("mine", "up > 0", json!({"namespace": "a"}));
    assert_eq!(
        post_json_as(base, A_ADMIN, "/api/v1/alerting/rules", &r).0,
        403
    );
    assert_eq!(
        get_as(base, Some(A_READ), "/api/v1/alerting/channels", &[]).0,
        403
    );
    let alerts = |token| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> =
            ok_as(base, token, "/api/v1/alerts", &[])["data"]["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a["labels"]["alertname"].as_str().unwrap().to_string(),
                        a["labels"]["namespace"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
        v.sort();
        v
    };
    wait_for(Duration::from_secs(60), "4 alerts for the admin", || {
        (alerts(ADMIN).len() == 4).then_some(())
    });
    let pair = |a: &str, n: &str| (a.to_string(), n.to_string());
    assert_eq!(alerts(A_READ), [pair("mem-a", "a"), pair("mem-all", "a")]);
    assert_eq!(alerts(B_READ), [pair("mem-all", "b")]);
    let rule_ids = |token| -> Vec<String> {
        ok_as(base, token, "/api/v1/alerting/rules", &[])["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(rule_ids(A_READ), ["mem-a"]);
    assert!(rule_ids(B_READ).is_empty());
    assert_eq!(rule_ids(ADMIN).len(), 3);
    assert_eq!(
        get_as(base, Some(A_READ), "/api/v1/alerting/rules/mem-all", &[]).0,
        404
    );
    assert_eq!(
        get_as(base, Some(B_READ), "/api/v1/alerting/rules/mem-a", &[]).0,
        404
    );
    let one = ok_as(base, A_READ, "/api/v1/alerting/rules/mem-a", &[]);
    assert_eq!(one["data"]["alerts"].as_array().unwrap().len(), 1);
    let prom = ok_as(base, A_READ, "/api/v1/rules", &[]);
    let names: Vec<&str> = prom["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mem-a"], "{prom}");
    let history = ok_as(base, A_READ, "/api/v1/alerting/history", &[]);
    let entries = history["data"].as_array().unwrap();
    assert!(!entries.is_empty());
    for e in entries {
        assert_eq!(e["labels"]["namespace"], "a", "{e}");
    }
    // Silences.
    let ends = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let silence = |m: &[&str]| json!({"matchers": m, "ends_at": ends, "comment": "t"});
    let path = "/api/v1/alerting/silences";
    let (s, v) = post_json_as(base, ADMIN, path, &silence(&["alertname=\"node-up\""]));
    assert_eq!(s, 201, "{v}");
    let (s, v) = post_json_as(
        base,
        A_ADMIN,
        path,
        &silence(&["namespace=\"a\"", "alertname=\"mem-all\""]),
    );
    assert_eq!(s, 201, "{v}");
    let a_silence = v["data"]["id"].as_str().unwrap().to_string();
    for m in [
        vec!["namespace=\"b\""],
        vec!["alertname=\"mem-all\""],
        vec!["namespace=~\"a|b\""],
        vec!["namespace!=\"a\""],
    ] {
        let (s, v) = post_json_as(base, A_ADMIN, path, &silence(&m));
        assert_eq!(s, 403, "{m:?}: {v}");
    }
    assert_eq!(
        post_json_as(base, A_READ, path, &silence(&["namespace=\"a\""])).0,
        403
    );
    let ids = |token| -> Vec<String> {
        ok_as(base, token, path, &[])["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(A_READ), [a_silence.as_str()]);
    assert!(ids(B_READ).is_empty());
    assert_eq!(ids(ADMIN).len(), 2);
    let one = format!("{path}/{a_silence}");
    assert_eq!(get_as(base, Some(B_READ), &one, &[]).0, 404);
    assert_eq!(get_as(base, Some(A_READ), &one, &[]).0, 200);
    // The rule preview evaluates with the tenant's scope.
    let preview = json!({"name": "p", "condition": {"kind": "threshold",
        "query": "container_memory_working_set_bytes", "op": "above", "threshold": 0},
        "range": "10m", "end": (w.now_ms / 1000).to_string()});
    let members = |token| -> Vec<String> {
        let (s, v) = post_json_as(base, token, "/api/v1/alerting/rules/preview", &preview);
        assert_eq!(s, 200, "{v}");
        let mut ns: Vec<String> = v["data"]["simulation"]["intervals"]
            .as_array()
            .unwrap()
            .iter()
            .chain(
                v["data"]["chart"]["series"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| &s["metric"]),
            )
            .map(|x| {
                let labels = if x.get("labels").is_some() {
                    &x["labels"]
                } else {
                    x
                };
                labels["namespace"].as_str().unwrap_or("").to_string()
            })
            .collect();
        ns.sort();
        ns.dedup();
        ns
    };
    assert_eq!(members(A_ADMIN), ["a"]);
    assert_eq!(members(ADMIN), ["a", "b"]);
    let (s, _) = send_json(
        reqwest::Method::DELETE,
        base,
        A_ADMIN,
        &format!("{path}/nope"),
        &json!({}),
    );
    assert_eq!(s, 404);
}

/// Every API route without a token and with a tampered one: 401.
fn check_refusals(w: &World) {
    let mut tampered = A_READ.to_string().into_bytes();
    tampered[5] ^= 0x01;
    let tampered = String::from_utf8(tampered).unwrap();
    for path in [
        "/api/v1/query?query=up",
        "/api/v1/query_range?query=up&start=0&end=1&step=1",
        "/api/v1/series?match[]=up",
        "/api/v1/labels",
        "/api/v1/label/namespace/values",
        "/api/v1/model/namespaces",
        "/api/v1/model/namespaces/a/pods",
        "/api/v1/metric-export",
        "/api/v1/logs/search",
        "/api/v1/logs/histogram",
        "/api/v1/logs/tail",
        "/loki/api/v1/query_range?query={namespace=\"a\"}",
        "/loki/api/v1/labels",
        "/loki/api/v1/label/namespace/values",
        "/loki/api/v1/index/stats?query={namespace=\"a\"}",
        "/api/v1/dashboards",
        "/api/v1/dashboards/osprey-pods",
        "/api/v1/dashboard/query_range?query=up",
        "/api/v1/render?query=up",
        "/api/v1/alerts",
        "/api/v1/rules",
        "/api/v1/alerting/rules",
        "/api/v1/alerting/silences",
        "/api/v1/alerting/history",
    ] {
        for token in [None, Some(tampered.as_str())] {
            let (s, v) = get_as(&w.base, token, path, &[]);
            assert_eq!(s, 401, "{path} with {token:?}: {v}");
        }
    }
    let body = remote_write_body(&[("x", &[("namespace", "a")], &[(now_ms(), 1.0)])]);
    assert_eq!(post_write(&w.base, body, Some(&tampered)).0, 401);
    let ts = (now_ms() * 1_000_000).to_string();
    let body = json!({"streams": [{"stream": {"namespace": "a"}, "values": [[ts, "x"]]}]});
    assert_eq!(loki_push(&w.base, &tampered, &body).0, 401);
}

#[test]
fn tenant_tokens_see_only_their_namespaces_through_every_api() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let server = ServerProcess::start(&dir.path().join("data"), Some(&cfg), dir.path());
    let w = ingest(&server.base);
    check_promql(&w);
    check_heapster(&w);
    check_logs(&w);
    check_pushes(&w);
    check_tail(&w);
    check_dashboards(&w);
    check_alerts(&w);
    check_refusals(&w);
    check_session(&w);
}

/// A login with A's token gives a session (cookie) with A's scope.
fn check_session(w: &World) {
    let who = ok_as(&w.base, A_READ, "/api/v1/whoami", &[]);
    assert_eq!(who["data"]["namespaces"], json!(["a"]));
    let admin = ok_as(&w.base, ADMIN, "/api/v1/whoami", &[]);
    assert!(admin["data"].get("namespaces").is_none(), "{admin}");
    let resp = client()
        .post(format!("{}/api/v1/login", w.base))
        .json(&json!({"token": A_READ}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let login: Value = resp.json().unwrap();
    assert_eq!(login["data"]["namespaces"], json!(["a"]));
    let v: Value = client()
        .get(format!("{}/api/v1/label/namespace/values", w.base))
        .header("Cookie", cookie)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["data"], json!(["a"]));
}
