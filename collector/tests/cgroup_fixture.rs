//! `CgroupReader` against synthetic v1 and v2 trees: every field's value
//! and unit, root special cases, limits, value changes between ticks.

use std::fs;

use osprey_collector::cgroup::CgroupReader;
use osprey_collector::cgroup::v1::user_hz;
use osprey_collector::fixture::paths::{self, Qos, Runtime};
use osprey_collector::fixture::{
    CgroupValues, DeviceIoValues, FixtureTree, FixtureVersion, MemoryStatValues, PathStyle,
    SpecValues,
};
use osprey_collector::stats::{
    BlkioDevice, CfsStats, ContainerSpec, ContainerStats, CpuStats, MemoryStats, PidsStats,
    PressureStats, Psi,
};

const MIB: u64 = 1024 * 1024;

/// A Docker container cgroup (id from `seed`) written with `v`, and a
/// reader of it whose slow read is an hour away (the first read reads
/// everything): for tests of what is carried between reads.
fn slow_reads_an_hour_away(
    tree: &FixtureTree,
    seed: u64,
    v: &CgroupValues,
) -> (String, CgroupReader) {
    let path = paths::docker_systemd(&paths::container_id(seed));
    tree.add_cgroup(&path, v).unwrap();
    let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
    reader.set_slow_interval(std::time::Duration::from_secs(3600));
    (path, reader)
}

fn values() -> CgroupValues {
    CgroupValues {
        cpu_usage_ns: 123_456_789_000,
        cpu_user_ns: 70_000_000_000,
        cpu_system_ns: 20_000_000_000,
        cfs_periods: 11,
        cfs_throttled_periods: 3,
        cfs_throttled_ns: 4_500_000,
        cfs_bursts: 2,
        cfs_burst_ns: 700_000,
        memory_usage: 300 * MIB,
        memory_max_usage: 400 * MIB,
        memory_stat: MemoryStatValues {
            anon: 100 * MIB,
            file: 150 * MIB,
            file_mapped: 10 * MIB,
            active_file: 60 * MIB,
            inactive_file: 90 * MIB,
            active_anon: 99 * MIB,
            inactive_anon: MIB,
            shmem: 4096,
            file_dirty: 8192,
            file_writeback: 0,
            swap: MIB,
            kernel: 5 * MIB,
            pgfault: 5000,
            pgmajfault: 7,
        },
        memory_stat_local: Some(MemoryStatValues {
            anon: 1,
            file: 2,
            file_mapped: 3,
            active_file: 4,
            inactive_file: 5,
            swap: 6,
            pgfault: 55,
            pgmajfault: 66,
            ..MemoryStatValues::default()
        }),
        use_hierarchy: true,
        memory_failcnt: 9,
        memory_high_events: 4,
        oom_events: 3,
        oom_kills: 2,
        devices: vec![
            DeviceIoValues {
                major: 254,
                minor: 0,
                read_bytes: 8192,
                write_bytes: 4096,
                reads: 2,
                writes: 1,
                discard_bytes: 512,
                discards: 1,
            },
            DeviceIoValues {
                major: 7,
                minor: 3,
                read_bytes: 1 << 20,
                write_bytes: 0,
                reads: 256,
                writes: 0,
                discard_bytes: 0,
                discards: 0,
            },
        ],
        v1_bfq_has_data: false,
        pids_current: 5,
        pressure: PressureStats {
            cpu: Psi {
                some_total_us: 111,
                full_total_us: 22,
            },
            memory: Psi {
                some_total_us: 333,
                full_total_us: 44,
            },
            io: Psi {
                some_total_us: 555,
                full_total_us: 66,
            },
        },
        spec: SpecValues {
            cpu_shares: 512,
            cpu_weight: 200,
            cpu_quota_us: Some(25_000),
            cpu_period_us: 100_000,
            memory_limit: Some(1024 * MIB),
            memory_swap_limit: Some(2048 * MIB),
            memory_reservation: Some(256 * MIB),
            pids_max: Some(100),
        },
    }
}

fn expected_blkio() -> Vec<BlkioDevice> {
    vec![
        BlkioDevice {
            major: 254,
            minor: 0,
            read_bytes: 8192,
            write_bytes: 4096,
            reads: 2,
            writes: 1,
        },
        BlkioDevice {
            major: 7,
            minor: 3,
            read_bytes: 1 << 20,
            write_bytes: 0,
            reads: 256,
            writes: 0,
        },
    ]
}

fn expected_cpu() -> CpuStats {
    CpuStats {
        usage_ns: 123_456_789_000,
        user_ns: 70_000_000_000,
        system_ns: 20_000_000_000,
        cfs: Some(CfsStats {
            periods: 11,
            throttled_periods: 3,
            throttled_ns: 4_500_000,
            burst_periods: Some(2),
            burst_ns: Some(700_000),
        }),
    }
}

