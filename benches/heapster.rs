//! Heapster API benchmark: query latency of the model and export routes over
//! a generated cluster. Prints figures; asserts nothing.
//!
//! ```text
//! cargo bench --bench heapster -- [--nodes N]
//!     [--pods-per-node P] [--minutes M]
//! ```
//!
//! Data: N nodes, each with a root cgroup, 3 system containers and P pods
//! of 2 containers plus a sandbox (carrying the pod network), spread over
//! 10 namespaces; ~10 cAdvisor series per cgroup at a 10 s interval for M
//! minutes (default 15, Heapster's window). Nodes report 0–9 s apart, so
//! sums across nodes go through grid alignment.

use std::time::{Duration, Instant};

use osprey::heapster::api::{MetricQuery, export_all, metric_names, metric_result};
use osprey::heapster::model::{Entity, Inventory};
use osprey::storage::{FsyncPolicy, Labels, Sample, SeriesSamples, Storage, StorageOptions};

struct Args {
    nodes: usize,
    pods_per_node: usize,
    minutes: i64,
}

fn args() -> Args {
    let mut a = Args {
        nodes: 50,
        pods_per_node: 20,
        minutes: 15,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let next = || argv.get(i + 1).and_then(|v| v.parse::<i64>().ok());
        match argv[i].as_str() {
            "--nodes" => a.nodes = next().expect("--nodes N") as usize,
            "--pods-per-node" => a.pods_per_node = next().expect("--pods-per-node P") as usize,
            "--minutes" => a.minutes = next().expect("--minutes M"),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn cgroup_series(
    base: &[(String, String)],
    times: &[i64],
    seed: u64,
    network: bool,
) -> Vec<SeriesSamples> {
    let mut out = Vec::new();
    let mut add = |name: &str, extra: &[(&str, &str)], f: &dyn Fn(usize) -> f64| {
        let mut pairs: Vec<(String, String)> = base.to_vec();
        pairs.push(("__name__".into(), name.into()));
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        out.push(SeriesSamples {
            labels: Labels::from_pairs(pairs),
            samples: times
                .iter()
                .enumerate()
                .map(|(i, t)| Sample::new(*t, f(i)))
                .collect(),
        });
    };
    let s = seed as f64;
    add("container_start_time_seconds", &[], &|_| 1.7e9 + s);
    add(
        "container_cpu_usage_seconds_total",
        &[("cpu", "total")],
        &|i| s + i as f64 * (0.5 + (seed % 7) as f64 * 0.1),
    );
    add("container_memory_usage_bytes", &[], &|i| {
        1e7 * (1.0 + s % 13.0) + (i % 7) as f64 * 4096.0
    });
    add("container_memory_working_set_bytes", &[], &|i| {
        8e6 * (1.0 + s % 13.0) + (i % 5) as f64 * 4096.0
    });
    add("container_memory_rss", &[], &|_| 5e6);
    add("container_memory_cache", &[], &|_| 3e6);
    add("container_spec_cpu_period", &[], &|_| 100_000.0);
    add("container_spec_cpu_shares", &[], &|_| 256.0);
    add("container_spec_memory_limit_bytes", &[], &|_| 2.68e8);
    add(
        "container_spec_memory_reservation_limit_bytes",
        &[],
        &|_| 0.0,
    );
    if network {
        add(
            "container_network_receive_bytes_total",
            &[("interface", "eth0")],
            &|i| i as f64 * 1e4,
        );
        add(
            "container_network_transmit_bytes_total",
            &[("interface", "eth0")],
            &|i| i as f64 * 2e4,
        );
    }
    out
}

fn load(storage: &Storage, a: &Args, now: i64) -> (usize, usize) {
    let ticks = (a.minutes * 6) as usize;
    let t0 = (now - a.minutes * 60_000).div_euclid(10_000) * 10_000;
    let (mut series, mut samples) = (0, 0);
    for n in 0..a.nodes {
        let node = format!("node-{n:04}");
        let times: Vec<i64> = (0..ticks)
            .map(|k| t0 + k as i64 * 10_000 + (n % 10) as i64 * 1000)
            .collect();
        let label = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            let mut v = vec![
                ("node".to_string(), node.clone()),
                ("job".to_string(), "osprey-agent".to_string()),
            ];
            v.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            v
        };
        let mut batch = cgroup_series(&label(&[("id", "/")]), &times, n as u64, true);
        for unit in ["docker.service", "kubelet.service", "containerd.service"] {
            let id = format!("/system.slice/{unit}");
            batch.extend(cgroup_series(
                &label(&[("id", &id)]),
                &times,
                n as u64 + 1,
                false,
            ));
        }
        for p in 0..a.pods_per_node {
            let ns = format!("ns-{}", (n * a.pods_per_node + p) % 10);
            let pod = format!("pod-{n:04}-{p:03}");
            let uid = format!("{:08x}-0000-4000-8000-{:012x}", n, p);
            for (c, net) in [("app", false), ("sidecar", false), ("", true)] {
                let id = format!(
                    "/kubepods/burstable/pod{uid}/{}",
                    if c.is_empty() { "sandbox" } else { c }
                );
                let mut pairs = vec![
                    ("id", id.as_str()),
                    ("namespace", ns.as_str()),
                    ("pod", pod.as_str()),
                ];
                if !c.is_empty() {
                    pairs.push(("container", c));
                }
                batch.extend(cgroup_series(
                    &label(&pairs),
                    &times,
                    (n * 1000 + p) as u64,
                    net,
                ));
            }
        }
        series += batch.len();
        samples += batch.iter().map(|s| s.samples.len()).sum::<usize>();
        storage.append(&batch).expect("append");
    }
    (series, samples)
}

fn time<T>(name: &str, runs: usize, mut f: impl FnMut() -> T) -> T {
    let mut durations = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f());
        durations.push(t.elapsed());
    }
    durations.sort();
    let median: Duration = durations[runs / 2];
    println!(
        "{name:<58} median {:>9.2} ms  (min {:.2} ms, {runs} runs)",
        median.as_secs_f64() * 1e3,
        durations[0].as_secs_f64() * 1e3
    );
    last.expect("at least one run")
}

fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = StorageOptions {
        fsync: FsyncPolicy::EverySecond,
        ..StorageOptions::default()
    };
    let storage = Storage::open(dir.path(), opts).expect("open");
    let now = chrono::Utc::now().timestamp_millis();
    let t = Instant::now();
    let (series, samples) = load(&storage, &a, now);
    println!(
        "cluster: {} nodes × {} pods ({} cgroups), {series} series, {samples} samples, loaded in {:.1} s",
        a.nodes,
        a.pods_per_node,
        a.nodes * (4 + 3 * a.pods_per_node),
        t.elapsed().as_secs_f64()
    );
    let q = MetricQuery {
        start_ms: now - 15 * 60_000,
        end_ms: now,
        labels: Default::default(),
    };
    let runs = 5;
    let inv = time("inventory (nodes/namespaces/pods lists)", runs, || {
        Inventory::load(&storage, q.start_ms, q.end_ms).expect("inventory")
    });
    println!(
        "  {} nodes, {} namespaces listed",
        inv.nodes().len(),
        inv.namespaces().len()
    );
    let pod = Entity::Pod {
        namespace: "ns-1".into(),
        pod: "pod-0000-001".into(),
    };
    let container = Entity::PodContainer {
        namespace: "ns-1".into(),
        pod: "pod-0000-001".into(),
        container: "app".into(),
    };
    let node = Entity::Node {
        node: "node-0001".into(),
    };
    let ns = Entity::Namespace {
        namespace: "ns-3".into(),
    };
    for (what, entity, metric) in [
        ("pod container memory/usage", &container, "memory/usage"),
        ("pod container cpu/usage_rate", &container, "cpu/usage_rate"),
        ("pod cpu/usage_rate (Σ containers)", &pod, "cpu/usage_rate"),
        ("pod network/rx_rate", &pod, "network/rx_rate"),
        ("node cpu/usage_rate", &node, "cpu/usage_rate"),
        ("node cpu/request (Σ pods on node)", &node, "cpu/request"),
        (
            "namespace cpu/usage_rate (Σ pods, all nodes)",
            &ns,
            "cpu/usage_rate",
        ),
        (
            "cluster cpu/usage_rate (Σ nodes)",
            &Entity::Cluster,
            "cpu/usage_rate",
        ),
        (
            "cluster memory/limit (Σ every container)",
            &Entity::Cluster,
            "memory/limit",
        ),
    ] {
        let r = time(&format!("{what}, 15 min"), runs, || {
            metric_result(&storage, entity, metric, &q).expect("query")
        });
        assert!(!r.metrics.is_empty(), "{what} has data");
    }
    let pods: Vec<Entity> = inv
        .pods("ns-1")
        .into_iter()
        .take(20)
        .map(|pod| Entity::Pod {
            namespace: "ns-1".into(),
            pod,
        })
        .collect();
    time("pod-list of 20 pods cpu/usage_rate", runs, || {
        for p in &pods {
            metric_result(&storage, p, "cpu/usage_rate", &q).expect("query");
        }
    });
    time("node metric-name list", runs, || {
        metric_names(&storage, &node, q.start_ms, q.end_ms).expect("names")
    });
    let export = time("metric-export (every node, pod, container)", 1, || {
        export_all(&storage, now).expect("export")
    });
    println!("  metric-export: {} entities", export.len());
}
