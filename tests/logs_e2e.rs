//! The whole log path with real processes: a test program writes a
//! container's CRI log file (with partial lines), a real `osprey agent`
//! tails it and pushes to a real `osprey server`; both are killed with
//! SIGKILL at points chosen at random while lines are written. At the end
//! every line is searchable exactly once, with the pod's metadata.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use common::*;

const LINES: usize = 3000;

/// Every `e2e-line` message in the server, counted by line number.
fn stored(base: &str) -> BTreeMap<usize, usize> {
    let mut counts = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let Some((200, body)) = get(&format!(
            "{base}/api/v1/logs/search?query=namespace:shop&limit=5000&start=0&cursor={cursor}"
        )) else {
            return BTreeMap::new();
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        for l in v["data"]["lines"].as_array().unwrap() {
            assert_eq!(l["pod"], "web-0", "{l}");
            assert_eq!(l["container"], "app", "{l}");
            assert_eq!(l["stream"], "stdout", "{l}");
            let msg = l["message"].as_str().unwrap();
            let n: usize = msg
                .strip_prefix("e2e-line ")
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line {msg:?}"));
            *counts.entry(n).or_insert(0) += 1;
        }
        match v["data"]["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => return counts,
        }
    }
}

#[test]
fn agent_to_server_every_line_once_across_kills_of_both() {
    let dir = artifact_dir("logs-e2e");
    let root = dir.join("node");
    let pod = root.join("pods/shop_web-0_uid-1/app");
    std::fs::create_dir_all(&pod).unwrap();
    let server_config = dir.join("server.toml");
    std::fs::write(
        &server_config,
        "[server.logs]\ncommit_interval = \"50ms\"\n",
    )
    .unwrap();
    let data = dir.join("server-data");
    let mut server = ServerProcess::start(&data, Some(&server_config), &dir);
    let agent_config = dir.join("agent.toml");
    std::fs::write(
        &agent_config,
        format!(
            "[agent]\ninterval = \"1s\"\ndata_dir = \"{data}\"\npod_log_root = \"{root}/pods\"\n\
             container_log_root = \"{root}/containers\"\ndocker_root = \"{root}/docker\"\nnode_name = \"e2e\"\n\n\
             [agent.logs]\nurl = \"{base}/loki/api/v1/push\"\npoll_interval = \"20ms\"\n\
             discover_interval = \"100ms\"\nbatch_wait = \"50ms\"\nbatch_max_bytes = 8192\n\
             min_backoff = \"20ms\"\nmax_backoff = \"200ms\"\n",
            data = dir.join("agent-data").display(),
            root = root.display(),
            base = server.base,
        ),
    )
    .unwrap();
    let args = ["--config", agent_config.to_str().unwrap()];

    // The container: CRI lines, every 7th split into a partial `P` and
    // its final `F` fragment.
    let log_path = pod.join("0.log");
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        for i in 0..LINES {
            let msg = format!("e2e-line {i} level=info payload {}", "y".repeat(i % 50));
            let ts = format!("2026-11-26T23:00:00.{i:09}Z");
            let text = if i % 7 == 0 {
                format!("{ts} stdout P {}\n{ts} stdout F {}\n", &msg[..6], &msg[6..])
            } else {
                format!("{ts} stdout F {msg}\n")
            };
            f.write_all(text.as_bytes()).unwrap();
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });

    let mut seed = (now_ms() as u64) | 1;
    let mut rand = move |lo: u64, hi: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        lo + seed % (hi - lo)
    };
    for round in 0..6 {
        let mut agent = AgentProcess::start(&args, &dir);
        std::thread::sleep(Duration::from_millis(rand(100, 700)));
        if round % 2 == 0 {
            agent.guard.child.kill().unwrap();
            agent.guard.child.wait().unwrap();
        } else {
            // The server dies under the agent; the agent keeps retrying.
            server.guard.child.kill().unwrap();
            server.guard.child.wait().unwrap();
            std::thread::sleep(Duration::from_millis(rand(50, 300)));
            server = ServerProcess::start_on(server.port, &data, Some(&server_config), &dir);
            agent.guard.child.kill().unwrap();
            agent.guard.child.wait().unwrap();
        }
    }
    writer.join().unwrap();
    let _agent = AgentProcess::start(&args, &dir);
    let counts = wait_for(Duration::from_secs(120), "every line in the server", || {
        let c = stored(&server.base);
        (c.len() == LINES).then_some(c)
    });
    let dup: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dup.is_empty(), "lines stored more than once: {dup:?}");
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (0..LINES).collect::<Vec<_>>()
    );
}
