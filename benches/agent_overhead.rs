//! The whole agent's cost as a running process: `osprey agent --interval 1s`
//! over 10, 100 and 1000 containers (real cgroup v1 hierarchies of this
//! machine, and fixture trees in v1 and v2 formats with the kubepods
//! layout: a pod cgroup per container), measured over a fixed period after
//! a warm-up. Everything the agent does is included: discovery, reading,
//! the recent-history window, the HTTP server, and `/metrics` scrapes at a
//! Prometheus-like cadence.
//!
//! CPU time comes from `/proc/<pid>/task/*/schedstat` (the scheduler's
//! run time in nanoseconds, summed over the agent's threads), not from the
//! 10 ms clock ticks of `/proc/<pid>/stat`; the user/system split, which
//! the kernel only keeps in ticks, comes from the latter. The collection
//! thread's own share is shown apart from the rest (HTTP, scrapes, timers).
//!
//! Run: `cargo bench --bench agent_overhead` (as root for the real-cgroup
//! rows). Settings, all optional:
//!
//! - `OSPREY_BENCH_SECONDS`: the measured period per row (default 60).
//! - `OSPREY_BENCH_SCRAPE_SECONDS`: scrape `/metrics` this often during the
//!   period, as a Prometheus server would (default 15; `0`: never, the
//!   collection alone).
//! - `OSPREY_BENCH_CONTAINERS`: comma-separated sizes (default `10,100,1000`).
//! - `OSPREY_BENCH_CASES`: comma-separated cases out of `real,v1,v2`
//!   (default all three).
//! - `OSPREY_BENCH_AGENTS`: `label=path,label=path`: compare agent binaries
//!   (A/B) in the same run, each row measured for each binary in turn
//!   (default: the `osprey` built with the bench).
//! - `OSPREY_BENCH_REPEAT`: measure every row this many times (default 1),
//!   interleaving the binaries (A B A B …) so machine noise hits both.
//! - `OSPREY_BENCH_HOLD`: build the 1000-container v1 and v2 kubepods
//!   fixtures, print the agent commands that read them, and wait this many
//!   seconds (for `perf record` on an agent started by hand).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use osprey_collector::fixture::{FixtureTree, FixtureVersion, PathStyle, paths};

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// The process's user and system time, seconds (clock-tick resolution;
/// includes threads that have exited).
fn user_system_seconds(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("agent alive");
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line (11 and 12 here).
    let ticks = clock_ticks();
    (
        f[11].parse::<f64>().unwrap() / ticks,
        f[12].parse::<f64>().unwrap() / ticks,
    )
}

/// Run time in nanoseconds of each live thread of `pid` (first field of
/// `schedstat`), with the thread's name.
fn thread_run_ns(pid: u32) -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let dir = task.path();
        let (Ok(sched), Ok(comm)) = (
            std::fs::read_to_string(dir.join("schedstat")),
            std::fs::read_to_string(dir.join("comm")),
        ) else {
            continue; // exited meanwhile
        };
        if let Some(ns) = sched.split_whitespace().next().and_then(|s| s.parse().ok()) {
            out.insert(tid, (comm.trim().to_string(), ns));
        }
    }
    out
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

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().next().unwrap_or("?").to_string())
        .unwrap_or_else(|_| "?".into())
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

/// Scrapes `/metrics` once; returns the body's size and the agent's
/// `osprey_agent_cgroups` figure.
fn scrape(port: u16) -> Option<(usize, Option<f64>)> {
    let body = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
        .ok()?
        .text()
        .ok()?;
    let cgroups = body
        .lines()
        .find_map(|l| l.strip_prefix("osprey_agent_cgroups "))
        .and_then(|v| v.parse().ok());
    Some((body.len(), cgroups))
}

struct Row {
    case: String,
    agent: String,
    containers: usize,
    cgroups: f64,
    core_percent: f64,
    user_percent: f64,
    system_percent: f64,
    collect_ms_per_tick: f64,
    scrapes: usize,
    exited_threads: usize,
    rss_mib: f64,
    peak_mib: f64,
    load: String,
}

struct Settings {
    seconds: u64,
    scrape_every: Option<Duration>,
}

