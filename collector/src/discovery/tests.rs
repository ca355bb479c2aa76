//! Discovery on this machine's real v1 hierarchies (needs root, as CI).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::mountinfo::{LayoutOptions, discover_layout};
use super::*;

/// Cgroup directories created by a test, removed (deepest first) on drop
/// even when the test fails.
struct TestCgroups {
    created: Vec<PathBuf>,
}

impl TestCgroups {
    fn new() -> Self {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "discovery tests create real cgroups and must run as root"
        );
        Self {
            created: Vec::new(),
        }
    }

    fn mkdir(&mut self, dir: PathBuf) {
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        self.created.push(dir);
    }

    fn rmdir(&mut self, dir: &Path) {
        fs::remove_dir(dir).unwrap_or_else(|e| panic!("rmdir {}: {e}", dir.display()));
        self.created.retain(|d| d != dir);
    }
}

impl Drop for TestCgroups {
    fn drop(&mut self) {
        for dir in self.created.iter().rev() {
            if let Err(e) = fs::remove_dir(dir) {
                eprintln!("cannot remove test cgroup {}: {e}", dir.display());
            }
        }
    }
}

fn real_layout() -> CgroupLayout {
    discover_layout(&LayoutOptions::default()).expect("this machine has cgroup v1 mounts")
}

fn base_name(test: &str) -> String {
    format!("osprey-disc-{}-{test}", std::process::id())
}

fn only(base: &str) -> DiscoveryFilter {
    DiscoveryFilter {
        subtrees: vec![format!("/{base}")],
        ..Default::default()
    }
}

fn added(p: &str) -> DiscoveryEvent {
    DiscoveryEvent::Added(CgroupPath::new(p))
}

fn removed(p: &str) -> DiscoveryEvent {
    DiscoveryEvent::Removed(CgroupPath::new(p))
}

