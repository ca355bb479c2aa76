//! The whole agent's cost as a running process: `osprey agent --interval 1s`
//! over 10, 100 and 1000 containers (real cgroup v1 hierarchies of this
//! machine, flat and in the kubepods layout with a pod cgroup per
//! container, and fixture trees in v1 and v2 formats with the kubepods
//! layout), measured over a fixed period after
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
//! - `OSPREY_BENCH_SCRAPE_GZIP`: `1` asks for gzip in those scrapes, as
//!   Prometheus does by default (default: plain text).
//! - `OSPREY_BENCH_CONTAINERS`: comma-separated sizes (default `10,100,1000`).
//! - `OSPREY_BENCH_CASES`: comma-separated cases out of `real` (cgroups
//!   side by side), `real-pods` (the kubelet's layout: a pod cgroup per
//!   container under `kubepods.slice`), `v1`, `v2` (fixtures in that
//!   layout) (default all four).
//! - `OSPREY_BENCH_AGENTS`: `label=path,label=path`: compare agent binaries
//!   (A/B) in the same run, each row measured for each binary in turn
//!   (default: the `osprey` built with the bench).
//! - `OSPREY_BENCH_REPEAT`: measure every row this many times (default 1),
//!   interleaving the binaries (A B A B …) so machine noise hits both.
//! - `OSPREY_BENCH_ACTIVITY`: comma-separated, out of `busy,active,idle`
//!   (default all three). `busy`, the worst case: every cgroup's CPU time
//!   and memory usage move between two ticks (in each real cgroup a
//!   process wakes every 500 ms and touches a new page of memory, letting
//!   them go every 1 MiB; in the fixtures the bench advances each cgroup's
//!   CPU and memory counters every 500 ms). `active`: CPU time moves,
//!   memory stands still (the processes wake without touching new
//!   memory; the fixtures' CPU counters move), as for services between
//!   requests. `idle`: nothing moves (the real cgroups' processes sleep;
//!   the fixtures' files stay as written), as for pause containers and
//!   idle sidecars. The agent reads less of a cgroup whose figures stand
//!   still (`memory.stat` and v2's swap usage while its memory usage
//!   does, `pids.current` and
//!   v2's pressure files while its CPU time does, each for up to 10 s;
//!   `memory.stat` every 2 s while the usage moves a little, as every
//!   activity here moves it), so all three are shown.
//! - `OSPREY_BENCH_FLOOR`: `0` skips the floor. By default each agent's
//!   row also measures the floor: a single-threaded process of the bench's
//!   own holding the files the agent reads open (the list and cadences the
//!   collector itself plans, [`Collector::read_plan`]: per-tick files, slow
//!   ones, the pod cgroups' every tenth tick (their slow ones every
//!   minute), blkio pairs with data, the limit files and empty blkio files
//!   opened, read and closed at the agent's refresh and probe cadences,
//!   `memory.stat` and v2's `memory.swap.current`, `pids.current` and
//!   v2's pressure files every tenth
//!   tick where the activity leaves the figure that gates them still, and
//!   `memory.stat` every second tick where it moves it) and reading each once
//!   when due, a cgroup's files together, at 1 s ticks. The two take turns
//!   in 10 s slices, the one stopped (SIGSTOP) while the other runs, so
//!   that both see the machine at the same moments and neither's reads
//!   touch the other's; the table shows the agent's collection as a
//!   multiple of the floor's (`× floor`). The agent's figures are per tick
//!   of its running time (its own count of collections).
//! - `OSPREY_BENCH_HOLD`: build the 1000-container v1 and v2 kubepods
//!   fixtures, print the agent commands that read them, and wait this many
//!   seconds or until SIGTERM or SIGINT, then remove them (for `perf
//!   record` on an agent started by hand).
//!
//! Where it can (root, a memory controller), the bench runs each agent in
//! a memory cgroup of its own and reports what that cgroup was charged
//! beside the RSS: the kernel memory behind the agent's open files counts
//! against a container's memory limit but not in its RSS.

use std::collections::HashMap;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use osprey_collector::collect::{Collector, Probe};
use osprey_collector::config::AgentConfig;
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

/// Collections the agent has finished (see [`Scraped::collections`]).
fn ticks_done(port: u16) -> u64 {
    scrape(port)
        .and_then(|s| s.collections)
        .expect("the agent's collection count on /metrics")
}

/// Sends `signal` to the agent (SIGSTOP and SIGCONT around the floor).
fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill only sends a signal to the agent we started.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(
        rc,
        0,
        "signalling the agent: {}",
        std::io::Error::last_os_error()
    );
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

/// A memory cgroup of its own for the agent, so that the bench reads what
/// a container limit on the agent would count: its RSS and also the kernel
/// memory charged to it, of which the descriptors it holds open are most
/// (each cgroup file read through a held descriptor keeps a page of the
/// kernel's for its text until closed: ~4.4 KiB a descriptor on 6.x
/// kernels). The RSS alone hides that.
struct MemoryCgroup {
    dir: PathBuf,
    /// cgroup v1's memory controller, else the unified hierarchy.
    v1: bool,
}

