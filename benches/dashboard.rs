//! The dashboard's speed in Chromium: time from navigation to every chart
//! drawn, for the overview and for a dashboard of 12 panels × 50 series ×
//! 6 h at 10 s, with 500 containers monitored (10 nodes × 50 containers,
//! 6 h of history at 10 s loaded into a real `osprey server` by
//! remote-write before measuring). Needs `/usr/bin/chromium` and
//! `npm ci` in `tests/browser` (as the browser test does).
//!
//! Each page is measured with the chart answers as JSON (`wire=json` in
//! the page URL) and in the binary format the dashboard uses, in the same
//! run; besides the time to all charts drawn it prints when the last API
//! answer arrived (`net`) and the main thread's long tasks (`longtask`).
//!
//! The dashboard is measured once more on a HiDPI screen (devicePixelRatio
//! 2), with the series one device pixel wide (the default) and one CSS
//! pixel wide (`lines=css`).
//!
//! Run: `cargo bench --bench dashboard` (`OSPREY_BENCH_RUNS=5`;
//! `OSPREY_BENCH_NODES=1` loads one node's 50 containers only;
//! `OSPREY_BENCH_HOLD=<s>` keeps the loaded server up instead of measuring;
//! `OSPREY_BENCH_SERVER=<path>` runs another `osprey` binary, e.g. an
//! older build, for an A/B under the same conditions).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use osprey_collector::ship::remote_write::{
    Label, Sample, TimeSeries, WriteRequest, encode_snappy,
};

/// Nodes loaded (`OSPREY_BENCH_NODES` lowers it: the dashboard's panels
/// are then all on the nodes there are, each still 50 series).
const NODES_DEFAULT: usize = 10;
const PER_NODE: usize = 50;
const STEP_MS: i64 = 10_000;
const HOURS: i64 = 6;

/// Container metrics: (name, is a counter).
const METRICS: &[(&str, bool)] = &[
    ("container_cpu_usage_seconds_total", true),
    ("container_memory_working_set_bytes", false),
    ("container_memory_usage_bytes", false),
    ("container_spec_memory_limit_bytes", false),
    ("container_spec_cpu_quota", false),
    ("container_spec_cpu_period", false),
    ("container_network_receive_bytes_total", true),
    ("container_network_transmit_bytes_total", true),
    ("container_fs_usage_bytes", false),
];

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn label(n: &str, v: &str) -> Label {
    Label {
        name: n.into(),
        value: v.into(),
    }
}

/// One series' value at step `k` (deterministic, different per series).
fn value(metric: usize, counter: bool, seed: usize, k: i64) -> f64 {
    let phase = (seed * 7 + metric * 13) as f64;
    let wave = ((k as f64 / 90.0) + phase).sin() * 0.5 + 0.5;
    let scale = (1 + seed % 17) as f64;
    if counter {
        // A rate that moves with the wave: integrate it.
        k as f64 * 0.05 * scale + wave * scale
    } else {
        1e8 * scale * (0.5 + 0.5 * wave)
    }
}

/// All series of `node` for steps `k0..k1`.
fn node_batch(node: usize, t0: i64, k0: i64, k1: i64) -> WriteRequest {
    let node_name = format!("node-{node}");
    let mut timeseries = Vec::new();
    let samples = |m: usize, counter: bool, seed: usize| -> Vec<Sample> {
        (k0..k1)
            .map(|k| Sample {
                timestamp: t0 + k * STEP_MS,
                value: value(m, counter, seed, k),
            })
            .collect()
    };
    for c in 0..=PER_NODE {
        // c == PER_NODE: the node's root cgroup.
        let (id, extra): (String, Vec<Label>) = if c == PER_NODE {
            ("/".into(), vec![])
        } else {
            let ns = format!("ns-{}", c % 10);
            let pod = format!("pod-{node}-{}", c / 2);
            (
                format!("/kubepods/{pod}/c{c}"),
                vec![
                    label("namespace", &ns),
                    label("pod", &pod),
                    label("container", &format!("c{}", c % 2)),
                    label("image", "registry.example/app:1"),
                ],
            )
        };
        for (m, (name, counter)) in METRICS.iter().enumerate() {
            let mut labels = vec![
                label("__name__", name),
                label("id", &id),
                label("job", "osprey-agent"),
                label("node", &node_name),
            ];
            labels.extend(extra.iter().cloned());
            labels.sort_by(|a, b| a.name.cmp(&b.name));
            timeseries.push(TimeSeries {
                labels,
                samples: samples(m, *counter, node * 100 + c),
            });
        }
    }
    for (name, v) in [
        ("machine_cpu_cores", 16.0),
        ("machine_memory_bytes", 64.0 * 1024.0 * 1024.0 * 1024.0),
    ] {
        timeseries.push(TimeSeries {
            labels: vec![
                label("__name__", name),
                label("job", "osprey-agent"),
                label("node", &node_name),
            ],
            samples: (k0..k1)
                .map(|k| Sample {
                    timestamp: t0 + k * STEP_MS,
                    value: v,
                })
                .collect(),
        });
    }
    WriteRequest {
        timeseries,
        metadata: Vec::new(),
    }
}

