//! The agent against real cgroups of this machine (root, cgroup v1): load
//! and memory show up with the right figures, cgroups created and removed
//! while it runs come and go within two intervals, and a process in its
//! own network namespace has its traffic counted.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The tests of this file run one at a time: the CPU test needs a core to
/// itself on a 2-core machine to see its busy loop use one.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Samples of one cgroup from the agent's recent window.
fn stats(agent: &AgentProcess, cgroup: &str) -> Option<Vec<Value>> {
    let (status, body) = get(&format!("{}/api/v1/containers{cgroup}/stats", agent.base))?;
    if status != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    v["stats"].as_array().cloned()
}

fn listed(agent: &AgentProcess, cgroup: &str) -> bool {
    agent.json("/api/v1/containers")["containers"]
        .as_array()
        .expect("containers array")
        .iter()
        .any(|c| c["id"] == cgroup)
}

#[test]
fn cpu_bound_and_memory_holding_processes_are_measured() {
    let _serial = serial();
    let dir = artifact_dir("real-cpu-memory");
    let cpu = RealCgroup::create("cpu");
    // CFS shares CPU between cgroups before it looks at nice values: the
    // largest weight lets the loop keep its core while other cgroups (test
    // binaries, builds) are busy.
    cpu.set("cpu", "cpu.shares", "262144");
    // At the highest priority, so other load on the machine cannot take
    // its core: the test is about measuring, not about the scheduler.
    let _spin = cpu.spawn(
        "nice",
        &["-n", "-19", "sh", "-c", "while :; do :; done"],
        &dir,
        "spin",
    );
    let mem = RealCgroup::create("mem");
    const HELD: u64 = 96 << 20;
    let script = format!(
        "import time\nb = bytearray({HELD})\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('held', flush=True)\ntime.sleep(600)\n"
    );
    let _hold = mem.spawn("python3", &["-c", &script], &dir, "hold");

    let agent = AgentProcess::start(&["--interval", "1s"], &dir);

    // CPU: the rate over the last 4 s of at least 7 samples (the first
    // seconds are the spinner's and the agent's start-up).
    let samples = wait_for(
        Duration::from_secs(30),
        "7 samples of the CPU cgroup",
        || stats(&agent, &cpu.path).filter(|s| s.len() >= 7),
    );
    std::fs::write(
        dir.join("cpu-samples.json"),
        serde_json::to_string_pretty(&samples).unwrap(),
    )
    .unwrap();
    let samples = &samples[samples.len() - 5..];
    let (first, last) = (&samples[0], &samples[samples.len() - 1]);
    let used_ns =
        last["cpu"]["usage_ns"].as_f64().unwrap() - first["cpu"]["usage_ns"].as_f64().unwrap();
    let wall_ns =
        (last["timestamp_ms"].as_f64().unwrap() - first["timestamp_ms"].as_f64().unwrap()) * 1e6;
    let cores = used_ns / wall_ns;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    assert!(
        (0.85..=1.15).contains(&cores),
        "a busy loop should use one core, measured {cores:.3} (load average {}: on a busy \
         machine the loop may not get its core)",
        load.trim()
    );
    let user = last["cpu"]["user_ns"].as_f64().unwrap();
    assert!(user > 0.0, "user time is reported");

    // Memory: at least what the process holds, once it holds it.
    let usage = wait_for(
        Duration::from_secs(20),
        "the memory cgroup to hold its memory",
        || {
            let s = stats(&agent, &mem.path)?;
            let m = &s.last()?["memory"];
            let usage = m["usage"].as_u64()?;
            (usage >= HELD).then_some((usage, m["working_set"].as_u64()?, m["rss"].as_u64()?))
        },
    );
    assert!(usage.1 >= HELD, "working set {} < held {HELD}", usage.1);
    assert!(usage.2 >= HELD, "rss {} < held {HELD}", usage.2);

    // The same figures on /metrics, in cAdvisor's units.
    let text = agent.metrics();
    let secs = metric_value(
        &text,
        "container_cpu_usage_seconds_total",
        &[("id", cpu.path.as_str()), ("cpu", "total")],
    )
    .expect("cpu usage series for the cgroup");
    assert!(secs > 0.5, "cpu seconds {secs}");
    let rss = metric_value(&text, "container_memory_rss", &[("id", mem.path.as_str())])
        .expect("rss series");
    assert!(rss >= HELD as f64);
    let cores = metric_value(&text, "machine_cpu_cores", &[]).expect("machine_cpu_cores");
    assert_eq!(
        cores as usize,
        std::thread::available_parallelism().unwrap().get()
    );
    assert!(
        metric_value(&text, "process_resident_memory_bytes", &[]).is_some(),
        "agent reports its RSS"
    );
    assert!(metric_value(&text, "osprey_agent_cgroups", &[]).unwrap() >= 2.0);
}