impl MemoryCgroup {
    /// Makes the cgroup under the v1 memory controller or, without one,
    /// in the unified hierarchy if it has the memory controller; `None`
    /// without either (or without root).
    fn create() -> Option<Self> {
        let name = format!("osprey-agentbench-memory-{}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let (parent, is_v1) = if v1.join("memory.usage_in_bytes").exists() {
            (v1.to_path_buf(), true)
        } else {
            let unified = Path::new("/sys/fs/cgroup");
            let controllers =
                std::fs::read_to_string(unified.join("cgroup.subtree_control")).ok()?;
            if !controllers.split_whitespace().any(|c| c == "memory") {
                return None;
            }
            (unified.to_path_buf(), false)
        };
        let dir = parent.join(name);
        std::fs::create_dir(&dir).ok()?;
        Some(Self { dir, v1: is_v1 })
    }

    /// A command that runs `binary` in this cgroup from its first
    /// instruction: a shell moves itself in, then becomes the agent (same
    /// pid), so nothing the agent allocates is charged elsewhere.
    fn command(&self, binary: &Path) -> Command {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(r#"echo $$ > "$0" && exec "$@""#)
            .arg(self.dir.join("cgroup.procs"))
            .arg(binary);
        command
    }

    fn read_mib(&self, file: &str) -> f64 {
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map_or(f64::NAN, |b| b as f64 / (1024.0 * 1024.0))
    }

    /// Everything charged to the cgroup now: RSS, kernel memory and any
    /// page cache the agent brought in.
    fn usage_mib(&self) -> f64 {
        self.read_mib(if self.v1 {
            "memory.usage_in_bytes"
        } else {
            "memory.current"
        })
    }

    /// The page cache charged to the cgroup: pages of files the agent was
    /// the first to read (its own binary, on a first run), which the
    /// kernel reclaims before anything else. Without it the usage is what
    /// the agent needs.
    fn page_cache_mib(&self) -> f64 {
        self.memory_stat_mib(if self.v1 { "cache" } else { "file" })
    }

    /// One figure of the cgroup's `memory.stat`, in MiB.
    fn memory_stat_mib(&self, key: &str) -> f64 {
        std::fs::read_to_string(self.dir.join("memory.stat"))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    (k == key).then(|| v.trim().parse::<u64>().ok())?
                })
            })
            .map_or(f64::NAN, |b| b as f64 / (1024.0 * 1024.0))
    }

    /// The highest [`usage_mib`](Self::usage_mib) since the cgroup was made.
    fn peak_mib(&self) -> f64 {
        self.read_mib(if self.v1 {
            "memory.max_usage_in_bytes"
        } else {
            "memory.peak"
        })
    }

    /// The kernel's memory charged to the cgroup (open files' buffers,
    /// slab objects, page tables, stacks, socket buffers).
    fn kernel_mib(&self) -> f64 {
        if self.v1 {
            self.read_mib("memory.kmem.usage_in_bytes")
        } else {
            self.memory_stat_mib("kernel")
        }
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // The agent was killed and reaped first (it is dropped before);
        // the kernel may take a moment to let the emptied cgroup go.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("could not remove {}", self.dir.display());
    }
}

struct Agent(Child);
impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a scrape of `/metrics` says of the agent itself.
struct Scraped {
    /// `osprey_agent_cgroups`: the cgroups its last collection read.
    cgroups: Option<f64>,
    /// The collections it has finished: the count of its
    /// `osprey_agent_collection_duration_seconds` histogram.
    collections: Option<u64>,
}

/// Scrapes `/metrics` once.
fn scrape(port: u16) -> Option<Scraped> {
    scrape_sized(port, false).map(|(scraped, _)| scraped)
}

/// Scrapes `/metrics` once, asking for gzip if `gzip`, as Prometheus does
/// by default; also returns the bytes of text and the bytes sent.
fn scrape_sized(port: u16, gzip: bool) -> Option<(Scraped, (usize, usize))> {
    use std::io::Read as _;
    let mut request =
        reqwest::blocking::Client::new().get(format!("http://127.0.0.1:{port}/metrics"));
    if gzip {
        request = request.header("Accept-Encoding", "gzip");
    }
    let sent = request.send().ok()?.bytes().ok()?;
    let body = if gzip {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&sent[..])
            .read_to_string(&mut text)
            .ok()?;
        text
    } else {
        String::from_utf8(sent.to_vec()).ok()?
    };
    let sizes = (body.len(), sent.len());
    let value = |name: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .map(str::trim)
    };
    let scraped = Scraped {
        cgroups: value("osprey_agent_cgroups").and_then(|v| v.parse().ok()),
        collections: value("osprey_agent_collection_duration_seconds_count")
            .and_then(|v| v.parse().ok()),
    };
    Some((scraped, sizes))
}

