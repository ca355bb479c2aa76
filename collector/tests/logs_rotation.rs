//! Rotation while a writer process writes: rename rotation (kubelet/CRI
//! and Docker json-file style) must lose and duplicate nothing; with
//! copytruncate only the lines the truncation itself destroyed may be
//! missing, and the test says how many.

mod logs_common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use logs_common::{Receiver, counts};
use osprey_collector::logs::{LogShipper, LogShipperHandle, LogStats, LogsConfig, LogsContext};

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Writes `count` numbered lines in `fmt` (cri, docker, plain) to `path`,
/// a few at a time; with `rotate_every` > 0 it rotates by rename like a
/// runtime does (`suffix` "ts": `<path>.<n>`; "1": `<path>.1`, replaced).
const WRITER: &str = r#"
import json, os, sys, time
path, fmt, count, rotate_every, suffix = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def line(i):
    msg = "line %06d" % i
    if fmt == "cri":
        return "2026-11-26T23:00:00.%09dZ stdout F %s\n" % (i, msg)
    if fmt == "docker":
        return json.dumps({"log": msg + "\n", "stream": "stdout", "time": "2026-11-26T23:00:00.%09dZ" % i}) + "\n"
    return msg + "\n"
f = open(path, "a")
for i in range(count):
    if rotate_every and i and i % rotate_every == 0:
        f.close()
        os.rename(path, path + "." + (str(i) if suffix == "ts" else "1"))
        f = open(path, "a")
    f.write(line(i))
    f.flush()
    if i % 5 == 0:
        time.sleep(0.001)
f.close()
"#;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn writer(path: &Path, fmt: &str, count: usize, rotate_every: usize, suffix: &str) -> KillOnDrop {
    KillOnDrop(
        Command::new("python3")
            .args(["-c", WRITER])
            .arg(path)
            .args([fmt, &count.to_string(), &rotate_every.to_string(), suffix])
            .spawn()
            .expect("python3 runs the writer"),
    )
}

fn start(root: &Path, url: &str, extra: impl FnOnce(&mut LogsConfig)) -> LogShipperHandle {
    let mut config = LogsConfig {
        url: url.into(),
        poll_interval: Duration::from_millis(20),
        discover_interval: Duration::from_millis(100),
        batch_wait: Duration::from_millis(100),
        rotate_wait: Duration::from_millis(500),
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..LogsConfig::default()
    };
    extra(&mut config);
    LogShipper::spawn(
        config,
        LogsContext {
            node: "n".into(),
            data_dir: root.join("data"),
            pod_log_root: root.join("pods"),
            container_log_root: root.join("containers"),
            docker_root: root.join("docker"),
            metadata: Box::new(|| None),
        },
    )
    .unwrap()
}

fn wait_exit(mut w: KillOnDrop) {
    let status = w.0.wait().unwrap();
    assert!(status.success(), "writer failed: {status}");
}

fn numbers(lines: &[logs_common::Line]) -> Vec<usize> {
    lines
        .iter()
        .map(|l| {
            l.line
                .strip_prefix("line ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line {:?}", l.line))
        })
        .collect()
}

fn assert_all_once_in_order(rx: &Receiver, stats: &LogStats, count: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while rx.lines().len() < count && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = numbers(&rx.lines());
    let missing: Vec<usize> = (0..count).filter(|i| !got.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "{} lines missing, from {:?} to {:?}",
        missing.len(),
        missing.first(),
        missing.last()
    );
    logs_common::settled(stats, Duration::from_secs(30));
    let lines = rx.lines();
    let got = numbers(&lines);
    let c = counts(&lines);
    let dups = c.values().filter(|n| **n > 1).count();
    assert_eq!(dups, 0, "duplicated lines");
    assert_eq!(
        got,
        (0..count).collect::<Vec<_>>(),
        "every line once, in order"
    );
}

#[test]
fn rename_rotation_of_a_cri_log_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("pods/ns_p_uid/c");
    fs::create_dir_all(&pod).unwrap();
    let path = pod.join("0.log");
    let rx = Receiver::start();
    let shipper = start(dir.path(), &rx.url, |_| {});
    let w = writer(&path, "cri", 10_000, 2_500, "ts");
    wait_exit(w);
    assert_all_once_in_order(&rx, &shipper.stats(), 10_000);
    let stats = shipper.stats();
    assert!(LogStats::get(&stats.rotations) >= 3, "rotations were seen");
    assert_eq!(LogStats::get(&stats.truncations), 0);
    shipper.shutdown(Duration::from_secs(2));
}

