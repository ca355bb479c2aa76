//! `osprey agent --kubernetes-api URL` names a pod's cgroups from the API
//! server's pod list for its node, read over TLS with the service
//! account's token and CA, and ships the pods' restart counts and their
//! namespaces' UIDs (kube-state-metrics' names), which the server's
//! Heapster API serves as `restart_count` and `namespace_id`. A small
//! HTTPS server (rustls, a CA made with rcgen for the test) stands in for
//! the API server: it checks the bearer token and the node field selector
//! and serves a `PodList`, `Namespace` objects and the node's `Node`
//! object (capacity and allocatable, served by the Heapster API as
//! `cpu|memory|ephemeral_storage/node_capacity|node_allocatable`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use osprey_collector::fixture::{CgroupValues, FixtureTree, paths};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

const TOKEN: &str = "sa-token-of-osprey-agent";
const NODE: &str = "node-a";

/// One request the stand-in received: request target and Authorization.
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    authorization: Option<String>,
}

/// The stand-in API server: answers `GET /api/v1/pods` with `pod_list`
/// when the token is right, 401 otherwise, over TLS with a certificate for
/// 127.0.0.1 signed by the returned CA (PEM).
struct FakeApiServer {
    port: u16,
    ca_pem: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn start_api_server(pod_list: String) -> FakeApiServer {
    start_api_server_with(pod_list, Some(namespace_json()), Some(node_json()))
}

/// The node as the API server returns it (abridged from a real kubelet's
/// `Node`: quantities in the notations kubelets use).
fn node_json() -> String {
    serde_json::json!({
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": NODE,
            "uid": "3f0b6c1e-2d4a-4b8e-9c7f-1a2b3c4d5e6f",
            "resourceVersion": "9041",
            "labels": { "kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux" }
        },
        "spec": { "podCIDR": "10.244.1.0/24" },
        "status": {
            "capacity": {
                "cpu": "4",
                "ephemeral-storage": "101430960Ki",
                "hugepages-2Mi": "0",
                "memory": "16393216Ki",
                "pods": "110"
            },
            "allocatable": {
                "cpu": "3920m",
                "ephemeral-storage": "93478772582",
                "hugepages-2Mi": "0",
                "memory": "15242240Ki",
                "pods": "110"
            },
            "conditions": [{ "type": "Ready", "status": "True" }],
            "nodeInfo": { "kubeletVersion": "v1.31.2" }
        }
    })
    .to_string()
}

/// The node's allocatable in Heapster's units.
const ALLOCATABLE_MILLICORES: u64 = 3920;
const ALLOCATABLE_MEMORY: u64 = 15_242_240 * 1024;
const ALLOCATABLE_EPHEMERAL: u64 = 93_478_772_582;
const CAPACITY_EPHEMERAL: u64 = 101_430_960 * 1024;

const SHOP_UID: &str = "5d2c8f41-7a9e-4c1b-9e0f-3b6a2d8c4e71";
/// 2026-11-20T08:00:00Z.
const SHOP_CREATED: f64 = 1_795_161_600.0;

/// The `shop` namespace as the API server returns it.
fn namespace_json() -> String {
    serde_json::json!({
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {
            "name": "shop",
            "uid": SHOP_UID,
            "resourceVersion": "17",
            "creationTimestamp": "2026-11-20T08:00:00Z",
            "labels": { "kubernetes.io/metadata.name": "shop" }
        },
        "spec": { "finalizers": ["kubernetes"] },
        "status": { "phase": "Active" }
    })
    .to_string()
}

/// The stand-in, answering `GET /api/v1/namespaces/shop` with `namespace`
/// and `GET /api/v1/nodes/node-a` with `node` (403 Forbidden when `None`,
/// as for a ClusterRole without `get` on namespaces or nodes).
fn start_api_server_with(
    pod_list: String,
    namespace: Option<String>,
    node: Option<String>,
) -> FakeApiServer {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();

    let tls = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let conn = rustls::ServerConnection::new(Arc::clone(&tls)).unwrap();
            let mut tls_stream = rustls::StreamOwned::new(conn, stream);
            // A failed handshake (an agent that does not trust the CA) is
            // just a closed connection here.
            let _ = serve_one(
                &mut tls_stream,
                &pod_list,
                namespace.as_deref(),
                node.as_deref(),
                &log,
            );
        }
    });
    FakeApiServer {
        port,
        ca_pem: ca.pem(),
        seen,
    }
}