fn node_count() -> usize {
    std::env::var("OSPREY_BENCH_NODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| (1..=NODES_DEFAULT).contains(n))
        .unwrap_or(NODES_DEFAULT)
}

fn dashboard_json() -> serde_json::Value {
    let queries = [
        (
            "CPU",
            "rate(container_cpu_usage_seconds_total{node=\"N\",id!=\"/\"}[1m])",
            "cores",
        ),
        (
            "Memory",
            "container_memory_working_set_bytes{node=\"N\",id!=\"/\"}",
            "bytes",
        ),
        (
            "Network in",
            "rate(container_network_receive_bytes_total{node=\"N\",id!=\"/\"}[1m])",
            "Bps",
        ),
        (
            "Filesystem",
            "container_fs_usage_bytes{node=\"N\",id!=\"/\"}",
            "bytes",
        ),
    ];
    let panels: Vec<serde_json::Value> = (0..12)
        .map(|i| {
            let (title, q, unit) = queries[i % 4];
            let node = format!("node-{}", i % node_count());
            serde_json::json!({
                "id": i + 1, "type": "timeseries", "title": format!("{title} of {node}"),
                "gridPos": {"x": (i % 2) * 12, "y": (i / 2) * 8, "w": 12, "h": 8},
                "targets": [{"expr": q.replace('N', &node), "legendFormat": "{{pod}}/{{container}}"}],
                "fieldConfig": {"defaults": {"unit": unit}},
                "options": {"legend": {"displayMode": "hidden"}}
            })
        })
        .collect();
    serde_json::json!({"uid": "bench", "title": "Bench: 12 panels × 50 series", "time": {"from": "now-6h", "to": "now"}, "panels": panels})
}

fn main() {
    let runs: usize = std::env::var("OSPREY_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        Path::new("/usr/bin/chromium").exists()
            && browser.join("node_modules/playwright-core").exists(),
        "needs /usr/bin/chromium and `npm ci` in tests/browser"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // `OSPREY_BENCH_SERVER=<path>`: another build of `osprey` (with its
    // embedded front-end), for an A/B against this one in the same bench.
    let server_bin = std::env::var("OSPREY_BENCH_SERVER")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_osprey").into());
    println!("server: {server_bin}");
    let child = Command::new(&server_bin)
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
    let server_pid = child.id();
    let _server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::blocking::get(format!("{base}/readyz"))
        .map(|r| !r.status().is_success())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    // 6 h of history ending now, one hour per request per node.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let steps = HOURS * 3600 * 1000 / STEP_MS;
    let t0 = (now - steps * STEP_MS) / STEP_MS * STEP_MS;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let loading = Instant::now();
    let mut samples = 0usize;
    let per_request = 120;
    let mut k = 0;
    while k < steps {
        let k1 = (k + per_request).min(steps);
        for node in 0..node_count() {
            let req = node_batch(node, t0, k, k1);
            samples += req
                .timeseries
                .iter()
                .map(|t| t.samples.len())
                .sum::<usize>();
            let resp = client
                .post(format!("{base}/api/v1/write"))
                .header("Content-Encoding", "snappy")
                .header("Content-Type", "application/x-protobuf")
                .body(encode_snappy(&req).unwrap())
                .send()
                .expect("write");
            assert!(
                resp.status().is_success(),
                "write failed: {}",
                resp.text().unwrap_or_default()
            );
        }
        k = k1;
    }
    let series = node_count() * ((PER_NODE + 1) * METRICS.len() + 2);
    println!(
        "loaded {samples} samples in {series} series ({} containers, {HOURS} h at {} s) in {:.1} s",
        node_count() * PER_NODE,
        STEP_MS / 1000,
        loading.elapsed().as_secs_f64()
    );
    let resp = client
        .post(format!("{base}/api/v1/dashboards"))
        .json(&dashboard_json())
        .send()
        .unwrap();
    assert!(
        resp.status().is_success(),
        "{}",
        resp.text().unwrap_or_default()
    );

    // The server's share: one panel's chart query and the overview's
    // node query, timed from here (median of 5).
    let time = |url: &str| -> (f64, usize) {
        let mut ms = Vec::new();
        let mut bytes = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let body = client.get(url).send().unwrap().bytes().unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            bytes = body.len();
        }
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (ms[2], bytes)
    };
    let panel = format!(
        "{base}/api/v1/dashboard/query_range?query={}&start={}&end={}&width=640",
        "rate(container_cpu_usage_seconds_total%7Bnode%3D%22node-0%22%2Cid!%3D%22%2F%22%7D%5B1m%5D)",
        (now - HOURS * 3_600_000) / 1000,
        now / 1000
    );
    let (ms, bytes) = time(&panel);
    println!(
        "server: one panel's chart query (50 series, 6 h, 640 px), JSON: {ms:.1} ms, {} KiB",
        bytes / 1024
    );
    let (ms, bytes) = time(&format!("{panel}&format=binary"));
    println!(
        "server: the same, format=binary: {ms:.1} ms, {} KiB",
        bytes / 1024
    );
    // The same in the server's CPU time (user + system, from
    // /proc/<pid>/stat), which a busy machine disturbs less than wall
    // time: 20 binary panel queries, one after another, over the four
    // panel kinds of the dashboard.
    let cpu_ms = || -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{server_pid}/stat")).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<f64> = after.split(' ').map(|x| x.parse().unwrap_or(0.0)).collect();
        // Fields 14 and 15 (utime, stime) in clock ticks: after the
        // command name they are the 12th and 13th.
        // SAFETY: sysconf reads a constant of the system.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (f[11] + f[12]) * 1000.0 / hz
    };
    let kinds = dashboard_json()["panels"]
        .as_array()
        .unwrap()
        .iter()
        .take(4)
        .map(|p| p["targets"][0]["expr"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    let before = cpu_ms();
    for i in 0..20 {
        let url = format!(
            "{base}/api/v1/dashboard/query_range?start={}&end={}&width=640&format=binary&query={}",
            (now - HOURS * 3_600_000) / 1000,
            now / 1000,
            form_urlencoded::byte_serialize(kinds[i % kinds.len()].as_bytes()).collect::<String>()
        );
        let resp = client.get(url).send().unwrap();
        assert!(resp.status().is_success());
        resp.bytes().unwrap();
    }
    println!(
        "server: CPU time per binary panel query (20 queries, 4 panel kinds): {:.1} ms",
        (cpu_ms() - before) / 20.0
    );
    let nodes = format!(
        "{base}/api/v1/query?query=sum%20by%20(node)%20(rate(container_cpu_usage_seconds_total%7Bid%3D%22%2F%22%7D%5B1m%5D))"
    );
    let (ms, _) = time(&nodes);
    println!("server: one overview instant query (per-node CPU): {ms:.1} ms");

    if let Ok(secs) = std::env::var("OSPREY_BENCH_HOLD") {
        // Keep the loaded server up for a profiler or a person.
        println!("holding {base} for {secs} s");
        std::thread::sleep(Duration::from_secs(secs.parse().unwrap_or(600)));
        return;
    }
    // Each page in turns: with the chart answers as JSON (`wire=json`, the
    // format before the binary one), binary with one request per chart
    // (`batch=off`, before the batch request) and as sent by default (the
    // visible charts' queries in one batch, binary answers), so that they
    // compare under the same load. (An older server ignores the flags it
    // does not know.)
    println!("navigation → all charts drawn, Chromium {runs} runs after one warm-up (ms):");
    println!(
        "{:<62} {:>7} {:>7} {:>8} {:>7} {:>7}  runs",
        "page", "median", "net", "longtask", "panels", "series"
    );
    let overview = format!("{base}/#/?from=now-1h&to=now");
    let dashboard = format!("{base}/#/d/bench?from=now-6h&to=now");
    browser_runs(
        &browser,
        runs,
        1,
        &[
            format!("{overview}&wire=json"),
            overview.clone(),
            format!("{dashboard}&wire=json"),
            format!("{dashboard}&batch=off"),
            dashboard.clone(),
        ],
    );
    // A HiDPI screen (devicePixelRatio 2): the series drawn one device
    // pixel wide (the default) and one CSS pixel (2 device px) wide.
    browser_runs(
        &browser,
        runs,
        2,
        &[dashboard.clone(), format!("{dashboard}&lines=css")],
    );
}

/// Runs `tests/browser/bench.mjs` over `urls` at a device pixel ratio and
/// prints a row per URL.
fn browser_runs(browser: &Path, runs: usize, dpr: u32, urls: &[String]) {
    let out = Command::new("node")
        .arg(browser.join("bench.mjs"))
        .arg(format!("--dpr={dpr}"))
        .arg(runs.to_string())
        .args(urls)
        .current_dir(browser)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("bench.mjs prints JSON");
        let url = v["url"].as_str().unwrap();
        let mut what = vec![if url.contains("wire=json") {
            "JSON"
        } else if url.contains("batch=off") {
            "binary, a request per panel"
        } else {
            "binary"
        }];
        if dpr != 1 {
            what.push(if url.contains("lines=css") {
                "DPR 2, 1 CSS px lines"
            } else {
                "DPR 2"
            });
        }
        let what = what.join(", ");
        let name = if url.contains("/d/bench") {
            format!("dashboard 12 × 50 series × 6 h, {what}")
        } else {
            format!(
                "overview ({} nodes, {} containers), {what}",
                node_count(),
                node_count() * PER_NODE
            )
        };
        let runs: Vec<String> = v["runs_ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| format!("{:.0}", x.as_f64().unwrap()))
            .collect();
        println!(
            "{name:<62} {:>7.0} {:>7.0} {:>8.0} {:>7} {:>7}  {}",
            v["median_ms"].as_f64().unwrap(),
            v["net_ms"].as_f64().unwrap(),
            v["main_ms"].as_f64().unwrap(),
            v["panels"],
            v["series"],
            runs.join(" ")
        );
    }
}