#[test]
fn cgroups_created_and_removed_while_running_come_and_go_within_two_intervals() {
    let _serial = serial();
    let dir = artifact_dir("real-churn");
    let agent = AgentProcess::start(&["--interval", "1s"], &dir);
    // Let the first full scan happen.
    wait_for(Duration::from_secs(10), "the root cgroup listed", || {
        listed(&agent, "/").then_some(())
    });
    let interval = Duration::from_secs(1);

    let created = Instant::now();
    let cg = RealCgroup::create("churn");
    wait_for(Duration::from_secs(10), "the new cgroup listed", || {
        listed(&agent, &cg.path).then_some(())
    });
    let appeared = created.elapsed();
    assert!(
        appeared <= 2 * interval + Duration::from_millis(300),
        "appeared after {appeared:?}"
    );

    let path = cg.path.clone();
    let removed = Instant::now();
    drop(cg);
    wait_for(Duration::from_secs(10), "the removed cgroup gone", || {
        (!listed(&agent, &path)).then_some(())
    });
    let gone = removed.elapsed();
    assert!(
        gone <= 2 * interval + Duration::from_millis(300),
        "disappeared after {gone:?}"
    );
}

/// A network namespace with a veth pair: `eth0` inside (10.254.N.2), the
/// host end outside (10.254.N.1). Removed on drop.
struct TestNetns {
    name: String,
    host_if: String,
    prefix: String,
}

impl TestNetns {
    fn create() -> Self {
        let id = std::process::id() % 200 + 20;
        let name = format!("osprey-e2e-{}", std::process::id());
        let host_if = format!("ospe{id}h");
        let prefix = format!("10.254.{id}");
        let ns = Self {
            name: name.clone(),
            host_if: host_if.clone(),
            prefix: prefix.clone(),
        };
        let run = |args: &[&str]| {
            let st = Command::new("ip")
                .args(args)
                .status()
                .expect("ip (iproute2) is installed");
            assert!(st.success(), "ip {args:?} failed");
        };
        run(&["netns", "add", &name]);
        run(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", "ospe-c", "netns", &name,
        ]);
        run(&["-n", &name, "link", "set", "ospe-c", "name", "eth0"]);
        run(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{prefix}.2/30"),
            "dev",
            "eth0",
        ]);
        run(&["addr", "add", &format!("{prefix}.1/30"), "dev", &host_if]);
        run(&["link", "set", &host_if, "up"]);
        run(&["-n", &name, "link", "set", "eth0", "up"]);
        ns
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
    }
}

#[test]
fn traffic_of_a_process_in_its_own_network_namespace_is_counted() {
    let _serial = serial();
    let dir = artifact_dir("real-netns");
    let ns = TestNetns::create();
    let cg = RealCgroup::create("net");
    const PACKETS: u64 = 100;
    const PAYLOAD: u64 = 1000;
    // Sends when told on stdin, so the "before" figure is taken first.
    let script = format!(
        "import socket, sys, time\n\
         sys.stdin.readline()\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         for _ in range({PACKETS}): s.sendto(b'x' * {PAYLOAD}, ('{}.1', 9))\n\
         print('sent', flush=True)\n\
         time.sleep(600)\n",
        ns.prefix
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name, "python3", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ip netns exec python3");
    cg.add(child.id());
    let mut stdin = child.stdin.take().unwrap();
    let _guard = ChildGuard {
        child,
        name: "sender".into(),
    };

    // A cgroup whose task shares the host's network, as a service or a
    // hostNetwork pod does: never given the host's counters (on this
    // machine pid 1's namespace cannot be read, so the agent must find
    // the host's another way).
    let host_net = RealCgroup::create("hostnet");
    let _sleeper = host_net.spawn("sleep", &["600"], &dir, "hostnet-sleeper");

    let agent = AgentProcess::start(&["--interval", "1s"], &dir);
    let eth0 = |s: &Value| -> Option<(u64, u64)> {
        let i = s["network"]
            .as_array()?
            .iter()
            .find(|i| i["name"] == "eth0")?;
        Some((i["tx_bytes"].as_u64()?, i["tx_packets"].as_u64()?))
    };
    let before = wait_for(
        Duration::from_secs(15),
        "eth0 counters of the namespaced cgroup",
        || stats(&agent, &cg.path)?.last().and_then(eth0),
    );
    writeln!(stdin, "go").unwrap();
    // Each datagram is payload + UDP (8) + IPv4 (20) + Ethernet (14) bytes;
    // the first also needs an ARP exchange.
    let per_packet = PAYLOAD + 8 + 20 + 14;
    let after = wait_for(Duration::from_secs(15), "the sent packets counted", || {
        let now = stats(&agent, &cg.path)?.last().and_then(eth0)?;
        (now.1 - before.1 >= PACKETS).then_some(now)
    });
    let bytes = after.0 - before.0;
    assert!(
        bytes >= PACKETS * per_packet && bytes <= PACKETS * per_packet + 2048,
        "sent {PACKETS}×{per_packet} bytes, counted {bytes}"
    );
    assert!(
        after.1 - before.1 <= PACKETS + 8,
        "packets {}",
        after.1 - before.1
    );

    // Host services share the host namespace: never attributed its traffic.
    let list = agent.json("/api/v1/containers");
    assert!(
        list["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == host_net.path.as_str()),
        "the cgroup in the host's network is listed"
    );
    for c in list["containers"].as_array().unwrap() {
        if c["id"] != cg.path.as_str() {
            let ifaces = c["latest"]["network"].as_array().map(Vec::len).unwrap_or(0);
            assert_eq!(ifaces, 0, "{} must not report network counters", c["id"]);
        }
    }
}
