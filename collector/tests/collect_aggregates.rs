//! Pod and QoS-class cgroups (which only aggregate their containers) are
//! read every `aggregate_interval`, their last sample carried in between
//! with the time it was read: in the exposition (explicit timestamps), in
//! remote-write (each sample shipped once) and in the recent window.

use std::sync::Arc;
use std::time::Duration;

use osprey_collector::agent::to_time_series;
use osprey_collector::collect::{Collector, Probe, now_ms};
use osprey_collector::config::AgentConfig;
use osprey_collector::expose::families::{DeviceNames, ExposeOptions};
use osprey_collector::expose::{snapshot_families, text};
use osprey_collector::fixture::{FixtureTree, FixtureVersion, PathStyle, paths};
use osprey_collector::snapshot::Snapshot;
use osprey_collector::window::RecentSamples;

fn config(tree: &FixtureTree, aggregate_interval: Duration) -> AgentConfig {
    AgentConfig {
        aggregate_interval,
        ..tree.agent_config()
    }
}

fn parent(path: &str) -> String {
    path.rsplit_once('/').unwrap().0.to_string()
}

fn usage(snap: &Snapshot, id: &str) -> (u64, i64) {
    let c = snap
        .containers
        .iter()
        .find(|c| c.info.id == id)
        .unwrap_or_else(|| panic!("{id} in the snapshot"));
    (c.stats.memory.usage, c.stats.timestamp_ms)
}

/// Collects in a later millisecond than the previous collection, so that
/// every snapshot has a timestamp of its own.
fn collect_after(collector: &mut Collector, previous_ms: i64) -> Snapshot {
    while now_ms() <= previous_ms {
        std::hint::spin_loop();
    }
    collector.collect()
}

