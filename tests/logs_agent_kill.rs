//! kill -9 of the real `osprey agent` at random points while a writer
//! process writes container logs (CRI with rename rotation, and Docker
//! json-file), then a final agent run: every line arrives exactly once.
//! The receiver is a real HTTP server honouring `X-Osprey-Batch`
//! (collector/tests/logs_common), standing in for the Osprey server.

// Both helper modules include tests/support/ports.rs; its port claims
// are process-wide (UDP sockets), so the two copies never hand out the
// same port.
#![allow(clippy::duplicate_mod)]

mod common;
#[path = "../collector/tests/logs_common/mod.rs"]
mod logs_common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, SystemTime};

use common::{AgentProcess, artifact_dir};
use logs_common::{Receiver, counts};

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

const WRITER: &str = r#"
import json, os, sys, time
path, fmt, count, rotate_every = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def line(i):
    msg = "%s %06d" % (fmt, i)
    if fmt == "cri":
        if i % 7 == 0:
            # A line split in two CRI fragments.
            return "2026-11-26T23:00:00.%09dZ stdout P %s" % (i, msg[:4]) + "\n" + \
                   "2026-11-26T23:00:00.%09dZ stdout F %s\n" % (i, msg[4:])
        return "2026-11-26T23:00:00.%09dZ stdout F %s\n" % (i, msg)
    if i % 7 == 0:
        # A line Docker split into two fragments.
        return json.dumps({"log": msg[:5], "stream": "stderr", "time": "2026-11-26T23:00:00Z"}) + "\n" + \
               json.dumps({"log": msg[5:] + "\n", "stream": "stderr", "time": "2026-11-26T23:00:00Z"}) + "\n"
    return json.dumps({"log": msg + "\n", "stream": "stdout", "time": "2026-11-26T23:00:00Z"}) + "\n"
f = open(path, "a")
for i in range(count):
    if rotate_every and i and i % rotate_every == 0:
        f.close()
        os.rename(path, path + "." + str(i))
        f = open(path, "a")
    f.write(line(i))
    f.flush()
    if i % 4 == 0:
        time.sleep(0.001)
f.close()
"#;

struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn writer(path: &Path, fmt: &str, count: usize, rotate_every: usize) -> Writer {
    Writer(
        Command::new("python3")
            .args(["-c", WRITER])
            .arg(path)
            .args([fmt, &count.to_string(), &rotate_every.to_string()])
            .spawn()
            .expect("python3 runs the writer"),
    )
}

