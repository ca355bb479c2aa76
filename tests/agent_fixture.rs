//! `osprey agent --once` over fixture cgroup trees (v1 and v2, the kernel's
//! file formats): every exported metric has the value and unit cAdvisor
//! would give, with names and labels from Docker's and the kubelet's files.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::*;
use osprey_collector::fixture::{CgroupValues, FixtureTree, FixtureVersion, paths};

/// A Docker root with one container's `config.v2.json`, as Docker writes it
/// for a Kubernetes container (cri-dockerd) or a plain one.
fn write_docker_config(
    docker_root: &Path,
    id: &str,
    name: &str,
    image: &str,
    k8s: Option<(&str, &str, &str, &str)>,
) {
    let dir = docker_root.join("containers").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let mut labels = serde_json::Map::new();
    labels.insert("com.example.team".into(), "payments".into());
    if let Some((ns, pod, uid, container)) = k8s {
        labels.insert("io.kubernetes.pod.namespace".into(), ns.into());
        labels.insert("io.kubernetes.pod.name".into(), pod.into());
        labels.insert("io.kubernetes.pod.uid".into(), uid.into());
        labels.insert("io.kubernetes.container.name".into(), container.into());
    }
    let config = serde_json::json!({
        "ID": id,
        "Created": "2026-11-20T10:00:00.000000000Z",
        "Name": format!("/{name}"),
        "Config": { "Hostname": "h", "Image": image, "Labels": labels },
        "State": { "Running": true, "Pid": 0, "StartedAt": "2026-11-20T10:00:01.0Z" },
        "HostConfig": { "NetworkMode": "default" },
        "Driver": "overlay2"
    });
    std::fs::write(
        dir.join("config.v2.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
}

fn run_once(tree: &FixtureTree, docker_root: &Path, sys_root: &Path, format: &str) -> Output {
    let out = osprey()
        .args([
            "agent",
            "--once",
            "--format",
            format,
            "--container-label",
            "com.example.team",
            "--container-label",
            "qos_class",
        ])
        .arg("--cgroup-root")
        .arg(tree.root())
        .arg("--docker-root")
        .arg(docker_root)
        .arg("--sys-root")
        .arg(sys_root)
        .arg("--pod-log-root")
        .arg(docker_root.join("no-pods"))
        .output()
        .expect("running osprey");
    assert!(
        out.status.success(),
        "osprey agent --once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn assert_close(name: &str, got: Option<f64>, want: f64) {
    let got = got.unwrap_or_else(|| panic!("{name} is missing"));
    let tol = want.abs() * 1e-12;
    assert!((got - want).abs() <= tol, "{name}: got {got}, want {want}");
}

fn check_container(text: &str, id: &str, v: &CgroupValues, version: FixtureVersion) {
    let l = [("id", id)];
    let m = |name: &str| metric_value(text, name, &l);
    assert_close(
        "container_cpu_usage_seconds_total",
        metric_value(
            text,
            "container_cpu_usage_seconds_total",
            &[("id", id), ("cpu", "total")],
        ),
        v.cpu_usage_ns as f64 * 1e-9,
    );
    assert_close(
        "container_cpu_user_seconds_total",
        m("container_cpu_user_seconds_total"),
        v.cpu_user_ns as f64 * 1e-9,
    );
    assert_close(
        "container_cpu_system_seconds_total",
        m("container_cpu_system_seconds_total"),
        v.cpu_system_ns as f64 * 1e-9,
    );
    assert_close(
        "container_cpu_cfs_periods_total",
        m("container_cpu_cfs_periods_total"),
        v.cfs_periods as f64,
    );
    assert_close(
        "container_cpu_cfs_throttled_periods_total",
        m("container_cpu_cfs_throttled_periods_total"),
        v.cfs_throttled_periods as f64,
    );
    assert_close(
        "container_cpu_cfs_throttled_seconds_total",
        m("container_cpu_cfs_throttled_seconds_total"),
        v.cfs_throttled_ns as f64 * 1e-9,
    );
    assert_close(
        "container_spec_cpu_quota",
        m("container_spec_cpu_quota"),
        v.spec.cpu_quota_us.unwrap() as f64,
    );
    assert_close(
        "container_spec_cpu_period",
        m("container_spec_cpu_period"),
        v.spec.cpu_period_us as f64,
    );
    assert_close(
        "container_spec_memory_limit_bytes",
        m("container_spec_memory_limit_bytes"),
        v.spec.memory_limit.unwrap() as f64,
    );
    let st = &v.memory_stat;
    assert_close(
        "container_memory_usage_bytes",
        m("container_memory_usage_bytes"),
        v.memory_usage as f64,
    );
    assert_close(
        "container_memory_working_set_bytes",
        m("container_memory_working_set_bytes"),
        (v.memory_usage - st.inactive_file) as f64,
    );
    assert_close(
        "container_memory_rss",
        m("container_memory_rss"),
        st.anon as f64,
    );
    assert_close(
        "container_memory_cache",
        m("container_memory_cache"),
        st.file as f64,
    );
    assert_close(
        "container_memory_mapped_file",
        m("container_memory_mapped_file"),
        st.file_mapped as f64,
    );
    assert_close(
        "container_memory_swap",
        m("container_memory_swap"),
        st.swap as f64,
    );
    assert_close(
        "container_memory_kernel_usage",
        m("container_memory_kernel_usage"),
        st.kernel as f64,
    );
    assert_close(
        "container_memory_total_inactive_file_bytes",
        m("container_memory_total_inactive_file_bytes"),
        st.inactive_file as f64,
    );
    assert_close(
        "container_memory_max_usage_bytes",
        m("container_memory_max_usage_bytes"),
        v.memory_max_usage as f64,
    );
    assert_close(
        "container_memory_failcnt",
        m("container_memory_failcnt"),
        v.memory_failcnt as f64,
    );
    assert_close(
        "container_oom_events_total",
        m("container_oom_events_total"),
        v.oom_kills as f64,
    );
    assert_close(
        "container_memory_failures_total pgmajfault",
        metric_value(
            text,
            "container_memory_failures_total",
            &[("id", id), ("failure_type", "pgmajfault")],
        ),
        st.pgmajfault as f64,
    );
    assert_close(
        "container_threads",
        m("container_threads"),
        v.pids_current as f64,
    );
    assert_close(
        "container_threads_max",
        m("container_threads_max"),
        v.spec.pids_max.unwrap() as f64,
    );
    let d = &v.devices[0];
    let dev = format!("{}:{}", d.major, d.minor);
    let dl = [("id", id), ("device", dev.as_str())];
    assert_close(
        "container_fs_reads_bytes_total",
        metric_value(text, "container_fs_reads_bytes_total", &dl),
        d.read_bytes as f64,
    );
    assert_close(
        "container_fs_writes_bytes_total",
        metric_value(text, "container_fs_writes_bytes_total", &dl),
        d.write_bytes as f64,
    );
    assert_close(
        "container_fs_reads_total",
        metric_value(text, "container_fs_reads_total", &dl),
        d.reads as f64,
    );
    assert_close(
        "container_fs_writes_total",
        metric_value(text, "container_fs_writes_total", &dl),
        d.writes as f64,
    );
    assert_close(
        "container_blkio_device_usage_total",
        metric_value(
            text,
            "container_blkio_device_usage_total",
            &[("id", id), ("operation", "Write")],
        ),
        d.write_bytes as f64,
    );
    match version {
        FixtureVersion::V2 => {
            assert_close(
                "container_pressure_cpu_waiting_seconds_total",
                m("container_pressure_cpu_waiting_seconds_total"),
                v.pressure.cpu.some_total_us as f64 * 1e-6,
            );
            assert_close(
                "container_pressure_io_stalled_seconds_total",
                m("container_pressure_io_stalled_seconds_total"),
                v.pressure.io.full_total_us as f64 * 1e-6,
            );
        }
        FixtureVersion::V1 => assert!(
            m("container_pressure_cpu_waiting_seconds_total").is_none(),
            "no PSI on v1"
        ),
    }
}

fn with_pressure(mut v: CgroupValues) -> CgroupValues {
    v.pressure.cpu.some_total_us = 1_234_567;
    v.pressure.cpu.full_total_us = 234_567;
    v.pressure.memory.some_total_us = 45_678;
    v.pressure.io.some_total_us = 9_876_543;
    v.pressure.io.full_total_us = 876_543;
    v
}

fn exercise(version: FixtureVersion) {
    let tree = FixtureTree::new(version).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let docker_root = tmp.path().join("docker");
    let sys_root = tmp.path().join("sys");
    std::fs::create_dir_all(&sys_root).unwrap();

    // A plain Docker container, a Kubernetes container (containerd, systemd
    // driver) and a CRI-O one, a pod cgroupfs-driver container and a
    // systemd service.
    let docker_id = paths::container_id(1);
    let docker_path = paths::docker_systemd(&docker_id);
    let docker_values = with_pressure(CgroupValues::sample(1));
    tree.add_cgroup(&docker_path, &docker_values).unwrap();
    write_docker_config(&docker_root, &docker_id, "web", "nginx:1.27", None);

    let k8s_id = paths::container_id(2);
    let uid = paths::pod_uid(2);
    let k8s_path =
        paths::kubepods_systemd(paths::Qos::Burstable, &uid, paths::Runtime::Docker, &k8s_id);
    let k8s_values = with_pressure(CgroupValues::sample(2));
    tree.add_cgroup(&k8s_path, &k8s_values).unwrap();
    write_docker_config(
        &docker_root,
        &k8s_id,
        "k8s_api_api-7d9_prod_x_0",
        "registry/api:2.1",
        Some(("prod", "api-7d9", &uid, "api")),
    );

    let crio_path = paths::kubepods_systemd(
        paths::Qos::BestEffort,
        &paths::pod_uid(3),
        paths::Runtime::Crio,
        &paths::container_id(3),
    );
    tree.add_cgroup(&crio_path, &CgroupValues::sample(3))
        .unwrap();
    let cgroupfs_path = paths::kubepods_cgroupfs(
        paths::Qos::Guaranteed,
        &paths::pod_uid(4),
        &paths::container_id(4),
    );
    let cgroupfs_values = with_pressure(CgroupValues::sample(4));
    tree.add_cgroup(&cgroupfs_path, &cgroupfs_values).unwrap();
    let containerd_path = paths::kubepods_systemd(
        paths::Qos::Burstable,
        &paths::pod_uid(6),
        paths::Runtime::Containerd,
        &paths::container_id(6),
    );
    let containerd_values = with_pressure(CgroupValues::sample(6));
    tree.add_cgroup(&containerd_path, &containerd_values)
        .unwrap();
    let service = paths::systemd_service("ssh");
    tree.add_cgroup(&service, &CgroupValues::sample(5)).unwrap();

    let text =
        String::from_utf8(run_once(&tree, &docker_root, &sys_root, "prometheus").stdout).unwrap();
    check_container(&text, &docker_path, &docker_values, version);
    check_container(&text, &k8s_path, &k8s_values, version);
    check_container(&text, &cgroupfs_path, &cgroupfs_values, version);
    check_container(&text, &containerd_path, &containerd_values, version);

    // Names and labels from the node's files.
    let docker_labels = [
        ("id", docker_path.as_str()),
        ("name", "web"),
        ("image", "nginx:1.27"),
        ("container_label_com_example_team", "payments"),
        ("container_label_qos_class", ""),
    ];
    assert!(
        metric_value(&text, "container_memory_usage_bytes", &docker_labels).is_some(),
        "docker labels:\n{text}"
    );
    let k8s_labels = [
        ("id", k8s_path.as_str()),
        ("namespace", "prod"),
        ("pod", "api-7d9"),
        ("container", "api"),
        ("image", "registry/api:2.1"),
        ("container_label_qos_class", "burstable"),
    ];
    assert!(
        metric_value(&text, "container_memory_usage_bytes", &k8s_labels).is_some(),
        "k8s labels"
    );
    // Every cgroup is reported by default, pod and slice cgroups included.
    for id in [
        crio_path.as_str(),
        cgroupfs_path.as_str(),
        service.as_str(),
        "/",
    ] {
        assert!(
            metric_value(&text, "container_memory_usage_bytes", &[("id", id)]).is_some(),
            "{id} reported"
        );
    }
    // As in cAdvisor, only containers carry a `name` label.
    assert!(
        metric_value(
            &text,
            "container_memory_usage_bytes",
            &[("id", service.as_str()), ("name", "")]
        )
        .is_some()
    );

    // The JSON form carries the same figures and the identity.
    let json: serde_json::Value =
        serde_json::from_slice(&run_once(&tree, &docker_root, &sys_root, "json").stdout).unwrap();
    let c = json["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["info"]["id"] == k8s_path.as_str())
        .expect("k8s container in JSON");
    assert_eq!(c["info"]["kind"], "container");
    assert_eq!(c["info"]["pod_uid"], uid.as_str());
    assert_eq!(c["info"]["container_id"], k8s_id.as_str());
    assert_eq!(c["stats"]["memory"]["usage"], k8s_values.memory_usage);
    let svc = json["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["info"]["id"] == service.as_str())
        .unwrap();
    assert_eq!(svc["info"]["name"], "ssh.service");
    assert_eq!(svc["info"]["kind"], "systemd");
}

#[test]
fn cgroup_v1_fixture_tree_gives_cadvisor_figures() {
    exercise(FixtureVersion::V1);
}

#[test]
fn cgroup_v2_fixture_tree_gives_cadvisor_figures() {
    exercise(FixtureVersion::V2);
}

#[test]
fn broken_cgroups_are_counted_and_do_not_hide_the_others() {
    let tree = FixtureTree::v2().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let good = paths::docker_systemd(&paths::container_id(10));
    let garbage = paths::docker_systemd(&paths::container_id(11));
    let truncated = paths::docker_systemd(&paths::container_id(12));
    let unreadable = paths::docker_systemd(&paths::container_id(13));
    for (i, p) in [&good, &garbage, &truncated, &unreadable]
        .into_iter()
        .enumerate()
    {
        tree.add_cgroup(p, &CgroupValues::sample(i as u64)).unwrap();
    }
    tree.write_file("", &garbage, "memory.stat", "anon not-a-number\nfile\n")
        .unwrap();
    tree.write_file("", &truncated, "cpu.stat", "usage_usec 12")
        .unwrap();
    tree.replace_file_with_dir("", &unreadable, "memory.current")
        .unwrap();
    let out = run_once(&tree, &tmp.path().join("docker"), tmp.path(), "prometheus");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        metric_value(
            &text,
            "container_memory_usage_bytes",
            &[("id", good.as_str())]
        )
        .is_some()
    );
    assert!(metric_value(&text, "container_memory_usage_bytes", &[("id", "/")]).is_some());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Under a tight descriptor limit the slow files are not held at the
/// expense of other cgroups' per-tick files (v1: also the blkio pair each
/// cgroup opens on its first read): every cgroup is read, without error.
#[test]
fn a_tight_descriptor_limit_still_reads_every_cgroup() {
    // v2: 45 cgroups × 9 per-tick files fit in 440 descriptors; with the
    // two slow files also held for the first ones, they would not.
    reads_every_cgroup_under(FixtureTree::v2().unwrap(), 44, 440);
    // v1: 5 per-tick files and a blkio pair per cgroup (~560 with every
    // slow file held).
    reads_every_cgroup_under(FixtureTree::v1().unwrap(), 44, 440);
}

fn reads_every_cgroup_under(tree: FixtureTree, count: u64, limit: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..count).map(paths::container_id).collect();
    for (i, id) in ids.iter().enumerate() {
        tree.add_cgroup(&paths::docker_systemd(id), &CgroupValues::sample(i as u64))
            .unwrap();
    }
    let mut cmd = osprey_with_limit(limit);
    cmd.args(["agent", "--once", "--format", "prometheus"])
        .args(fixture_roots(&tree, tmp.path()));
    let out = cmd.output().expect("running osprey");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    assert!(!stderr.contains("cannot read cgroup"), "{stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    for id in &ids {
        let path = paths::docker_systemd(id);
        let blkio = metric_value(
            &text,
            "container_fs_reads_bytes_total",
            &[("id", path.as_str())],
        );
        assert!(
            metric_value(
                &text,
                "container_memory_usage_bytes",
                &[("id", path.as_str())]
            )
            .is_some(),
            "{path} not read: {stderr}"
        );
        if tree.version() == FixtureVersion::V1 {
            assert!(blkio.is_some(), "{path}: no blkio figures: {stderr}");
        }
    }
}

/// Under a descriptor limit the agent cannot raise, and without log
/// tailing, it keeps 1 024 descriptors spare rather than a quarter of the
/// limit: 600 v2 cgroups (~6 600 files) are all held open under a limit of
/// 8 200, as under a generous one, instead of reopening slow files.
#[test]
fn a_limit_it_cannot_raise_still_holds_every_file_when_they_fit() {
    let tree = FixtureTree::v2().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..600 {
        let id = paths::container_id(i);
        tree.add_cgroup(&paths::docker_systemd(&id), &CgroupValues::sample(i))
            .unwrap();
    }
    let held_under = |limit: u64| -> f64 {
        let (_agent, metrics) = agent_under_limit(&tree, tmp.path(), limit);
        wait_for(
            Duration::from_secs(30),
            "the agent's first collection",
            || {
                let (_, text) = get(&metrics)?;
                metric_value(&text, "osprey_agent_open_files", &[]).filter(|n| *n > 0.0)
            },
        )
    };
    let generous = held_under(20_000);
    assert!(generous > 600.0 * 10.0, "{generous} files held");
    assert_eq!(held_under(8_200), generous);
}

/// Cgroups that arrive after the slow files of the first ones filled the
/// descriptor budget still get their per-tick files: other cgroups' slow
/// files are closed to make room.
#[test]
fn cgroups_arriving_at_a_full_descriptor_budget_are_read() {
    // v1 with a quota and blkio data: 7 per-tick descriptors a cgroup and 5
    // slow ones. Under a limit of 2 000 the first 150 cgroups take ~1 300
    // (about a third holding their slow files); 110 more need ~770, which
    // fit only once those slow files are closed.
    let tree = FixtureTree::v1().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let add = |range: std::ops::Range<u64>| {
        for i in range {
            let id = paths::container_id(i);
            tree.add_cgroup(&paths::docker_systemd(&id), &CgroupValues::sample(i))
                .unwrap();
        }
    };
    add(0..150);
    let (agent, metrics) = agent_under_limit(&tree, tmp.path(), 2_000);
    wait_for(Duration::from_secs(30), "the first 150 cgroups", || {
        let (_, text) = get(&metrics)?;
        metric_value(&text, "osprey_agent_cgroups", &[]).filter(|n| *n > 150.0)
    });
    add(150..260);
    let last = paths::docker_systemd(&paths::container_id(259));
    let text = wait_for(Duration::from_secs(30), "the 110 new cgroups", || {
        let (_, text) = get(&metrics)?;
        let n = metric_value(&text, "osprey_agent_cgroups", &[])?;
        (n > 260.0
            && metric_value(
                &text,
                "container_memory_usage_bytes",
                &[("id", last.as_str())],
            )
            .is_some())
        .then_some(text)
    });
    let log = std::fs::read_to_string(tmp.path().join(format!("{}.log", agent.name))).unwrap();
    assert!(!log.contains("Too many open files"), "{log}");
    for i in 0..260 {
        let id = paths::docker_systemd(&paths::container_id(i));
        assert!(
            metric_value(
                &text,
                "container_fs_reads_bytes_total",
                &[("id", id.as_str())]
            )
            .is_some(),
            "{id} not read: {log}"
        );
    }
}

/// Cgroups opened without holding their slow files get to hold them once
/// the budget has room: here the blkio pair budgeted at discovery is never
/// opened (the throttle files stay empty, as on 6.x kernels without a
/// rule), which leaves room for every slow file.
#[test]
fn slow_files_are_held_once_the_budget_has_room_for_them() {
    let tree = FixtureTree::v1().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..300 {
        let path = paths::docker_systemd(&paths::container_id(i));
        tree.add_cgroup(&path, &CgroupValues::sample(i)).unwrap();
        tree.clear_blkio_v1(&path).unwrap();
    }
    let config = tmp.path().join("agent.toml");
    std::fs::write(&config, "[agent]\nslow_stat_interval = \"1s\"\n").unwrap();
    let held = |limit: u64, want: Option<f64>| -> f64 {
        let (_agent, metrics) = agent_under_limit_with(&tree, tmp.path(), limit, Some(&config));
        wait_for(Duration::from_secs(30), "the files held", || {
            let (_, text) = get(&metrics)?;
            let n = metric_value(&text, "osprey_agent_open_files", &[]).filter(|n| *n > 0.0)?;
            want.is_none_or(|w| n == w).then_some(n)
        })
    };
    let generous = held(20_000, None);
    assert!(generous >= 300.0 * 10.0, "{generous} files held");
    // At discovery ~160 cgroups fit with their slow files (12 descriptors
    // budgeted each); once the pairs turn out empty, all 300 do.
    held(4_200, Some(generous));
}

/// Slow files granted to pod cgroups stay budgeted until they are opened,
/// at the pods' slower slow cadence (six aggregate reads, ~11 s here):
/// counted only once open, the grants of the ticks before would have
/// handed the same room out again each tick, and the pods' first slow
/// read would have run the agent out of descriptors.
#[test]
fn slow_files_granted_to_pods_stay_budgeted_until_opened() {
    use osprey_collector::fixture::PathStyle;
    let tree = FixtureTree::v1().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let style = PathStyle::KubepodsSystemd(paths::Qos::Burstable, paths::Runtime::Containerd);
    tree.add_containers(style, 0, 150).unwrap();
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        "[agent]\nslow_stat_interval = \"1s\"\naggregate_interval = \"2s\"\n",
    )
    .unwrap();
    // ~300 cgroups: their per-tick files (six each) fit in the budget,
    // their slow files (five each) only in part.
    let limit = 2_900;
    let (agent, metrics) = agent_under_limit_with(&tree, tmp.path(), limit, Some(&config));
    let ticks =
        |text: &str| metric_value(text, "osprey_agent_collection_duration_seconds_count", &[]);
    // Past the pods' first slow read after their discovery (~11.5 s).
    let text = wait_for(Duration::from_secs(60), "16 collections", || {
        let (_, text) = get(&metrics)?;
        ticks(&text).filter(|n| *n >= 16.0).map(|_| text)
    });
    // The budget keeps a quarter of the limit spare (under 4096) for
    // everything else the agent opens.
    let held = metric_value(&text, "osprey_agent_open_files", &[]).unwrap();
    let budget = (limit - limit / 4) as f64;
    assert!(held <= budget, "{held} files held, budget {budget}");
    assert_eq!(
        metric_value(&text, "osprey_agent_read_errors_total", &[("reason", "io")]),
        None,
        "{text}"
    );
    let log =
        std::fs::read_to_string(tmp.path().join(format!("{}.log", agent.name))).unwrap_or_default();
    assert!(!log.contains("Too many open files"), "{log}");
}

/// `osprey agent` over `tree` with its open-file limit (soft and hard) set
/// to `limit`; returns it and its `/metrics` URL.
fn agent_under_limit(tree: &FixtureTree, dir: &Path, limit: u64) -> (ChildGuard, String) {
    agent_under_limit_with(tree, dir, limit, None)
}

/// [`agent_under_limit`] with a configuration file.
fn agent_under_limit_with(
    tree: &FixtureTree,
    dir: &Path,
    limit: u64,
    config: Option<&Path>,
) -> (ChildGuard, String) {
    let port = free_port();
    let mut cmd = osprey_with_limit(limit);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd.args(["agent", "--interval", "1s", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(fixture_roots(tree, dir));
    let agent = ChildGuard::spawn(cmd, &format!("agent-limit-{limit}-{port}"), dir);
    (agent, format!("http://127.0.0.1:{port}/metrics"))
}

/// `osprey` with its open-file limit (soft and hard) set to `limit`, which
/// it cannot raise.
fn osprey_with_limit(limit: u64) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = osprey();
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// The agent flags that read `tree`, with empty runtime and log roots
/// under `dir`.
fn fixture_roots(tree: &FixtureTree, dir: &Path) -> Vec<std::ffi::OsString> {
    vec![
        "--cgroup-root".into(),
        tree.root().into(),
        "--docker-root".into(),
        dir.join("docker").into(),
        "--sys-root".into(),
        dir.into(),
        "--pod-log-root".into(),
        dir.join("no-pods").into(),
    ]
}
