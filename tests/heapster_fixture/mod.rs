//! Synthetic cluster data for the Heapster API tests: 2 nodes, 2
//! namespaces, 3 pods, containers with known counters (one counter drop
//! inside a series, one container restarted under a new cgroup), a pod
//! sandbox carrying the pod network, system containers and machine facts.
//! The same structures give the expected values.

#![allow(dead_code)]

use std::ops::Range;

use osprey_collector::ship::remote_write::{Sample, TimeSeries, WriteRequest, encode_snappy};

/// Collection interval of the fixture.
pub const STEP_MS: i64 = 10_000;
/// Collections per node.
pub const TICKS: usize = 25;
/// Node 2 collects this long after node 1 in every interval.
pub const N2_OFFSET_MS: i64 = 3_000;
/// The tick at which web-1/nginx's CPU counter drops.
pub const DROP_TICK: usize = 12;
/// The tick at which web-1/sidecar restarts under a new cgroup.
pub const RESTART_TICK: usize = 10;

/// A pod UID for the fixture's pods.
pub fn uid(pod: &str) -> String {
    let h = pod
        .bytes()
        .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
    format!("{h:08x}-0000-4000-8000-{:012x}", h as u64 * 3)
}

/// One cgroup of the fixture and its values per tick.
#[derive(Debug, Clone)]
pub struct Cg {
    pub node: &'static str,
    pub id: String,
    pub namespace: &'static str,
    pub pod: &'static str,
    pub container: &'static str,
    pub name: &'static str,
    pub image: &'static str,
    pub ticks: Range<usize>,
    pub start_s: f64,
    /// CPU seconds counter, per tick of `ticks`.
    pub cpu: Vec<f64>,
    pub mem: Vec<f64>,
    pub working_set: Vec<f64>,
    /// (interface, rx bytes counter) — only for network-carrying cgroups.
    pub rx: Vec<(&'static str, Vec<f64>)>,
    /// Filesystem usage on /dev/sda1.
    pub fs_usage: Option<Vec<f64>>,
    /// Bytes available on /dev/sda1 (`container_fs_available_bytes`).
    pub fs_available: Option<Vec<f64>>,
    /// Kubelet log bytes (`container_logs_usage_bytes`).
    pub logs: Option<Vec<f64>>,
    /// CPU load in milliloads (`container_cpu_load_average_10s`).
    pub load: Option<Vec<f64>>,
    pub cpu_quota: Option<f64>,
    pub cpu_shares: f64,
    pub mem_limit: f64,
    pub labels: Vec<(&'static str, &'static str)>,
}

impl Cg {
    /// The value index of tick `k`, when the cgroup reported then.
    pub fn at(&self, k: usize) -> Option<usize> {
        self.ticks.contains(&k).then(|| k - self.ticks.start)
    }
}

/// A container's restart count per tick, as kube-state-metrics' series
/// from the agent of `node` carries it.
#[derive(Debug, Clone)]
pub struct Restarts {
    pub node: &'static str,
    pub namespace: &'static str,
    pub pod: &'static str,
    pub container: &'static str,
    pub counts: Vec<f64>,
}

/// The fixture: its time origin and cgroups.
pub struct Fixture {
    /// Tick 0 of node 1 (ms, on the 10 s grid).
    pub t0: i64,
    pub cgroups: Vec<Cg>,
    pub machines: Vec<(&'static str, f64, f64, &'static str)>,
    pub restarts: Vec<Restarts>,
    /// (node reporting it, namespace, uid).
    pub namespaces: Vec<(&'static str, &'static str, &'static str)>,
    /// Ephemeral storage (node, namespace, pod, container, request, limit)
    /// in the pod specs, as kube-state-metrics' series carry them (only
    /// those set).
    pub ephemeral_spec: Vec<EphemeralSpec>,
    /// The `Node` objects' figures the agent ships with the API server
    /// source (`kube_node_status_capacity|allocatable`): n2 only, so n1
    /// shows the fallback to the machine's figures.
    pub node_status: Vec<NodeStatus>,
    /// Each node's kubelet root filesystem: device, size, used bytes per
    /// tick (`node_ephemeral_storage_capacity|usage_bytes`).
    pub kubelet_fs: Vec<(&'static str, &'static str, f64, Vec<f64>)>,
}

/// One `kube_node_status_capacity` or `..._allocatable` series.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub node: &'static str,
    pub allocatable: bool,
    pub resource: &'static str,
    pub unit: &'static str,
    pub value: f64,
}

/// One container's ephemeral storage request and limit.
#[derive(Debug, Clone)]
pub struct EphemeralSpec {
    pub node: &'static str,
    pub namespace: &'static str,
    pub pod: &'static str,
    pub container: &'static str,
    pub request: Option<f64>,
    pub limit: Option<f64>,
}

/// The namespace UIDs of the fixture.
pub const SHOP_UID: &str = "9b1c7e2a-f3c1-11e8-9d4e-42010a800002";
pub const DATA_UID: &str = "0d5e2b11-3c4a-4f1e-8a77-5f0c2d9e6b13";

fn counter(ticks: &Range<usize>, base: f64, per_tick: f64, seed: usize) -> Vec<f64> {
    let mut v = base;
    ticks
        .clone()
        .map(|k| {
            v += per_tick + ((k + seed) % 3) as f64 * per_tick / 4.0;
            v
        })
        .collect()
}

fn gauge(ticks: &Range<usize>, base: f64, step: f64) -> Vec<f64> {
    ticks
        .clone()
        .map(|k| base + (k % 5) as f64 * step)
        .collect()
}

impl Fixture {
    /// Builds the fixture with tick 0 at `t0` (a multiple of 10 s).
    pub fn new(t0: i64) -> Fixture {
        assert_eq!(t0 % STEP_MS, 0);
        let all = 0..TICKS;
        let start_s = (t0 / 1000 - 3600) as f64;
        let pod_id = |pod: &str, c: &str| format!("/kubepods/burstable/pod{}/{c}", uid(pod));
        let mk =
            |node, id: String, ns, pod, container, name, ticks: Range<usize>, seed: usize| Cg {
                node,
                id,
                namespace: ns,
                pod,
                container,
                name,
                image: if container.is_empty() {
                    ""
                } else {
                    "registry/app:1"
                },
                start_s: start_s + seed as f64 * 60.0,
                cpu: counter(&ticks, 100.0 * seed as f64, 0.25 * seed as f64, seed),
                mem: gauge(&ticks, 1_000_000.0 * seed as f64, 4096.0),
                working_set: gauge(&ticks, 800_000.0 * seed as f64, 1024.0),
                rx: vec![],
                fs_usage: None,
                fs_available: None,
                logs: None,
                load: None,
                cpu_quota: None,
                cpu_shares: 2.0,
                mem_limit: 0.0,
                labels: vec![],
                ticks,
            };
        let mut cgroups = Vec::new();
        // Node roots.
        let mut root1 = mk("n1", "/".into(), "", "", "", "", all.clone(), 7);
        root1.rx = vec![
            ("eth0", counter(&all, 5e6, 20_000.0, 1)),
            ("lo", counter(&all, 1e5, 1_000.0, 2)),
        ];
        root1.fs_usage = Some(gauge(&all, 4e9, 65_536.0));
        root1.fs_available = Some(gauge(&all, 6e9, -65_536.0));
        root1.load = Some(gauge(&all, 1500.0, 250.0));
        cgroups.push(root1);
        let mut root2 = mk("n2", "/".into(), "", "", "", "", all.clone(), 9);
        root2.rx = vec![("eth0", counter(&all, 7e6, 30_000.0, 0))];
        cgroups.push(root2);
        // System containers.
        cgroups.push(mk(
            "n1",
            "/system.slice/docker.service".into(),
            "",
            "",
            "",
            "",
            all.clone(),
            2,
        ));
        cgroups.push(mk(
            "n2",
            "/system.slice/kubelet.service".into(),
            "",
            "",
            "",
            "",
            all.clone(),
            3,
        ));
        // QoS slice: part of no entity.
        cgroups.push(mk(
            "n1",
            "/kubepods/burstable".into(),
            "",
            "",
            "",
            "",
            all.clone(),
            5,
        ));
        // shop/web-1 on n1: nginx (counter drop), sidecar (restarted), sandbox.
        let mut nginx = mk(
            "n1",
            pod_id("web-1", "nginx1"),
            "shop",
            "web-1",
            "nginx",
            "k8s_nginx",
            all.clone(),
            4,
        );
        nginx.cpu[DROP_TICK] = 0.5;
        for k in DROP_TICK + 1..TICKS {
            nginx.cpu[k] = nginx.cpu[k - 1] + 0.8;
        }
        nginx.cpu_quota = Some(50_000.0);
        nginx.cpu_shares = 256.0;
        nginx.mem_limit = 134_217_728.0;
        nginx.fs_usage = Some(gauge(&all, 2e6, 4096.0));
        nginx.fs_available = Some(gauge(&all, 6e9, -65_536.0));
        nginx.logs = Some(gauge(&all, 12_288.0, 4096.0));
        nginx.load = Some(gauge(&all, 2000.0, 500.0));
        nginx.labels = vec![("app", "web"), ("io_kubernetes_pod_name", "web-1")];
        cgroups.push(nginx);
        let mut side_a = mk(
            "n1",
            pod_id("web-1", "sidecar-a"),
            "shop",
            "web-1",
            "sidecar",
            "k8s_sidecar",
            0..RESTART_TICK,
            1,
        );
        side_a.cpu_shares = 102.0;
        cgroups.push(side_a);
        let mut side_b = mk(
            "n1",
            pod_id("web-1", "sidecar-b"),
            "shop",
            "web-1",
            "sidecar",
            "k8s_sidecar",
            RESTART_TICK..TICKS,
            1,
        );
        side_b.cpu = counter(&(RESTART_TICK..TICKS), 0.0, 0.3, 0);
        side_b.start_s = (t0 / 1000) as f64 + RESTART_TICK as f64 * 10.0 - 5.0;
        side_b.cpu_shares = 102.0;
        side_b.logs = Some(gauge(&(RESTART_TICK..TICKS), 8192.0, 0.0));
        side_b.load = Some(gauge(&(RESTART_TICK..TICKS), 100.0, 100.0));
        cgroups.push(side_b);
        let mut sandbox = mk(
            "n1",
            pod_id("web-1", "sandbox"),
            "shop",
            "web-1",
            "",
            "k8s_POD",
            all.clone(),
            1,
        );
        sandbox.start_s = start_s;
        sandbox.rx = vec![("eth0", counter(&all, 1e6, 9_000.0, 1))];
        cgroups.push(sandbox);
        // shop/web-2 on n2.
        let mut nginx2 = mk(
            "n2",
            pod_id("web-2", "nginx2"),
            "shop",
            "web-2",
            "nginx",
            "k8s_nginx",
            all.clone(),
            6,
        );
        nginx2.cpu_quota = Some(25_000.0);
        nginx2.cpu_shares = 512.0;
        nginx2.mem_limit = 268_435_456.0;
        cgroups.push(nginx2);
        // data/db-0 on n2.
        let mut pg = mk(
            "n2",
            pod_id("db-0", "pg"),
            "data",
            "db-0",
            "postgres",
            "k8s_postgres",
            all.clone(),
            8,
        );
        pg.cpu_shares = 1024.0;
        pg.mem_limit = 1_073_741_824.0;
        cgroups.push(pg);
        let restarts = |node, namespace, pod, container, f: &dyn Fn(usize) -> f64| Restarts {
            node,
            namespace,
            pod,
            container,
            counts: all.clone().map(f).collect(),
        };
        let restarts = vec![
            restarts("n1", "shop", "web-1", "nginx", &|_| 0.0),
            restarts("n1", "shop", "web-1", "sidecar", &|k| {
                (k >= RESTART_TICK) as u8 as f64
            }),
            restarts("n2", "shop", "web-2", "nginx", &|_| 3.0),
            restarts("n2", "data", "db-0", "postgres", &|_| 0.0),
        ];
        Fixture {
            t0,
            cgroups,
            machines: vec![("n1", 4.0, 8e9, "uuid-n1"), ("n2", 8.0, 16e9, "uuid-n2")],
            restarts,
            namespaces: vec![
                ("n1", "shop", SHOP_UID),
                ("n2", "shop", SHOP_UID),
                ("n2", "data", DATA_UID),
            ],
            node_status: [
                (false, "cpu", "core", 8.0),
                (false, "memory", "byte", 16e9),
                (false, "ephemeral_storage", "byte", 200e9),
                (false, "pods", "integer", 110.0),
                (true, "cpu", "core", 7.91),
                (true, "memory", "byte", 15e9),
                (true, "ephemeral_storage", "byte", 180e9),
                (true, "pods", "integer", 110.0),
            ]
            .into_iter()
            .map(|(allocatable, resource, unit, value)| NodeStatus {
                node: "n2",
                allocatable,
                resource,
                unit,
                value,
            })
            .collect(),
            kubelet_fs: vec![
                ("n1", "/dev/sda1", 100e9, gauge(&all, 40e9, 1e6)),
                ("n2", "/dev/nvme0n1p1", 200e9, gauge(&all, 90e9, 2e6)),
            ],
            ephemeral_spec: vec![
                EphemeralSpec {
                    node: "n1",
                    namespace: "shop",
                    pod: "web-1",
                    container: "nginx",
                    request: Some(1_073_741_824.0),
                    limit: Some(2_147_483_648.0),
                },
                EphemeralSpec {
                    node: "n1",
                    namespace: "shop",
                    pod: "web-1",
                    container: "sidecar",
                    request: Some(104_857_600.0),
                    limit: None,
                },
                EphemeralSpec {
                    node: "n2",
                    namespace: "shop",
                    pod: "web-2",
                    container: "nginx",
                    request: Some(536_870_912.0),
                    limit: None,
                },
            ],
        }
    }

