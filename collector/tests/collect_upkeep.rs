//! Limits are re-read at the tick after a write to them (inotify reports
//! it), and otherwise only at the `spec_refresh_interval` backstop; the
//! upkeep of the cgroups (names, limits when due) comes round a share of
//! the cgroups each tick.
//!
//! The cgroups' directories are aged an hour first: a cgroup still
//! settling (its first two minutes) is looked at again at every upkeep
//! round anyway, and only an old one shows what the writes alone do.

use std::fs;
use std::time::{Duration, SystemTime};

use osprey_collector::collect::Collector;
use osprey_collector::config::AgentConfig;
use osprey_collector::fixture::{FixtureTree, FixtureVersion, PathStyle, paths};
use osprey_collector::snapshot::Snapshot;
use osprey_collector::stats::ContainerSpec;

/// Sets the modification time of `cgroup`'s directories (every hierarchy)
/// an hour back: the collector takes it for the cgroup's creation time.
fn age(tree: &FixtureTree, cgroup: &str) {
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for controller in ["cpu", "cpuacct", "memory", "blkio", "pids"] {
        let dir = tree.cgroup_dir(controller, cgroup);
        fs::File::open(&dir)
            .and_then(|d| d.set_modified(hour_ago))
            .unwrap_or_else(|e| panic!("ageing {}: {e}", dir.display()));
    }
}

fn spec(snap: &Snapshot, id: &str) -> ContainerSpec {
    snap.containers
        .iter()
        .find(|c| c.info.id == id)
        .unwrap_or_else(|| panic!("{id} in the snapshot"))
        .info
        .spec
        .clone()
}

/// The memory-limit file and its text for `bytes`, per version.
fn memory_limit_file(version: FixtureVersion) -> (&'static str, &'static str) {
    match version {
        FixtureVersion::V1 => ("memory", "memory.limit_in_bytes"),
        FixtureVersion::V2 => ("memory", "memory.max"),
    }
}

/// A tree of `count` Docker containers, aged, and a collector on it with
/// the limits' backstop at `backstop`.
fn aged_docker_tree(
    version: FixtureVersion,
    count: usize,
    backstop: Duration,
) -> (FixtureTree, Vec<String>, Collector) {
    let tree = FixtureTree::new(version).unwrap();
    let containers = tree
        .add_containers(PathStyle::DockerCgroupfs, 0, count)
        .unwrap();
    for c in &containers {
        age(&tree, c);
    }
    let collector = Collector::new(AgentConfig {
        spec_refresh_interval: backstop,
        ..tree.agent_config()
    })
    .unwrap();
    (tree, containers, collector)
}

/// Sets `cgroup`'s memory limit to `bytes` by renaming a file over it: no
/// write for inotify to report (a stand-in for a write it lost).
fn replace_memory_limit_unseen(tree: &FixtureTree, cgroup: &str, bytes: u64) {
    let (controller, file) = memory_limit_file(tree.version());
    let replacement = tree.root().join("replacement");
    fs::write(&replacement, format!("{bytes}\n")).unwrap();
    fs::rename(&replacement, tree.file_path(controller, cgroup, file)).unwrap();
}

fn written_limits_are_read_at_the_next_tick(version: FixtureVersion) {
    let tree = FixtureTree::new(version).unwrap();
    let style = PathStyle::KubepodsSystemd(paths::Qos::Burstable, paths::Runtime::Containerd);
    let containers = tree.add_containers(style, 0, 3).unwrap();
    for c in &containers {
        age(&tree, c);
    }
    let mut collector = Collector::new(AgentConfig {
        // Only a reported write can explain a limit read before this.
        spec_refresh_interval: Duration::from_secs(3600),
        ..tree.agent_config()
    })
    .unwrap();
    let (controller, file) = memory_limit_file(version);
    let first = collector.collect();
    let before = spec(&first, &containers[0]);
    let unchanged = spec(&first, &containers[1]);
    assert_ne!(before.memory_limit, Some(123 << 20));

    tree.write_file(
        controller,
        &containers[0],
        file,
        &format!("{}\n", 123u64 << 20),
    )
    .unwrap();
    let second = collector.collect();
    assert_eq!(
        spec(&second, &containers[0]).memory_limit,
        Some(123 << 20),
        "the written limit is read at the next tick"
    );
    assert_eq!(spec(&second, &containers[1]), unchanged);

    // Replaced unseen: the limit stays as read until the backstop.
    replace_memory_limit_unseen(&tree, &containers[1], 77 << 20);
    for _ in 0..3 {
        assert_eq!(spec(&collector.collect(), &containers[1]), unchanged);
    }
}