#[test]
fn v1_every_field_with_hierarchy() {
    let tree = FixtureTree::v1().unwrap();
    let path = paths::kubepods_systemd(
        Qos::Burstable,
        &paths::pod_uid(1),
        Runtime::Containerd,
        &paths::container_id(1),
    );
    tree.add_cgroup(&path, &values()).unwrap();

    // The files carry the kernel's units: ticks of USER_HZ, ns elsewhere.
    let tick_ns = 1_000_000_000 / user_hz();
    let cpuacct_stat =
        fs::read_to_string(tree.file_path("cpuacct", &path, "cpuacct.stat")).unwrap();
    assert_eq!(
        cpuacct_stat,
        format!(
            "user {}\nsystem {}\n",
            70_000_000_000 / tick_ns,
            20_000_000_000 / tick_ns
        )
    );
    let cpu_stat = fs::read_to_string(tree.file_path("cpu", &path, "cpu.stat")).unwrap();
    assert!(cpu_stat.contains("throttled_time 4500000\n"), "{cpu_stat}");

    let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
    let stats = reader.read_stats(1_700_000_000_123).unwrap();
    let expected = ContainerStats {
        timestamp_ms: 1_700_000_000_123,
        cpu: expected_cpu(),
        memory: MemoryStats {
            usage: 300 * MIB,
            max_usage: Some(400 * MIB),
            // usage − total_inactive_file
            working_set: 210 * MIB,
            rss: 100 * MIB,
            cache: 150 * MIB,
            swap: MIB,
            mapped_file: 10 * MIB,
            kernel: 5 * MIB,
            active_file: 60 * MIB,
            inactive_file: 90 * MIB,
            failcnt: 9,
            // cAdvisor takes the cgroup's own fault counters, not total_*.
            pgfault: 55,
            pgmajfault: 66,
            oom_events: 0,
            oom_kills: 2,
        },
        blkio: expected_blkio(),
        // The limit comes with the spec, not every tick.
        pids: PidsStats {
            current: Some(5),
            limit: None,
        },
        pressure: None,
        network: vec![],
        filesystem: vec![],
    };
    assert_eq!(stats, expected);

    let spec = reader.read_spec().unwrap();
    assert_eq!(
        spec,
        ContainerSpec {
            cpu_shares: Some(512),
            cpu_period_us: Some(100_000),
            cpu_quota_us: Some(25_000),
            memory_limit: Some(1024 * MIB),
            memory_swap_limit: Some(2048 * MIB),
            memory_reservation: Some(256 * MIB),
            pids_limit: Some(100),
        }
    );
    assert_eq!(spec.cpu_limit_millicores(), Some(250));
}

#[test]
fn v1_without_hierarchy_uses_own_keys_except_file_lru() {
    let tree = FixtureTree::v1().unwrap();
    let path = paths::docker_cgroupfs(&paths::container_id(2));
    tree.add_cgroup(
        &path,
        &CgroupValues {
            use_hierarchy: false,
            ..values()
        },
    )
    .unwrap();
    let stats = CgroupReader::open(tree.layout(), &path)
        .unwrap()
        .read_stats(0)
        .unwrap();
    let m = stats.memory;
    assert_eq!((m.rss, m.cache, m.mapped_file, m.swap), (1, 2, 3, 6));
    // Working set and the file LRU figures always use total_* on v1.
    assert_eq!(
        (m.active_file, m.inactive_file, m.working_set),
        (60 * MIB, 90 * MIB, 210 * MIB)
    );
    assert_eq!((m.pgfault, m.pgmajfault), (55, 66));
}

#[test]
fn v1_absent_use_hierarchy_means_hierarchical() {
    let tree = FixtureTree::v1().unwrap();
    let path = paths::docker_systemd(&paths::container_id(3));
    tree.add_cgroup(
        &path,
        &CgroupValues {
            use_hierarchy: false,
            ..values()
        },
    )
    .unwrap();
    tree.remove_file("memory", &path, "memory.use_hierarchy")
        .unwrap();
    let stats = CgroupReader::open(tree.layout(), &path)
        .unwrap()
        .read_stats(0)
        .unwrap();
    assert_eq!(stats.memory.rss, 100 * MIB);
}

#[test]
fn v1_unlimited_spec_and_working_set_floor() {
    let tree = FixtureTree::v1().unwrap();
    let path = paths::systemd_service("ssh");
    let mut v = CgroupValues {
        spec: SpecValues::default(),
        ..values()
    };
    v.memory_usage = 10 * MIB; // less than total_inactive_file
    tree.add_cgroup(&path, &v).unwrap();
    let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
    assert_eq!(reader.read_stats(0).unwrap().memory.working_set, 0);
    assert_eq!(
        reader.read_spec().unwrap(),
        ContainerSpec {
            cpu_shares: Some(1024),
            cpu_period_us: Some(100_000),
            cpu_quota_us: None,
            memory_limit: None,
            memory_swap_limit: None,
            memory_reservation: None,
            pids_limit: None,
        }
    );
}