/// Calls `refresh` until every `wanted` event has been reported, or
/// fails after 5 s. Returns every event seen.
fn refresh_until(discovery: &mut Discovery, wanted: &[DiscoveryEvent]) -> Vec<DiscoveryEvent> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        seen.extend(discovery.refresh());
        if wanted.iter().all(|w| seen.contains(w)) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {wanted:?}; saw {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn no_backstop() -> DiscoveryOptions {
    DiscoveryOptions {
        inotify: true,
        // Long enough that only inotify can report the changes.
        rescan_interval: Duration::from_secs(3600),
    }
}

#[test]
fn inotify_reports_created_and_removed_cgroups() {
    let mut cgroups = TestCgroups::new();
    let layout = real_layout();
    let memory = layout.v1["memory"].clone();
    let base = base_name("inotify");
    cgroups.mkdir(memory.join(&base));

    let mut discovery = Discovery::new(layout, only(&base), no_backstop()).unwrap();
    assert!(discovery.is_watching());
    let first: BTreeSet<_> = discovery.refresh().into_iter().collect();
    assert_eq!(
        first,
        BTreeSet::from([added("/"), added(&format!("/{base}"))]),
        "the first refresh reports every existing cgroup the filter keeps"
    );
    assert!(discovery.refresh().is_empty(), "nothing changed");

    // Children created right after their parent, before any refresh adds
    // a watch on the parent: found by listing the new directory.
    let a = memory.join(&base).join("a");
    cgroups.mkdir(a.clone());
    cgroups.mkdir(a.join("b"));
    cgroups.mkdir(a.join("b/c"));
    let want = [
        added(&format!("/{base}/a")),
        added(&format!("/{base}/a/b")),
        added(&format!("/{base}/a/b/c")),
    ];
    let seen = refresh_until(&mut discovery, &want);
    assert_eq!(seen.len(), 3, "each added once: {seen:?}");
    let current: Vec<&str> = discovery.current().map(CgroupPath::as_str).collect();
    assert_eq!(
        current,
        vec![
            "/".to_owned(),
            format!("/{base}"),
            format!("/{base}/a"),
            format!("/{base}/a/b"),
            format!("/{base}/a/b/c"),
        ]
    );

    // A child created under a directory watched since the previous tick.
    cgroups.mkdir(a.join("b/d"));
    refresh_until(&mut discovery, &[added(&format!("/{base}/a/b/d"))]);

    for dir in ["b/c", "b/d", "b", ""] {
        cgroups.rmdir(&a.join(dir));
    }
    refresh_until(
        &mut discovery,
        &[
            removed(&format!("/{base}/a")),
            removed(&format!("/{base}/a/b")),
            removed(&format!("/{base}/a/b/c")),
            removed(&format!("/{base}/a/b/d")),
        ],
    );
    let current: Vec<&str> = discovery.current().map(CgroupPath::as_str).collect();
    assert_eq!(current, vec!["/".to_owned(), format!("/{base}")]);
}

#[test]
fn a_cgroup_is_present_while_in_any_stat_hierarchy() {
    let mut cgroups = TestCgroups::new();
    let layout = real_layout();
    let memory = layout.v1["memory"].clone();
    let cpu = layout.v1["cpu"].clone();
    let base = base_name("union");
    cgroups.mkdir(memory.join(&base));

    let mut discovery = Discovery::new(layout, only(&base), no_backstop()).unwrap();
    discovery.refresh();

    // In the cpu hierarchy only.
    cgroups.mkdir(cpu.join(&base));
    cgroups.mkdir(cpu.join(&base).join("x"));
    refresh_until(&mut discovery, &[added(&format!("/{base}/x"))]);

    // Also in memory, then gone from cpu: still present. The sentinel's
    // event is queued after the removal's, so once it is seen the removal
    // has been handled.
    cgroups.mkdir(memory.join(&base).join("x"));
    cgroups.rmdir(&cpu.join(&base).join("x"));
    cgroups.mkdir(memory.join(&base).join("sentinel"));
    let seen = refresh_until(&mut discovery, &[added(&format!("/{base}/sentinel"))]);
    assert!(
        !seen.contains(&removed(&format!("/{base}/x"))),
        "x still exists in memory: {seen:?}"
    );

    cgroups.rmdir(&memory.join(&base).join("x"));
    refresh_until(&mut discovery, &[removed(&format!("/{base}/x"))]);
}

#[test]
fn every_hierarchy_shares_one_copy_of_each_path() {
    let mut cgroups = TestCgroups::new();
    let layout = real_layout();
    let base = base_name("share");
    let hierarchies = walk::hierarchy_roots(&layout);
    for mount in &hierarchies {
        cgroups.mkdir(mount.join(&base));
        cgroups.mkdir(mount.join(&base).join("c"));
    }
    let discovery = Discovery::new(layout, only(&base), no_backstop()).unwrap();
    let watcher = discovery.watcher.as_ref().expect("inotify on");
    let path = CgroupPath::new(&format!("/{base}/c"));
    let copies: Vec<&CgroupPath> = watcher.watched_paths().filter(|p| **p == path).collect();
    assert_eq!(copies.len(), hierarchies.len(), "one watch per hierarchy");
    let (kept, _) = discovery.presence.get_key_value(&path).unwrap();
    assert!(
        copies.iter().all(|p| p.shares_text_with(kept)),
        "each watch holds the presence map's copy"
    );
}

#[test]
fn without_inotify_every_refresh_rescans() {
    let mut cgroups = TestCgroups::new();
    let layout = real_layout();
    let pids = layout.v1["pids"].clone();
    let base = base_name("rescan");
    let options = DiscoveryOptions {
        inotify: false,
        rescan_interval: Duration::from_secs(3600),
    };
    let mut discovery = Discovery::new(layout, only(&base), options).unwrap();
    assert!(!discovery.is_watching());
    assert_eq!(discovery.refresh(), vec![added("/")]);

    cgroups.mkdir(pids.join(&base));
    cgroups.mkdir(pids.join(&base).join("y"));
    // The very next refresh sees them: within one collection interval.
    assert_eq!(
        discovery.refresh(),
        vec![added(&format!("/{base}")), added(&format!("/{base}/y"))]
    );
    cgroups.rmdir(&pids.join(&base).join("y"));
    assert_eq!(discovery.refresh(), vec![removed(&format!("/{base}/y"))]);
}

/// A `memory` hierarchy in a temporary directory, discovered with inotify
/// and the backstop due on every refresh.
fn watched_fixture_hierarchy() -> (tempfile::TempDir, Discovery) {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("memory")).unwrap();
    let layout = CgroupLayout {
        v1: [("memory".to_owned(), root.path().join("memory"))].into(),
        ..Default::default()
    };
    let options = DiscoveryOptions {
        inotify: true,
        rescan_interval: Duration::ZERO,
    };
    let discovery = Discovery::new(layout, DiscoveryFilter::default(), options).unwrap();
    (root, discovery)
}

