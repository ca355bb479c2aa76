//! The whole agent's cost as a running process: `osprey agent --interval 1s`
//! over 10, 100 and 1000 containers (real cgroup v1 hierarchies of this
//! machine, and fixture trees in v1 and v2 formats), measured from
//! `/proc/<pid>/stat` (CPU time) and `/proc/<pid>/status` (RSS) over a
//! fixed period after a warm-up. Everything the agent does is included:
//! discovery, reading, the recent-history window, the HTTP server idling.
//!
//! Run: `cargo bench --bench agent_overhead` (as root for the real-cgroup
//! rows). `OSPREY_BENCH_SECONDS` sets the measured period (default 30).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use osprey_collector::fixture::{FixtureTree, FixtureVersion, PathStyle, paths};

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("agent alive");
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line (11 and 12 here).
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / clock_ticks()
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Agent(Child);
impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cgroups_seen(port: u16) -> Option<f64> {
    let body = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
        .ok()?
        .text()
        .ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix("osprey_agent_cgroups "))
        .and_then(|v| v.parse().ok())
}

struct Row {
    case: String,
    containers: usize,
    cgroups: f64,
    core_percent: f64,
    ms_per_tick: f64,
    rss_mib: f64,
    peak_mib: f64,
}

fn measure(case: &str, containers: usize, args: &[String], seconds: u64) -> Row {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_osprey"))
        .args([
            "agent",
            "--interval",
            "1s",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(args)
        .env("OSPREY_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("starting the agent");
    let agent = Agent(child);
    let pid = agent.0.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    let cgroups = loop {
        if let Some(n) = cgroups_seen(port).filter(|n| *n >= containers as f64) {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "agent did not see {containers} cgroups"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(3)); // warm-up: first ticks open files
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let cpu = cpu_seconds(pid) - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    Row {
        case: case.into(),
        containers,
        cgroups,
        core_percent: 100.0 * cpu / wall,
        ms_per_tick: 1000.0 * cpu / wall, // one tick per second
        rss_mib: status_kib(pid, "VmRSS:") as f64 / 1024.0,
        peak_mib: status_kib(pid, "VmHWM:") as f64 / 1024.0,
    }
}

struct RealTree {
    parent: String,
    dirs: Vec<PathBuf>,
}

impl RealTree {
    fn create(n: usize) -> Option<Self> {
        let parent = format!("osprey-agentbench-{}", std::process::id());
        let mut dirs = Vec::new();
        for c in ["cpu", "cpuacct", "memory", "blkio", "pids"] {
            let base = Path::new("/sys/fs/cgroup").join(c).join(&parent);
            std::fs::create_dir(&base).ok()?;
            dirs.push(base.clone());
            for i in 0..n {
                let d = base.join(format!("c{i}"));
                std::fs::create_dir(&d).ok()?;
                dirs.push(d);
            }
        }
        Some(Self { parent, dirs })
    }
}

impl Drop for RealTree {
    fn drop(&mut self) {
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn main() {
    let seconds = std::env::var("OSPREY_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let mut rows = Vec::new();
    for &n in &[10usize, 100, 1000] {
        match RealTree::create(n) {
            Some(tree) => {
                let args = vec!["--subtree".to_string(), format!("/{}", tree.parent)];
                rows.push(measure("real cgroup v1", n, &args, seconds));
            }
            None => eprintln!("real cgroups need root and cgroup v1; row skipped"),
        }
        for version in [FixtureVersion::V1, FixtureVersion::V2] {
            let tree = FixtureTree::new(version).expect("fixture");
            tree.add_containers(
                PathStyle::KubepodsSystemd(paths::Qos::Burstable, paths::Runtime::Containerd),
                0,
                n,
            )
            .expect("containers");
            let args = vec![
                "--cgroup-root".to_string(),
                tree.root().display().to_string(),
                "--containers-only".to_string(),
            ];
            rows.push(measure(&format!("fixture {version:?}"), n, &args, seconds));
        }
    }
    println!("agent process at a 1 s interval, measured over {seconds} s after warm-up");
    println!(
        "{:<16} {:>10} {:>8} {:>10} {:>12} {:>9} {:>10}",
        "case", "containers", "cgroups", "% of core", "CPU ms/tick", "RSS MiB", "peak MiB"
    );
    for r in rows {
        println!(
            "{:<16} {:>10} {:>8} {:>9.2}% {:>12.2} {:>9.1} {:>10.1}",
            r.case, r.containers, r.cgroups, r.core_percent, r.ms_per_tick, r.rss_mib, r.peak_mib
        );
    }
}