#[test]
fn v1_root_has_no_pids() {
    let tree = FixtureTree::v1().unwrap();
    tree.set_values("/", &values()).unwrap();
    let mut reader = CgroupReader::open(tree.layout(), "/").unwrap();
    assert!(
        reader
            .files()
            .iter()
            .all(|f| !f.to_string_lossy().contains("pids."))
    );
    let stats = reader.read_stats(0).unwrap();
    assert_eq!(stats.pids, PidsStats::default());
    assert_eq!(stats.cpu, expected_cpu());
    assert_eq!(stats.memory.usage, 300 * MIB);
    assert_eq!(reader.read_spec().unwrap().pids_limit, None);
}

#[test]
fn v1_blkio_prefers_bfq_then_recursive_throttle() {
    let tree = FixtureTree::v1().unwrap();
    let path = paths::docker_cgroupfs(&paths::container_id(4));
    let bogus = "254:0 Read 999\n254:0 Write 999\nTotal 1998\n";

    // BFQ has data: its files win over the throttle files.
    tree.add_cgroup(
        &path,
        &CgroupValues {
            v1_bfq_has_data: true,
            ..values()
        },
    )
    .unwrap();
    tree.write_file(
        "blkio",
        &path,
        "blkio.throttle.io_serviced_recursive",
        bogus,
    )
    .unwrap();
    let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
    assert_eq!(reader.read_stats(0).unwrap().blkio, expected_blkio());
    assert!(
        reader
            .files()
            .iter()
            .any(|f| f.ends_with("blkio.bfq.io_serviced_recursive"))
    );

    // BFQ holds only `Total 0`: the recursive throttle files come next,
    // ahead of the non-recursive ones.
    tree.set_values(&path, &values()).unwrap();
    tree.write_file("blkio", &path, "blkio.throttle.io_serviced", bogus)
        .unwrap();
    let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
    assert_eq!(reader.read_stats(0).unwrap().blkio, expected_blkio());
    let files = reader.files();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("blkio.throttle.io_service_bytes_recursive"))
    );
    assert!(
        !files
            .iter()
            .any(|f| f.ends_with("blkio.bfq.io_serviced_recursive"))
    );

    // No I/O at all: no devices.
    tree.set_values(
        &path,
        &CgroupValues {
            devices: vec![],
            ..values()
        },
    )
    .unwrap();
    let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
    assert_eq!(reader.read_stats(0).unwrap().blkio, vec![]);
}

#[test]
fn v2_every_field() {
    let tree = FixtureTree::v2().unwrap();
    let path = paths::kubepods_systemd(
        Qos::Guaranteed,
        &paths::pod_uid(5),
        Runtime::Crio,
        &paths::container_id(5),
    );
    tree.add_cgroup(&path, &values()).unwrap();

    // The files carry the kernel's units: µs.
    let cpu_stat = fs::read_to_string(tree.file_path("", &path, "cpu.stat")).unwrap();
    assert!(
        cpu_stat.starts_with("usage_usec 123456789\nuser_usec 70000000\nsystem_usec 20000000\n"),
        "{cpu_stat}"
    );
    assert!(cpu_stat.contains("throttled_usec 4500\n") && cpu_stat.contains("burst_usec 700\n"));

    let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
    let stats = reader.read_stats(42).unwrap();
    let expected = ContainerStats {
        timestamp_ms: 42,
        cpu: expected_cpu(),
        memory: MemoryStats {
            usage: 300 * MIB,
            max_usage: Some(400 * MIB),
            working_set: 210 * MIB,
            rss: 100 * MIB,
            cache: 150 * MIB,
            swap: MIB,
            mapped_file: 10 * MIB,
            kernel: 5 * MIB,
            active_file: 60 * MIB,
            inactive_file: 90 * MIB,
            // memory.events max
            failcnt: 9,
            pgfault: 5000,
            pgmajfault: 7,
            oom_events: 3,
            oom_kills: 2,
        },
        blkio: expected_blkio(),
        // The limit comes with the spec, not every tick.
        pids: PidsStats {
            current: Some(5),
            limit: None,
        },
        pressure: Some(values().pressure),
        network: vec![],
        filesystem: vec![],
    };
    assert_eq!(stats, expected);

    assert_eq!(
        reader.read_spec().unwrap(),
        ContainerSpec {
            // 2 + (200 − 1) · 262142 / 9999 = 5219
            cpu_shares: Some(5219),
            cpu_period_us: Some(100_000),
            cpu_quota_us: Some(25_000),
            memory_limit: Some(1024 * MIB),
            memory_swap_limit: Some(2048 * MIB),
            memory_reservation: Some(256 * MIB),
            pids_limit: Some(100),
        }
    );
}

#[test]
fn v2_unlimited_spec() {
    let tree = FixtureTree::v2().unwrap();
    let path = paths::systemd_service("cron");
    tree.add_cgroup(
        &path,
        &CgroupValues {
            spec: SpecValues::default(),
            ..values()
        },
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(tree.file_path("", &path, "cpu.max")).unwrap(),
        "max 100000\n"
    );
    let spec = CgroupReader::open(tree.layout(), &path)
        .unwrap()
        .read_spec()
        .unwrap();
    assert_eq!(
        spec,
        ContainerSpec {
            cpu_shares: Some(2 + 99 * 262_142 / 9_999),
            cpu_period_us: Some(100_000),
            cpu_quota_us: None,
            memory_limit: None,
            memory_swap_limit: None,
            memory_reservation: Some(0),
            pids_limit: None,
        }
    );
}

