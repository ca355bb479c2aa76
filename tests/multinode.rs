//! Several nodes on one machine: each node is a network namespace on a
//! private bridge (tests/common/netns.rs) running a real `osprey agent`
//! over its own cgroup subtree (a real v1 cgroup holding a process) and
//! its own log directory, all shipping to one `osprey server` in another
//! namespace, over the veths. The server's alert rules come from its
//! config file: an absence rule per node and a host-comparison rule, with
//! a real HTTP webhook receiver (listening inside the server's namespace)
//! capturing the notifications.
//!
//! What must hold:
//! - the Heapster API, the PromQL API and the dashboard overview's queries
//!   list every node; each node's Heapster system containers are its own
//!   subtree only;
//! - the loaded node (a busy loop in its cgroup) raises a host-comparison
//!   alert naming it, and no idle peer is ever named;
//! - node2's cable is cut for longer than the absence window: the absence
//!   alert fires for node2; once the cable is back it resolves, every
//!   collection made during the outage reaches the server exactly once (a
//!   sample on every tick of the 1 s grid, from the agent's queue, which
//!   dropped nothing), and log lines written into node2's log directory
//!   during the outage arrive once each;
//! - node3's agent is killed with SIGKILL: the absence alert fires for
//!   node3; restarted on the same data directory it resolves and node3's
//!   series go on.
//!
//! Needs root, cgroup v1 and iproute2 (CI has them); never skipped.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::netns::{Forward, Host, Lab};
use common::{ChildGuard, RealCgroup, artifact_dir, get, get_json, metric_value, wait_for};
use serde_json::Value;

/// Nodes in the test (the issue asks for at least 4).
const NODES: usize = 5;
/// The node whose cable is cut.
const CUT: usize = 2;
/// The node whose agent is killed.
const KILLED: usize = 3;
/// The loaded node.
const BUSY: usize = 4;
/// The server's port inside its namespace.
const SERVER_PORT: u16 = 9090;
/// The agents' API port inside their namespaces.
const AGENT_PORT: u16 = 9101;
/// Collection interval, ms.
const INTERVAL_MS: i64 = 1000;

fn node(i: usize) -> String {
    format!("node{i}")
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

// ---- the webhook receiver ----

/// Webhook payloads received (Alertmanager v4 JSON).
#[derive(Clone, Default)]
struct Hooks(Arc<Mutex<Vec<Value>>>);

impl Hooks {
    /// Every alert of every payload: (alertname, node, status).
    fn alerts(&self) -> Vec<(String, String, String)> {
        let payloads = self.0.lock().unwrap();
        payloads
            .iter()
            .flat_map(|p| p["alerts"].as_array().cloned().unwrap_or_default())
            .map(|a| {
                let s = |v: &Value| v.as_str().unwrap_or("").to_string();
                (
                    s(&a["labels"]["alertname"]),
                    s(&a["labels"]["node"]),
                    s(&a["status"]),
                )
            })
            .collect()
    }

    fn has(&self, alertname: &str, node: &str, status: &str) -> bool {
        self.alerts()
            .iter()
            .any(|(a, n, s)| a == alertname && n == node && s == status)
    }

    /// How many alerts were received so far (a mark for [`Hooks::has_since`]).
    fn count(&self) -> usize {
        self.alerts().len()
    }

    fn has_since(&self, since: usize, alertname: &str, node: &str, status: &str) -> bool {
        self.alerts()[since..]
            .iter()
            .any(|(a, n, s)| a == alertname && n == node && s == status)
    }
}

/// Starts a real HTTP receiver listening on loopback *inside* `host`, where
/// the server reaches it; returns its URL there.
fn start_receiver(host: &Host, hooks: Hooks) -> String {
    let listener = host
        .ns
        .run(|| std::net::TcpListener::bind("127.0.0.1:0").expect("receiver port"));
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/hook",
                axum::routing::post(
                    |axum::extract::State(h): axum::extract::State<Hooks>,
                     body: axum::body::Bytes| async move {
                        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        h.0.lock().unwrap().push(v);
                        axum::http::StatusCode::OK
                    },
                ),
            );
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app.with_state(hooks)).await.unwrap();
        });
    });
    url
}

// ---- configuration ----