fn serve_one(
    stream: &mut rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>,
    pod_list: &str,
    namespace: Option<&str>,
    node: Option<&str>,
    log: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(&mut *stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    log.lock().unwrap().push(Seen {
        target: target.clone(),
        authorization: authorization.clone(),
    });
    let forbidden = || {
        (
            "403 Forbidden",
            r#"{"kind":"Status","code":403,"reason":"Forbidden"}"#.to_owned(),
        )
    };
    let (status, body) = if authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        (
            "401 Unauthorized",
            r#"{"kind":"Status","code":401}"#.to_owned(),
        )
    } else if target.split('?').next() == Some(&format!("/api/v1/nodes/{NODE}")) {
        match node {
            Some(n) => ("200 OK", n.to_owned()),
            None => forbidden(),
        }
    } else if target == "/api/v1/namespaces/shop" {
        match namespace {
            Some(ns) => ("200 OK", ns.to_owned()),
            None => forbidden(),
        }
    } else if !target.starts_with("/api/v1/pods?") {
        (
            "404 Not Found",
            r#"{"kind":"Status","code":404}"#.to_owned(),
        )
    } else {
        ("200 OK", pod_list.to_owned())
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()?;
    stream.conn.send_close_notify();
    stream.flush()
}

fn pod_list(uid: &str, container_id: &str) -> String {
    serde_json::json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": { "resourceVersion": "123" },
        "items": [{
            "metadata": {
                "name": "cart-0",
                "namespace": "shop",
                "uid": uid,
                "labels": { "app": "cart", "tier": "web" }
            },
            "spec": {
                "nodeName": NODE,
                "containers": [{
                    "name": "cart",
                    "image": "registry.example/cart:3.1",
                    "resources": {
                        "requests": { "cpu": "250m", "memory": "128Mi", "ephemeral-storage": "1Gi" },
                        "limits": { "ephemeral-storage": "2Gi" }
                    }
                }, { "name": "proxy", "image": "registry.example/proxy:1" }]
            },
            "status": {
                "containerStatuses": [{
                    "name": "cart",
                    "image": "registry.example/cart:3.1",
                    "containerID": format!("containerd://{container_id}"),
                    "restartCount": 2,
                    "lastState": { "terminated": { "exitCode": 137, "reason": "OOMKilled" } }
                }, {
                    "name": "proxy",
                    "image": "registry.example/proxy:1",
                    "restartCount": 0,
                    "state": { "waiting": { "reason": "ContainerCreating" } }
                }]
            }
        }]
    })
    .to_string()
}

/// A containerd pod with no runtime record and no kubelet logs on the
/// node: only the API server can name it.
struct Node {
    tree: FixtureTree,
    tmp: tempfile::TempDir,
    uid: String,
    container_id: String,
    pod_path: String,
    container_path: String,
}

fn node() -> Node {
    let tree = FixtureTree::v2().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("sys")).unwrap();
    let uid = paths::pod_uid(21);
    let container_id = paths::container_id(21);
    let container_path = paths::kubepods_systemd(
        paths::Qos::Burstable,
        &uid,
        paths::Runtime::Containerd,
        &container_id,
    );
    let pod_path = container_path.rsplit_once('/').unwrap().0.to_owned();
    tree.add_cgroup(&pod_path, &CgroupValues::sample(20))
        .unwrap();
    tree.add_cgroup(&container_path, &CgroupValues::sample(21))
        .unwrap();
    Node {
        tree,
        tmp,
        uid,
        container_id,
        pod_path,
        container_path,
    }
}

fn service_account(dir: &Path, token: &str, ca_pem: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("token"), format!("{token}\n")).unwrap();
    std::fs::write(dir.join("ca.crt"), ca_pem).unwrap();
}