#[test]
fn v2_root_falls_back_to_anon_plus_file() {
    let tree = FixtureTree::v2().unwrap();
    tree.set_values("/", &values()).unwrap();
    let mut reader = CgroupReader::open(tree.layout(), "/").unwrap();
    let files = reader.files();
    assert!(
        !files
            .iter()
            .any(|f| f.ends_with("memory.current") || f.ends_with("pids.current"))
    );
    let stats = reader.read_stats(0).unwrap();
    assert_eq!(stats.memory.usage, 250 * MIB); // anon 100 MiB + file 150 MiB
    assert_eq!(stats.memory.working_set, 160 * MIB);
    assert_eq!(stats.memory.max_usage, None);
    assert_eq!(stats.cpu.usage_ns, 123_456_789_000);
    assert_eq!(stats.cpu.cfs, None);
    assert_eq!(stats.pids, PidsStats::default());
    assert_eq!(stats.pressure, Some(values().pressure));
    assert_eq!(reader.read_spec().unwrap(), ContainerSpec::default());
}

#[test]
fn held_files_see_new_values_each_tick() {
    for tree in [FixtureTree::v1().unwrap(), FixtureTree::v2().unwrap()] {
        let path = paths::docker_systemd(&paths::container_id(6));
        tree.add_cgroup(&path, &CgroupValues::sample(1)).unwrap();
        let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
        let first = reader.read_stats(1000).unwrap();
        let mut next = CgroupValues::sample(1);
        next.cpu_usage_ns += 2_000_000_000;
        next.memory_usage += MIB;
        next.devices[0].read_bytes += 4096;
        tree.set_values(&path, &next).unwrap();
        let second = reader.read_stats(2000).unwrap();
        assert_eq!(second.cpu.usage_ns - first.cpu.usage_ns, 2_000_000_000);
        assert_eq!(second.memory.usage - first.memory.usage, MIB);
        assert_eq!(second.blkio[0].read_bytes - first.blkio[0].read_bytes, 4096);
    }
}

#[test]
fn long_files_grow_the_buffer() {
    let tree = FixtureTree::v2().unwrap();
    let path = paths::docker_cgroupfs(&paths::container_id(7));
    let mut v = values();
    v.devices = (0..200)
        .map(|minor| DeviceIoValues {
            major: 8,
            minor,
            read_bytes: minor * 10,
            ..DeviceIoValues::default()
        })
        .collect();
    tree.add_cgroup(&path, &v).unwrap();
    assert!(
        fs::metadata(tree.file_path("", &path, "io.stat"))
            .unwrap()
            .len()
            > 8192
    );
    let stats = CgroupReader::open(tree.layout(), &path)
        .unwrap()
        .read_stats(0)
        .unwrap();
    assert_eq!(stats.blkio.len(), 200);
    assert_eq!(stats.blkio[199].read_bytes, 1990);
}

#[test]
fn many_containers_of_every_style() {
    let styles = [
        PathStyle::KubepodsSystemd(Qos::Burstable, Runtime::Containerd),
        PathStyle::KubepodsSystemd(Qos::BestEffort, Runtime::Crio),
        PathStyle::KubepodsCgroupfs(Qos::Guaranteed),
        PathStyle::DockerCgroupfs,
        PathStyle::DockerSystemd,
        PathStyle::SystemdService,
    ];
    for tree in [FixtureTree::v1().unwrap(), FixtureTree::v2().unwrap()] {
        for (i, style) in styles.into_iter().enumerate() {
            let paths = tree.add_containers(style, i as u64 * 100, 10).unwrap();
            assert_eq!(paths.len(), 10);
            for (seed, path) in (i as u64 * 100..).zip(&paths) {
                let mut reader = CgroupReader::open(tree.layout(), path).unwrap();
                let stats = reader.read_stats(0).unwrap();
                if tree.version() == FixtureVersion::V1 {
                    // Held per tick: cpuacct.usage, cpu 1, memory 2 (usage,
                    // stat), pids 1, blkio pair 2; the slow five (cpuacct.stat
                    // among them) are opened when due.
                    assert_eq!(reader.files().len(), 7);
                } else {
                    // Held per tick: cpu.stat, memory.current, memory.stat,
                    // memory.swap.current, io.stat, pids.current, PSI ×3.
                    assert_eq!(reader.files().len(), 9);
                }
                assert_eq!(reader.open_file_count(), reader.files().len());
                let v = CgroupValues::sample(seed);
                assert_eq!(stats.cpu.usage_ns, v.cpu_usage_ns, "{path}");
                assert_eq!(stats.memory.usage, v.memory_usage, "{path}");
            }
        }
        // Ancestors are cgroups too (pod and QoS level).
        assert!(
            CgroupReader::open(tree.layout(), "/kubepods.slice/kubepods-burstable.slice").is_ok()
        );
    }
}