struct Row {
    case: String,
    activity: &'static str,
    agent: String,
    containers: usize,
    cgroups: f64,
    core_percent: f64,
    user_percent: f64,
    system_percent: f64,
    collect_ms_per_tick: f64,
    scrapes: usize,
    /// The last scrape's text and the bytes sent for it (fewer with gzip).
    scrape_size: Option<(usize, usize)>,
    exited_threads: usize,
    rss_mib: f64,
    /// The anonymous part of the RSS: the agent's own memory, without the
    /// pages of its binary and libraries it has mapped (which move by a
    /// MiB between builds with the code's layout).
    anon_mib: f64,
    peak_mib: f64,
    /// What the agent's own memory cgroup was charged at the end without
    /// page cache, the kernel's share of it, and the peak charge (page
    /// cache included: the kernel keeps no other peak) (see
    /// [`MemoryCgroup`]); `None` where the bench could not make one.
    cgroup_mib: Option<(f64, f64, f64)>,
    load: String,
    /// The floor, measured between the agent's slices (see [`FloorFiles`]).
    floor: Option<FloorRun>,
}

struct Settings {
    seconds: u64,
    scrape_every: Option<Duration>,
    /// Ask for gzip in the periodic scrapes.
    scrape_gzip: bool,
}

fn measure(
    settings: &Settings,
    (label, binary): &(String, PathBuf),
    case: &str,
    containers: usize,
    args: &[String],
    floor: Option<&[PlannedFile]>,
) -> Row {
    let port = free_port();
    let memory = MemoryCgroup::create();
    let mut command = match &memory {
        Some(cgroup) => cgroup.command(binary),
        None => Command::new(binary),
    };
    // The agent dies with the bench, also when the bench is killed before
    // its guard is dropped: a stray agent skews every later measurement.
    // SAFETY: prctl(PR_SET_PDEATHSIG) in the child only sets its death
    // signal, which survives the exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = command
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
            .and_then(|s| s.cgroups)
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
    // Opened before the measured period: opening ~20 000 files is no part
    // of either figure.
    let mut floor = floor.map(FloorProcess::start);
    // Warm-up: the first ticks open files, and the allocator settles after
    // the start-up scrapes above.
    std::thread::sleep(Duration::from_secs(5));
    let ticks0 = ticks_done(port);
    let load0 = load_average();
    let threads0 = thread_run_ns(pid);
    let (user0, system0) = user_system_seconds(pid);
    // The agent and the floor's process take turns in slices of 10 s, the
    // one stopped (SIGSTOP) while the other runs. The machine's speed
    // drifts by tens of percent within minutes, so a floor taken before or
    // after the agent misstated the ratio by as much; read at the same
    // time (half a tick apart), the one's reads made the other's dearer
    // (the floor took 40 % more beside the agent than alone, the agent
    // 30 % less); and read from the bench's own process (a thousand
    // children, an HTTP client's threads) the same files cost 10-35 %
    // more than from a process of their own. 10 s: the agent's slow files
    // are due every 10 s, and after a pause they are all due at once, so
    // a 10 s slice reads them as often as an agent never paused does.
    let slice = Duration::from_secs(10);
    let period = Duration::from_secs(settings.seconds);
    // The agent's running time, and when (in it) the next scrape is due: a
    // Prometheus server scrapes at its own cadence, not in step with the
    // agent's ticks, so the first scrape comes half a period in.
    let mut ran = Duration::ZERO;
    let mut next_scrape = settings.scrape_every.map(|every| every / 2);
    let mut scrapes = 0;
    let mut scrape_size = None;
    while ran < period {
        let len = slice.min(period - ran);
        let started = Instant::now();
        loop {
            let now = ran + started.elapsed();
            let wake = next_scrape.map_or(ran + len, |s| s.min(ran + len));
            if wake > now {
                std::thread::sleep(wake - now);
            }
            if started.elapsed() >= len {
                break;
            }
            if let (Some(s), Some(every)) = (next_scrape, settings.scrape_every) {
                let (_, size) =
                    scrape_sized(port, settings.scrape_gzip).expect("scraping /metrics");
                scrape_size = Some(size);
                scrapes += 1;
                next_scrape = Some(s + every);
            }
        }
        ran += started.elapsed();
        if let Some(floor) = &mut floor {
            signal(pid, libc::SIGSTOP);
            floor.run(len.as_secs());
            signal(pid, libc::SIGCONT);
        }
    }
    let threads1 = thread_run_ns(pid);
    let (user1, system1) = user_system_seconds(pid);
    // The agent's running time in ticks (one a second), counted by the
    // agent itself: a resumed agent runs the tick it missed at once, so
    // the wall time of the slices would undercount them.
    let ticks = ticks_done(port).saturating_sub(ticks0).max(1);
    let run_seconds = ticks as f64;
    let floor = floor.map(|f| f.result());
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
            100.0 * cpu * part / tick_total / run_seconds
        } else {
            0.0
        }
    };
    Row {
        case: case.into(),
        activity: "",
        agent: label.clone(),
        containers,
        cgroups,
        core_percent: 100.0 * cpu / run_seconds,
        user_percent: split(user1 - user0),
        system_percent: split(system1 - system0),
        collect_ms_per_tick: 1000.0 * collect_ns as f64 / 1e9 / run_seconds,
        scrapes,
        scrape_size,
        exited_threads,
        rss_mib: status_kib(pid, "VmRSS:") as f64 / 1024.0,
        anon_mib: status_kib(pid, "RssAnon:") as f64 / 1024.0,
        peak_mib: status_kib(pid, "VmHWM:") as f64 / 1024.0,
        cgroup_mib: memory.as_ref().map(|m| {
            (
                m.usage_mib() - m.page_cache_mib(),
                m.kernel_mib(),
                m.peak_mib(),
            )
        }),
        load: format!("{load0}→{}", load_average()),
        floor,
    }
}