#[test]
fn written_limits_are_read_at_the_next_tick_v1() {
    written_limits_are_read_at_the_next_tick(FixtureVersion::V1);
}

#[test]
fn written_limits_are_read_at_the_next_tick_v2() {
    written_limits_are_read_at_the_next_tick(FixtureVersion::V2);
}

/// A limit changed without a write inotify could report is read at the
/// backstop, in the upkeep round: one share of the cgroups a tick.
#[test]
fn unreported_limit_changes_are_read_at_the_backstop_a_share_a_tick() {
    // The backstop and the round: every 2 ticks, half the cgroups a tick.
    let (tree, containers, mut collector) =
        aged_docker_tree(FixtureVersion::V2, 4, Duration::from_secs(2));
    collector.collect();
    for c in &containers {
        replace_memory_limit_unseen(&tree, c, 55 << 20);
    }
    let mut seen_at = Vec::new();
    for _ in 0..6 {
        let snap = collector.collect();
        seen_at.push(
            containers
                .iter()
                .filter(|c| spec(&snap, c).memory_limit == Some(55 << 20))
                .count(),
        );
    }
    // The root cgroup is tracked too: 5 cgroups, 3 the first tick of a
    // round and 2 the second; each is read once its backstop is due.
    assert_eq!(
        seen_at.last(),
        Some(&containers.len()),
        "all read: {seen_at:?}"
    );
    let first_nonzero = seen_at.iter().position(|n| *n > 0).unwrap();
    assert!(
        seen_at[first_nonzero] < containers.len(),
        "a share a tick, not all at once: {seen_at:?}"
    );
}

/// When the kernel drops writes (the watch's queue overflows), any limit
/// may have changed unseen: every cgroup's limits are read again within
/// one upkeep round, backstop or not.
#[test]
fn limits_are_read_again_after_lost_writes() {
    let version = FixtureVersion::V1;
    let (tree, containers, mut collector) = aged_docker_tree(version, 3, Duration::from_secs(3600));
    let (controller, file) = memory_limit_file(version);
    collector.collect();
    let quiet = &containers[2];
    replace_memory_limit_unseen(&tree, quiet, 99 << 20);

    // More writes than the kernel queues (`fs.inotify.max_queued_events`),
    // alternating between two files so that none merges with the last.
    let max_queued: usize = fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let noisy: Vec<_> = containers[..2]
        .iter()
        .map(|c| tree.file_path(controller, c, file))
        .collect();
    for i in 0..=max_queued {
        fs::write(&noisy[i % 2], format!("{}\n", 200u64 << 20)).unwrap();
    }
    // Five cgroups with the root: one a tick in a 60-tick round, so all
    // within six ticks.
    let read_again =
        (0..6).any(|_| spec(&collector.collect(), quiet).memory_limit == Some(99 << 20));
    assert!(read_again, "the unseen limit is read after the overflow");
}

/// A cgroup in its first two minutes is looked at again at each of its
/// upkeep turns (for a network namespace or a writable layer it may not
/// have had yet); finding nothing new, it keeps its identity, the same
/// shared value, as the recent window and the exposition expect of a
/// cgroup that did not change.
#[test]
fn a_settling_cgroup_looked_at_again_keeps_its_identity() {
    let tree = FixtureTree::new(FixtureVersion::V2).unwrap();
    let containers = tree
        .add_containers(PathStyle::DockerCgroupfs, 0, 3)
        .unwrap();
    // A round of two ticks: every cgroup has its turn within three.
    let mut collector = Collector::new(AgentConfig {
        spec_refresh_interval: Duration::from_secs(2),
        ..tree.agent_config()
    })
    .unwrap();
    let first = collector.collect();
    let last = (0..4).map(|_| collector.collect()).last().unwrap();
    for c in &containers {
        let info = |snap: &Snapshot| {
            snap.containers
                .iter()
                .find(|s| s.info.id == *c)
                .unwrap_or_else(|| panic!("{c} in the snapshot"))
                .info
                .clone()
        };
        assert!(
            std::sync::Arc::ptr_eq(&info(&first), &info(&last)),
            "{c}: a new identity although nothing changed"
        );
    }
}