#[test]
fn mountinfo_describes_the_tree() {
    let v1 = FixtureTree::v1().unwrap();
    let root = v1.root().display().to_string();
    for controller in ["cpu", "cpuacct", "memory", "blkio", "pids", "cpuset"] {
        let line = format!("{root}/{controller} rw,nosuid,nodev,noexec,relatime");
        let entry = v1
            .mountinfo()
            .lines()
            .find(|l| l.contains(&line))
            .unwrap_or_else(|| panic!("{controller} missing"));
        assert!(
            entry.ends_with(&format!(" - cgroup cgroup rw,{controller}")),
            "{entry}"
        );
    }
    assert!(v1.mountinfo().contains("- cgroup cgroup rw,name=systemd"));
    assert!(v1.mountinfo().contains(&format!("{root}/unified rw")));
    let v2 = FixtureTree::v2().unwrap();
    assert!(
        v2.mountinfo()
            .contains(&format!(" / {} rw", v2.root().display()))
    );
    assert!(v2.mountinfo().contains("- cgroup2 cgroup2 rw"));
    assert!(v2.root().join("cgroup.controllers").is_file());
    assert!(v2.layout().unified_has_controllers);
}

#[test]
fn readers_can_move_between_threads_and_files_limit_rises() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<CgroupReader>();
    assert_send::<osprey_collector::cgroup::ReadError>();

    let soft = osprey_collector::cgroup::raise_open_file_limit().unwrap();
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct passed.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    assert_eq!((soft, limit.rlim_cur), (limit.rlim_max, limit.rlim_max));
}

#[test]
fn v1_with_cpu_and_cpuacct_comounted() {
    let tree = FixtureTree::v1_cpu_cpuacct_comounted().unwrap();
    let comounted = tree.root().join("cpu,cpuacct");
    assert_eq!(tree.layout().v1["cpu"], comounted);
    assert_eq!(tree.layout().v1["cpuacct"], comounted);
    assert!(
        tree.mountinfo()
            .contains(&format!("{} rw", comounted.display()))
    );
    assert!(
        tree.mountinfo()
            .contains("- cgroup cgroup rw,cpu,cpuacct\n")
    );
    assert_eq!(
        tree.mountinfo().matches("cpu,cpuacct").count(),
        2,
        "one mount line"
    );

    let path =
        paths::kubepods_cgroupfs(Qos::Burstable, &paths::pod_uid(9), &paths::container_id(9));
    tree.add_cgroup(&path, &values()).unwrap();
    let dir = tree.cgroup_dir("cpu", &path);
    assert!(dir.join("cpu.stat").is_file() && dir.join("cpuacct.usage").is_file());
    let mut reader = CgroupReader::open(tree.layout(), &path).unwrap();
    let stats = reader.read_stats(0).unwrap();
    assert_eq!(stats.cpu, expected_cpu());
    assert_eq!(reader.read_spec().unwrap().cpu_shares, Some(512));
    tree.remove_cgroup(&path).unwrap();
    assert!(
        CgroupReader::open(tree.layout(), &path)
            .unwrap_err()
            .is_vanished()
    );
}

#[test]
fn slow_files_are_read_on_their_own_cadence_and_carried_between() {
    for tree in [FixtureTree::v1().unwrap(), FixtureTree::v2().unwrap()] {
        let mut v = values();
        let (path, mut reader) = slow_reads_an_hour_away(&tree, 7, &v);
        let first = reader.read_stats(0).unwrap();

        v.memory_usage += 4096;
        v.cpu_usage_ns += 1_000_000_000;
        v.cpu_user_ns += 1_000_000_000;
        v.memory_failcnt += 5;
        v.oom_kills += 1;
        v.memory_max_usage += 8192;
        tree.set_values(&path, &v).unwrap();
        let second = reader.read_stats(1).unwrap();
        assert_eq!(
            second.memory.usage,
            first.memory.usage + 4096,
            "fast files every tick"
        );
        assert_eq!(
            second.memory.failcnt, first.memory.failcnt,
            "slow files carried"
        );
        assert_eq!(second.memory.oom_kills, first.memory.oom_kills);
        assert_eq!(second.memory.max_usage, first.memory.max_usage);
        assert_eq!(second.memory.kernel, first.memory.kernel);
        assert_eq!(second.cpu.usage_ns, first.cpu.usage_ns + 1_000_000_000);
        if tree.version() == FixtureVersion::V1 {
            // v1's user/system split comes from cpuacct.stat, a slow file.
            assert_eq!(second.cpu.user_ns, first.cpu.user_ns);
        } else {
            // v2 has it in cpu.stat with the total, every tick.
            assert_eq!(second.cpu.user_ns, first.cpu.user_ns + 1_000_000_000);
        }

        reader.set_slow_interval(std::time::Duration::ZERO);
        let third = reader.read_stats(2).unwrap(); // the pending slow read is due now
        let fourth = reader.read_stats(3).unwrap();
        for s in [&third, &fourth] {
            assert_eq!(s.memory.failcnt, v.memory_failcnt);
            assert_eq!(s.memory.oom_kills, v.oom_kills);
            assert_eq!(s.memory.max_usage, Some(v.memory_max_usage));
            assert_eq!(s.cpu.user_ns, v.cpu_user_ns);
        }
    }
}