    /// Timestamp of tick `k` on `node`.
    pub fn t(&self, node: &str, k: usize) -> i64 {
        self.t0 + k as i64 * STEP_MS + if node == "n2" { N2_OFFSET_MS } else { 0 }
    }

    /// The remote-write request carrying everything.
    pub fn write_request(&self) -> WriteRequest {
        self.write_request_where(&|_, _| true)
    }

    /// The remote-write request carrying the samples of the (node, tick)
    /// pairs `keep` accepts.
    pub fn write_request_where(&self, keep: &dyn Fn(&str, usize) -> bool) -> WriteRequest {
        let mut ts = Vec::new();
        for c in &self.cgroups {
            let mut base: Vec<(String, String)> = vec![
                ("job".into(), "osprey-agent".into()),
                ("node".into(), c.node.into()),
                ("id".into(), c.id.clone()),
                ("name".into(), c.name.into()),
                ("namespace".into(), c.namespace.into()),
                ("pod".into(), c.pod.into()),
                ("container".into(), c.container.into()),
                ("image".into(), c.image.into()),
            ];
            for (k, v) in &c.labels {
                base.push((format!("container_label_{k}"), v.to_string()));
            }
            let series = |name: &str, extra: &[(&str, &str)], values: &dyn Fn(usize) -> f64| {
                let mut labels = base.clone();
                labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
                let samples = c
                    .ticks
                    .clone()
                    .filter(|k| keep(c.node, *k))
                    .map(|k| Sample::new(self.t(c.node, k), values(k - c.ticks.start)))
                    .collect();
                TimeSeries::new(name, labels, samples)
            };
            ts.push(series("container_start_time_seconds", &[], &|_| c.start_s));
            ts.push(series(
                "container_cpu_usage_seconds_total",
                &[("cpu", "total")],
                &|i| c.cpu[i],
            ));
            ts.push(series("container_memory_usage_bytes", &[], &|i| c.mem[i]));
            ts.push(series("container_memory_working_set_bytes", &[], &|i| {
                c.working_set[i]
            }));
            ts.push(series("container_spec_cpu_period", &[], &|_| 100_000.0));
            ts.push(series("container_spec_cpu_shares", &[], &|_| c.cpu_shares));
            ts.push(series("container_spec_memory_limit_bytes", &[], &|_| {
                c.mem_limit
            }));
            ts.push(series(
                "container_spec_memory_reservation_limit_bytes",
                &[],
                &|_| 0.0,
            ));
            if let Some(q) = c.cpu_quota {
                ts.push(series("container_spec_cpu_quota", &[], &|_| q));
            }
            for (iface, rx) in &c.rx {
                ts.push(series(
                    "container_network_receive_bytes_total",
                    &[("interface", iface)],
                    &|i| rx[i],
                ));
            }
            if let Some(fs) = &c.fs_usage {
                ts.push(series(
                    "container_fs_usage_bytes",
                    &[("device", "/dev/sda1")],
                    &|i| fs[i],
                ));
            }
            if let Some(fs) = &c.fs_available {
                ts.push(series(
                    "container_fs_available_bytes",
                    &[("device", "/dev/sda1")],
                    &|i| fs[i],
                ));
            }
            if let Some(logs) = &c.logs {
                ts.push(series("container_logs_usage_bytes", &[], &|i| logs[i]));
            }
            if let Some(load) = &c.load {
                ts.push(series("container_cpu_load_average_10s", &[], &|i| load[i]));
            }
        }
        // What the agents ship from the pod lists (kube-state-metrics'
        // names and labels, plus the shipper's `job` and `node`).
        for r in &self.restarts {
            let labels = [
                ("job", "osprey-agent"),
                ("node", r.node),
                ("namespace", r.namespace),
                ("pod", r.pod),
                ("uid", &uid(r.pod)),
                ("container", r.container),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()));
            let samples = (0..TICKS)
                .filter(|k| keep(r.node, *k))
                .map(|k| Sample::new(self.t(r.node, k), r.counts[k]))
                .collect();
            ts.push(TimeSeries::new(
                "kube_pod_container_status_restarts_total",
                labels,
                samples,
            ));
        }
        for e in &self.ephemeral_spec {
            for (metric, value) in [
                ("kube_pod_container_resource_requests", e.request),
                ("kube_pod_container_resource_limits", e.limit),
            ] {
                let Some(value) = value else { continue };
                let labels = [
                    ("job", "osprey-agent"),
                    ("node", e.node),
                    ("namespace", e.namespace),
                    ("pod", e.pod),
                    ("uid", &uid(e.pod)),
                    ("container", e.container),
                    ("resource", "ephemeral_storage"),
                    ("unit", "byte"),
                ]
                .map(|(k, v)| (k.to_string(), v.to_string()));
                let samples = (0..TICKS)
                    .filter(|k| keep(e.node, *k))
                    .map(|k| Sample::new(self.t(e.node, k), value))
                    .collect();
                ts.push(TimeSeries::new(metric, labels, samples));
            }
        }
        for (node, ns, ns_uid) in &self.namespaces {
            let labels = [
                ("job", "osprey-agent"),
                ("node", *node),
                ("namespace", *ns),
                ("uid", *ns_uid),
            ];
            let created = (self.t0 / 1000 - 86_400) as f64;
            let samples = (0..TICKS)
                .filter(|k| keep(node, *k))
                .map(|k| Sample::new(self.t(node, k), created))
                .collect();
            ts.push(TimeSeries::new("kube_namespace_created", labels, samples));
        }
        for n in &self.node_status {
            let labels = [
                ("job", "osprey-agent"),
                ("node", n.node),
                ("resource", n.resource),
                ("unit", n.unit),
            ];
            let metric = if n.allocatable {
                "kube_node_status_allocatable"
            } else {
                "kube_node_status_capacity"
            };
            let samples = (0..TICKS)
                .filter(|k| keep(n.node, *k))
                .map(|k| Sample::new(self.t(n.node, k), n.value))
                .collect();
            ts.push(TimeSeries::new(metric, labels, samples));
        }
        for (node, device, size, used) in &self.kubelet_fs {
            let labels = [
                ("job", "osprey-agent"),
                ("node", *node),
                ("machine_id", "m"),
                ("device", *device),
            ];
            let at = |v: &dyn Fn(usize) -> f64| {
                (0..TICKS)
                    .filter(|k| keep(node, *k))
                    .map(|k| Sample::new(self.t(node, k), v(k)))
                    .collect()
            };
            ts.push(TimeSeries::new(
                "node_ephemeral_storage_capacity_bytes",
                labels,
                at(&|_| *size),
            ));
            ts.push(TimeSeries::new(
                "node_ephemeral_storage_usage_bytes",
                labels,
                at(&|k| used[k]),
            ));
        }
        for (node, cores, mem, uuid) in &self.machines {
            let labels = [
                ("node", *node),
                ("job", "osprey-agent"),
                ("system_uuid", *uuid),
                ("machine_id", "m"),
            ];
            let samples = |v: f64| {
                (0..TICKS)
                    .filter(|k| keep(node, *k))
                    .map(|k| Sample::new(self.t(node, k), v))
                    .collect()
            };
            ts.push(TimeSeries::new(
                "machine_cpu_cores",
                labels,
                samples(*cores),
            ));
            ts.push(TimeSeries::new(
                "machine_memory_bytes",
                labels,
                samples(*mem),
            ));
        }
        ts.retain(|s| !s.samples.is_empty());
        WriteRequest {
            timeseries: ts,
            metadata: vec![],
        }
    }