#[test]
fn rename_rotation_of_a_docker_log_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join(format!("docker/containers/{ID}"));
    fs::create_dir_all(&d).unwrap();
    let path = d.join(format!("{ID}-json.log"));
    let rx = Receiver::start();
    let shipper = start(dir.path(), &rx.url, |_| {});
    wait_exit(writer(&path, "docker", 10_000, 2_500, "1"));
    assert_all_once_in_order(&rx, &shipper.stats(), 10_000);
    shipper.shutdown(Duration::from_secs(2));
}

#[test]
fn rotation_while_the_agent_is_down_reads_the_rotated_file_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("pods/ns_p_uid/c");
    fs::create_dir_all(&pod).unwrap();
    let path = pod.join("0.log");
    let rx = Receiver::start();
    wait_exit(writer(&path, "cri", 1_000, 0, "ts"));
    let shipper = start(dir.path(), &rx.url, |_| {});
    rx.wait_for(Duration::from_secs(30), "the first 1000", |l| {
        l.len() >= 1000
    });
    shipper.shutdown(Duration::from_secs(2));
    // Down: 500 more lines, a rotation, 500 lines in the new file.
    let body: String = (1_000..1_500)
        .map(|i| format!("2026-11-26T23:00:00.{i:09}Z stdout F line {i:06}\n"))
        .collect();
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, body.as_bytes()))
        .unwrap();
    fs::rename(&path, pod.join("0.log.20261126-230000")).unwrap();
    let body: String = (1_500..2_000)
        .map(|i| format!("2026-11-26T23:00:00.{i:09}Z stdout F line {i:06}\n"))
        .collect();
    fs::write(&path, body).unwrap();
    let shipper = start(dir.path(), &rx.url, |_| {});
    assert_all_once_in_order(&rx, &shipper.stats(), 2_000);
    shipper.shutdown(Duration::from_secs(2));
}

#[test]
fn copytruncate_under_load_loses_only_what_the_truncation_destroyed() {
    let dir = tempfile::tempdir().unwrap();
    let var = dir.path().join("var");
    fs::create_dir_all(&var).unwrap();
    let path: PathBuf = var.join("app.log");
    fs::write(&path, "").unwrap();
    let rx = Receiver::start();
    let glob = format!("{}/*.log", var.display());
    let shipper = start(dir.path(), &rx.url, |c| {
        c.containers = false;
        c.files = vec![osprey_collector::logs::FileSource {
            name: "app".into(),
            paths: vec![glob],
            multiline: None,
        }];
    });
    let count = 10_000;
    let mut w = writer(&path, "plain", count, 0, "ts");
    // logrotate's copytruncate, three times while the writer writes.
    let mut rotations = 0;
    while rotations < 3 {
        if let Ok(Some(_)) = w.0.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        let copy = fs::read(&path).unwrap();
        fs::write(var.join(format!("app.log.{rotations}")), &copy).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        rotations += 1;
    }
    wait_exit(w);
    assert_eq!(rotations, 3, "the writer finished before three rotations");
    // Everything after the last truncation arrives; wait for the last line.
    rx.wait_for(Duration::from_secs(60), "the last line", |l| {
        l.last()
            .is_some_and(|x| x.line == format!("line {:06}", count - 1))
    });
    let stats = shipper.stats();
    logs_common::settled(&stats, Duration::from_secs(30));
    let lines = rx.lines();
    let got = numbers(&lines);
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates"
    );
    // What is missing must be at most one run of lines per truncation:
    // those written after the agent's last read and before the truncation.
    let mut runs = 0;
    let mut missing = 0;
    let mut expect = 0;
    for n in &got {
        if *n != expect {
            runs += 1;
            missing += n - expect;
        }
        expect = n + 1;
    }
    assert_eq!(expect, count);
    assert!(runs <= 3, "{runs} gaps for 3 truncations");
    assert!(LogStats::get(&stats.truncations) >= 1);
    eprintln!(
        "copytruncate: {missing} of {count} lines destroyed by 3 truncations ({runs} gaps), {} truncations seen",
        LogStats::get(&stats.truncations)
    );
    shipper.shutdown(Duration::from_secs(2));
}