#[test]
fn v1_cfs_counters_are_read_only_under_a_quota() {
    let tree = FixtureTree::v1().unwrap();
    let limited = paths::docker_systemd(&paths::container_id(8));
    let free = paths::docker_systemd(&paths::container_id(9));
    let mut v = values();
    tree.add_cgroup(&limited, &v).unwrap();
    v.spec.cpu_quota_us = None;
    tree.add_cgroup(&free, &v).unwrap();
    let mut with_quota = CgroupReader::open(tree.layout(), &limited).unwrap();
    let mut without = CgroupReader::open(tree.layout(), &free).unwrap();
    assert!(with_quota.read_spec().unwrap().cpu_quota_us.is_some());
    assert!(without.read_spec().unwrap().cpu_quota_us.is_none());
    assert!(with_quota.read_stats(0).unwrap().cpu.cfs.is_some());
    assert!(
        without.read_stats(0).unwrap().cpu.cfs.is_none(),
        "cpu.stat is not read without a quota"
    );
    assert!(without.files().iter().all(|f| !f.ends_with("cpu.stat")));
    assert_eq!(
        without.open_file_count() + 1,
        with_quota.open_file_count(),
        "an unread cpu.stat is not held open either"
    );

    // A quota set later: cpu.stat is held and read again.
    v.spec.cpu_quota_us = Some(50_000);
    tree.set_values(&free, &v).unwrap();
    assert_eq!(without.read_spec().unwrap().cpu_quota_us, Some(50_000));
    assert_eq!(without.open_file_count(), with_quota.open_file_count());
    let cfs = without.read_stats(1).unwrap().cpu.cfs;
    assert_eq!(cfs, with_quota.read_stats(1).unwrap().cpu.cfs);
    assert!(cfs.is_some());
}

#[test]
fn holding_the_slow_files_reads_the_same_figures() {
    for tree in [FixtureTree::v1().unwrap(), FixtureTree::v2().unwrap()] {
        let path = paths::docker_systemd(&paths::container_id(11));
        tree.add_cgroup(&path, &values()).unwrap();
        let mut on_demand = CgroupReader::open(tree.layout(), &path).unwrap();
        let mut held = CgroupReader::open_with(tree.layout(), &path, true).unwrap();
        assert!(held.open_file_count() > on_demand.open_file_count());
        assert_eq!(
            held.files(),
            on_demand.files(),
            "same per-tick files either way"
        );
        assert_eq!(
            held.read_stats(5).unwrap(),
            on_demand.read_stats(5).unwrap()
        );
    }
}

#[test]
fn memory_stat_is_carried_while_the_memory_usage_stands_still() {
    for tree in [FixtureTree::v1().unwrap(), FixtureTree::v2().unwrap()] {
        let mut v = values();
        let (path, mut reader) = slow_reads_an_hour_away(&tree, 12, &v);
        reader.set_carry_quiet_memory_stat(true);
        let first = reader.read_stats(0).unwrap();

        // memory.stat (and v2's swap usage) change behind the usage's
        // back: a quiet tick reports the figures of its last read.
        v.memory_stat.anon += MIB;
        v.memory_stat.swap += MIB;
        v.memory_stat.inactive_file += MIB;
        v.memory_stat.pgfault += 10;
        if let Some(local) = &mut v.memory_stat_local {
            local.pgfault += 10;
        }
        tree.set_values(&path, &v).unwrap();
        let quiet = reader.read_stats(1).unwrap();
        assert_eq!(
            quiet.memory, first.memory,
            "quiet tick: memory.stat carried"
        );

        // The cgroup ran, its memory usage stood still: still carried.
        v.cpu_usage_ns += 1_000;
        tree.set_values(&path, &v).unwrap();
        let ran = reader.read_stats(2).unwrap();
        assert_eq!(ran.cpu.usage_ns, first.cpu.usage_ns + 1_000);
        assert_eq!(ran.memory, first.memory, "{:?}", tree.version());

        // Memory charged: read again, with what changed meanwhile.
        v.memory_stat.anon += MIB;
        v.memory_usage += MIB;
        tree.set_values(&path, &v).unwrap();
        let charged = reader.read_stats(3).unwrap();
        assert_eq!(charged.memory.rss, first.memory.rss + 2 * MIB);
        assert_eq!(charged.memory.swap, first.memory.swap + MIB);
        assert_eq!(charged.memory.usage, first.memory.usage + MIB);
        assert_eq!(charged.memory.pgfault, first.memory.pgfault + 10);
        // Usage and inactive file both up a MiB (carried, the working set
        // would have grown by one).
        assert_eq!(charged.memory.working_set, first.memory.working_set);

        // Memory freed (the usage falls): read again.
        v.memory_stat.anon -= MIB;
        v.memory_usage -= MIB;
        tree.set_values(&path, &v).unwrap();
        let freed = reader.read_stats(4).unwrap();
        assert_eq!(freed.memory.rss, first.memory.rss + MIB);

        // Quiet again, but the slow read comes due: everything is read.
        v.memory_stat.file += MIB;
        tree.set_values(&path, &v).unwrap();
        assert_eq!(reader.read_stats(5).unwrap().memory, freed.memory);
        reader.set_slow_interval(std::time::Duration::ZERO);
        let slow = reader.read_stats(6).unwrap();
        assert_eq!(slow.memory.cache, freed.memory.cache + MIB);

        // Off: every tick reads it.
        reader.set_slow_interval(std::time::Duration::from_secs(3600));
        reader.set_carry_quiet_memory_stat(false);
        reader.read_stats(7).unwrap();
        v.memory_stat.file += MIB;
        tree.set_values(&path, &v).unwrap();
        assert_eq!(
            reader.read_stats(8).unwrap().memory.cache,
            slow.memory.cache + MIB
        );
    }
}