fn measure(
    settings: &Settings,
    (label, binary): &(String, PathBuf),
    case: &str,
    containers: usize,
    args: &[String],
) -> Row {
    let port = free_port();
    let child = Command::new(binary)
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
    let deadline = Instant::now() + Duration::from_secs(60);
    let cgroups = loop {
        if let Some(n) = scrape(port)
            .and_then(|(_, n)| n)
            .filter(|n| *n >= containers as f64)
        {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "agent did not see {containers} cgroups"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // Warm-up: the first ticks open files, and the allocator settles after
    // the start-up scrapes above.
    std::thread::sleep(Duration::from_secs(5));
    let load0 = load_average();
    let threads0 = thread_run_ns(pid);
    let (user0, system0) = user_system_seconds(pid);
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(settings.seconds);
    let mut scrapes = 0;
    // A Prometheus server scrapes at its own cadence, not in step with the
    // agent's ticks: the first scrape comes half a period in.
    let mut next_scrape = settings.scrape_every.map(|every| t0 + every / 2);
    loop {
        let now = Instant::now();
        let wake = next_scrape.map_or(end, |s| s.min(end));
        if wake > now {
            std::thread::sleep(wake - now);
        }
        if Instant::now() >= end {
            break;
        }
        if let (Some(s), Some(every)) = (next_scrape, settings.scrape_every) {
            scrape(port).expect("scraping /metrics");
            scrapes += 1;
            next_scrape = Some(s + every);
        }
    }
    let threads1 = thread_run_ns(pid);
    let wall = t0.elapsed().as_secs_f64();
    let (user1, system1) = user_system_seconds(pid);
    let mut total_ns = 0u64;
    let mut collect_ns = 0u64;
    for (tid, (name, ns)) in &threads1 {
        let before = threads0.get(tid).map_or(0, |(_, ns)| *ns);
        let used = ns.saturating_sub(before);
        total_ns += used;
        if name == "osprey-collect" {
            collect_ns += used;
        }
    }
    let exited_threads = threads0
        .keys()
        .filter(|t| !threads1.contains_key(t))
        .count();
    let tick_total = (user1 - user0) + (system1 - system0);
    let precise = total_ns as f64 / 1e9;
    // A thread that exited took its run time with it from the per-thread
    // figures; the process's tick counts still have it.
    let cpu = if exited_threads == 0 {
        precise
    } else {
        tick_total.max(precise)
    };
    let split = |part: f64| {
        if tick_total > 0.0 {
            100.0 * cpu * part / tick_total / wall
        } else {
            0.0
        }
    };
    Row {
        case: case.into(),
        agent: label.clone(),
        containers,
        cgroups,
        core_percent: 100.0 * cpu / wall,
        user_percent: split(user1 - user0),
        system_percent: split(system1 - system0),
        collect_ms_per_tick: 1000.0 * collect_ns as f64 / 1e9 / wall, // one tick a second
        scrapes,
        exited_threads,
        rss_mib: status_kib(pid, "VmRSS:") as f64 / 1024.0,
        peak_mib: status_kib(pid, "VmHWM:") as f64 / 1024.0,
        load: format!("{load0}→{}", load_average()),
    }
}

struct RealTree {
    parent: String,
    dirs: Vec<PathBuf>,
}

impl RealTree {
    fn create(n: usize) -> Option<Self> {
        let parent = format!("osprey-agentbench-{}", std::process::id());
        let mut tree = Self {
            parent,
            dirs: Vec::new(),
        };
        for c in ["cpu", "cpuacct", "memory", "blkio", "pids"] {
            let base = Path::new("/sys/fs/cgroup").join(c).join(&tree.parent);
            std::fs::create_dir(&base).ok()?;
            tree.dirs.push(base.clone());
            for i in 0..n {
                let d = base.join(format!("c{i}"));
                std::fs::create_dir(&d).ok()?;
                tree.dirs.push(d);
            }
        }
        Some(tree)
    }
}

impl Drop for RealTree {
    fn drop(&mut self) {
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn kubepods_fixture(version: FixtureVersion, n: usize) -> FixtureTree {
    let tree = FixtureTree::new(version).expect("fixture");
    tree.add_containers(
        PathStyle::KubepodsSystemd(paths::Qos::Burstable, paths::Runtime::Containerd),
        0,
        n,
    )
    .expect("containers");
    tree
}

fn fixture_args(tree: &FixtureTree) -> Vec<String> {
    vec![
        "--cgroup-root".to_string(),
        tree.root().display().to_string(),
        "--containers-only".to_string(),
    ]
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if let Ok(hold) = std::env::var("OSPREY_BENCH_HOLD") {
        let trees = [FixtureVersion::V1, FixtureVersion::V2].map(|v| kubepods_fixture(v, 1000));
        for tree in &trees {
            println!(
                "{:?}: osprey agent --interval 1s {}",
                tree.version(),
                fixture_args(tree).join(" ")
            );
        }
        std::thread::sleep(Duration::from_secs(hold.parse().unwrap_or(600)));
        return;
    }
    let settings = Settings {
        seconds: env_u64("OSPREY_BENCH_SECONDS", 60),
        scrape_every: match env_u64("OSPREY_BENCH_SCRAPE_SECONDS", 15) {
            0 => None,
            s => Some(Duration::from_secs(s)),
        },
    };
    let sizes: Vec<usize> = env_list("OSPREY_BENCH_CONTAINERS", "10,100,1000")
        .iter()
        .map(|s| s.parse().expect("OSPREY_BENCH_CONTAINERS: numbers"))
        .collect();
    let cases = env_list("OSPREY_BENCH_CASES", "real,v1,v2");
    let agents: Vec<(String, PathBuf)> = match std::env::var("OSPREY_BENCH_AGENTS") {
        Ok(list) => list
            .split(',')
            .map(|a| {
                let (label, path) = a
                    .split_once('=')
                    .expect("OSPREY_BENCH_AGENTS: label=path,…");
                (label.to_string(), PathBuf::from(path))
            })
            .collect(),
        Err(_) => vec![("osprey".into(), PathBuf::from(env!("CARGO_BIN_EXE_osprey")))],
    };
    let repeat = env_u64("OSPREY_BENCH_REPEAT", 1).max(1);

    let mut rows = Vec::new();
    for &n in &sizes {
        for case in &cases {
            // Each case's tree is built once and read by every binary.
            let real;
            let fixture;
            let (name, args) = match case.as_str() {
                "real" => {
                    real = RealTree::create(n);
                    match &real {
                        Some(tree) => (
                            "real cgroup v1",
                            vec!["--subtree".to_string(), format!("/{}", tree.parent)],
                        ),
                        None => {
                            eprintln!("real cgroups need root and cgroup v1; row skipped");
                            continue;
                        }
                    }
                }
                "v1" | "v2" => {
                    let version = if case == "v1" {
                        FixtureVersion::V1
                    } else {
                        FixtureVersion::V2
                    };
                    fixture = kubepods_fixture(version, n);
                    let name = if case == "v1" {
                        "fixture v1"
                    } else {
                        "fixture v2"
                    };
                    (name, fixture_args(&fixture))
                }
                other => panic!("OSPREY_BENCH_CASES: unknown case {other}"),
            };
            for _ in 0..repeat {
                for agent in &agents {
                    let row = measure(&settings, agent, name, n, &args);
                    eprintln!(
                        "{} {} {}: {:.2} % of a core (load {})",
                        row.agent, row.case, n, row.core_percent, row.load
                    );
                    rows.push(row);
                }
            }
        }
    }
    println!(
        "agent process at a 1 s interval, measured over {} s after warm-up; {}",
        settings.seconds,
        match settings.scrape_every {
            Some(every) => format!("/metrics scraped every {} s", every.as_secs()),
            None => "no scrapes".into(),
        }
    );
    println!(
        "{:<10} {:<16} {:>6} {:>7} {:>9} {:>7} {:>7} {:>11} {:>7} {:>8} {:>8} {:>11}",
        "agent",
        "case",
        "conts",
        "cgroups",
        "% core",
        "user %",
        "sys %",
        "collect ms",
        "scrapes",
        "RSS MiB",
        "peak MiB",
        "load"
    );
    for r in rows {
        println!(
            "{:<10} {:<16} {:>6} {:>7} {:>8.2}% {:>7.2} {:>7.2} {:>11.2} {:>7} {:>8.1} {:>8.1} {:>11}{}",
            r.agent,
            r.case,
            r.containers,
            r.cgroups,
            r.core_percent,
            r.user_percent,
            r.system_percent,
            r.collect_ms_per_tick,
            r.scrapes,
            r.rss_mib,
            r.peak_mib,
            r.load,
            if r.exited_threads > 0 {
                format!(" ({} threads exited: tick-based total)", r.exited_threads)
            } else {
                String::new()
            }
        );
    }
}
