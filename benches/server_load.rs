//! How many nodes one server holds: N simulated agents, each with 100
//! containers of the agent's metric set (about 45 series each, so ~4 500
//! series per node), pushing one remote-write request every 10 s,
//! staggered, to one `osprey server` over loopback. For each N it reports
//! push latency (p50, p99, max), the server's CPU (share of one core) and
//! RSS. The load generator runs in this process on the same 2-core
//! machine, as the issue asks.
//!
//! Run: `cargo bench --bench server_load` (`OSPREY_BENCH_NODES=50,100,200`
//! and `OSPREY_BENCH_SECONDS=30` to change the steps).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use osprey_collector::ship::remote_write::{
    Label, Sample, TimeSeries, WriteRequest, encode_snappy,
};

const CONTAINERS: usize = 100;
const INTERVAL: Duration = Duration::from_secs(10);

/// The per-container series of the agent: (name, counter?, extra labels).
const METRICS: &[(&str, bool)] = &[
    ("container_cpu_usage_seconds_total", true),
    ("container_cpu_user_seconds_total", true),
    ("container_cpu_system_seconds_total", true),
    ("container_cpu_cfs_periods_total", true),
    ("container_cpu_cfs_throttled_periods_total", true),
    ("container_cpu_cfs_throttled_seconds_total", true),
    ("container_memory_usage_bytes", false),
    ("container_memory_working_set_bytes", false),
    ("container_memory_rss", false),
    ("container_memory_cache", false),
    ("container_memory_swap", false),
    ("container_memory_mapped_file", false),
    ("container_memory_kernel_usage", false),
    ("container_memory_max_usage_bytes", false),
    ("container_memory_failcnt", false),
    ("container_memory_total_active_file_bytes", false),
    ("container_memory_total_inactive_file_bytes", false),
    ("container_oom_events_total", true),
    ("container_spec_memory_limit_bytes", false),
    ("container_spec_cpu_quota", false),
    ("container_spec_cpu_period", false),
    ("container_spec_cpu_shares", false),
    ("container_start_time_seconds", false),
    ("container_last_seen", false),
    ("container_threads", false),
    ("container_threads_max", false),
    ("container_fs_reads_bytes_total", true),
    ("container_fs_writes_bytes_total", true),
    ("container_fs_reads_total", true),
    ("container_fs_writes_total", true),
    ("container_fs_usage_bytes", false),
    ("container_fs_limit_bytes", false),
    ("container_network_receive_bytes_total", true),
    ("container_network_transmit_bytes_total", true),
    ("container_network_receive_packets_total", true),
    ("container_network_transmit_packets_total", true),
    ("container_network_receive_errors_total", true),
    ("container_network_transmit_errors_total", true),
    ("container_network_receive_packets_dropped_total", true),
    ("container_network_transmit_packets_dropped_total", true),
    ("container_pressure_cpu_waiting_seconds_total", true),
    ("container_pressure_memory_waiting_seconds_total", true),
    ("container_pressure_io_waiting_seconds_total", true),
    ("container_memory_failures_total", true),
    ("container_blkio_device_usage_total", true),
];

/// One simulated node: its series' label sets and current values.
struct Node {
    series: Vec<(Vec<Label>, bool, f64)>,
}