/// At 1 s ticks the agent lags `memory.stat` as the kernel does: read
/// every second tick (2 s) while the memory moves a little, whatever the
/// jitter of the ticks; at 2 s ticks and slower, at every tick.
#[test]
fn the_kernel_lag_is_two_seconds_of_ticks() {
    use std::time::Duration;
    let ms = Duration::from_millis;
    let (age, batch) = osprey_collector::cgroup::kernel_memory_stat_lag(ms(1000));
    assert!(
        age > ms(1000) + ms(100) && age < ms(2000) - ms(100),
        "{age:?}"
    );
    assert!(batch >= 64 * 4096, "64 pages per CPU: {batch}");
    let (age, _) = osprey_collector::cgroup::kernel_memory_stat_lag(ms(500));
    assert!(age > ms(1500) && age < ms(2000), "{age:?}");
    let (age, _) = osprey_collector::cgroup::kernel_memory_stat_lag(ms(2000));
    assert!(age <= ms(1000), "{age:?}");
}

/// Memory moving a little is what the kernel's `memory.stat` shows only
/// every 2 s (its flush period): carried within the lag, read after it,
/// and read at once when the usage moved by the kernel's batch or more.
#[test]
fn memory_stat_lags_a_small_move_as_the_kernel_does() {
    use std::time::{Duration, Instant};
    for tree in [FixtureTree::v1().unwrap(), FixtureTree::v2().unwrap()] {
        let mut v = values();
        let (path, mut reader) = slow_reads_an_hour_away(&tree, 13, &v);
        reader.set_carry_quiet_memory_stat(true);
        reader.set_memory_stat_lag(Duration::from_millis(1500), MIB);
        let (t0, mut buf) = (Instant::now(), Vec::new());
        let at = |secs: f64| t0 + Duration::from_secs_f64(secs);
        let first = reader.read_stats_with(0, at(0.0), &mut buf).unwrap();

        // A page charged: the usage is exact, memory.stat waits.
        v.memory_usage += 4096;
        v.memory_stat.anon += 4096;
        tree.set_values(&path, &v).unwrap();
        let small = reader.read_stats_with(1, at(1.0), &mut buf).unwrap();
        assert_eq!(small.memory.usage, first.memory.usage + 4096);
        assert_eq!(small.memory.rss, first.memory.rss, "{:?}", tree.version());
        assert_eq!(small.memory.working_set, first.memory.working_set + 4096);

        // Another page, past the lag: read, with both pages.
        v.memory_usage += 4096;
        v.memory_stat.anon += 4096;
        tree.set_values(&path, &v).unwrap();
        let due = reader.read_stats_with(2, at(2.0), &mut buf).unwrap();
        assert_eq!(due.memory.rss, first.memory.rss + 8192);

        // A move of the batch, within the lag: read at once (the kernel
        // flushes on read past it).
        v.memory_usage += MIB;
        v.memory_stat.anon += MIB;
        tree.set_values(&path, &v).unwrap();
        let big = reader.read_stats_with(3, at(2.5), &mut buf).unwrap();
        assert_eq!(big.memory.rss, due.memory.rss + MIB);

        // Without a lag a small move is read at the next tick.
        reader.set_memory_stat_lag(Duration::ZERO, 0);
        v.memory_usage += 4096;
        v.memory_stat.anon += 4096;
        tree.set_values(&path, &v).unwrap();
        let unlagged = reader.read_stats_with(4, at(2.6), &mut buf).unwrap();
        assert_eq!(unlagged.memory.rss, big.memory.rss + 4096);
    }
}