fn server_config(dir: &Path, hook: &str, subtree_prefix: &str) -> PathBuf {
    let path = dir.join("server.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server.alerting]
evaluation_interval = "1s"
external_url = "http://osprey.multinode.test"

[server.alerting.retry]
initial_backoff = "200ms"
max_backoff = "1s"

[server.alerting.route]
receiver = "hook"
group_by = ["alertname", "node"]
group_wait = "500ms"
group_interval = "1s"
repeat_interval = "1h"

[[server.alerting.channels]]
id = "hook"
type = "webhook"
url = "{hook}"

# A node whose agent stops reporting (cable cut, agent dead).
[[server.alerting.rules]]
name = "NodeSilent"
for = "1s"
condition = {{ kind = "absence", query = 'machine_cpu_cores{{job="osprey-agent"}}', duration = "4s", lookback = "10m" }}

# A node whose workload burns far more CPU than its peers'.
[[server.alerting.rules]]
name = "NodeUnlikeItsPeers"
for = "2s"
[server.alerting.rules.condition]
kind = "host_comparison"
query = 'rate(container_cpu_usage_seconds_total{{id=~"{subtree_prefix}node[0-9]+"}}[5s])'
step = "1s"
detector = {{ min_group = 3, sensitivity = 3.5, window_ms = 8000, fraction_of_window = 0.6, lookback_ms = 3000, direction = "above", abs_floor = 0.02 }}
"#
        ),
    )
    .unwrap();
    path
}

fn agent_config(dir: &Path, name: &str, subtree: &str, server: SocketAddr) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[agent]
listen = "127.0.0.1:{AGENT_PORT}"
interval = "1s"
node_name = "{name}"
subtrees = ["{subtree}"]
data_dir = "{data}"
# Nothing of the machine's own container runtime or kubelet.
docker_root = "{dir}/none"
pod_log_root = "{dir}/none"
container_log_root = "{dir}/none"

[agent.remote_write]
url = "http://{server}/api/v1/write"
timeout = "2s"
min_backoff = "100ms"
max_backoff = "500ms"

[agent.logs]
url = "http://{server}/loki/api/v1/push"
containers = false
poll_interval = "100ms"
discover_interval = "500ms"
batch_wait = "200ms"
timeout = "2s"
min_backoff = "100ms"
max_backoff = "500ms"

[[agent.logs.files]]
name = "app"
paths = ["{logs}/*.log"]
"#,
            dir = dir.display(),
            data = dir.join("data").display(),
            logs = dir.join("log").display(),
        ),
    )
    .unwrap();
    path
}

// ---- one node ----

struct Node {
    name: String,
    host: Host,
    dir: PathBuf,
    config: PathBuf,
    agent: Option<ChildGuard>,
    /// The agent's API, relayed into the node's namespace.
    api: Forward,
    cgroup: RealCgroup,
    _workload: ChildGuard,
}

impl Node {
    fn start_agent(&mut self, artifacts: &Path, run: usize) {
        let mut cmd = self.host.ns.command(env!("CARGO_BIN_EXE_osprey"));
        cmd.arg("--config").arg(&self.config).arg("agent");
        let guard = ChildGuard::spawn(cmd, &format!("agent-{}-{run}", self.name), artifacts);
        self.agent = Some(guard);
        let health = format!("{}/healthz", self.api.url());
        wait_for(
            Duration::from_secs(30),
            &format!("{}'s agent", self.name),
            || get(&health).filter(|(s, _)| *s == 200),
        );
    }

    fn metrics(&self) -> String {
        get(&format!("{}/metrics", self.api.url()))
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("log").join("app.log")
    }
}

fn append(path: &Path, lines: &[String]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f.sync_all().unwrap();
}

// ---- the server's APIs ----

struct Api {
    base: String,
}