/// The agent flags that point it at `node`'s fixture tree and at the API
/// server on `port` with the service account in `sa_dir`.
fn node_args(node: &Node, port: u16, sa_dir: &Path) -> Vec<String> {
    let t = node.tmp.path();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    vec![
        "--node-name".into(),
        NODE.into(),
        "--kubernetes-api".into(),
        format!("https://127.0.0.1:{port}"),
        "--kubernetes-service-account-dir".into(),
        s(sa_dir),
        "--cgroup-root".into(),
        s(node.tree.root()),
        "--sys-root".into(),
        s(&t.join("sys")),
        "--docker-root".into(),
        s(&t.join("docker")),
        "--pod-log-root".into(),
        s(&t.join("no-pods")),
        "--container-log-root".into(),
        s(&t.join("no-containers")),
    ]
}

/// `osprey agent --once` on the node with the API server at `port`;
/// returns (stdout, stderr).
fn run_agent(node: &Node, port: u16, sa_dir: &Path) -> (String, String) {
    let out = osprey()
        .args(["agent", "--once", "--format", "prometheus"])
        .args(["--container-label", "app"])
        .args(node_args(node, port, sa_dir))
        .arg("--kubelet-root-dir")
        .arg(node.tmp.path().join("kubelet"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("running osprey");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "the agent must not fail on metadata: {stderr}"
    );
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

#[test]
fn pods_are_named_and_labelled_from_the_api_server() {
    let node = node();
    let api = start_api_server(pod_list(&node.uid, &node.container_id));
    let sa = node.tmp.path().join("sa");
    service_account(&sa, TOKEN, &api.ca_pem);

    let (text, stderr) = run_agent(&node, api.port, &sa);

    let container = [
        ("id", node.container_path.as_str()),
        ("namespace", "shop"),
        ("pod", "cart-0"),
        ("container", "cart"),
        ("image", "registry.example/cart:3.1"),
        // The pod's labels, on its containers too.
        ("container_label_app", "cart"),
    ];
    assert!(
        metric_value(&text, "container_memory_usage_bytes", &container).is_some(),
        "the container is named from the API server's pod list:\n{text}\n{stderr}"
    );
    let pod = [
        ("id", node.pod_path.as_str()),
        ("namespace", "shop"),
        ("pod", "cart-0"),
        ("container_label_app", "cart"),
    ];
    assert!(
        metric_value(&text, "container_memory_usage_bytes", &pod).is_some(),
        "the pod cgroup carries the pod's labels:\n{text}"
    );

    let seen = api.seen.lock().unwrap().clone();
    // Both cgroups (and the pod status) came from one list: the source is
    // rate-limited. Then the pod's namespace and the node were read once.
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[1].target, "/api/v1/namespaces/shop");
    assert_eq!(seen[2].target, "/api/v1/nodes/node-a?resourceVersion=0");
    let target = &seen[0].target;
    assert!(target.starts_with("/api/v1/pods?"), "{target}");
    assert!(
        target.contains("fieldSelector=spec.nodeName%3Dnode-a"),
        "only this node's pods are listed: {target}"
    );
    assert!(target.contains("resourceVersion=0"), "{target}");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[test]
fn restart_counts_and_namespace_uids_are_shipped_under_kube_state_metrics_names() {
    let node = node();
    let api = start_api_server(pod_list(&node.uid, &node.container_id));
    let sa = node.tmp.path().join("sa");
    service_account(&sa, TOKEN, &api.ca_pem);

    let (text, stderr) = run_agent(&node, api.port, &sa);

    let restarts = |container: &str| {
        metric_value(
            &text,
            "kube_pod_container_status_restarts_total",
            &[
                ("namespace", "shop"),
                ("pod", "cart-0"),
                ("uid", node.uid.as_str()),
                ("container", container),
            ],
        )
    };
    assert_eq!(
        restarts("cart"),
        Some(2.0),
        "{text}
{stderr}"
    );
    // A container still being created has its status too.
    assert_eq!(restarts("proxy"), Some(0.0), "{text}");
    assert!(
        text.contains("# TYPE kube_pod_container_status_restarts_total counter"),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            "kube_namespace_created",
            &[("namespace", "shop"), ("uid", SHOP_UID)]
        ),
        Some(SHOP_CREATED),
        "{text}"
    );
    // Requests and limits from the spec, in base units.
    let resource = |name: &str, resource: &str| {
        metric_value(
            &text,
            name,
            &[("container", "cart"), ("resource", resource)],
        )
    };
    assert_eq!(
        resource("kube_pod_container_resource_requests", "ephemeral_storage"),
        Some(1_073_741_824.0),
        "{text}"
    );
    assert_eq!(
        resource("kube_pod_container_resource_limits", "ephemeral_storage"),
        Some(2_147_483_648.0)
    );
    assert_eq!(
        resource("kube_pod_container_resource_requests", "cpu"),
        Some(0.25)
    );
    assert!(
        metric_value(
            &text,
            "kube_pod_container_resource_requests",
            &[("resource", "memory"), ("unit", "byte")]
        )
        .is_some()
    );
    // The node's capacity and allocatable from its Node object.
    let node_status = |name: &str, resource: &str, unit: &str| {
        metric_value(&text, name, &[("resource", resource), ("unit", unit)])
    };
    assert_eq!(
        node_status("kube_node_status_capacity", "cpu", "core"),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        node_status("kube_node_status_allocatable", "cpu", "core"),
        Some(3.92)
    );
    assert_eq!(
        node_status("kube_node_status_allocatable", "memory", "byte"),
        Some(ALLOCATABLE_MEMORY as f64)
    );
    assert_eq!(
        node_status("kube_node_status_capacity", "ephemeral_storage", "byte"),
        Some(CAPACITY_EPHEMERAL as f64)
    );
    assert_eq!(
        node_status("kube_node_status_allocatable", "pods", "integer"),
        Some(110.0)
    );
    // The kubelet root directory does not exist here: the root
    // filesystem is measured.
    let used = metric_value(&text, "node_ephemeral_storage_usage_bytes", &[]);
    let size = metric_value(&text, "node_ephemeral_storage_capacity_bytes", &[]);
    assert!(
        matches!((used, size), (Some(u), Some(s)) if u > 0.0 && u <= s),
        "{used:?} {size:?}\n{text}"
    );
}

#[test]
fn a_node_the_service_account_may_not_read_costs_only_its_capacity() {
    let node = node();
    let api = start_api_server_with(
        pod_list(&node.uid, &node.container_id),
        Some(namespace_json()),
        None,
    );
    let sa = node.tmp.path().join("sa");
    service_account(&sa, TOKEN, &api.ca_pem);

    let (text, stderr) = run_agent(&node, api.port, &sa);

    assert_eq!(
        metric_value(
            &text,
            "kube_pod_container_status_restarts_total",
            &[("container", "cart")]
        ),
        Some(2.0),
        "{text}"
    );
    assert!(!text.contains("kube_node_status_"), "{text}");
    assert_eq!(
        stderr.matches("cannot read the node").count(),
        1,
        "one warning naming the missing permission: {stderr}"
    );
    assert!(stderr.contains("get` on nodes"), "{stderr}");
    assert!(!stderr.contains("pod list unavailable"), "{stderr}");
}

#[test]
fn a_namespace_the_service_account_may_not_read_costs_only_its_uid() {
    let node = node();
    let api = start_api_server_with(
        pod_list(&node.uid, &node.container_id),
        None,
        Some(node_json()),
    );
    let sa = node.tmp.path().join("sa");
    service_account(&sa, TOKEN, &api.ca_pem);

    let (text, stderr) = run_agent(&node, api.port, &sa);

    // Names, labels and restart counts still come from the pod list.
    assert!(
        metric_value(
            &text,
            "container_memory_usage_bytes",
            &[("id", node.container_path.as_str()), ("pod", "cart-0")]
        )
        .is_some(),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            "kube_pod_container_status_restarts_total",
            &[("container", "cart")]
        ),
        Some(2.0)
    );
    assert!(!text.contains("kube_namespace_created"), "{text}");
    assert_eq!(
        stderr.matches("cannot read namespace").count(),
        1,
        "one warning naming the missing permission: {stderr}"
    );
    assert!(stderr.contains("get` on namespaces"), "{stderr}");
    assert!(!stderr.contains("pod list unavailable"), "{stderr}");
}

