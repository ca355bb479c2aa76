//! Tail + parse throughput of the log tailer, per core: the CPU time of
//! the reading thread (CLOCK_THREAD_CPUTIME_ID) to read a file of Docker
//! json-file or CRI lines, cut lines, decode them, re-join fragments, make
//! entries (UTF-8 check) and put them into batches. Two variants: batches
//! dropped when full (tail + parse) and batches also encoded as the
//! protobuf + snappy push body (what the agent spools). The floor is a
//! plain read of the same file with a newline count (`grep -c`-like) in
//! the same run. The file is in the page cache (just written): this
//! measures CPU, not the disk.
//!
//! Run: `cargo bench -p osprey-collector --bench log_tail`
//! (`LOG_TAIL_MB=256` for a larger file; default 64).

use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use osprey_collector::logs::batch::Batch;
use osprey_collector::logs::discover::Roots;
use osprey_collector::logs::tailer::{Tailer, TailerOptions};
use osprey_collector::logs::{LogStats, PushFormat};

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

const WORDS: &[&str] = &[
    "GET",
    "/api/v1/orders",
    "200",
    "user=42",
    "latency_ms=13",
    "connection",
    "refused",
    "retrying",
    "cache",
    "miss",
    "key=session:9f8e7d",
    "upstream",
    "ok",
    "INFO",
    "WARN",
    "ERROR",
    "request_id=3b2c1a0f-77aa-4c3d-9e8f-1234567890ab",
    "bytes=5123",
];

/// A line of 60–240 characters of log-like text.
fn message(i: u64, out: &mut String) {
    out.clear();
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let len = 60 + (x % 180) as usize;
    out.push_str("2026-11-26 23:00:00 ");
    while out.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.push_str(WORDS[(x >> 33) as usize % WORDS.len()]);
        out.push(' ');
    }
    out.push_str(&i.to_string());
}

fn write_docker(path: &Path, bytes: u64) -> u64 {
    let mut w = BufWriter::new(fs::File::create(path).unwrap());
    let (mut n, mut i, mut msg) = (0u64, 0u64, String::new());
    while n < bytes {
        message(i, &mut msg);
        let stream = if i % 10 == 0 { "stderr" } else { "stdout" };
        let line = if i % 50 == 0 {
            // A line Docker split in two fragments.
            let (a, b) = msg.split_at(msg.len() / 2);
            format!(
                "{}\n{}\n",
                serde_json::json!({"log": a, "stream": stream, "time": "2026-11-26T23:00:00.123456789Z"}),
                serde_json::json!({"log": format!("{b}\n"), "stream": stream, "time": "2026-11-26T23:00:00.123456790Z"})
            )
        } else {
            format!(
                "{}\n",
                serde_json::json!({"log": format!("{msg}\n"), "stream": stream, "time": "2026-11-26T23:00:00.123456789Z"})
            )
        };
        w.write_all(line.as_bytes()).unwrap();
        n += line.len() as u64;
        i += 1;
    }
    w.flush().unwrap();
    n
}

fn write_cri(path: &Path, bytes: u64) -> u64 {
    let mut w = BufWriter::new(fs::File::create(path).unwrap());
    let (mut n, mut i, mut msg) = (0u64, 0u64, String::new());
    while n < bytes {
        message(i, &mut msg);
        let stream = if i % 10 == 0 { "stderr" } else { "stdout" };
        let line = if i % 50 == 0 {
            let (a, b) = msg.split_at(msg.len() / 2);
            format!(
                "2026-11-26T23:00:00.123456789Z {stream} P {a}\n2026-11-26T23:00:00.123456790Z {stream} F {b}\n"
            )
        } else {
            format!("2026-11-26T23:00:00.123456789Z {stream} F {msg}\n")
        };
        w.write_all(line.as_bytes()).unwrap();
        n += line.len() as u64;
        i += 1;
    }
    w.flush().unwrap();
    n
}