const REAL_CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "memory", "blkio", "pids"];

struct RealTree {
    parent: String,
    /// Each container's cgroup, relative to `parent`.
    containers: Vec<String>,
    /// Every directory made, parents first.
    dirs: Vec<PathBuf>,
}

impl RealTree {
    /// `n` cgroups side by side (`kubepods`: false), or `n` containers in
    /// the kubelet's systemd-driver layout, each in its own pod cgroup
    /// under the burstable QoS slice: the layout of the fixture rows, with
    /// the kernel's own files.
    fn create(n: usize, kubepods: bool) -> Option<Self> {
        let parent = format!("osprey-agentbench-{}", std::process::id());
        let containers: Vec<String> = (0..n as u64)
            .map(|i| {
                if kubepods {
                    KUBEPODS_STYLE.path(i).trim_start_matches('/').to_string()
                } else {
                    format!("c{i}")
                }
            })
            .collect();
        let mut tree = Self {
            parent,
            containers,
            dirs: Vec::new(),
        };
        for c in REAL_CONTROLLERS {
            let base = Path::new("/sys/fs/cgroup").join(c).join(&tree.parent);
            for container in &tree.containers {
                let mut dir = base.clone();
                for part in std::iter::once("").chain(container.split('/')) {
                    dir.push(part);
                    if !dir.exists() {
                        std::fs::create_dir(&dir).ok()?;
                        tree.dirs.push(dir.clone());
                    }
                }
            }
        }
        Some(tree)
    }
}

/// What the cgroups' processes do while a row is measured
/// (`OSPREY_BENCH_ACTIVITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    /// CPU time and memory usage move between two ticks.
    Busy,
    /// CPU time moves, memory usage stands still.
    Active,
    /// Nothing moves.
    Idle,
}

impl Activity {
    fn parse(name: &str) -> Option<Self> {
        [Activity::Busy, Activity::Active, Activity::Idle]
            .into_iter()
            .find(|a| a.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Activity::Busy => "busy",
            Activity::Active => "active",
            Activity::Idle => "idle",
        }
    }

    fn moves(self, probe: Probe) -> bool {
        match probe {
            Probe::CpuTime => self != Activity::Idle,
            Probe::MemoryUsage => self == Activity::Busy,
        }
    }
}

/// A process in each cgroup of a real tree, as every container has one,
/// doing what `activity` says.
struct Occupants(Vec<Child>);