#[test]
fn a_refused_token_is_logged_once_and_the_agent_goes_on() {
    let node = node();
    let api = start_api_server(pod_list(&node.uid, &node.container_id));
    let sa = node.tmp.path().join("sa");
    service_account(&sa, "a-stale-token", &api.ca_pem);

    let (text, stderr) = run_agent(&node, api.port, &sa);

    // Still measured, just not named by the API server.
    assert!(
        metric_value(
            &text,
            "container_memory_usage_bytes",
            &[("id", node.container_path.as_str()), ("pod", "")]
        )
        .is_some(),
        "{text}"
    );
    assert_eq!(api.seen.lock().unwrap().len(), 1);
    assert_eq!(
        stderr.matches("pod list unavailable").count(),
        1,
        "one warning: {stderr}"
    );
    assert!(stderr.contains("401"), "{stderr}");
}

#[test]
fn an_api_server_outside_the_service_account_ca_is_not_trusted() {
    let node = node();
    let api = start_api_server(pod_list(&node.uid, &node.container_id));
    // The right token, but a CA that did not sign the server's certificate.
    let other = start_api_server(String::new());
    let sa = node.tmp.path().join("sa");
    service_account(&sa, TOKEN, &other.ca_pem);

    let (text, stderr) = run_agent(&node, api.port, &sa);

    assert!(
        metric_value(
            &text,
            "container_memory_usage_bytes",
            &[("id", node.container_path.as_str()), ("pod", "")]
        )
        .is_some(),
        "{text}"
    );
    // The handshake failed before any request (and token) was sent.
    assert!(api.seen.lock().unwrap().is_empty());
    assert!(stderr.contains("pod list unavailable"), "{stderr}");
}