#[test]
fn inotify_and_rescan_together_report_each_change_once() {
    // A fixture tree stands in for cgroupfs; the backstop interval is zero
    // so every refresh both drains inotify and walks the tree.
    let (root, mut discovery) = watched_fixture_hierarchy();
    assert_eq!(discovery.refresh(), vec![added("/")]);
    fs::create_dir_all(root.path().join("memory/p/q")).unwrap();
    let mut events = discovery.refresh();
    events.sort();
    assert_eq!(events, vec![added("/p"), added("/p/q")]);
    fs::remove_dir_all(root.path().join("memory/p")).unwrap();
    let mut events = discovery.refresh();
    events.sort();
    assert_eq!(events, vec![removed("/p"), removed("/p/q")]);
}

#[test]
fn a_layout_without_hierarchies_is_an_error() {
    let err = Discovery::new(
        CgroupLayout::default(),
        DiscoveryFilter::default(),
        DiscoveryOptions::default(),
    )
    .err()
    .expect("nothing to walk");
    assert!(err.to_string().contains("cgroup_root"), "{err}");
}

/// Set in the child process of
/// [`running_out_of_inotify_watches_falls_back_to_rescanning`].
const LIMITED_CHILD_ENV: &str = "OSPREY_DISCOVERY_LIMITED_WATCHES_CHILD";

/// Runs out of inotify watches for real: the test re-runs itself in a new
/// user namespace (root mapped to root) whose `max_inotify_watches` is 4,
/// so only that child process is limited, not the machine.
#[test]
fn running_out_of_inotify_watches_falls_back_to_rescanning() {
    if std::env::var_os(LIMITED_CHILD_ENV).is_some() {
        limited_child();
        return;
    }
    TestCgroups::new(); // asserts root: mapping root into the namespace needs it.
    let test_name = "discovery::tests::running_out_of_inotify_watches_falls_back_to_rescanning";
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(LIMITED_CHILD_ENV, "1");
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls on static strings.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut child, enter_user_namespace);
    }
    let output = child.output().expect("re-running the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
}