#[test]
fn aggregates_are_read_every_nth_tick_and_keep_their_read_time() {
    let tree = FixtureTree::new(FixtureVersion::V2).unwrap();
    let style = PathStyle::KubepodsSystemd(paths::Qos::Burstable, paths::Runtime::Containerd);
    let containers = tree.add_containers(style, 0, 3).unwrap();
    let container = &containers[0];
    let pod = parent(container);
    let qos = parent(&pod);
    let mut collector = Collector::new(config(&tree, Duration::from_secs(3))).unwrap();

    let mut snaps: Vec<Snapshot> = Vec::new();
    let mut pod_reads = Vec::new();
    for tick in 0..9u64 {
        // New figures before every tick: the container shows each one, the
        // pod only those of the ticks it is read on.
        let value = 1_000_000 + tick;
        for path in [container, &pod] {
            tree.write_file("", path, "memory.current", &format!("{value}\n"))
                .unwrap();
        }
        let previous = snaps.last().map_or(0, |s| s.timestamp_ms);
        let snap = collect_after(&mut collector, previous);
        assert_eq!(
            snap.containers.len(),
            3 + 3 + 3,
            "containers, pods, kubepods, burstable, root"
        );
        assert_eq!(
            usage(&snap, container),
            (value, snap.timestamp_ms),
            "tick {tick}"
        );
        let (pod_value, pod_ts) = usage(&snap, &pod);
        if pod_ts == snap.timestamp_ms {
            assert_eq!(
                pod_value, value,
                "a pod read this tick has this tick's figures"
            );
            pod_reads.push(tick);
        } else {
            // Carried: the figures and time of its last read.
            let last = &snaps[*pod_reads.last().expect("read on its first tick") as usize];
            assert_eq!(
                (pod_value, pod_ts),
                (1_000_000 + pod_reads.last().unwrap(), last.timestamp_ms)
            );
        }
        // The root is not an aggregate: read every tick.
        assert_eq!(usage(&snap, "/").1, snap.timestamp_ms);
        snaps.push(snap);
    }
    // Read at once when discovered, then every third tick on the
    // cgroup's phase (phases spread the aggregates over the ticks).
    assert_eq!(pod_reads[0], 0, "read at once when discovered");
    let scheduled = &pod_reads[1..];
    assert!(scheduled[0] <= 3, "{pod_reads:?}");
    assert!(
        scheduled.windows(2).all(|w| w[1] - w[0] == 3),
        "{pod_reads:?}"
    );
    assert!((3..=4).contains(&pod_reads.len()), "{pod_reads:?}");
    let qos_reads: Vec<usize> = (0..snaps.len())
        .filter(|&i| usage(&snaps[i], &qos).1 == snaps[i].timestamp_ms)
        .collect();
    assert_eq!(qos_reads[0], 0);
    assert!(
        (3..=4).contains(&qos_reads.len()),
        "the QoS-class cgroup is an aggregate too: {qos_reads:?}"
    );
    let containers_read = snaps
        .iter()
        .filter(|s| usage(s, container).1 == s.timestamp_ms)
        .count();
    assert_eq!(containers_read, 9);

    // The exposition: carried samples carry their read time; fresh ones
    // have none (the scrape's time).
    let carried = snaps
        .iter()
        .find(|s| usage(s, &pod).1 != s.timestamp_ms)
        .unwrap();
    let families = snapshot_families(carried, &ExposeOptions::default(), &DeviceNames::default());
    let usage_family = families
        .iter()
        .find(|f| f.name == "container_memory_usage_bytes")
        .unwrap();
    let sample_of = |id: &str| {
        usage_family
            .samples
            .iter()
            .find(|s| s.labels().any(|(k, v)| k == "id" && v == id))
            .unwrap()
    };
    let pod_ts = usage(carried, &pod).1;
    assert_eq!(sample_of(&pod).timestamp_ms.map(|t| t.get()), Some(pod_ts));
    assert_eq!(sample_of(container).timestamp_ms, None);
    let body = String::from_utf8(text::encode(families.clone(), Vec::new()).unwrap()).unwrap();
    let pod_line = body
        .lines()
        .find(|l| {
            l.starts_with("container_memory_usage_bytes{") && l.contains(&format!("id=\"{pod}\""))
        })
        .unwrap();
    assert!(pod_line.ends_with(&format!(" {pod_ts}")), "{pod_line}");
    let container_line = body
        .lines()
        .find(|l| {
            l.starts_with("container_memory_usage_bytes{")
                && l.contains(&format!("id=\"{container}\""))
        })
        .unwrap();
    assert_eq!(
        container_line.split(' ').count(),
        2,
        "no timestamp: {container_line}"
    );

    // Remote-write: a carried sample was shipped with the tick that read it.
    let series = to_time_series(
        carried,
        &ExposeOptions::default(),
        &DeviceNames::default(),
        "node-1",
    );
    let ids: Vec<&str> = series
        .iter()
        .filter(|s| {
            s.labels
                .iter()
                .any(|l| l.name == "__name__" && l.value == "container_memory_usage_bytes")
        })
        .flat_map(|s| {
            s.labels
                .iter()
                .filter(|l| l.name == "id")
                .map(|l| l.value.as_str())
        })
        .collect();
    assert!(ids.contains(&container.as_str()));
    assert!(!ids.contains(&pod.as_str()), "{ids:?}");

    // The recent window returns each pod sample once.
    let mut recent = RecentSamples::new(600_000, 100);
    for s in &snaps {
        recent.push(Arc::new(s.clone()));
    }
    let (_, pod_history) = recent.since(&pod, 0).unwrap();
    let times: Vec<i64> = pod_history.iter().map(|s| s.timestamp_ms).collect();
    let expected: Vec<i64> = pod_reads
        .iter()
        .map(|t| snaps[*t as usize].timestamp_ms)
        .collect();
    assert_eq!(times, expected);
    assert_eq!(recent.since(container, 0).unwrap().1.len(), 9);
    // A sample read before `since` is left out even if a later snapshot
    // carries it.
    let after_first = snaps[1].timestamp_ms;
    let (_, later) = recent.since(&pod, after_first).unwrap();
    assert!(
        later.iter().all(|s| s.timestamp_ms >= after_first),
        "{later:?}"
    );
    assert_eq!(later.len(), pod_reads.len() - 1);
}