#[test]
fn failed_pod_list_fetches_are_counted_in_the_agents_metrics() {
    let node = node();
    let api = start_api_server(pod_list(&node.uid, &node.container_id));
    let sa = node.tmp.path().join("sa");
    service_account(&sa, "a-stale-token", &api.ca_pem);
    let logs = artifact_dir("agent_kube_api");
    let t = node.tmp.path();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let mut args = vec!["--interval".to_string(), "1s".into()];
    args.extend(node_args(&node, api.port, &sa));
    args.extend(["--data-dir".into(), s(&t.join("data"))]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let agent = AgentProcess::start(&args, &logs);
    let errors = metric_value(
        &agent.metrics(),
        "osprey_agent_read_errors_total",
        &[("reason", "metadata")],
    );
    assert!(
        errors.is_some_and(|n| n >= 1.0),
        "metadata failures are counted: {errors:?}"
    );
    assert!(!api.seen.lock().unwrap().is_empty());
}

/// End to end: the agent reads the pod list, ships to a real `osprey
/// server` by remote-write, and the server's Heapster API serves the
/// restart count (container and pod) and the namespace UID.
#[test]
fn restart_counts_and_namespace_ids_reach_the_heapster_api() {
    let node = node();
    let api = start_api_server(pod_list(&node.uid, &node.container_id));
    let sa = node.tmp.path().join("sa");
    service_account(&sa, TOKEN, &api.ca_pem);
    let logs = artifact_dir("agent_kube_api_heapster");
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path(), None, &logs);
    let t = node.tmp.path();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let kubelet = t.join("kubelet");
    std::fs::create_dir_all(&kubelet).unwrap();
    let mut args = vec!["--interval".to_string(), "1s".into()];
    args.extend(node_args(&node, api.port, &sa));
    args.extend([
        "--remote-write".into(),
        format!("{}/api/v1/write", server.base),
        "--kubelet-root-dir".into(),
        s(&kubelet),
        "--data-dir".into(),
        s(&t.join("data")),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _agent = AgentProcess::start(&args, &logs);
    let model = format!("{}/api/v1/model/namespaces/shop/pods/cart-0", server.base);
    let latest = |path: &str| {
        let v = get_json(&format!("{model}/{path}"));
        v["metrics"]
            .as_array()
            .and_then(|m| m.last())
            .map(|p| p["value"].as_u64().unwrap())
    };
    let container = wait_for(
        Duration::from_secs(30),
        "the container's restart_count",
        || latest("containers/cart/metrics/restart_count"),
    );
    assert_eq!(container, 2);
    // The pod sums its containers: cart (2) + proxy (0); proxy has no
    // cgroup yet, its status counts all the same.
    assert_eq!(latest("metrics/restart_count"), Some(2));
    let exported = wait_for(
        Duration::from_secs(30),
        "the container in metric-export",
        || {
            let all = get_json(&format!("{}/api/v1/metric-export", server.base));
            all.as_array()?
                .iter()
                .find(|ts| ts["labels"]["container_name"] == "cart")
                .cloned()
        },
    );
    assert_eq!(exported["labels"]["namespace_id"], SHOP_UID, "{exported}");
    assert_eq!(
        latest("containers/cart/metrics/ephemeral_storage/request"),
        Some(1_073_741_824)
    );
    let node_limit = get_json(&format!(
        "{}/api/v1/model/nodes/{NODE}/metrics/ephemeral_storage/limit",
        server.base
    ));
    assert_eq!(
        node_limit["metrics"].as_array().unwrap().last().unwrap()["value"],
        2_147_483_648u64,
        "the node sums its pods' limits"
    );
    assert_eq!(exported["labels"]["pod_id"], node.uid.as_str());

    // The node's capacity and allocatable from its Node object, and its
    // ephemeral storage from the kubelet root directory's filesystem.
    let node_model = format!("{}/api/v1/model/nodes/{NODE}/metrics", server.base);
    let node_latest = |metric: &str| {
        let v = get_json(&format!("{node_model}/{metric}"));
        v["metrics"].as_array().and_then(|m| m.last()).cloned()
    };
    let alloc = wait_for(
        Duration::from_secs(30),
        "the node's cpu/node_allocatable",
        || node_latest("cpu/node_allocatable"),
    );
    assert_eq!(alloc["value"], ALLOCATABLE_MILLICORES, "{alloc}");
    assert_eq!(node_latest("cpu/node_capacity").unwrap()["value"], 4000u64);
    assert_eq!(
        node_latest("memory/node_allocatable").unwrap()["value"],
        ALLOCATABLE_MEMORY
    );
    assert_eq!(
        node_latest("ephemeral_storage/node_allocatable").unwrap()["value"],
        ALLOCATABLE_EPHEMERAL
    );
    assert_eq!(
        node_latest("ephemeral_storage/node_capacity").unwrap()["value"],
        CAPACITY_EPHEMERAL
    );
    let used = node_latest("ephemeral_storage/usage").expect("node ephemeral usage");
    let used = used["value"].as_u64().unwrap();
    // df's figures for the same filesystem (coreutils).
    let df = std::process::Command::new("df")
        .args(["-B1", "--output=size,used"])
        .arg(&kubelet)
        .output()
        .expect("running df");
    let df = String::from_utf8(df.stdout).unwrap();
    let figures: Vec<u64> = df
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("df: {df}"))
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let (size, df_used) = (figures[0], figures[1]);
    assert!(used > 0 && used <= size, "{used} of {size}");
    // Within 1% of the size of df's figure: the filesystem is shared and
    // moves between the two readings.
    assert!(
        used.abs_diff(df_used) < size / 100,
        "{used} vs df's {df_used} of {size}"
    );
    // The cart container's ephemeral request (1 GiB) over the allocatable.
    let reservation = wait_for(
        Duration::from_secs(30),
        "the node's ephemeral_storage/node_reservation",
        || node_latest("ephemeral_storage/node_reservation"),
    );
    let want = 1_073_741_824.0 / ALLOCATABLE_EPHEMERAL as f64;
    let got = reservation["floatValue"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-12, "{got} != {want}");
}