#[test]
fn kill_9_at_random_points_loses_and_duplicates_no_line() {
    let dir = artifact_dir("logs_agent_kill");
    let root = dir.join("node");
    let pod = root.join("pods/shop_web-0_uid-1/app");
    fs::create_dir_all(&pod).unwrap();
    let docker = root.join(format!("docker/containers/{ID}"));
    fs::create_dir_all(&docker).unwrap();
    let cri_path = pod.join("0.log");
    let docker_path = docker.join(format!("{ID}-json.log"));
    let rx = Receiver::start();
    let config = dir.join("osprey.toml");
    fs::write(
        &config,
        format!(
            r#"[agent]
interval = "1s"
data_dir = "{data}"
pod_log_root = "{root}/pods"
container_log_root = "{root}/containers"
docker_root = "{root}/docker"
node_name = "kill-test"

[agent.logs]
url = "{url}"
poll_interval = "20ms"
discover_interval = "100ms"
batch_wait = "50ms"
batch_max_bytes = 16384
min_backoff = "20ms"
max_backoff = "200ms"
"#,
            data = dir.join("data").display(),
            root = root.display(),
            url = rx.url,
        ),
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];

    let count = 16_000;
    let mut cri_writer = writer(&cri_path, "cri", count, 5_000);
    let mut docker_writer = writer(&docker_path, "docker", count, 0);

    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill schedule seed {seed}");
    let mut random_ms = |lo: u64, hi: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (seed >> 33) % (hi - lo)
    };
    let mut kills = 0;
    while kills < 8 {
        let mut agent = AgentProcess::start(&args, &dir);
        std::thread::sleep(Duration::from_millis(random_ms(100, 900)));
        agent.guard.child.kill().unwrap(); // SIGKILL
        agent.guard.child.wait().unwrap();
        kills += 1;
    }
    let _agent = AgentProcess::start(&args, &dir);
    assert!(cri_writer.0.wait().unwrap().success());
    assert!(docker_writer.0.wait().unwrap().success());
    rx.wait_for(Duration::from_secs(90), "every line", |l| {
        l.len() >= 2 * count
    });
    // Wait until the agent has nothing more on its way: nothing spooled,
    // and its committed checkpoint at the end of both files.
    let data = dir.join("data/logs");
    common::wait_for(Duration::from_secs(30), "the agent to settle", || {
        let spooled = fs::read_dir(data.join("spool"))
            .ok()?
            .filter_map(Result::ok)
            .any(|e| e.path().extension().is_some_and(|x| x == "batch"));
        let cp: serde_json::Value =
            serde_json::from_slice(&fs::read(data.join("checkpoint.json")).ok()?).ok()?;
        let at_end = [&cri_path, &docker_path].iter().all(|p| {
            let m = fs::metadata(p).unwrap();
            cp["files"].as_array().is_some_and(|files| {
                files.iter().any(|f| {
                    f["key"]["inode"].as_u64() == Some(m.ino())
                        && f["offset"].as_u64() == Some(m.len())
                })
            })
        });
        (!spooled && at_end).then_some(())
    });
    let lines = rx.lines();
    let c = counts(&lines);
    for fmt in ["cri", "docker"] {
        let missing: Vec<usize> = (0..count)
            .filter(|i| !c.contains_key(&format!("{fmt} {i:06}")))
            .collect();
        assert!(
            missing.is_empty(),
            "{fmt}: {} lines lost, first {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        // In order within each stream of the file.
        for stream in ["stdout", "stderr"] {
            let order: Vec<&str> = lines
                .iter()
                .filter(|l| l.line.starts_with(fmt) && l.labels["stream"] == stream)
                .map(|l| l.line.as_str())
                .collect();
            assert!(
                order.windows(2).all(|w| w[0] < w[1]),
                "{fmt} {stream}: out of order"
            );
        }
    }
    let dups: Vec<_> = c.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dups.is_empty(),
        "{} duplicated lines, e.g. {:?}",
        dups.len(),
        dups.first()
    );
    assert_eq!(lines.len(), 2 * count);
    let cri_line = lines.iter().find(|l| l.line.starts_with("cri")).unwrap();
    assert_eq!(cri_line.labels["namespace"], "shop");
    assert_eq!(cri_line.labels["node"], "kill-test");
    let seen = rx.seen.lock().unwrap();
    assert_eq!(seen.gaps, 0);
    eprintln!(
        "kill -9 x{kills}: {} lines once each; {} resent batches recognised as already committed",
        lines.len(),
        seen.duplicates
    );
    drop(seen);
}

#[test]
fn up_sends_logs_to_its_own_server_and_agent_takes_a_logs_url() {
    let dir = artifact_dir("logs_up_config");
    let config = dir.join("osprey.toml");
    fs::write(&config, "[agent.logs]\nformat = \"json\"\n").unwrap();
    let out = common::osprey()
        .args([
            "--config",
            config.to_str().unwrap(),
            "up",
            "--listen",
            "0.0.0.0:19555",
            "--print-config",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    let logs = &v["agent"]["logs"];
    assert_eq!(
        logs["url"].as_str(),
        Some("http://127.0.0.1:19555/loki/api/v1/push")
    );
    assert_eq!(logs["format"].as_str(), Some("json"));

    let out = common::osprey()
        .args([
            "agent",
            "--logs-url",
            "http://10.0.0.1:9090/loki/api/v1/push",
            "--print-config",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: toml::Value = toml::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(
        v["agent"]["logs"]["url"].as_str(),
        Some("http://10.0.0.1:9090/loki/api/v1/push")
    );

    // `osprey agent` with [agent.logs] but no url refuses to start, naming it.
    let out = common::osprey()
        .args([
            "--config",
            config.to_str().unwrap(),
            "agent",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[agent.logs]") && err.contains("url"), "{err}");
}