#[test]
fn zero_aggregate_interval_reads_every_cgroup_every_tick() {
    let tree = FixtureTree::new(FixtureVersion::V1).unwrap();
    let style = PathStyle::KubepodsSystemd(paths::Qos::Burstable, paths::Runtime::Containerd);
    let containers = tree.add_containers(style, 0, 2).unwrap();
    let pod = parent(&containers[0]);
    let mut collector = Collector::new(config(&tree, Duration::ZERO)).unwrap();
    let mut previous = 0;
    for tick in 0..4u64 {
        let value = 2_000_000 + tick;
        tree.write_file(
            "memory",
            &pod,
            "memory.usage_in_bytes",
            &format!("{value}\n"),
        )
        .unwrap();
        let snap = collect_after(&mut collector, previous);
        assert_eq!(usage(&snap, &pod), (value, snap.timestamp_ms));
        previous = snap.timestamp_ms;
    }
}

/// A pod's slow files (here its limit hits) are read at every sixth of
/// its reads, a container's at every slow interval.
#[test]
fn an_aggregate_reads_its_slow_files_at_every_sixth_read() {
    use std::time::Instant;
    let tree = FixtureTree::new(FixtureVersion::V1).unwrap();
    let style = PathStyle::KubepodsSystemd(paths::Qos::Burstable, paths::Runtime::Containerd);
    let container = tree.add_containers(style, 0, 1).unwrap().remove(0);
    let pod = parent(&container);
    let tick = Duration::from_millis(40);
    let mut collector = Collector::new(AgentConfig {
        interval: tick,
        slow_stat_interval: tick,
        ..config(&tree, tick * 2)
    })
    .unwrap();
    let failcnt = |snap: &Snapshot, id: &str| {
        let c = snap.containers.iter().find(|c| c.info.id == id).unwrap();
        (c.stats.memory.failcnt, c.stats.timestamp_ms)
    };
    let (mut pod_seen, mut pod_reads, mut container_seen) = (Vec::new(), 0, 0);
    let start = Instant::now();
    for n in 0..30u32 {
        // Ticks paced as the agent paces them: the slow cadence is time.
        if let Some(wait) = (start + tick * n).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for path in [&container, &pod] {
            tree.write_file("memory", path, "memory.failcnt", &format!("{n}\n"))
                .unwrap();
        }
        let snap = collector.collect();
        let (pod_count, pod_ts) = failcnt(&snap, &pod);
        if pod_ts == snap.timestamp_ms {
            pod_reads += 1;
            if pod_count == u64::from(n) {
                pod_seen.push(n);
            }
        }
        if failcnt(&snap, &container).0 == u64::from(n) {
            container_seen += 1;
        }
    }
    // Slow at every tick or second tick for the container (as the ticks
    // jitter about its due time); at the first read and every sixth read
    // after for the pod.
    assert!(container_seen >= 14, "{container_seen}");
    assert!(pod_reads >= 14, "{pod_reads}");
    assert!(
        (2..=3).contains(&pod_seen.len()) && pod_seen[0] == 0,
        "{pod_seen:?}"
    );
    assert!(
        pod_seen.windows(2).all(|w| w[1] - w[0] >= 11),
        "six reads of every other tick apart: {pod_seen:?}"
    );
}