    /// The snappy-compressed body.
    pub fn body(&self) -> Vec<u8> {
        encode_snappy(&self.write_request()).expect("encodable")
    }

    /// The snappy-compressed body of the samples `keep` accepts.
    pub fn body_where(&self, keep: &dyn Fn(&str, usize) -> bool) -> Vec<u8> {
        encode_snappy(&self.write_request_where(keep)).expect("encodable")
    }

    /// The cgroups matching a predicate.
    pub fn find(&self, f: impl Fn(&Cg) -> bool) -> Vec<&Cg> {
        self.cgroups.iter().filter(|c| f(c)).collect()
    }

    /// A pod container's incarnations.
    pub fn container(&self, ns: &str, pod: &str, c: &str) -> Vec<&Cg> {
        self.find(|g| g.namespace == ns && g.pod == pod && g.container == c)
    }

    /// The grid bucket of tick `k` (node 2's offset floors away).
    pub fn bucket(&self, k: usize) -> i64 {
        self.t0 + k as i64 * STEP_MS
    }
}

/// Heapster's millicore rate of a CPU counter between ticks `k-1` and `k`
/// of one cgroup (a drop counts the new value as the increase).
pub fn cpu_rate(c: &Cg, k: usize) -> Option<f64> {
    let (i, j) = (c.at(k.checked_sub(1)?)?, c.at(k)?);
    let inc = if c.cpu[j] >= c.cpu[i] {
        c.cpu[j] - c.cpu[i]
    } else {
        c.cpu[j]
    };
    Some((inc / 10.0 * 1000.0).trunc())
}

/// Per-second rate of a byte counter between ticks.
pub fn byte_rate(v: &[f64], i: usize) -> Option<f64> {
    let prev = v.get(i.checked_sub(1)?)?;
    let cur = v.get(i)?;
    Some(if cur >= prev { cur - prev } else { *cur } / 10.0)
}
