//! The opt-in CPU load reader (`cpu_load = true`): on a real cgroup v1 of
//! this machine (needs root and the v1 controllers under /sys/fs/cgroup,
//! as on CI; fails loudly otherwise) with busy-looping and sleeping
//! processes, and on a cgroup v2 fixture tree whose `cgroup.threads`
//! lists real tasks. The task states come from the kernel.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use osprey_collector::collect::Collector;
use osprey_collector::config::AgentConfig;
use osprey_collector::expose::families::{ExposeOptions, snapshot_families};
use osprey_collector::fixture::{CgroupValues, FixtureTree};
use osprey_collector::snapshot::Snapshot;

const CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "memory", "blkio", "pids"];

/// A real v1 cgroup and the processes in it; killed and removed on drop.
struct RealCgroup {
    name: String,
    children: Vec<Child>,
}

impl RealCgroup {
    fn create(tag: &str) -> Self {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "this test needs root");
        let name = format!("osprey-load-{tag}-{}", std::process::id());
        for c in CONTROLLERS {
            let mount = PathBuf::from("/sys/fs/cgroup").join(c);
            assert!(
                mount.join("cgroup.procs").is_file(),
                "cgroup v1 controller `{c}` is not mounted"
            );
            std::fs::create_dir(mount.join(&name)).unwrap();
        }
        RealCgroup {
            name,
            children: Vec::new(),
        }
    }

    fn path(&self) -> String {
        format!("/{}", self.name)
    }

    /// Starts `sh -c script` inside the cgroup (the shell moves itself in
    /// before it runs the script, so no task runs outside).
    fn spawn(&mut self, script: &str) -> usize {
        let join: String = CONTROLLERS
            .iter()
            .map(|c| format!("echo $$ > /sys/fs/cgroup/{c}/{}/cgroup.procs; ", self.name))
            .collect();
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("{join}exec sh -c '{script}'"))
            .spawn()
            .unwrap();
        self.children.push(child);
        self.children.len() - 1
    }

    fn kill(&mut self, i: usize) {
        let c = &mut self.children[i];
        let _ = c.kill();
        let _ = c.wait(); // reaped: gone from the cgroup's task list
    }

    /// Waits until the cgroup holds `n` tasks (the shells moved in).
    fn wait_for_tasks(&self, n: usize) {
        let tasks = PathBuf::from("/sys/fs/cgroup/cpu")
            .join(&self.name)
            .join("tasks");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let count = std::fs::read_to_string(&tasks).unwrap().lines().count();
            if count == n {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{count} tasks, want {n}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RealCgroup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for c in CONTROLLERS {
            let _ = std::fs::remove_dir(PathBuf::from("/sys/fs/cgroup").join(c).join(&self.name));
        }
    }
}

/// Waits until task `pid` is asleep (`S`): a freshly started `sleep` is
/// runnable until it reaches its `nanosleep`.
fn wait_until_asleep(pid: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stat = std::fs::read(format!("/proc/{pid}/stat")).unwrap();
        if osprey_collector::load::task_state(&stat) == Some(b'S') {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{pid} never slept");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn load_of(snap: &Snapshot, id: &str) -> Option<f64> {
    snap.cpu_load.iter().find(|(k, _)| k == id).map(|(_, v)| *v)
}

fn config(data: &std::path::Path, subtree: &str, cpu_load: bool) -> AgentConfig {
    AgentConfig {
        cpu_load,
        subtrees: vec![subtree.to_owned()],
        data_dir: data.to_path_buf(),
        ..AgentConfig::default()
    }
}

#[test]
fn real_v1_cgroup_load_counts_its_runnable_tasks_and_decays() {
    let mut cg = RealCgroup::create("v1");
    // Two busy loops (always runnable, running or waiting for a CPU) and
    // a sleeper (never counted).
    let busy = cg.spawn("while :; do :; done");
    cg.spawn("while :; do :; done");
    let sleeper = cg.spawn("exec sleep 600");
    cg.wait_for_tasks(3);
    wait_until_asleep(cg.children[sleeper].id());
    let tmp = tempfile::tempdir().unwrap();
    let mut collector = Collector::new(config(tmp.path(), &cg.path(), true)).unwrap();

    let first = collector.collect();
    // The first sample starts the average: 2 tasks → 2000 milliloads.
    assert_eq!(
        load_of(&first, &cg.path()),
        Some(2000.0),
        "{:?}",
        first.cpu_load
    );
    // The root is the whole machine, our busy loops included.
    assert!(
        load_of(&first, "/").unwrap() >= 2000.0,
        "{:?}",
        first.cpu_load
    );
    let families = snapshot_families(&first, &ExposeOptions::default(), &Default::default());
    let family = families
        .iter()
        .find(|f| f.name == "container_cpu_load_average_10s")
        .expect("the family is exposed");
    let sample = family
        .samples
        .iter()
        .find(|s| s.labels().any(|(k, v)| k == "id" && v == cg.path()))
        .unwrap();
    assert_eq!(sample.value, 2000.0);

    // One loop gone: the average moves towards 1 over 10 s, not at once.
    cg.kill(busy);
    cg.wait_for_tasks(2);
    std::thread::sleep(Duration::from_millis(500));
    let second = collector.collect();
    let v = load_of(&second, &cg.path()).unwrap();
    assert!(
        v > 1000.0 && v < 2000.0,
        "decaying from 2000 towards 1000: {v}"
    );
}

#[test]
fn load_is_not_measured_unless_asked_for() {
    let cg = RealCgroup::create("off");
    let tmp = tempfile::tempdir().unwrap();
    let mut collector = Collector::new(config(tmp.path(), &cg.path(), false)).unwrap();
    let snap = collector.collect();
    assert!(snap.containers.iter().any(|c| c.info.id == cg.path()));
    assert!(snap.cpu_load.is_empty());
    let families = snapshot_families(&snap, &ExposeOptions::default(), &Default::default());
    assert!(
        !families
            .iter()
            .any(|f| f.name == "container_cpu_load_average_10s")
    );
}

#[test]
fn v2_fixture_load_reads_the_listed_threads_states() {
    let tree = FixtureTree::v2().unwrap();
    let path = "/system.slice/load-test.service";
    tree.add_cgroup(path, &CgroupValues::sample(3)).unwrap();
    // A busy loop (runnable) and a sleeper, real processes listed in the
    // fixture cgroup's thread list.
    let mut busy = Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .unwrap();
    let mut sleeper = Command::new("sleep").arg("600").spawn().unwrap();
    wait_until_asleep(sleeper.id());
    std::fs::write(
        tree.cgroup_dir("", path).join("cgroup.threads"),
        format!("{}\n{}\n", busy.id(), sleeper.id()),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = AgentConfig {
        cgroup_root: Some(tree.root().to_path_buf()),
        sys_root: tmp.path().join("sys"),
        docker_root: tmp.path().join("docker"),
        ..config(tmp.path(), path, true)
    };
    c.pod_log_root = tmp.path().join("no-pods");
    let mut collector = Collector::new(c).unwrap();
    let snap = collector.collect();
    let _ = busy.kill();
    let _ = sleeper.kill();
    let _ = busy.wait();
    let _ = sleeper.wait();
    assert_eq!(load_of(&snap, path), Some(1000.0), "{:?}", snap.cpu_load);
}