/// In the forked child: a new user namespace mapping root to root.
fn enter_user_namespace() -> std::io::Result<()> {
    fn write(path: &std::ffi::CStr, content: &[u8]) -> std::io::Result<()> {
        // SAFETY: plain system calls on a valid C string and buffer.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let n = libc::write(fd, content.as_ptr().cast(), content.len());
            libc::close(fd);
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
    // SAFETY: unshare has no memory-safety preconditions.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    write(c"/proc/self/setgroups", b"deny")?;
    write(c"/proc/self/uid_map", b"0 0 1")?;
    write(c"/proc/self/gid_map", b"0 0 1")?;
    Ok(())
}

fn limited_child() {
    fs::write("/proc/sys/user/max_inotify_watches", "4")
        .expect("setting the namespace's inotify watch limit");
    let root = tempfile::tempdir().unwrap();
    let memory = root.path().join("memory");
    for i in 0..10 {
        fs::create_dir_all(memory.join(format!("c{i}/inner"))).unwrap();
    }
    let layout = CgroupLayout {
        v1: [("memory".to_owned(), memory.clone())].into(),
        ..Default::default()
    };
    let mut discovery = Discovery::new(layout, DiscoveryFilter::default(), no_backstop()).unwrap();
    assert!(
        !discovery.is_watching(),
        "21 directories cannot be watched with 4 watches"
    );
    assert_eq!(
        discovery.refresh().len(),
        21,
        "root plus 10 cgroups with one child each"
    );

    fs::create_dir(memory.join("late")).unwrap();
    assert_eq!(discovery.refresh(), vec![added("/late")]);
    fs::remove_dir(memory.join("c3/inner")).unwrap();
    assert_eq!(discovery.refresh(), vec![removed("/c3/inner")]);
}

#[test]
fn an_unreadable_hierarchy_keeps_what_was_known_of_it() {
    let root = tempfile::tempdir().unwrap();
    for dir in ["memory/a", "cpu/a", "cpu/b"] {
        fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    let layout = CgroupLayout {
        v1: [
            ("memory".to_owned(), root.path().join("memory")),
            ("cpu".to_owned(), root.path().join("cpu")),
        ]
        .into(),
        ..Default::default()
    };
    let options = DiscoveryOptions {
        inotify: false,
        ..Default::default()
    };
    let mut discovery = Discovery::new(layout, DiscoveryFilter::default(), options).unwrap();
    assert_eq!(
        discovery.refresh(),
        vec![added("/"), added("/a"), added("/b")]
    );

    // The cpu hierarchy cannot be listed any more: one failed walk must
    // not report its cgroups as removed.
    fs::remove_dir_all(root.path().join("cpu")).unwrap();
    assert_eq!(discovery.refresh(), vec![]);
    let current: Vec<&str> = discovery.current().map(CgroupPath::as_str).collect();
    assert_eq!(current, vec!["/", "/a", "/b"]);
}

#[test]
fn inotify_works_on_a_real_cgroup2_hierarchy() {
    // This machine's cgroup2 mount is systemd's controller-less tree, but
    // its directories behave as on a pure v2 node, which is what the walk
    // and the watches see.
    let mut cgroups = TestCgroups::new();
    let unified = real_layout()
        .unified
        .expect("this machine mounts cgroup2 (hybrid layout)");
    let layout = CgroupLayout {
        unified: Some(unified.clone()),
        unified_has_controllers: true,
        ..Default::default()
    };
    let base = base_name("v2");
    let mut discovery = Discovery::new(layout, only(&base), no_backstop()).unwrap();
    assert_eq!(discovery.hierarchies(), std::slice::from_ref(&unified));
    assert_eq!(discovery.refresh(), vec![added("/")]);

    cgroups.mkdir(unified.join(&base));
    cgroups.mkdir(unified.join(&base).join("svc.service"));
    cgroups.mkdir(unified.join(&base).join("tmp.mount"));
    let seen = refresh_until(
        &mut discovery,
        &[
            added(&format!("/{base}")),
            added(&format!("/{base}/svc.service")),
        ],
    );
    assert!(
        !seen.contains(&added(&format!("/{base}/tmp.mount"))),
        "*.mount cgroups are ignored: {seen:?}"
    );
    cgroups.rmdir(&unified.join(&base).join("svc.service"));
    refresh_until(&mut discovery, &[removed(&format!("/{base}/svc.service"))]);
}

#[test]
fn options_parse_with_defaults_and_human_durations() {
    let options: DiscoveryOptions =
        serde_json::from_str(r#"{"rescan_interval":"2m 30s"}"#).unwrap();
    assert_eq!(options.rescan_interval, Duration::from_secs(150));
    assert!(options.inotify, "unset fields keep their defaults");
    let filter: DiscoveryFilter =
        serde_json::from_str(r#"{"subtrees":["/kubepods.slice"]}"#).unwrap();
    assert!(!filter.containers_only);
    assert!(
        serde_json::from_str::<DiscoveryOptions>(r#"{"rescan":"1s"}"#).is_err(),
        "typos are rejected"
    );
}

#[test]
fn the_backstop_walks_only_when_a_directory_disagrees() {
    // A fixture tree stands in for cgroupfs (tmpfs counts a directory's
    // links as cgroupfs does); the backstop is due on every refresh.
    let (root, mut discovery) = watched_fixture_hierarchy();
    let memory = root.path().join("memory");
    assert_eq!(discovery.refresh(), vec![added("/")]);
    assert_eq!(discovery.full_walks(), 1);

    fs::create_dir_all(memory.join("p/q")).unwrap();
    let mut events = discovery.refresh();
    events.sort();
    assert_eq!(events, vec![added("/p"), added("/p/q")], "seen by inotify");
    // A directory discovery skips changes the count but not what is known.
    fs::create_dir(memory.join("p/x.mount")).unwrap();
    for _ in 0..3 {
        assert_eq!(discovery.refresh(), vec![]);
    }
    assert_eq!(discovery.full_walks(), 1, "nothing disagreed: no walk");

    // Events lost: a watcher that watches nothing stands in for one whose
    // events the kernel dropped without saying so.
    discovery.watcher = Some(TreeWatcher::new(discovery.mounts.clone()).unwrap());
    fs::create_dir(memory.join("p/r")).unwrap();
    assert_eq!(discovery.refresh(), vec![added("/p/r")]);
    assert_eq!(discovery.full_walks(), 2, "`/p` disagreed: walked");
    fs::remove_dir(memory.join("p/q")).unwrap();
    // The walk watched the tree again.
    assert_eq!(discovery.refresh(), vec![removed("/p/q")]);
    assert_eq!(discovery.full_walks(), 2);
}

#[test]
fn the_backstop_sees_a_cgroup_inotify_missed_on_cgroupfs() {
    let mut cgroups = TestCgroups::new();
    let layout = real_layout();
    let memory = layout.v1["memory"].clone();
    let base = base_name("backstop");
    cgroups.mkdir(memory.join(&base));
    let options = DiscoveryOptions {
        inotify: true,
        rescan_interval: Duration::ZERO,
    };
    let mut discovery = Discovery::new(layout, only(&base), options).unwrap();
    refresh_until(&mut discovery, &[added(&format!("/{base}"))]);
    // Nothing watched from here on: only the backstop can see the child,
    // through the parent's link count.
    discovery.watcher = Some(TreeWatcher::new(discovery.mounts.clone()).unwrap());
    cgroups.mkdir(memory.join(&base).join("child"));
    assert_eq!(discovery.refresh(), vec![added(&format!("/{base}/child"))]);
}

/// Each refresh checks the share of the known directories it has earned
/// since the last, in path order, and walks only when the share holds the
/// one that disagrees.
#[test]
fn the_backstop_checks_a_share_of_the_directories_each_refresh() {
    let (root, mut discovery) = watched_fixture_hierarchy();
    discovery.options.rescan_interval = Duration::from_secs(3600);
    let memory = root.path().join("memory");
    for d in ["a", "b", "c", "d"] {
        fs::create_dir(memory.join(d)).unwrap();
    }
    let mut seen = discovery.refresh();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            added("/"),
            added("/a"),
            added("/b"),
            added("/c"),
            added("/d")
        ]
    );
    assert_eq!(discovery.full_walks(), 1);

    // Nothing watched from here on: only the backstop can see the child.
    discovery.watcher = Some(TreeWatcher::new(discovery.mounts.clone()).unwrap());
    fs::create_dir(memory.join("d/x")).unwrap();
    let mut refreshes = 0;
    loop {
        // One cgroup's worth of the round earned per refresh.
        discovery.check_credit = 1.0;
        if !discovery.refresh().is_empty() {
            break;
        }
        refreshes += 1;
        assert!(refreshes < 10, "the backstop never reached /d");
    }
    // "/", "/a", "/b", "/c" agree, a refresh each, before "/d" disagrees.
    assert_eq!(refreshes, 4, "one directory a refresh");
    assert_eq!(discovery.full_walks(), 2);
}

/// At a few cgroups a refresh earns a small fraction of one check: the
/// round takes `rescan_interval`, not one refresh per cgroup.
#[test]
fn the_backstop_checks_nothing_before_a_whole_cgroup_is_earned() {
    let (root, mut discovery) = watched_fixture_hierarchy();
    discovery.options.rescan_interval = Duration::from_secs(3600);
    let memory = root.path().join("memory");
    fs::create_dir(memory.join("a")).unwrap();
    let mut seen = discovery.refresh();
    seen.sort();
    assert_eq!(seen, vec![added("/"), added("/a")]);

    discovery.watcher = Some(TreeWatcher::new(discovery.mounts.clone()).unwrap());
    fs::create_dir(memory.join("a/x")).unwrap();
    // Two cgroups at an hour a round earn a check every half hour: none
    // of these refreshes, a few milliseconds apart at most, checks one.
    for _ in 0..20 {
        assert_eq!(discovery.refresh(), vec![], "checked before it was due");
    }
    assert!(discovery.check_credit < 1.0);
    assert_eq!(discovery.full_walks(), 1);
    // A round's worth earned: the child is found.
    discovery.check_credit = 2.0;
    assert_eq!(discovery.refresh(), vec![added("/a/x")]);
}