#[test]
fn the_read_plan_names_each_file_with_the_cadence_it_is_read_at() {
    let tree = FixtureTree::new(FixtureVersion::V1).unwrap();
    let style = PathStyle::KubepodsSystemd(paths::Qos::Burstable, paths::Runtime::Containerd);
    let mut containers = tree.add_containers(style, 0, 2).unwrap();
    let (container, no_io) = (containers.remove(0), containers.remove(0));
    tree.clear_blkio_v1(&no_io).unwrap();
    let pod = parent(&container);
    let mut collector = Collector::new(AgentConfig {
        slow_stat_interval: Duration::from_secs(5),
        spec_refresh_interval: Duration::from_secs(30),
        ..config(&tree, Duration::from_secs(10))
    })
    .unwrap();
    collector.collect();
    let plan = collector.read_plan();
    let planned = |controller: &str, cgroup: &str, file: &str| {
        let path = tree.file_path(controller, cgroup, file);
        plan.iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("{} in the plan", path.display()))
    };
    let cadence = |controller: &str, cgroup: &str, file: &str| {
        let r = planned(controller, cgroup, file);
        assert!(r.held, "{} held open", r.path.display());
        (r.every, r.quiet_every, r.quiet_when)
    };
    // A container: per tick; memory.stat on the slow cadence while its
    // memory usage stands still (every second tick while it moves a
    // little, the kernel's lag), pids.current while its CPU time does;
    // the slow files on it always.
    assert_eq!(
        cadence("cpuacct", &container, "cpuacct.usage"),
        (1, 1, None)
    );
    assert_eq!(
        cadence("memory", &container, "memory.stat"),
        (2, 5, Some(Probe::MemoryUsage))
    );
    assert_eq!(
        cadence("pids", &container, "pids.current"),
        (1, 5, Some(Probe::CpuTime))
    );
    assert_eq!(
        cadence("memory", &container, "memory.failcnt"),
        (5, 5, None)
    );
    // Its blkio pair, chosen on the first read because it has data.
    assert!(
        plan.iter()
            .any(|r| r.path.starts_with(tree.cgroup_dir("blkio", &container)) && r.every == 1),
        "the container's blkio files in the plan: {plan:?}"
    );
    // Its limits: opened, read and closed at each refresh.
    for (controller, file) in [
        ("cpu", "cpu.shares"),
        ("cpu", "cpu.cfs_quota_us"),
        ("memory", "memory.limit_in_bytes"),
        ("pids", "pids.max"),
    ] {
        let r = planned(controller, &container, file);
        assert_eq!((r.every, r.held), (30, false), "{file}");
    }
    // A container without blkio data: the recursive throttle set probed
    // every minute, opened when due; the plain one, which it shadows,
    // never.
    let probe = planned("blkio", &no_io, "blkio.throttle.io_serviced_recursive");
    assert_eq!((probe.every, probe.held), (60, false));
    let plain = tree.file_path("blkio", &no_io, "blkio.throttle.io_serviced");
    assert!(!plan.iter().any(|r| r.path == plain));
    // Its pod, an aggregate: every tenth tick, its slow files at every
    // sixth of its reads.
    assert_eq!(cadence("cpuacct", &pod, "cpuacct.usage"), (10, 10, None));
    assert_eq!(cadence("memory", &pod, "memory.failcnt"), (60, 60, None));
    // Nothing the collector does not hold is planned twice.
    let mut paths: Vec<_> = plan.iter().map(|r| &r.path).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), plan.len());
}

#[test]
fn slow_files_are_held_open_unless_configured_to_be_opened_when_due() {
    // A descriptor kept open on a cgroup file costs the kernel memory of
    // its text buffer (a page, once read), charged to the agent's cgroup
    // though not in its RSS: `hold_slow_files = false` trades the slow
    // files' descriptors for an open at each of their reads.
    let tree = FixtureTree::new(FixtureVersion::V1).unwrap();
    let style = PathStyle::KubepodsSystemd(paths::Qos::Burstable, paths::Runtime::Containerd);
    tree.add_containers(style, 0, 3).unwrap();
    let mut held = Vec::new();
    for hold_slow_files in [true, false] {
        let mut collector = Collector::new(AgentConfig {
            slow_stat_interval: Duration::ZERO,
            hold_slow_files,
            ..config(&tree, Duration::ZERO)
        })
        .unwrap();
        let mut snaps = Vec::new();
        for _ in 0..3 {
            let snap = collector.collect();
            assert!(
                snap.containers
                    .iter()
                    .filter(|c| c.stats.memory.max_usage.is_some())
                    .count()
                    >= 3,
                "the slow files were read this tick"
            );
            snaps.push(snap);
        }
        let per_tick = collector.per_tick_files().len();
        assert!(per_tick > 0);
        if hold_slow_files {
            assert!(collector.open_files() > per_tick);
        } else {
            assert_eq!(collector.open_files(), per_tick);
        }
        held.push(snaps.pop().unwrap());
    }
    // The same figures either way.
    let figures = |snap: &Snapshot| {
        let mut v: Vec<_> = snap
            .containers
            .iter()
            .map(|c| {
                (
                    c.info.id.clone(),
                    c.stats.memory.clone(),
                    c.stats.cpu.user_ns,
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(figures(&held[0]), figures(&held[1]));
}
