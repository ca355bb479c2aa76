//! Collection cost for 10, 100 and 1000 containers, on fixture trees (v1
//! and v2 file formats on a plain filesystem) and on real cgroup v1
//! hierarchies of this machine (root needed; skipped with a notice
//! otherwise).
//!
//! For each case it prints the CPU time of one collection cycle (thread CPU
//! time, median of many cycles), per container, the "floor" — the CPU time
//! of merely opening, reading and closing the same per-tick files once in a
//! minimal loop — and the agent's cost as a multiple of that floor.
//!
//! Run: `cargo bench -p osprey-collector --bench collect`

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use osprey_collector::collect::Collector;
use osprey_collector::config::AgentConfig;
use osprey_collector::fixture::{FixtureTree, FixtureVersion, PathStyle, paths};

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// CPU time of the minimal open/read/close loop over `files`.
fn floor_cycle(files: &[PathBuf], buf: &mut Vec<u8>) -> Duration {
    let start = thread_cpu();
    for f in files {
        buf.clear();
        if let Ok(mut file) = fs::File::open(f) {
            let _ = file.read_to_end(buf);
        }
    }
    thread_cpu() - start
}

struct Row {
    case: String,
    containers: usize,
    cgroups: usize,
    files: usize,
    cycle: Duration,
    floor: Duration,
}

fn measure(case: &str, containers: usize, config: AgentConfig) -> Row {
    let mut collector = Collector::new(config).expect("collector starts");
    let first = collector.collect(); // discovery and opening of every file
    let cgroups = first.containers.len();
    let files = collector.per_tick_files();
    let cycles = (20_000 / containers.max(1)).clamp(20, 400);
    let mut agent = Vec::with_capacity(cycles);
    let mut floor = Vec::with_capacity(cycles);
    let mut buf = Vec::with_capacity(8192);
    for _ in 0..cycles {
        let start = thread_cpu();
        let snap = collector.collect();
        agent.push(thread_cpu() - start);
        assert_eq!(snap.containers.len(), cgroups, "stable tree");
        floor.push(floor_cycle(&files, &mut buf));
    }
    Row {
        case: case.to_string(),
        containers,
        cgroups,
        files: files.len(),
        cycle: median(agent),
        floor: median(floor),
    }
}

fn fixture_config(tree: &FixtureTree) -> AgentConfig {
    AgentConfig {
        cgroup_root: Some(tree.root().to_path_buf()),
        docker_root: tree.root().join("no-docker"),
        pod_log_root: tree.root().join("no-pods"),
        container_log_root: tree.root().join("no-containers"),
        ..AgentConfig::default()
    }
}

/// `n` real cgroups under `/osprey-bench-<pid>` in each v1 controller the
/// agent reads; removed on drop.
struct RealTree {
    parent: String,
    dirs: Vec<PathBuf>,
}

impl RealTree {
    fn create(n: usize) -> Option<Self> {
        let parent = format!("osprey-bench-{}", std::process::id());
        let mut dirs = Vec::new();
        for c in ["cpu", "cpuacct", "memory", "blkio", "pids"] {
            let base = Path::new("/sys/fs/cgroup").join(c).join(&parent);
            fs::create_dir(&base).ok()?;
            dirs.push(base.clone());
            for i in 0..n {
                let d = base.join(format!("c{i}"));
                fs::create_dir(&d).ok()?;
                dirs.push(d);
            }
        }
        Some(Self { parent, dirs })
    }
}

impl Drop for RealTree {
    fn drop(&mut self) {
        for d in self.dirs.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    }
}

fn main() {
    let mut rows = Vec::new();
    for &n in &[10usize, 100, 1000] {
        for version in [FixtureVersion::V1, FixtureVersion::V2] {
            let tree = FixtureTree::new(version).expect("fixture tree");
            let per_style = n / 4;
            let styles = [
                PathStyle::KubepodsSystemd(paths::Qos::Burstable, paths::Runtime::Containerd),
                PathStyle::KubepodsCgroupfs(paths::Qos::BestEffort),
                PathStyle::DockerSystemd,
                PathStyle::SystemdService,
            ];
            let mut seed = 0;
            for (i, style) in styles.into_iter().enumerate() {
                let count = if i == 3 { n - 3 * per_style } else { per_style };
                tree.add_containers(style, seed, count).expect("containers");
                seed += count as u64;
            }
            let mut config = fixture_config(&tree);
            config.containers_only = false;
            rows.push(measure(&format!("fixture {version:?}"), n, config));
        }
        match RealTree::create(n) {
            Some(real) => {
                let config = AgentConfig {
                    subtrees: vec![format!("/{}", real.parent)],
                    ..AgentConfig::default()
                };
                rows.push(measure("real cgroup v1", n, config));
            }
            None => eprintln!(
                "real cgroups: cannot create /sys/fs/cgroup/*/osprey-bench-* (needs root and cgroup v1); skipped"
            ),
        }
    }
    println!(
        "{:<16} {:>10} {:>8} {:>7} {:>12} {:>14} {:>12} {:>8} {:>13}",
        "case",
        "containers",
        "cgroups",
        "files",
        "cpu/cycle",
        "per container",
        "floor/cycle",
        "x floor",
        "%core @1s"
    );
    for r in rows {
        println!(
            "{:<16} {:>10} {:>8} {:>7} {:>10.3}ms {:>12.2}µs {:>10.3}ms {:>8.2} {:>12.3}%",
            r.case,
            r.containers,
            r.cgroups,
            r.files,
            r.cycle.as_secs_f64() * 1e3,
            r.cycle.as_secs_f64() * 1e6 / r.cgroups as f64,
            r.floor.as_secs_f64() * 1e3,
            r.cycle.as_secs_f64() / r.floor.as_secs_f64(),
            r.cycle.as_secs_f64() * 100.0,
        );
    }
}