impl Api {
    fn query(&self, expr: &str) -> Vec<Value> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query", self.base),
            &[("query", expr)],
        )
        .unwrap();
        let v = get_json(url.as_str());
        assert_eq!(v["status"], "success", "{expr}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The `node` labels of an instant query's result, sorted.
    fn nodes_of(&self, expr: &str) -> Vec<String> {
        let mut n: Vec<String> = self
            .query(expr)
            .iter()
            .filter_map(|s| s["metric"]["node"].as_str().map(String::from))
            .collect();
        n.sort();
        n
    }

    /// Raw sample timestamps (ms) of the one series `selector` picks over
    /// the last `range_s` seconds.
    fn sample_times(&self, selector: &str, range_s: i64) -> Vec<i64> {
        let r = self.query(&format!("{selector}[{range_s}s]"));
        assert!(r.len() <= 1, "{selector} picks one series: {r:?}");
        r.first()
            .and_then(|s| s["values"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|p| (p[0].as_f64().unwrap() * 1000.0).round() as i64)
            .collect()
    }

    fn log_lines(&self, query: &str, start_ms: i64) -> Vec<Value> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/logs/search", self.base),
            &[
                ("query", query),
                ("start", &format!("{}", start_ms as f64 / 1000.0)),
                ("end", &format!("{}", (now_ms() + 60_000) as f64 / 1000.0)),
                ("limit", "1000"),
            ],
        )
        .unwrap();
        let v = get_json(url.as_str());
        v["data"]["lines"].as_array().cloned().unwrap_or_default()
    }
}

fn expected_nodes() -> Vec<String> {
    let mut n: Vec<String> = (1..=NODES).map(node).collect();
    n.sort();
    n
}

