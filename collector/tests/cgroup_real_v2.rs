//! `CgroupReader` in v2 mode on the real (controller-less) unified
//! hierarchy of this hybrid machine: the kernel's own `cpu.stat` and PSI
//! formats, PSI switched off under an open reader, and removal. Needs root
//! and a cgroup2 mount at /sys/fs/cgroup/unified (as on CI); fails loudly
//! otherwise.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use osprey_collector::cgroup::CgroupReader;
use osprey_collector::layout::{CgroupLayout, CgroupMode};

const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// A uniquely named cgroup in the unified hierarchy and a process in it;
/// killed and removed on drop.
struct RealV2Cgroup {
    dir: Option<PathBuf>,
    name: String,
    child: Option<Child>,
}

impl RealV2Cgroup {
    fn create() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test needs root to create cgroups"
        );
        assert!(
            PathBuf::from(UNIFIED).join("cgroup.procs").is_file(),
            "no cgroup2 hierarchy mounted at {UNIFIED}"
        );
        let name = format!(
            "osprey-test-v2-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = PathBuf::from(UNIFIED).join(&name);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        RealV2Cgroup {
            dir: Some(dir),
            name,
            child: None,
        }
    }

    fn dir(&self) -> &PathBuf {
        self.dir.as_ref().expect("cgroup already removed")
    }

    fn tear_down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = self.dir.take() {
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

impl Drop for RealV2Cgroup {
    fn drop(&mut self) {
        self.tear_down();
    }
}

/// CPU time a process has run, ns (`/proc/<pid>/schedstat`, first field).
fn process_cpu_ns(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn real_unified_cgroup_cpu_psi_and_removal() {
    let mut cgroup = RealV2Cgroup::create();
    let spinner = Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .expect("spawn sh");
    let pid = spinner.id();
    cgroup.child = Some(spinner);
    std::fs::write(cgroup.dir().join("cgroup.procs"), pid.to_string()).unwrap();

    let layout = CgroupLayout {
        unified: Some(PathBuf::from(UNIFIED)),
        unified_has_controllers: false,
        ..CgroupLayout::default()
    };
    assert_eq!(layout.mode(), CgroupMode::V2);
    let path = format!("/{}", cgroup.name);
    let mut reader = CgroupReader::open(&layout, &path).unwrap();
    // No controllers here: cpu.stat and the three PSI files only.
    let names: Vec<String> = reader
        .files()
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["cpu.stat", "cpu.pressure", "memory.pressure", "io.pressure"]
    );

    let cpu_before = process_cpu_ns(pid);
    let first = reader.read_stats(0).unwrap();
    // Wait until the spinner has run a quarter of a second of CPU (about
    // 0.25 s on an idle machine, longer when other work shares the cores),
    // so the comparison below has enough to measure.
    let deadline = Instant::now() + Duration::from_secs(60);
    while process_cpu_ns(pid) < cpu_before + 250_000_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = reader.read_stats(1000).unwrap();
    let cpu_after = process_cpu_ns(pid);

    // The cgroup's usage_usec (×1000) tracks the only task's own CPU time.
    let cgroup_delta = (second.cpu.usage_ns - first.cpu.usage_ns) as f64;
    let process_delta = (cpu_after - cpu_before) as f64;
    assert!(
        process_delta > 200e6,
        "the spinner barely ran ({process_delta} ns)"
    );
    assert!(
        (cgroup_delta / process_delta - 1.0).abs() < 0.05,
        "cgroup usage grew {cgroup_delta} ns, the process ran {process_delta} ns"
    );
    let split_delta = (second.cpu.user_ns + second.cpu.system_ns
        - first.cpu.user_ns
        - first.cpu.system_ns) as f64;
    assert!(
        (split_delta / cgroup_delta - 1.0).abs() < 0.1,
        "user+system {split_delta} vs usage {cgroup_delta}"
    );
    assert_eq!(second.cpu.cfs, None, "no cpu controller, no CFS counters");
    assert!(second.pressure.is_some());
    assert_eq!(second.memory.usage, 0);

    // PSI switched off: the kernel hides the files and fails held
    // descriptors with ENODEV while the cgroup lives. The reader drops them.
    std::fs::write(cgroup.dir().join("cgroup.pressure"), "0").unwrap();
    let third = reader.read_stats(2000).unwrap();
    assert_eq!(third.pressure, None);
    assert!(third.cpu.usage_ns >= second.cpu.usage_ns);
    assert_eq!(reader.files().len(), 1);

    // Removed while open.
    cgroup.tear_down();
    let err = reader.read_stats(3000).unwrap_err();
    assert!(err.is_vanished(), "{err:?}");
}