#[test]
fn pids_current_is_carried_while_the_cpu_time_stands_still() {
    for tree in [FixtureTree::v1().unwrap(), FixtureTree::v2().unwrap()] {
        let mut v = values();
        v.pids_current = 7;
        let (path, mut reader) = slow_reads_an_hour_away(&tree, 15, &v);
        reader.set_carry_idle_pids(true);
        assert_eq!(reader.read_stats(0).unwrap().pids.current, Some(7));

        // Tasks came without the cgroup's CPU time moving (moved in from
        // outside): carried.
        v.pids_current = 9;
        tree.set_values(&path, &v).unwrap();
        assert_eq!(reader.read_stats(1).unwrap().pids.current, Some(7));

        // The cgroup ran: read again.
        v.cpu_usage_ns += 1_000;
        tree.set_values(&path, &v).unwrap();
        assert_eq!(reader.read_stats(2).unwrap().pids.current, Some(9));

        // Quiet again until the slow read comes due.
        v.pids_current = 3;
        tree.set_values(&path, &v).unwrap();
        assert_eq!(reader.read_stats(3).unwrap().pids.current, Some(9));
        reader.set_slow_interval(std::time::Duration::ZERO);
        assert_eq!(reader.read_stats(4).unwrap().pids.current, Some(3));

        // Off: every tick reads it.
        reader.set_slow_interval(std::time::Duration::from_secs(3600));
        reader.set_carry_idle_pids(false);
        v.pids_current = 4;
        tree.set_values(&path, &v).unwrap();
        assert_eq!(
            reader.read_stats(5).unwrap().pids.current,
            Some(4),
            "{:?}",
            tree.version()
        );
    }
}

/// v2 pressure totals are carried once the CPU time stood still for two
/// ticks, read again when it moves, and kept read while a stall goes on
/// (the totals move) even with the CPU time still.
#[test]
fn pressure_is_carried_while_the_cpu_time_and_the_stalls_stand_still() {
    let tree = FixtureTree::v2().unwrap();
    let mut v = values();
    v.pressure.io.some_total_us = 100;
    let (path, mut reader) = slow_reads_an_hour_away(&tree, 16, &v);
    reader.set_carry_idle_pressure(true);
    let io = |reader: &mut CgroupReader, tick: i64| {
        let stats = reader.read_stats(tick).unwrap();
        stats.pressure.unwrap().io.some_total_us
    };
    assert_eq!(io(&mut reader, 0), 100);

    // The CPU time stands still, for one tick: still read (a stall may
    // have begun just after the last read, by a task that ran before it).
    v.pressure.io.some_total_us = 150;
    tree.set_values(&path, &v).unwrap();
    assert_eq!(io(&mut reader, 1), 150);
    // The totals moved at that read: read again although the CPU time
    // stood still for two ticks, as long as they move.
    v.pressure.io.some_total_us = 250;
    tree.set_values(&path, &v).unwrap();
    assert_eq!(io(&mut reader, 2), 250);
    assert_eq!(io(&mut reader, 3), 250, "read: moved at the last read");
    // Still for two ticks, totals still: carried.
    let cpu_before = v.pressure.cpu.some_total_us;
    v.pressure.io.some_total_us = 300;
    v.pressure.cpu.some_total_us += 7;
    tree.set_values(&path, &v).unwrap();
    let carried = reader.read_stats(4).unwrap().pressure.unwrap();
    assert_eq!(
        (carried.io.some_total_us, carried.cpu.some_total_us),
        (250, cpu_before)
    );

    // The cgroup ran: read at once.
    v.cpu_usage_ns += 1_000;
    tree.set_values(&path, &v).unwrap();
    let ran = reader.read_stats(5).unwrap().pressure.unwrap();
    assert_eq!(
        (ran.io.some_total_us, ran.cpu.some_total_us),
        (300, cpu_before + 7)
    );

    // Carried again after two still ticks, until the slow read is due.
    assert_eq!(io(&mut reader, 6), 300);
    v.pressure.io.some_total_us = 400;
    tree.set_values(&path, &v).unwrap();
    assert_eq!(io(&mut reader, 7), 300, "carried");
    reader.set_slow_interval(std::time::Duration::ZERO);
    assert_eq!(io(&mut reader, 8), 400, "the slow read reads everything");

    // Off: every tick reads them.
    reader.set_slow_interval(std::time::Duration::from_secs(3600));
    reader.set_carry_idle_pressure(false);
    io(&mut reader, 9);
    io(&mut reader, 10);
    v.pressure.io.some_total_us = 500;
    tree.set_values(&path, &v).unwrap();
    assert_eq!(io(&mut reader, 11), 500);
}

#[test]
fn a_blkio_pair_is_budgeted_until_the_first_probe_only() {
    let tree = FixtureTree::v1().unwrap();
    let with_data = paths::docker_systemd(&paths::container_id(13));
    let without = paths::docker_systemd(&paths::container_id(14));
    tree.add_cgroup(&with_data, &values()).unwrap();
    tree.add_cgroup(&without, &values()).unwrap();
    tree.clear_blkio_v1(&without).unwrap();
    for (path, pair_found) in [(&with_data, true), (&without, false)] {
        let mut reader = CgroupReader::open(tree.layout(), path).unwrap();
        let before = reader.open_file_count();
        assert_eq!(reader.file_count_to_come(), 2, "{path}: before the probe");
        let stats = reader.read_stats(0).unwrap();
        assert_eq!(reader.file_count_to_come(), 0, "{path}: after the probe");
        assert_eq!(!stats.blkio.is_empty(), pair_found, "{path}");
        assert_eq!(
            reader.open_file_count(),
            before + if pair_found { 2 } else { 0 },
            "{path}"
        );
    }
}