#[test]
fn nodes_on_a_private_network_report_alert_when_cut_off_or_killed_and_resume_without_loss() {
    let started = Instant::now();
    let artifacts = artifact_dir("multinode");
    let work = tempfile::tempdir().unwrap();
    let mut lab = Lab::new();
    let srv = lab.add_host("srv");
    let server_addr = SocketAddr::from((srv.addr, SERVER_PORT));

    // The webhook receiver lives where the server can reach it.
    let hooks = Hooks::default();
    let hook_url = start_receiver(&srv, hooks.clone());
    let subtree_prefix = format!("/osprey-e2e-{}-", std::process::id());
    let server_cfg = server_config(work.path(), &hook_url, &subtree_prefix);

    let mut cmd = srv.ns.command(env!("CARGO_BIN_EXE_osprey"));
    cmd.arg("--config")
        .arg(&server_cfg)
        .arg("server")
        .arg("--listen")
        .arg(format!("0.0.0.0:{SERVER_PORT}"))
        .arg("--data-dir")
        .arg(work.path().join("server-data"));
    let _server = ChildGuard::spawn(cmd, "server", &artifacts);
    let relay = Forward::start(None, Some(&srv.ns), server_addr);
    let api = Api { base: relay.url() };
    wait_for(Duration::from_secs(60), "the server's /readyz", || {
        get(&format!("{}/readyz", api.base)).filter(|(s, _)| *s == 200)
    });

    // The nodes: a namespace, a cgroup subtree holding a process (a busy
    // loop held to 0.3 cores on the loaded node, a sleep loop elsewhere), a log
    // directory and an agent.
    let mut nodes: Vec<Node> = Vec::new();
    for i in 1..=NODES {
        let name = node(i);
        let host = lab.add_host(&name);
        let dir = work.path().join(&name);
        std::fs::create_dir_all(dir.join("log")).unwrap();
        let cgroup = RealCgroup::create(&name);
        assert_eq!(cgroup.path, format!("{subtree_prefix}{name}"));
        let workload = if i == BUSY {
            cgroup.set("cpu", "cpu.cfs_period_us", "100000");
            cgroup.set("cpu", "cpu.cfs_quota_us", "30000");
            cgroup.spawn("sh", &["-c", "while :; do :; done"], &artifacts, "busy")
        } else {
            // A trickle of work, so the cgroup has used some CPU (the
            // agent, like cAdvisor, omits a usage of exactly zero).
            cgroup.spawn(
                "sh",
                &["-c", "while :; do sleep 0.5; done"],
                &artifacts,
                &format!("idle-{name}"),
            )
        };
        let config = agent_config(&dir, &name, &cgroup.path, server_addr);
        let api_relay = Forward::start(
            None,
            Some(&host.ns),
            SocketAddr::from(([127, 0, 0, 1], AGENT_PORT)),
        );
        append(
            &dir.join("log").join("app.log"),
            &[format!("{name} mnhello")],
        );
        let mut n = Node {
            name,
            host,
            dir,
            config,
            agent: None,
            api: api_relay,
            cgroup,
            _workload: workload,
        };
        n.start_agent(&artifacts, 1);
        nodes.push(n);
    }

    // ---- every node is seen, through every API ----
    let want = expected_nodes();
    wait_for(Duration::from_secs(30), "every node in PromQL", || {
        (api.nodes_of(r#"count by (node) (machine_cpu_cores{job="osprey-agent"})"#) == want)
            .then_some(())
    });
    wait_for(Duration::from_secs(30), "every node in Heapster", || {
        let v = get_json(&format!("{}/api/v1/model/nodes/", api.base));
        let mut got: Vec<String> = v
            .as_array()?
            .iter()
            .filter_map(|n| n.as_str().map(String::from))
            .collect();
        got.sort();
        (got == want).then_some(())
    });
    // The dashboard overview's node table is built from these queries
    // (dashboard/web/src/overview.js): capacity and CPU used per node.
    wait_for(
        Duration::from_secs(30),
        "every node in the overview",
        || {
            let cores = api.nodes_of("max by (node) (machine_cpu_cores)");
            let cpu = api
                .nodes_of(r#"sum by (node) (rate(container_cpu_usage_seconds_total{id="/"}[1m]))"#);
            (cores == want && cpu == want).then_some(())
        },
    );
    let label = get_json(&format!("{}/api/v1/label/node/values", api.base));
    for n in &want {
        assert!(
            label["data"].as_array().unwrap().iter().any(|v| v == n),
            "{n} missing from /api/v1/label/node/values: {label}"
        );
    }
    // Each agent reports its own subtree and no other node's.
    for n in &nodes {
        let ids: Vec<String> = api
            .query(&format!(
                r#"count by (id) (container_last_seen{{node="{}",id!="/"}})"#,
                n.name
            ))
            .iter()
            .filter_map(|s| s["metric"]["id"].as_str().map(String::from))
            .collect();
        assert_eq!(
            ids,
            std::slice::from_ref(&n.cgroup.path),
            "{}'s cgroups",
            n.name
        );
        let free = get_json(&format!(
            "{}/api/v1/model/nodes/{}/freecontainers/",
            api.base, n.name
        ));
        assert_eq!(
            free,
            serde_json::json!([n.cgroup.path.trim_start_matches('/')]),
            "{}'s Heapster system containers",
            n.name
        );
    }
    // Logs of every node arrive, labelled with their node.
    let t0 = now_ms() - 120_000;
    wait_for(
        Duration::from_secs(30),
        "every node's first log line",
        || {
            let lines = api.log_lines("mnhello", t0);
            let mut got: Vec<String> = lines
                .iter()
                .filter_map(|l| l["node"].as_str().map(String::from))
                .collect();
            got.sort();
            (got == want).then_some(())
        },
    );
    eprintln!("all {NODES} nodes visible after {:?}", started.elapsed());

    // ---- the loaded node stands out from its idle peers ----
    wait_for(
        Duration::from_secs(60),
        "the host-comparison alert for the busy node",
        || {
            hooks
                .has("NodeUnlikeItsPeers", &node(BUSY), "firing")
                .then_some(())
        },
    );
    eprintln!("host comparison fired after {:?}", started.elapsed());

    // ---- faults: node2's cable is cut, node3's agent is killed ----
    let cut_name = node(CUT);
    let cut_host = nodes[CUT - 1].host.clone();
    let cut_selector = format!(r#"machine_cpu_cores{{node="{cut_name}"}}"#);
    let failed_before = metric_value(
        &nodes[CUT - 1].metrics(),
        "osprey_agent_remote_write_failed_attempts_total",
        &[],
    )
    .unwrap_or(0.0);
    let seen_hooks = hooks.count();
    let t_down = now_ms();
    lab.link_down(&cut_host);
    // ChildGuard's drop is a SIGKILL.
    drop(nodes[KILLED - 1].agent.take());
    let outage_lines: Vec<String> = (0..20)
        .map(|i| format!("mnoutage {cut_name} seq={i:02}"))
        .collect();
    append(&nodes[CUT - 1].log_file(), &outage_lines);
    wait_for(
        Duration::from_secs(45),
        "absence alerts for the cut node and the killed agent",
        || {
            (hooks.has_since(seen_hooks, "NodeSilent", &node(CUT), "firing")
                && hooks.has_since(seen_hooks, "NodeSilent", &node(KILLED), "firing"))
            .then_some(())
        },
    );
    // Nothing of the cut node crossed while its cable was out.
    let last_before_up = *api.sample_times(&cut_selector, 120).last().unwrap();
    assert!(
        last_before_up <= t_down + 2 * INTERVAL_MS,
        "samples of the cut node arrived during the outage ({last_before_up} vs cut at {t_down})"
    );
    assert!(
        api.log_lines("mnoutage", t_down - 60_000).is_empty(),
        "log lines crossed a cut cable"
    );
    let others_silent: Vec<_> = hooks.alerts()[seen_hooks..]
        .iter()
        .filter(|(a, n, s)| {
            a == "NodeSilent" && s == "firing" && n != &node(CUT) && n != &node(KILLED)
        })
        .cloned()
        .collect();
    assert!(
        others_silent.is_empty(),
        "healthy nodes called silent: {others_silent:?}"
    );

    // ---- recovery ----
    let seen_hooks = hooks.count();
    lab.link_up(&cut_host);
    let t_up = now_ms();
    nodes[KILLED - 1].start_agent(&artifacts, 2);
    wait_for(
        Duration::from_secs(45),
        "absence alerts to resolve for both nodes",
        || {
            (hooks.has_since(seen_hooks, "NodeSilent", &node(CUT), "resolved")
                && hooks.has_since(seen_hooks, "NodeSilent", &node(KILLED), "resolved"))
            .then_some(())
        },
    );
    let cut = &nodes[CUT - 1];
    // The cut node's queue drains: its samples reach past the outage.
    wait_for(Duration::from_secs(45), "the cut node's backlog", || {
        let m = cut.metrics();
        let queued = metric_value(&m, "osprey_agent_remote_write_queue_batches", &[])?;
        let last = *api.sample_times(&cut_selector, 300).last()?;
        (queued == 0.0 && last > t_up + 2 * INTERVAL_MS).then_some(())
    });
    let range_s = (now_ms() - t_down) / 1000 + 10;
    let times = api.sample_times(&cut_selector, range_s);
    let window: Vec<i64> = times
        .iter()
        .copied()
        .filter(|t| *t >= t_down - 3 * INTERVAL_MS && *t <= t_up + 3 * INTERVAL_MS)
        .collect();
    assert!(
        window.windows(2).all(|w| w[0] < w[1]),
        "each collection once, in order: {window:?}"
    );
    let span = window.last().unwrap() - window.first().unwrap();
    assert!(
        span >= t_up - t_down + 4 * INTERVAL_MS,
        "the window around the outage ({}..{}) is covered: {window:?}",
        t_down,
        t_up
    );
    let widest = window.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        widest < 2 * INTERVAL_MS,
        "no collection tick missing around the outage (widest gap {widest} ms): {window:?}"
    );
    let ticks = (span + INTERVAL_MS / 2) / INTERVAL_MS + 1;
    assert!(
        (window.len() as i64 - ticks).abs() <= 1,
        "{} samples for {ticks} ticks of the grid: {window:?}",
        window.len()
    );
    // The same, counted against the agent's own tally of collections
    // (independent of scheduling jitter): every collection it made up to
    // now is stored, once.
    let collections = || {
        metric_value(
            &nodes[CUT - 1].metrics(),
            "osprey_agent_collection_duration_seconds_count",
            &[],
        )
        .expect("the agent counts its collections") as usize
    };
    let made = collections();
    let stored = wait_for(
        Duration::from_secs(20),
        "every collection of the cut node stored",
        || {
            let n = api.sample_times(&cut_selector, 600).len();
            (n >= made).then_some(n)
        },
    );
    let made_after = collections();
    assert!(
        stored <= made_after,
        "{stored} samples stored for {made_after} collections"
    );
    eprintln!(
        "{cut_name}: cable out for {} ms; {} samples around it, widest gap {widest} ms",
        t_up - t_down,
        window.len()
    );
    let m = cut.metrics();
    assert_eq!(
        metric_value(&m, "osprey_agent_remote_write_dropped_samples_total", &[]),
        Some(0.0),
        "the cut node's agent dropped samples"
    );
    let failed_after =
        metric_value(&m, "osprey_agent_remote_write_failed_attempts_total", &[]).unwrap();
    assert!(
        failed_after > failed_before,
        "the cut node's agent saw the outage ({failed_before} → {failed_after} failed attempts)"
    );
    // Log lines written during the outage arrive, each once.
    let lines = wait_for(Duration::from_secs(30), "the outage's log lines", || {
        let l = api.log_lines("mnoutage", t_down - 60_000);
        (l.len() >= outage_lines.len()).then_some(l)
    });
    let mut got: Vec<String> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert_eq!(got, outage_lines, "each outage line exactly once");
    assert!(lines.iter().all(|l| l["node"] == cut_name.as_str()));

    // The killed node's series go on after the restart.
    let killed_selector = format!(r#"machine_cpu_cores{{node="{}"}}"#, node(KILLED));
    wait_for(
        Duration::from_secs(30),
        "the restarted node's samples",
        || {
            let last = *api.sample_times(&killed_selector, 60).last()?;
            (last > t_up).then_some(())
        },
    );

    // ---- the host comparison named the loaded node only ----
    let compared: Vec<String> = hooks
        .alerts()
        .into_iter()
        .filter(|(a, _, s)| a == "NodeUnlikeItsPeers" && s == "firing")
        .map(|(_, n, _)| n)
        .collect();
    assert!(
        !compared.is_empty() && compared.iter().all(|n| n == &node(BUSY)),
        "host comparison named {compared:?}, expected only {}",
        node(BUSY)
    );
    let firing = get_json(&format!("{}/api/v1/alerts", api.base));
    let now_firing: Vec<(String, String)> = firing["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                a["labels"]["node"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        now_firing,
        [("NodeUnlikeItsPeers".to_string(), node(BUSY))],
        "firing at the end"
    );
    // Every node is still listed.
    let v = get_json(&format!("{}/api/v1/model/nodes/", api.base));
    assert_eq!(v.as_array().unwrap().len(), NODES, "{v}");
    eprintln!("multinode test done in {:?}", started.elapsed());
}

/// The harness itself: processes run inside their host's namespace, and
/// nothing is left behind, neither by a dropped lab nor by a killed run.
#[test]
fn the_harness_leaves_nothing_behind_even_after_a_killed_run() {
    use std::os::unix::fs::MetadataExt;
    let artifacts = artifact_dir("multinode-harness");
    // A lab of a run that was killed: named after a pid that is gone.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let stale = format!("osp-{dead_pid}-0badcafe-bridge");
    common::netns::ip(&["netns", "add", &stale]);
    let stale_path = Path::new("/run/netns").join(&stale);
    assert!(stale_path.exists());

    let mut lab = Lab::new();
    assert!(!stale_path.exists(), "the stale lab {stale} was removed");
    let a = lab.add_host("a");
    let b = lab.add_host("b");
    assert_eq!(a.addr.octets(), [10, 77, 0, 1]);
    assert_eq!(b.addr.octets(), [10, 77, 0, 2]);
    // A process started in host `a` lives in its namespace.
    let mut cmd = a.ns.command("sleep");
    cmd.arg("600");
    let sleeper = ChildGuard::spawn(cmd, "sleeper", &artifacts);
    let inode = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let proc_ns = Path::new("/proc")
        .join(sleeper.pid().to_string())
        .join("ns/net");
    wait_for(
        Duration::from_secs(5),
        "the sleeper to enter host a",
        || (inode(&proc_ns) == inode(&a.ns.path())).then_some(()),
    );
    // b reaches a over the bridge, and not while a's cable is out.
    let listener =
        a.ns.run(|| std::net::TcpListener::bind("0.0.0.0:0").unwrap());
    let target = SocketAddr::from((a.addr, listener.local_addr().unwrap().port()));
    let connect =
        move || std::net::TcpStream::connect_timeout(&target, Duration::from_millis(500)).is_ok();
    assert!(b.ns.run(connect), "b reaches a");
    lab.link_down(&a);
    assert!(!b.ns.run(connect), "a's cable is out");
    lab.link_up(&a);
    wait_for(Duration::from_secs(10), "a reachable again", || {
        b.ns.run(connect).then_some(())
    });

    let names: Vec<String> = vec![a.ns.name.clone(), b.ns.name.clone()];
    let pid = sleeper.pid();
    std::mem::forget(sleeper); // the lab's drop must kill it
    drop(lab);
    for n in &names {
        assert!(!Path::new("/run/netns").join(n).exists(), "{n} was deleted");
    }
    wait_for(Duration::from_secs(5), "the sleeper to die", || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Killed: gone, or a zombie until this process reaps it.
        (stat.is_empty() || stat.contains(") Z")).then_some(())
    });
    // SAFETY: reaping our own child.
    unsafe {
        libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
    }
}
