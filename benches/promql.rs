//! Query latency of Osprey's PromQL engine against a real Prometheus
//! (Debian's `prometheus`) holding the same data, side by side in one run.
//! Prints a table; asserts nothing.
//!
//! ```text
//! cargo bench --bench promql -- [--series N] [--hours H] [--runs R]
//! ```
//!
//! Data: N counters (default 10 000) `bench_requests_total{series="i", group="i % 100"}`
//! sampled every 15 s for H hours (default 1), loaded into both servers by
//! remote-write. Osprey serves in-process over HTTP on loopback (release
//! build); Prometheus runs as its own process. Each query is sent R times
//! (after two warm-up calls) as a form POST, and the median wall time of the
//! HTTP round trip is reported, JSON response included.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use osprey::server::{ServerConfig, ServerState, router};
use osprey_collector::ship::remote_write::{Sample, TimeSeries, WriteRequest, encode_snappy};

struct Args {
    series: usize,
    hours: i64,
    runs: usize,
}

fn args() -> Args {
    let mut a = Args {
        series: 10_000,
        hours: 1,
        runs: 15,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        match flag.as_str() {
            "--series" => a.series = value().max(100) as usize,
            "--hours" => a.hours = value().max(1),
            "--runs" => a.runs = value().max(1) as usize,
            _ => {}
        }
    }
    a
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_ready(url: &str) {
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if client
            .get(url)
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} not ready after 60 s");
}

fn write(client: &reqwest::blocking::Client, base: &str, req: &WriteRequest) {
    let resp = client
        .post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(encode_snappy(req).unwrap())
        .send()
        .unwrap();
    assert!(
        resp.status().is_success(),
        "{base}: {}",
        resp.text().unwrap_or_default()
    );
}

fn median_ms(
    client: &reqwest::blocking::Client,
    url: &str,
    form: &[(&str, String)],
    runs: usize,
) -> (f64, usize) {
    let mut series = 0;
    for _ in 0..2 {
        let v: serde_json::Value = client.post(url).form(form).send().unwrap().json().unwrap();
        assert_eq!(v["status"], "success", "{url} {form:?}: {v}");
        series = v["data"]["result"].as_array().map_or(0, |a| a.len());
    }
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            let body = client.post(url).form(form).send().unwrap().bytes().unwrap();
            let el = t0.elapsed().as_secs_f64() * 1000.0;
            assert!(!body.is_empty());
            el
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[times.len() / 2], series)
}

fn main() {
    let a = args();
    let tmp = tempfile::tempdir().unwrap();

    // Prometheus.
    let prom_port = free_port();
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
    let prom = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("prom").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package) is installed"),
    );
    let prom_base = format!("http://127.0.0.1:{prom_port}");

    // Osprey, in-process.
    let osprey_port = free_port();
    let cfg = ServerConfig {
        data_dir: tmp.path().join("osprey"),
        listen: ([127, 0, 0, 1], osprey_port).into(),
        ..ServerConfig::default()
    };
    let state: Arc<ServerState> = ServerState::open(cfg).unwrap();
    let app = router(state);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.spawn(async move {
        let l = tokio::net::TcpListener::bind(("127.0.0.1", osprey_port))
            .await
            .unwrap();
        axum::serve(l, app).await.unwrap();
    });
    let osprey_base = format!("http://127.0.0.1:{osprey_port}");
    wait_ready(&format!("{prom_base}/-/ready"));
    wait_ready(&format!("{osprey_base}/readyz"));

    // Data.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let end = now / 60_000 * 60_000;
    let start = end - a.hours * 3_600_000;
    let points = (a.hours * 3_600_000 / 15_000) as usize;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let t0 = Instant::now();
    for chunk in (0..a.series).collect::<Vec<_>>().chunks(200) {
        let req = WriteRequest {
            timeseries: chunk
                .iter()
                .map(|&i| {
                    let rate = 1.0 + (i % 7) as f64;
                    TimeSeries::new(
                        "bench_requests_total",
                        [("series", i.to_string()), ("group", (i % 100).to_string())],
                        (0..points)
                            .map(|p| {
                                Sample::new(
                                    start + p as i64 * 15_000,
                                    (p as f64 * 15.0 * rate).floor(),
                                )
                            })
                            .collect(),
                    )
                })
                .collect(),
            metadata: Vec::new(),
        };
        write(&client, &prom_base, &req);
        write(&client, &osprey_base, &req);
    }
    println!(
        "loaded {} series × {points} samples (15 s, {} h) into both in {:.1} s\n",
        a.series,
        a.hours,
        t0.elapsed().as_secs_f64()
    );

    let selectors = [
        (1usize, r#"bench_requests_total{series="0"}"#.to_string()),
        (100, r#"bench_requests_total{group="0"}"#.to_string()),
        (a.series, "bench_requests_total".to_string()),
    ];
    let at = format!("{}", end / 1000);
    let range_start = format!("{}", (end - a.hours * 3_600_000 + 300_000) / 1000);
    println!(
        "| query | series | Osprey median ms | Prometheus median ms | Osprey/Prometheus | result series |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (n, sel) in &selectors {
        for (kind, expr) in [
            ("instant", format!("sum by (group) (rate({sel}[5m]))")),
            ("range 1h/60s", format!("sum by (group) (rate({sel}[5m]))")),
            ("instant", format!("rate({sel}[5m])")),
        ] {
            let (path, form): (&str, Vec<(&str, String)>) = if kind == "instant" {
                (
                    "/api/v1/query",
                    vec![("query", expr.clone()), ("time", at.clone())],
                )
            } else {
                (
                    "/api/v1/query_range",
                    vec![
                        ("query", expr.clone()),
                        ("start", range_start.clone()),
                        ("end", at.clone()),
                        ("step", "60".into()),
                    ],
                )
            };
            let runs = if *n > 1000 {
                a.runs.div_ceil(3)
            } else {
                a.runs
            };
            let (o, os) = median_ms(&client, &format!("{osprey_base}{path}"), &form, runs);
            let (p, ps) = median_ms(&client, &format!("{prom_base}{path}"), &form, runs);
            println!(
                "| {kind} `{expr}` | {n} | {o:.2} | {p:.2} | {:.2} | {os}{} |",
                o / p,
                if os == ps {
                    String::new()
                } else {
                    format!(" (Prometheus {ps})")
                }
            );
        }
    }
    drop(prom);
}
