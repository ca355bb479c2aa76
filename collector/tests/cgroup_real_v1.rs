//! `CgroupReader` on real cgroup v1 hierarchies of this machine (needs
//! root and v1 controllers mounted under /sys/fs/cgroup, as on CI; fails
//! loudly otherwise rather than skipping).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use osprey_collector::cgroup::CgroupReader;
use osprey_collector::layout::CgroupLayout;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "memory", "blkio", "pids"];
const HELD_BYTES: u64 = 64 * 1024 * 1024;

/// A uniquely named cgroup in each of [`CONTROLLERS`] and the processes
/// put in it; killed and removed on drop, even when the test fails.
struct RealCgroup {
    name: String,
    dirs: Vec<PathBuf>,
    children: Vec<Child>,
    /// Kept to hold the memory hog alive: it exits when stdin closes.
    hog_stdin: Option<ChildStdin>,
}

impl RealCgroup {
    fn create() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test needs root to create cgroups"
        );
        let name = format!(
            "osprey-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut cgroup = RealCgroup {
            name,
            dirs: Vec::new(),
            children: Vec::new(),
            hog_stdin: None,
        };
        for controller in CONTROLLERS {
            let mount = PathBuf::from(CGROUP_ROOT).join(controller);
            assert!(
                mount.join("cgroup.procs").is_file(),
                "cgroup v1 controller `{controller}` is not mounted at {}",
                mount.display()
            );
            let dir = mount.join(&cgroup.name);
            std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            cgroup.dirs.push(dir);
        }
        cgroup
    }

    fn path(&self) -> String {
        format!("/{}", self.name)
    }

    fn layout() -> CgroupLayout {
        let mut layout = CgroupLayout::default();
        for controller in CONTROLLERS {
            layout.v1.insert(
                controller.to_owned(),
                PathBuf::from(CGROUP_ROOT).join(controller),
            );
        }
        layout
    }

    fn write(&self, controller: &str, file: &str, value: &str) {
        let path = PathBuf::from(CGROUP_ROOT)
            .join(controller)
            .join(&self.name)
            .join(file);
        std::fs::write(&path, value)
            .unwrap_or_else(|e| panic!("write {value} to {}: {e}", path.display()));
    }

    /// Sets its directories' modification time an hour back: the
    /// collector takes it for the cgroup's creation time, so the cgroup
    /// no longer settles.
    fn age_an_hour(&self) {
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        for dir in &self.dirs {
            std::fs::File::open(dir)
                .and_then(|d| d.set_modified(hour_ago))
                .unwrap();
        }
    }

    fn adopt(&mut self, child: Child) -> u32 {
        let pid = child.id();
        self.children.push(child);
        for controller in CONTROLLERS {
            self.write(controller, "cgroup.procs", &pid.to_string());
        }
        pid
    }

    /// Kills and reaps the processes, then removes the directories.
    fn tear_down(&mut self) {
        self.hog_stdin = None;
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
        // Tasks the processes started themselves.
        let procs = PathBuf::from(CGROUP_ROOT)
            .join("pids")
            .join(&self.name)
            .join("cgroup.procs");
        for pid in std::fs::read_to_string(procs).unwrap_or_default().lines() {
            if let Ok(pid) = pid.parse::<i32>() {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        for dir in self.dirs.drain(..) {
            // A reaped task can linger in the cgroup for a moment.
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Err(err) = std::fs::remove_dir(&dir) {
                if err.kind() == std::io::ErrorKind::NotFound || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for RealCgroup {
    fn drop(&mut self) {
        self.tear_down();
    }
}

/// Starts `python3 -c script` with piped stdin and stdout, which the
/// tests use to tell it when to act and to hear that it has.
fn spawn_python(script: &str) -> (Child, ChildStdin, BufReader<ChildStdout>) {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    (child, stdin, stdout)
}

/// The whole disk (`major`, `minor`) holding `path`: blkio counts per
/// disk, not per partition.
fn disk_of(path: &std::path::Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    let sys = if sys.join("partition").exists() {
        sys.join("..")
    } else {
        sys
    };
    let text = std::fs::read_to_string(sys.join("dev")).unwrap();
    let (major, minor) = text.trim().split_once(':').unwrap();
    (major.parse().unwrap(), minor.parse().unwrap())
}

#[test]
fn real_v1_cgroup_cpu_rate_memory_limits_and_removal() {
    let mut cgroup = RealCgroup::create();
    // Limits to read back. The quota leaves room for one busy core, and
    // the high share weight wins that core against the other work of this
    // shared machine (its tasks compete from the root cgroup).
    cgroup.write("cpu", "cpu.cfs_quota_us", "200000");
    cgroup.write("cpu", "cpu.shares", "8192");
    cgroup.write("memory", "memory.limit_in_bytes", "268435456");
    cgroup.write("pids", "pids.max", "64");

    // Highest priority: other load on the machine must not take its core.
    let spinner = Command::new("nice")
        .args(["-n", "-19", "sh", "-c", "while :; do :; done"])
        .spawn()
        .expect("spawn sh");
    cgroup.adopt(spinner);

    // The hog allocates only after it is in the cgroup (v1 does not move
    // charges with a task), then reports and blocks until stdin closes.
    // It joins once started, so that the interpreter's start-up (reading
    // itself from disk when not cached) is not in the blkio figures.
    let script = format!(
        "import sys\nprint('up', flush=True)\nsys.stdin.readline()\nb = bytearray({HELD_BYTES})\nfor i in range(0, len(b), 4096):\n    b[i] = 1\nprint('ready', flush=True)\nsys.stdin.read()\n"
    );
    let (hog, mut stdin, mut hog_stdout) = spawn_python(&script);
    let mut line = String::new();
    hog_stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "up", "memory hog failed to start");
    cgroup.adopt(hog);
    stdin.write_all(b"go\n").unwrap();
    cgroup.hog_stdin = Some(stdin);
    line.clear();
    hog_stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "memory hog failed to allocate");

    // Direct (uncached) reads of a file from inside the cgroup, so the
    // blkio counters of its disk move by a known amount.
    let data = tempfile::NamedTempFile::new_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    data.as_file().write_all(&vec![7u8; 256 * 4096]).unwrap();
    data.as_file().sync_all().unwrap();
    let (major, minor) = disk_of(data.path());
    // Kernels ≥ 6.x count v1 blkio statistics only on queues where
    // blk-throttle is active, which a throttle rule turns on; this one
    // (1 TiB/s, on the test cgroup only) never limits anything.
    cgroup.write(
        "blkio",
        "blkio.throttle.read_bps_device",
        &format!("{major}:{minor} 1099511627776"),
    );
    let mut dd = Command::new("sh")
        .args([
            "-c",
            &format!(
                "read go; exec dd if={} of=/dev/null bs=4096 count=256 iflag=direct status=none",
                data.path().display()
            ),
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn dd");
    let mut dd_stdin = dd.stdin.take().expect("piped stdin");
    for controller in CONTROLLERS {
        cgroup.write(controller, "cgroup.procs", &dd.id().to_string());
    }
    dd_stdin.write_all(b"go\n").unwrap();
    drop(dd_stdin);
    assert!(
        dd.wait().unwrap().success(),
        "dd iflag=direct from {} failed",
        data.path().display()
    );

    let layout = RealCgroup::layout();
    let mut reader = CgroupReader::open(&layout, &cgroup.path()).unwrap();
    let spec = reader.read_spec().unwrap();
    assert_eq!(spec.cpu_shares, Some(8192));
    assert_eq!(spec.cpu_quota_us, Some(200_000));
    assert_eq!(spec.cpu_period_us, Some(100_000));
    assert_eq!(spec.memory_limit, Some(268_435_456));
    // memory+swap: unlimited, or at least the memory limit.
    assert!(spec.memory_swap_limit.is_none_or(|l| l >= 268_435_456));
    assert_eq!(spec.pids_limit, Some(64));

    let t1 = Instant::now();
    let first = reader.read_stats(0).unwrap();
    // The measurement interval (not synchronisation): CPU rate over ~1 s.
    std::thread::sleep(Duration::from_secs(1));
    let t2 = Instant::now();
    let second = reader.read_stats(1000).unwrap();

    let wall_ns = (t2 - t1).as_nanos() as f64;
    let rate = (second.cpu.usage_ns - first.cpu.usage_ns) as f64 / wall_ns;
    assert!(
        (rate - 1.0).abs() <= 0.15,
        "CPU rate {rate:.3} cores, expected 1 ± 0.15"
    );
    let ticks_ns =
        (second.cpu.user_ns + second.cpu.system_ns) - (first.cpu.user_ns + first.cpu.system_ns);
    assert!(
        ticks_ns as f64 / wall_ns > 0.7,
        "user+system grew only {ticks_ns} ns over {wall_ns} ns"
    );
    assert!(second.cpu.cfs.is_some(), "cpu.stat was not read");

    let memory = &second.memory;
    assert!(
        memory.usage >= HELD_BYTES,
        "usage {} < {HELD_BYTES}",
        memory.usage
    );
    assert!(
        memory.rss >= HELD_BYTES,
        "rss {} < {HELD_BYTES}",
        memory.rss
    );
    assert!(memory.working_set >= HELD_BYTES && memory.working_set <= memory.usage);
    assert!(memory.max_usage.unwrap() >= memory.usage);
    assert!(
        memory.pgfault >= HELD_BYTES / 4096,
        "pgfault {}",
        memory.pgfault
    );
    assert_eq!(second.pids.current, Some(2));
    assert_eq!(second.pids.limit, None, "the limit is read with the spec");
    assert_eq!(reader.read_spec().unwrap().pids_limit, Some(64));
    assert_eq!(second.pressure, None);
    let device = second
        .blkio
        .iter()
        .find(|d| (d.major, d.minor) == (major, minor))
        .unwrap_or_else(|| panic!("no blkio entry for {major}:{minor}: {:?}", second.blkio));
    assert!(
        device.reads >= 1 && device.read_bytes >= 256 * 4096,
        "{device:?}"
    );
    assert!(device.read_bytes <= 4 * 256 * 4096, "{device:?}");

    // Removed while open: the held descriptors now fail with ENODEV.
    cgroup.tear_down();
    let err = reader.read_stats(2000).unwrap_err();
    assert!(err.is_vanished(), "{err:?}");
    assert!(reader.read_spec().unwrap_err().is_vanished());
}

#[test]
fn real_v1_root_cgroup() {
    let mut reader = CgroupReader::open(&RealCgroup::layout(), "/").unwrap();
    let stats = reader.read_stats(0).unwrap();
    assert!(stats.cpu.usage_ns > 0 && stats.memory.usage > 0);
    assert_eq!(stats.pids.current, None, "v1 root has no pids.current");
    let spec = reader.read_spec().unwrap();
    assert_eq!(spec.memory_limit, None, "the root has no memory limit");
    assert_eq!(spec.cpu_quota_us, None);
}

/// A cgroup's creation time is taken once: its directory's mtime moves
/// when a child cgroup is made in it (on kernfs once the directory's
/// attributes were set, e.g. by a chown, as runtimes and systemd's
/// delegation do), and a pod's start time must not move each time one of
/// its containers starts.
#[test]
fn real_v1_creation_time_stays_when_a_child_cgroup_is_made() {
    let parent = RealCgroup::create();
    for dir in &parent.dirs {
        std::os::unix::fs::chown(dir, Some(0), Some(0)).unwrap();
    }
    let mut collector =
        osprey_collector::collect::Collector::new(osprey_collector::config::AgentConfig {
            cgroup_root: Some(PathBuf::from(CGROUP_ROOT)),
            subtrees: vec![parent.path()],
            interval: Duration::from_secs(1),
            // Limits and identities refreshed every tick.
            spec_refresh_interval: Duration::ZERO,
            ..Default::default()
        })
        .unwrap();
    let created = |snap: &osprey_collector::snapshot::Snapshot, id: &str| {
        snap.containers
            .iter()
            .find(|c| c.info.id == id)
            .map(|c| c.info.creation_time_seconds)
    };
    let first = collector.collect();
    let before = created(&first, &parent.path()).expect("the parent cgroup is read");
    assert!(before > 0.0);

    let child_dirs: Vec<PathBuf> = parent.dirs.iter().map(|d| d.join("child")).collect();
    struct Remove(Vec<PathBuf>);
    impl Drop for Remove {
        fn drop(&mut self) {
            for dir in &self.0 {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
    let _remove = Remove(child_dirs.clone());
    for dir in &child_dirs {
        std::fs::create_dir(dir).unwrap();
    }
    let mtime = std::fs::metadata(&parent.dirs[0])
        .and_then(|m| m.modified())
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        mtime > before,
        "the parent's mtime moved with the child ({mtime} against {before})"
    );

    let second = collector.collect();
    let child = format!("{}/child", parent.path());
    assert!(
        created(&second, &child).is_some(),
        "the child cgroup is read"
    );
    assert_eq!(created(&second, &parent.path()), Some(before));
}

/// The figures the reader carries while their probe stands still
/// (`memory.stat` while the memory usage does, `pids.current` while the
/// CPU time does) are read again as soon as the cgroup's tasks allocate
/// or fork: on the kernel's own files, those events move the probes.
#[test]
fn real_v1_carried_figures_follow_allocations_and_forks() {
    let mut cgroup = RealCgroup::create();
    // Waits for a command on stdin, then allocates (`alloc MiB`, touching
    // every page) or forks children (`fork N`; they wait for stdin to
    // close), and says `done`.
    let script = "import os, sys\nheld = []\nfor line in sys.stdin:\n    verb, n = line.split()\n    if verb == 'alloc':\n        b = bytearray(int(n) << 20)\n        for i in range(0, len(b), 4096):\n            b[i] = 1\n        held.append(b)\n    else:\n        for _ in range(int(n)):\n            if os.fork() == 0:\n                os.read(0, 1)\n                os._exit(0)\n    print('done', flush=True)\n";
    let (worker, mut stdin, mut stdout) = spawn_python(script);
    cgroup.adopt(worker);
    let mut command = |line: &str| {
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap();
        assert_eq!(answer.trim(), "done", "{line}");
    };
    // One command first, so the interpreter's own start-up is behind us.
    command("alloc 1");

    let mut reader = CgroupReader::open(&RealCgroup::layout(), &cgroup.path()).unwrap();
    reader.set_slow_interval(Duration::from_secs(3600));
    reader.set_carry_quiet_memory_stat(true);
    reader.set_carry_idle_pids(true);
    // As the agent lags it: a move of the kernel's flush batch or more is
    // read at once.
    let (age, batch) = osprey_collector::cgroup::kernel_memory_stat_lag(Duration::from_secs(1));
    reader.set_memory_stat_lag(age, batch);
    let alloc_mib = 16.max(batch.div_ceil(1024 * 1024) * 2);
    let first = reader.read_stats(0).unwrap();
    assert_eq!(first.pids.current, Some(1));

    command(&format!("alloc {alloc_mib}"));
    let allocated = reader.read_stats(1).unwrap();
    assert!(
        allocated.memory.usage > first.memory.usage,
        "the allocation moved the usage"
    );
    assert!(
        allocated.memory.rss >= first.memory.rss + (alloc_mib << 20),
        "rss {} after {alloc_mib} MiB more than {}: memory.stat was read again",
        allocated.memory.rss,
        first.memory.rss
    );
    assert!(allocated.memory.pgfault >= first.memory.pgfault + (alloc_mib << 20) / 4096);

    command("fork 3");
    let forked = reader.read_stats(2).unwrap();
    assert!(forked.cpu.usage_ns > allocated.cpu.usage_ns);
    assert_eq!(forked.pids.current, Some(4), "pids.current read again");
}

/// On cgroupfs, a write to a limit file and a task moved in are seen at
/// the next tick (inotify reports both), with no timer to explain it: the
/// cgroup is aged past its settling time, and the limits' backstop is an
/// hour away.
#[test]
fn real_v1_written_limits_and_moved_tasks_are_seen_at_the_next_tick() {
    let mut cgroup = RealCgroup::create();
    cgroup.age_an_hour();
    let mut collector =
        osprey_collector::collect::Collector::new(osprey_collector::config::AgentConfig {
            cgroup_root: Some(PathBuf::from(CGROUP_ROOT)),
            subtrees: vec![cgroup.path()],
            interval: Duration::from_secs(1),
            spec_refresh_interval: Duration::from_secs(3600),
            ..Default::default()
        })
        .unwrap();
    let id = cgroup.path();
    let sample = |snap: &osprey_collector::snapshot::Snapshot| {
        snap.containers
            .iter()
            .find(|c| c.info.id == id)
            .cloned()
            .expect("the cgroup is read")
    };
    let first = sample(&collector.collect());
    assert_eq!(first.info.spec.memory_limit, None, "unlimited at first");
    assert!(first.stats.network.is_empty(), "no task, no network");

    cgroup.write("memory", "memory.limit_in_bytes", "67108864");
    cgroup.write("pids", "pids.max", "10");
    let second = sample(&collector.collect());
    assert_eq!(second.info.spec.memory_limit, Some(64 << 20));
    assert_eq!(second.info.spec.pids_limit, Some(10));

    // A task in a network namespace of its own (with an interface besides
    // `lo`, which is never reported), moved in once it is set up.
    let mut child = Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            "ip link add eth0 type veth peer name eth1 && echo ready && exec sleep 600",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) and ip (iproute2)");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready", "the namespace's interface was made");
    cgroup.adopt(child);
    let third = sample(&collector.collect());
    let names: Vec<&str> = third
        .stats
        .network
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert!(
        names.contains(&"eth0"),
        "the moved task's namespace is read at the next tick: {names:?}"
    );

    // cgroupfs drops no watch when a cgroup is removed: the collector does.
    let watched = collector.limit_watch_count();
    assert!(watched >= 7, "limits and task list watched: {watched}");
    cgroup.tear_down();
    let last = collector.collect();
    assert!(last.containers.iter().all(|c| c.info.id != id), "removed");
    assert!(
        collector.limit_watch_count() <= watched - 7,
        "the removed cgroup's watches are gone: {} of {watched}",
        collector.limit_watch_count()
    );
}

/// A task that enters a network namespace of its own after it joined its
/// cgroup (as a container's first task does after runc wrote the cgroup's
/// `cgroup.procs`) makes no write to report: while the cgroup settles (its
/// first two minutes) each upkeep round looks again; an old cgroup waits
/// for the backstop.
#[test]
fn real_v1_a_namespace_entered_later_is_found_while_the_cgroup_settles() {
    let mut young = RealCgroup::create();
    let mut old = RealCgroup::create();
    old.age_an_hour();
    // Enters a new network namespace (CLONE_NEWNET) with an interface
    // besides `lo` when told, and says so.
    let script = "import ctypes, subprocess, sys\nsys.stdin.readline()\nassert ctypes.CDLL(None, use_errno=True).unshare(0x40000000) == 0, ctypes.get_errno()\nsubprocess.run(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1'], check=True)\nprint('ready', flush=True)\nsys.stdin.readline()\n";
    let mut tasks = Vec::new();
    for cgroup in [&mut young, &mut old] {
        let (child, stdin, stdout) = spawn_python(script);
        cgroup.adopt(child);
        tasks.push((stdin, stdout));
    }
    let mut collector =
        osprey_collector::collect::Collector::new(osprey_collector::config::AgentConfig {
            cgroup_root: Some(PathBuf::from(CGROUP_ROOT)),
            subtrees: vec![young.path(), old.path()],
            interval: Duration::from_secs(1),
            ..Default::default()
        })
        .unwrap();
    let interfaces = |snap: &osprey_collector::snapshot::Snapshot, id: &str| -> Vec<String> {
        let c = snap.containers.iter().find(|c| c.info.id == id).unwrap();
        c.stats.network.iter().map(|i| i.name.clone()).collect()
    };
    let first = collector.collect();
    assert!(
        interfaces(&first, &young.path()).is_empty(),
        "the host's network"
    );
    for (stdin, stdout) in &mut tasks {
        stdin.write_all(b"go\n").unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
    }
    // Three cgroups (the root, the two) at one a tick: each looked at
    // within three ticks; a few more for good measure.
    let mut found_young = false;
    for _ in 0..6 {
        let snap = collector.collect();
        found_young |= interfaces(&snap, &young.path()).contains(&"eth0".to_string());
        assert!(
            interfaces(&snap, &old.path()).is_empty(),
            "an old cgroup waits for its backstop"
        );
    }
    assert!(found_young, "the settling cgroup's new namespace is found");
}