/// Reads the file through the tailer; returns (thread CPU, wall, entries).
fn tail(roots: Roots, size: u64, encode: bool) -> (Duration, Duration, u64) {
    std::thread::spawn(move || {
        let stats = Arc::new(LogStats::default());
        let mut tailer = Tailer::new(
            TailerOptions {
                node: "bench".into(),
                roots,
                max_line_bytes: 256 << 10,
                start_at_end: false,
                rotate_wait: Duration::from_secs(5),
                container_multiline: None,
                plain_multiline: Vec::new(),
                read_chunk: 256 << 10,
            },
            Vec::new(),
            true,
            stats.clone(),
        );
        let wall = Instant::now();
        let cpu = thread_cpu();
        tailer.discover(Instant::now());
        let mut batch = Batch::default();
        let mut body_bytes = 0usize;
        while LogStats::get(&stats.bytes_read) < size {
            let now = Instant::now();
            tailer.poll(&mut batch, now, 1 << 20);
            if batch.bytes() >= 1 << 20 {
                if encode {
                    body_bytes += batch.encode(PushFormat::Protobuf).len();
                }
                let _ = tailer.take_delta();
                batch.clear();
            }
        }
        std::hint::black_box(body_bytes);
        (
            thread_cpu() - cpu,
            wall.elapsed(),
            LogStats::get(&stats.entries),
        )
    })
    .join()
    .unwrap()
}

/// Plain read + newline count of the file (the floor).
fn floor(path: &Path) -> Duration {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let cpu = thread_cpu();
        let mut f = fs::File::open(&path).unwrap();
        let mut buf = vec![0u8; 256 << 10];
        let mut lines = 0usize;
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            lines += buf[..n].iter().filter(|&&c| c == b'\n').count();
        }
        std::hint::black_box(lines);
        thread_cpu() - cpu
    })
    .join()
    .unwrap()
}

fn main() {
    let mb: u64 = std::env::var("LOG_TAIL_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let dir = tempfile::tempdir().unwrap();
    let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let docker_dir = dir.path().join(format!("docker/containers/{id}"));
    fs::create_dir_all(&docker_dir).unwrap();
    let docker = docker_dir.join(format!("{id}-json.log"));
    let pod_dir = dir.path().join("pods/ns_pod_uid/c");
    fs::create_dir_all(&pod_dir).unwrap();
    let cri = pod_dir.join("0.log");
    let docker_size = write_docker(&docker, mb << 20);
    let cri_size = write_cri(&cri, mb << 20);
    let loadavg = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "log tail + parse, one reading thread, {mb} MiB per format (page cache warm); load average before: {}",
        loadavg
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<8} {:>10} {:>14} {:>16} {:>14} {:>12}",
        "format", "entries", "tail+parse", "+protobuf body", "floor (read+\\n)", "wall"
    );
    for (name, path, size) in [("docker", &docker, docker_size), ("cri", &cri, cri_size)] {
        let roots = |p: &Path| -> Roots {
            if name == "docker" {
                Roots {
                    docker_root: Some(dir.path().join("docker")),
                    ..Roots::default()
                }
            } else {
                Roots {
                    pod_log_root: Some(p.to_path_buf()),
                    ..Roots::default()
                }
            }
        };
        let pods = dir.path().join("pods");
        let mbps = |d: Duration| size as f64 / (1 << 20) as f64 / d.as_secs_f64();
        // Best of three runs each (the machine is shared).
        let mut best = (Duration::MAX, Duration::MAX, 0);
        let mut best_enc = Duration::MAX;
        let mut best_floor = Duration::MAX;
        for _ in 0..3 {
            let (cpu, wall, entries) = tail(roots(&pods), size, false);
            if cpu < best.0 {
                best = (cpu, wall, entries);
            }
            best_enc = best_enc.min(tail(roots(&pods), size, true).0);
            best_floor = best_floor.min(floor(path));
        }
        println!(
            "{:<8} {:>10} {:>9.1} MB/s {:>11.1} MB/s {:>9.0} MB/s {:>10.2?}",
            name,
            best.2,
            mbps(best.0),
            mbps(best_enc),
            mbps(best_floor),
            best.1
        );
    }
    println!("(MB = MiB of raw log file per second of the reading thread's CPU time)");
}