impl Occupants {
    fn start(tree: &RealTree, activity: Activity) -> Self {
        let exe = std::env::current_exe().expect("the bench's own path");
        let children = tree
            .containers
            .iter()
            .map(|container| {
                let procs: Vec<String> = REAL_CONTROLLERS
                    .iter()
                    .map(|c| {
                        format!(
                            "/sys/fs/cgroup/{c}/{}/{container}/cgroup.procs",
                            tree.parent
                        )
                    })
                    .collect();
                Command::new(&exe)
                    .env("OSPREY_BENCH_OCCUPY", procs.join(","))
                    .env("OSPREY_BENCH_OCCUPY_ACTIVITY", activity.name())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("starting a cgroup's process")
            })
            .collect();
        // Ready when every cgroup holds its process.
        let count = format!("/sys/fs/cgroup/pids/{}/pids.current", tree.parent);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::fs::read_to_string(&count)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            != Some(tree.containers.len())
        {
            assert!(Instant::now() < deadline, "cgroup processes did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Occupants(children)
    }
}

impl Drop for Occupants {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

/// The body of a cgroup's process (`OSPREY_BENCH_OCCUPY`): joins the
/// cgroups listed, then wakes every 500 ms (`active`), touching a new page
/// of memory each time (`busy`: its memory usage grows two pages a second,
/// falling back every 1 MiB), or sleeps until killed (`idle`). It dies
/// with the bench.
fn occupy(procs: &str, activity: Activity) -> ! {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets this process's death signal.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let pid = std::process::id().to_string();
    for file in procs.split(',') {
        std::fs::write(file, &pid).unwrap_or_else(|e| panic!("joining {file}: {e}"));
    }
    if activity == Activity::Idle {
        loop {
            // SAFETY: pause() only waits for a signal.
            unsafe {
                libc::pause();
            }
        }
    }
    const PAGE: usize = 4096;
    const PAGES: usize = 256;
    let region = (activity == Activity::Busy).then(|| {
        // SAFETY: a fresh private anonymous mapping, touched only below
        // within its length.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE * PAGES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mapping the busy process's memory");
        ptr.cast::<u8>()
    });
    let mut next = 0;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        if let Some(region) = region {
            if next == PAGES {
                // SAFETY: the whole mapping, given back to the kernel.
                unsafe { libc::madvise(region.cast(), PAGE * PAGES, libc::MADV_DONTNEED) };
                next = 0;
            }
            // SAFETY: `next < PAGES`: inside the mapping.
            unsafe { region.add(next * PAGE).write_volatile(1) };
            next += 1;
        }
    }
}

/// Advances the CPU counter of every cgroup of a fixture tree every 500 ms
/// (v1 `cpuacct.usage`, v2 `cpu.stat usage_usec`), as running containers
/// move it, and with `memory` their memory usage (v1
/// `memory.usage_in_bytes`, v2 `memory.current`); stops when dropped.
struct FixtureActivity {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FixtureActivity {
    fn start(tree: &FixtureTree, memory: bool) -> Self {
        let names: &[&str] = match (tree.version(), memory) {
            (FixtureVersion::V1, false) => &["cpuacct.usage"],
            (FixtureVersion::V1, true) => &["cpuacct.usage", "memory.usage_in_bytes"],
            (FixtureVersion::V2, false) => &["cpu.stat"],
            (FixtureVersion::V2, true) => &["cpu.stat", "memory.current"],
        };
        let mut files = Vec::new();
        for name in names {
            let before = files.len();
            find_files(tree.root(), name, &mut files);
            assert!(files.len() > before, "no {name} in the fixture");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                for f in &files {
                    advance_first_number(f);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        FixtureActivity {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FixtureActivity {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn find_files(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            find_files(&path, name, out);
        } else if entry.file_name() == name {
            out.push(path);
        }
    }
}

/// Adds 1000 to the first number in a file, rewriting it in place while
/// its length stays (the agent reads it meanwhile and must never see it
/// empty, as a truncating write would show it).
fn advance_first_number(path: &Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let Some(start) = text.find(|c: char| c.is_ascii_digit()) else {
        return;
    };
    let len = text[start..]
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len() - start);
    let Ok(n) = text[start..start + len].parse::<u64>() else {
        return;
    };
    let next = (n + 1000).to_string();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    if next.len() == len {
        file.write_at(next.as_bytes(), start as u64).unwrap();
    } else {
        let whole = format!("{}{next}{}", &text[..start], &text[start + len..]);
        file.write_at(whole.as_bytes(), 0).unwrap();
    }
}

impl Drop for RealTree {
    fn drop(&mut self) {
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// The floor's files: those an agent with `config` reads, as the
/// collector plans them after its first tick (the per-tick files, the slow
/// ones, the pod and QoS cgroups' on their slower cadence, the v1 blkio
/// pairs with data, `/proc/<pid>/net/dev` of pods with their own network,
/// and, opened when due, the limit files every minute and the v1 blkio
/// files probed every minute while empty), each with how often it is due. A file the agent carries while a figure
/// of its cgroup stands still (`memory.stat`, `pids.current`) is due on
/// its quiet cadence where `activity` leaves that figure still.
fn floor_plan(config: AgentConfig, activity: Activity) -> Vec<PlannedFile> {
    let mut collector = Collector::new(config).expect("an in-process collector for the plan");
    collector.collect();
    collector
        .read_plan()
        .into_iter()
        .map(|r| PlannedFile {
            every: match r.quiet_when {
                Some(probe) if !activity.moves(probe) => r.quiet_every,
                _ => r.every,
            },
            path: r.path,
            cgroup: r.cgroup as u64,
            held: r.held,
        })
        .collect()
}

/// A file of the floor: read every `every` ticks, on the ticks where
/// `(tick + cgroup) % every == 0`, so that the slower files are spread
/// over the ticks and a cgroup's due files are read together, as the agent
/// reads them (spread file by file, a pod cgroup's nine files were read
/// on nine ticks out of ten, which the agent never does).
struct PlannedFile {
    path: PathBuf,
    cgroup: u64,
    every: u64,
    /// Held open between reads, as the agent holds it; `false`: opened
    /// when due (limit files, blkio probes).
    held: bool,
}

/// The floor: the agent's files, held open (as many as the open-file limit
/// allows; the rest are opened when due, as the agent's slow files are
/// when it cannot raise the limit), read with `pread` once when due by one
/// thread at 1 s ticks. It runs in a process of its own
/// ([`FloorProcess`]), single-threaded, beside the agent's.
struct FloorFiles {
    files: Vec<(Option<std::fs::File>, PlannedFile)>,
    buf: Vec<u8>,
    /// The next tick's number: the slower files are spread over the ticks
    /// from one slice to the next.
    tick: u64,
    cpu_ns: u64,
    reads: u64,
}

impl FloorFiles {
    fn open(plan: Vec<PlannedFile>) -> Self {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct we pass.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        let mut budget = (limit.rlim_cur as usize).saturating_sub(256);
        let files = plan
            .into_iter()
            .map(|planned| {
                let f = (planned.held && budget > 0).then(|| {
                    budget -= 1;
                    std::fs::File::open(&planned.path).unwrap_or_else(|e| {
                        panic!("floor: opening {}: {e}", planned.path.display())
                    })
                });
                (f, planned)
            })
            .collect();
        FloorFiles {
            files,
            buf: vec![0u8; 64 * 1024],
            tick: 0,
            cpu_ns: 0,
            reads: 0,
        }
    }

    /// Reads what is due at each of `ticks` 1 s ticks, adding the thread's
    /// CPU time to the total.
    fn run(&mut self, ticks: u64) {
        let start = Instant::now();
        let cpu0 = thread_cpu_ns();
        for n in 0..ticks {
            let tick = self.tick + n;
            for (f, planned) in &self.files {
                if (tick + planned.cgroup).is_multiple_of(planned.every) {
                    match f {
                        Some(f) => {
                            let _ = f.read_at(&mut self.buf, 0);
                        }
                        None => {
                            let _ = std::fs::File::open(&planned.path)
                                .and_then(|f| f.read_at(&mut self.buf, 0));
                        }
                    }
                    self.reads += 1;
                }
            }
            let next = start + Duration::from_secs(n + 1);
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        self.cpu_ns += thread_cpu_ns() - cpu0;
        self.tick += ticks;
    }

    fn held(&self) -> usize {
        self.files.iter().filter(|(f, _)| f.is_some()).count()
    }
}

/// The body of the floor's process (`OSPREY_BENCH_FLOOR_PLAN`: a file of
/// `cgroup every held path` lines): opens the files, says `files held`, then
/// for each `run N` line on stdin reads N ticks and says `cpu_ns reads`.
/// It dies with the bench.
fn floor_process(plan_file: &str) -> ! {
    use std::io::{BufRead as _, Write as _};
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets this process's death signal.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let plan = std::fs::read_to_string(plan_file)
        .expect("the floor's plan")
        .lines()
        .map(|l| {
            let mut parts = l.splitn(4, ' ');
            let mut number = || {
                parts
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("a plan line")
            };
            let (cgroup, every, held) = (number(), number(), number());
            PlannedFile {
                cgroup,
                every,
                held: held == 1,
                path: PathBuf::from(parts.next().expect("a plan line's path")),
            }
        })
        .collect();
    let mut floor = FloorFiles::open(plan);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} {}", floor.files.len(), floor.held()).unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("the bench's command");
        let ticks: u64 = line
            .strip_prefix("run ")
            .and_then(|n| n.parse().ok())
            .expect("run N");
        let (cpu0, reads0) = (floor.cpu_ns, floor.reads);
        floor.run(ticks);
        writeln!(out, "{} {}", floor.cpu_ns - cpu0, floor.reads - reads0).unwrap();
        out.flush().unwrap();
    }
    std::process::exit(0);
}

/// The floor's process, as the bench drives it.
struct FloorProcess {
    child: Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    files: usize,
    held: usize,
    ticks: u64,
    cpu_ns: u64,
    reads: u64,
}

impl FloorProcess {
    fn start(plan: &[PlannedFile]) -> Self {
        use std::io::BufRead as _;
        let plan_file = std::env::temp_dir().join(format!(
            "osprey-agentbench-floor-{}.plan",
            std::process::id()
        ));
        let text: String = plan
            .iter()
            .map(|p| {
                format!(
                    "{} {} {} {}\n",
                    p.cgroup,
                    p.every,
                    u8::from(p.held),
                    p.path.display()
                )
            })
            .collect();
        std::fs::write(&plan_file, text).expect("writing the floor's plan");
        let mut child = Command::new(std::env::current_exe().expect("the bench's own path"))
            .env("OSPREY_BENCH_FLOOR_PLAN", &plan_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the floor's process");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut ready = String::new();
        stdout
            .read_line(&mut ready)
            .expect("the floor's process ready");
        let _ = std::fs::remove_file(&plan_file);
        let mut counts = ready.split_whitespace().map(|n| n.parse().unwrap_or(0));
        let (files, held) = (counts.next().unwrap_or(0), counts.next().unwrap_or(0));
        FloorProcess {
            child,
            stdin,
            stdout,
            files,
            held,
            ticks: 0,
            cpu_ns: 0,
            reads: 0,
        }
    }

    /// Reads `ticks` ticks' worth and waits for it to finish.
    fn run(&mut self, ticks: u64) {
        use std::io::{BufRead as _, Write as _};
        writeln!(self.stdin, "run {ticks}").expect("commanding the floor");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("the floor's answer");
        let mut n = line
            .split_whitespace()
            .map(|n| n.parse::<u64>().unwrap_or(0));
        self.cpu_ns += n.next().unwrap_or(0);
        self.reads += n.next().unwrap_or(0);
        self.ticks += ticks;
    }

    fn result(&self) -> FloorRun {
        FloorRun {
            ms_per_tick: self.cpu_ns as f64 / 1e6 / self.ticks.max(1) as f64,
            reads_per_tick: self.reads as f64 / self.ticks.max(1) as f64,
            files: self.files,
            held: self.held,
        }
    }
}

impl Drop for FloorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The calling thread's CPU time, ns.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// What [`FloorFiles`] measured.
#[derive(Debug, Clone, Copy)]
struct FloorRun {
    /// CPU time per tick.
    ms_per_tick: f64,
    reads_per_tick: f64,
    /// Files in the plan.
    files: usize,
    /// Files held open (the rest opened when due).
    held: usize,
}

/// The fixture rows' layout: the kubelet's systemd driver, a burstable pod
/// cgroup per container.
const KUBEPODS_STYLE: PathStyle =
    PathStyle::KubepodsSystemd(paths::Qos::Burstable, paths::Runtime::Containerd);

fn kubepods_fixture(version: FixtureVersion, n: usize) -> FixtureTree {
    let tree = FixtureTree::new(version).expect("fixture");
    tree.add_containers(KUBEPODS_STYLE, 0, n)
        .expect("containers");
    tree
}

/// The configuration [`fixture_args`] gives an agent.
fn fixture_config(tree: &FixtureTree) -> AgentConfig {
    AgentConfig {
        interval: Duration::from_secs(1),
        cgroup_root: Some(tree.root().to_path_buf()),
        containers_only: true,
        ..AgentConfig::default()
    }
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

/// SIGTERM and SIGINT, blocked so that they can be waited for: a held
/// bench stopped by either still removes its trees (killed, it left them,
/// 4 GB a pair, in `/dev/shm`).
struct StopSignals(libc::sigset_t);

impl StopSignals {
    /// Blocks the signals in the calling thread (call before any thread is
    /// started, so that every later one inherits the mask).
    fn block() -> Self {
        // SAFETY: the set is a local initialised by sigemptyset, and the
        // mask is the calling thread's own.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            StopSignals(set)
        }
    }

    /// Returns after `timeout`, or as soon as one of the signals arrives
    /// (at once if one came while blocked).
    fn wait(&self, timeout: Duration) {
        let timeout = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: 0,
        };
        // SAFETY: the set and the timeout are valid for the call.
        unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), &timeout) };
    }
}

fn main() {
    if let Ok(procs) = std::env::var("OSPREY_BENCH_OCCUPY") {
        let activity = std::env::var("OSPREY_BENCH_OCCUPY_ACTIVITY")
            .ok()
            .and_then(|a| Activity::parse(&a))
            .expect("OSPREY_BENCH_OCCUPY_ACTIVITY: busy, active or idle");
        occupy(&procs, activity);
    }
    if let Ok(plan) = std::env::var("OSPREY_BENCH_FLOOR_PLAN") {
        floor_process(&plan);
    }
    if let Ok(hold) = std::env::var("OSPREY_BENCH_HOLD") {
        let stop = StopSignals::block();
        let trees = [FixtureVersion::V1, FixtureVersion::V2].map(|v| kubepods_fixture(v, 1000));
        for tree in &trees {
            println!(
                "{:?}: osprey agent --interval 1s {}",
                tree.version(),
                fixture_args(tree).join(" ")
            );
        }
        stop.wait(Duration::from_secs(hold.parse().unwrap_or(600)));
        return;
    }
    let settings = Settings {
        seconds: env_u64("OSPREY_BENCH_SECONDS", 60),
        scrape_gzip: std::env::var("OSPREY_BENCH_SCRAPE_GZIP").as_deref() == Ok("1"),
        scrape_every: match env_u64("OSPREY_BENCH_SCRAPE_SECONDS", 15) {
            0 => None,
            s => Some(Duration::from_secs(s)),
        },
    };
    let sizes: Vec<usize> = env_list("OSPREY_BENCH_CONTAINERS", "10,100,1000")
        .iter()
        .map(|s| s.parse().expect("OSPREY_BENCH_CONTAINERS: numbers"))
        .collect();
    let cases = env_list("OSPREY_BENCH_CASES", "real,real-pods,v1,v2");
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
    let activities: Vec<Activity> = env_list("OSPREY_BENCH_ACTIVITY", "busy,active,idle")
        .iter()
        .map(|a| {
            Activity::parse(a)
                .unwrap_or_else(|| panic!("OSPREY_BENCH_ACTIVITY: unknown activity {a}"))
        })
        .collect();

    let with_floor = std::env::var("OSPREY_BENCH_FLOOR").as_deref() != Ok("0");
    let mut rows = Vec::new();
    for &n in &sizes {
        for case in &cases {
            // Each case's tree is built once and read by every binary.
            let mut real = None;
            let mut fixture = None;
            let (name, args, config) = match case.as_str() {
                "real" | "real-pods" => {
                    let kubepods = case == "real-pods";
                    real = RealTree::create(n, kubepods);
                    match &real {
                        Some(tree) => (
                            if kubepods {
                                "real v1 kubepods"
                            } else {
                                "real cgroup v1"
                            },
                            vec!["--subtree".to_string(), format!("/{}", tree.parent)],
                            AgentConfig {
                                interval: Duration::from_secs(1),
                                subtrees: vec![format!("/{}", tree.parent)],
                                ..AgentConfig::default()
                            },
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
                    let tree = fixture.insert(kubepods_fixture(version, n));
                    let name = if case == "v1" {
                        "fixture v1"
                    } else {
                        "fixture v2"
                    };
                    (name, fixture_args(tree), fixture_config(tree))
                }
                other => panic!("OSPREY_BENCH_CASES: unknown case {other}"),
            };
            for &activity in &activities {
                let _occupants = real.as_ref().map(|tree| Occupants::start(tree, activity));
                let _moving = fixture
                    .as_ref()
                    .filter(|_| activity != Activity::Idle)
                    .map(|tree| FixtureActivity::start(tree, activity == Activity::Busy));
                let plan = with_floor.then(|| floor_plan(config.clone(), activity));
                for _ in 0..repeat {
                    for agent in &agents {
                        let mut row = measure(&settings, agent, name, n, &args, plan.as_deref());
                        row.activity = activity.name();
                        eprintln!(
                            "{} {} {} {}: {:.2} % of a core, collection {:.2} ms per tick, floor {}, RSS {:.1} MiB, cgroup {}, scrape {} (load {})",
                            row.agent,
                            row.case,
                            n,
                            activity.name(),
                            row.core_percent,
                            row.collect_ms_per_tick,
                            row.floor
                                .map_or("-".to_string(), |f| format!("{:.2} ms", f.ms_per_tick)),
                            row.rss_mib,
                            row.cgroup_mib
                                .map_or("-".to_string(), |(usage, kernel, _)| format!(
                                    "{usage:.1} MiB without page cache ({kernel:.1} kernel)"
                                )),
                            row.scrape_size
                                .map_or("-".to_string(), |(text, sent)| format!(
                                    "{:.2} MB of text, {:.2} MB sent",
                                    text as f64 / 1e6,
                                    sent as f64 / 1e6
                                )),
                            row.load
                        );
                        rows.push(row);
                    }
                }
            }
        }
    }
    println!(
        "agent process at a 1 s interval, measured over {} s of its running time after warm-up; {}",
        settings.seconds,
        match settings.scrape_every {
            Some(every) => format!(
                "/metrics scraped every {} s{}",
                every.as_secs(),
                if settings.scrape_gzip { ", gzip" } else { "" }
            ),
            None => "no scrapes".into(),
        }
    );
    println!(
        "{:<10} {:<16} {:<7} {:>6} {:>7} {:>9} {:>7} {:>7} {:>11} {:>7} {:>7} {:>8} {:>8} {:>8} {:>11}",
        "agent",
        "case",
        "activity",
        "conts",
        "cgroups",
        "% core",
        "user %",
        "sys %",
        "collect ms",
        "× floor",
        "scrapes",
        "RSS MiB",
        "anon MiB",
        "peak MiB",
        "load"
    );
    for r in &rows {
        println!(
            "{:<10} {:<16} {:<7} {:>6} {:>7} {:>8.2}% {:>7.2} {:>7.2} {:>11.2} {:>7} {:>7} {:>8.1} {:>8.1} {:>8.1} {:>11}{}",
            r.agent,
            r.case,
            r.activity,
            r.containers,
            r.cgroups,
            r.core_percent,
            r.user_percent,
            r.system_percent,
            r.collect_ms_per_tick,
            r.floor.map_or("-".to_string(), |f| format!(
                "{:.2}",
                r.collect_ms_per_tick / f.ms_per_tick
            )),
            r.scrapes,
            r.rss_mib,
            r.anon_mib,
            r.peak_mib,
            r.load,
            if r.exited_threads > 0 {
                format!(" ({} threads exited: tick-based total)", r.exited_threads)
            } else {
                String::new()
            }
        );
    }
    if rows.iter().any(|r| r.cgroup_mib.is_some()) {
        println!(
            "memory: the agent's own memory cgroup at the end of its row, without page cache (what a container limit on it counts, page cache aside: its anonymous memory and the kernel's for its open files and the rest), the kernel's share, and the peak charge (page cache included)"
        );
        println!(
            "{:<10} {:<16} {:<7} {:>6} {:>8} {:>11} {:>11} {:>11}",
            "agent",
            "case",
            "activity",
            "conts",
            "RSS MiB",
            "charged MiB",
            "kernel MiB",
            "peak MiB"
        );
        for r in &rows {
            let Some((usage, kernel, peak)) = r.cgroup_mib else {
                continue;
            };
            println!(
                "{:<10} {:<16} {:<7} {:>6} {:>8.1} {:>11.1} {:>11.1} {:>11.1}",
                r.agent, r.case, r.activity, r.containers, r.rss_mib, usage, kernel, peak
            );
        }
    }
    if rows.iter().any(|r| r.floor.is_some()) {
        println!(
            "floor: the agent's files held open and read (pread) once when due by one thread, 1 s ticks, {} s in all, in 10 s slices between the agent's while it is stopped",
            settings.seconds
        );
        println!(
            "{:<10} {:<16} {:<7} {:>6} {:>7} {:>7} {:>11} {:>13} {:>9}",
            "agent",
            "case",
            "activity",
            "conts",
            "files",
            "held",
            "reads/tick",
            "CPU ms/tick",
            "% core"
        );
        for r in &rows {
            let Some(f) = r.floor else { continue };
            println!(
                "{:<10} {:<16} {:<7} {:>6} {:>7} {:>7} {:>11.0} {:>13.2} {:>8.2}%",
                r.agent,
                r.case,
                r.activity,
                r.containers,
                f.files,
                f.held,
                f.reads_per_tick,
                f.ms_per_tick,
                f.ms_per_tick / 10.0
            );
        }
    }
}