impl Node {
    fn new(index: usize) -> Self {
        let node = format!("node-{index:04}");
        let mut series = Vec::new();
        for c in 0..CONTAINERS {
            let pod = format!("app-{}-{c:03}", index % 17);
            let id = format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{index:04}_{c:04}.slice/cri-containerd-{:064x}.scope",
                index * 1000 + c
            );
            for (name, counter) in METRICS {
                let mut labels = vec![
                    Label {
                        name: "__name__".into(),
                        value: name.to_string(),
                    },
                    Label {
                        name: "container".into(),
                        value: format!("c{}", c % 3),
                    },
                    Label {
                        name: "id".into(),
                        value: id.clone(),
                    },
                    Label {
                        name: "image".into(),
                        value: format!("registry.example/app:{}", c % 5),
                    },
                    Label {
                        name: "job".into(),
                        value: "osprey-agent".into(),
                    },
                    Label {
                        name: "name".into(),
                        value: format!("{:064x}", index * 1000 + c),
                    },
                    Label {
                        name: "namespace".into(),
                        value: format!("team-{}", c % 8),
                    },
                    Label {
                        name: "node".into(),
                        value: node.clone(),
                    },
                    Label {
                        name: "pod".into(),
                        value: pod.clone(),
                    },
                ];
                labels.sort_by(|a, b| a.name.cmp(&b.name));
                series.push((labels, *counter, (c * 1000) as f64));
            }
        }
        Self { series }
    }

    /// The next collection's request body.
    fn body(&mut self, timestamp: i64, rng: &mut u64) -> Vec<u8> {
        let timeseries = self
            .series
            .iter_mut()
            .map(|(labels, counter, value)| {
                *rng ^= *rng << 13;
                *rng ^= *rng >> 7;
                *rng ^= *rng << 17;
                let noise = (*rng % 1000) as f64;
                if *counter {
                    *value += noise;
                } else {
                    *value = 1e6 + noise;
                }
                TimeSeries {
                    labels: labels.clone(),
                    samples: vec![Sample {
                        value: *value,
                        timestamp,
                    }],
                }
            })
            .collect();
        encode_snappy(&WriteRequest {
            timeseries,
            metadata: Vec::new(),
        })
        .expect("encodable")
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn proc_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / hz
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(0.0)
        / 1024.0
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let steps: Vec<usize> = std::env::var("OSPREY_BENCH_NODES")
        .unwrap_or_else(|_| "50,100,200,300,500".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let seconds: u64 = std::env::var("OSPREY_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "server load: {CONTAINERS} containers × {} series per node, one push per node every {INTERVAL:?}, {seconds} s per step",
        METRICS.len()
    );
    println!(
        "{:>6} {:>12} {:>10} {:>10} {:>10} {:>8} {:>12} {:>9}",
        "nodes", "samples/s", "p50 ms", "p99 ms", "max ms", "errors", "server %core", "RSS MiB"
    );
    for &nodes in &steps {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_osprey"))
            .args([
                "server",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.path())
            .env("OSPREY_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the server");
        let server = Server(child);
        let pid = server.0.id();
        let url = format!("http://127.0.0.1:{port}/api/v1/write");
        let ready = format!("http://127.0.0.1:{port}/readyz");
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::blocking::get(&ready)
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let (latencies, errors, samples, cpu, rss) = rt.block_on(async {
            let client = reqwest::Client::new();
            let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
            let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let samples = Arc::new(std::sync::atomic::AtomicU64::new(0));
            // Warm-up: every node's series exist before measuring.
            let mut all: Vec<Node> = (0..nodes).map(Node::new).collect();
            let mut rng = 0x9e3779b97f4a7c15u64;
            let t0 = now_ms() - 10_000;
            for n in all.iter_mut() {
                let body = n.body(t0, &mut rng);
                let _ = client
                    .post(&url)
                    .header("Content-Encoding", "snappy")
                    .header("Content-Type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await;
            }
            // Every request body is built before measuring, so the load
            // generator's encoding does not delay the requests it times.
            let slot = INTERVAL / nodes as u32;
            let ticks = (seconds / INTERVAL.as_secs()).max(1) as u32;
            let lead = Duration::from_secs(1);
            let wall0 = now_ms();
            let start_at = Instant::now();
            let mut plan = Vec::with_capacity(nodes * ticks as usize);
            for tick in 0..ticks {
                for (i, n) in all.iter_mut().enumerate() {
                    let offset = INTERVAL * tick + slot * i as u32;
                    plan.push((
                        offset,
                        n.series.len() as u64,
                        n.body(wall0 + offset.as_millis() as i64, &mut rng),
                    ));
                }
            }
            let start = Instant::now().max(start_at + lead);
            tokio::time::sleep_until(start.into()).await;
            let cpu0 = proc_cpu(pid);
            let mut tasks = Vec::with_capacity(plan.len());
            for (offset, count, body) in plan {
                tokio::time::sleep_until((start + offset).into()).await;
                let (client, url, latencies, errors, samples) = (
                    client.clone(),
                    url.clone(),
                    latencies.clone(),
                    errors.clone(),
                    samples.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let sent = Instant::now();
                    let ok = client
                        .post(&url)
                        .header("Content-Encoding", "snappy")
                        .header("Content-Type", "application/x-protobuf")
                        .body(body)
                        .send()
                        .await
                        .map(|r| r.status().is_success())
                        .unwrap_or(false);
                    latencies.lock().unwrap().push(sent.elapsed());
                    if ok {
                        samples.fetch_add(count, std::sync::atomic::Ordering::Relaxed);
                    } else {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
            let wall = start.elapsed().as_secs_f64();
            let cpu = (proc_cpu(pid) - cpu0) / wall;
            let mut l = latencies.lock().unwrap().clone();
            l.sort();
            (
                l,
                errors.load(std::sync::atomic::Ordering::Relaxed),
                samples.load(std::sync::atomic::Ordering::Relaxed) as f64 / wall,
                cpu,
                rss_mib(pid),
            )
        });
        println!(
            "{:>6} {:>12.0} {:>10.1} {:>10.1} {:>10.1} {:>8} {:>11.1}% {:>9.1}",
            nodes,
            samples,
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().unwrap().as_secs_f64() * 1e3,
            errors,
            cpu * 100.0,
            rss
        );
        drop(server);
    }
}
