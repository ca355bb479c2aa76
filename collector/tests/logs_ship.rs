//! The log shipper end to end in-process: real files written by the test,
//! the real tailer and sender threads, and a real HTTP receiver
//! (`logs_common`) that honours `X-Osprey-Batch`.

mod logs_common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use logs_common::{Receiver, counts, free_port};
use osprey_collector::logs::{
    FileSource, LogShipper, LogShipperHandle, LogStats, LogsConfig, LogsContext, MultilineConfig,
    PushFormat, TRUNCATION_MARKER,
};

const ID: &str = "4f2a5e4d2f1b0e3c7d9a8b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e";
const WAIT: Duration = Duration::from_secs(30);

struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn cri_file(&self) -> PathBuf {
        let d = self.root().join("pods/shop_web-0_uid-1/app");
        fs::create_dir_all(&d).unwrap();
        d.join("0.log")
    }
    fn docker_file(&self) -> PathBuf {
        let d = self.root().join(format!("docker/containers/{ID}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("config.v2.json"),
            r#"{"Name":"/billing","Config":{"Image":"billing:2.1","Labels":{"tier":"back"}}}"#,
        )
        .unwrap();
        d.join(format!("{ID}-json.log"))
    }
    fn config(&self, url: &str) -> LogsConfig {
        LogsConfig {
            url: url.into(),
            poll_interval: Duration::from_millis(20),
            discover_interval: Duration::from_millis(100),
            batch_wait: Duration::from_millis(100),
            rotate_wait: Duration::from_millis(300),
            min_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
            ..LogsConfig::default()
        }
    }
    fn start(&self, config: LogsConfig) -> LogShipperHandle {
        let root = self.root().to_path_buf();
        LogShipper::spawn(
            config,
            LogsContext {
                node: "node-1".into(),
                data_dir: root.join("data"),
                pod_log_root: root.join("pods"),
                container_log_root: root.join("containers"),
                docker_root: root.join("docker"),
                metadata: Box::new(|| None),
            },
        )
        .expect("log shipper starts")
    }
}

fn append(path: &Path, text: &[u8]) {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text)
        .unwrap();
}

fn cri(stream: &str, tag: &str, msg: &str) -> String {
    format!("2026-11-26T23:00:00.000000001Z {stream} {tag} {msg}\n")
}

fn docker(stream: &str, log: &str) -> String {
    format!(
        "{}\n",
        serde_json::json!({"log": log, "stream": stream, "time": "2026-11-26T23:00:01.5Z"})
    )
}

fn texts(lines: &[logs_common::Line]) -> Vec<String> {
    lines.iter().map(|l| l.line.clone()).collect()
}

#[test]
fn ships_each_format_with_fragments_multiline_and_metadata() {
    let node = Node::new();
    let rx = Receiver::start();
    // Container logs: a line starting with whitespace continues the event.
    let mut config = node.config(&rx.url);
    config.multiline = Some(MultilineConfig {
        start_pattern: r"^\S".into(),
        timeout: Duration::from_millis(200),
        ..MultilineConfig::default()
    });
    config.max_line_bytes = 1000;
    let syslog = node.root().join("var/syslog");
    fs::create_dir_all(syslog.parent().unwrap()).unwrap();
    config.files = vec![FileSource {
        name: "syslog".into(),
        paths: vec![format!("{}/var/sys*", node.root().display())],
        multiline: None,
    }];

    let cri_path = node.cri_file();
    let mut text = String::new();
    text += &cri("stdout", "F", "hello from cri");
    text += &cri("stdout", "P", "part one, ");
    text += &cri("stderr", "F", "an error line");
    text += &cri("stdout", "P", "part two, ");
    text += &cri("stdout", "F", "end");
    text += &cri(
        "stderr",
        "F",
        "Exception in thread main java.lang.IllegalStateException: boom",
    );
    text += &cri("stderr", "F", "\tat com.example.A.run(A.java:10)");
    text += &cri("stderr", "F", "\tat com.example.Main.main(Main.java:3)");
    text += &cri("stderr", "F", "after the trace");
    append(&cri_path, text.as_bytes());

    let docker_path = node.docker_file();
    let mut text = String::new();
    text += &docker("stdout", "docker line\n");
    text += &docker("stdout", "a 16K frag");
    text += &docker("stdout", "ment joined\n");
    text += &docker("stderr", "Traceback (most recent call last):\n");
    text += &docker("stderr", "  File \"x.py\", line 1\n");
    text += &docker("stderr", "ValueError: bad\n");
    append(&docker_path, text.as_bytes());
    // A damaged line is passed on as text, not dropped.
    append(&docker_path, b"{\"log\":\"cut off\n");

    let mut plain = b"plain line one\n".to_vec();
    plain.extend_from_slice(b"bad utf8 \xff\xfe here\n");
    plain.extend_from_slice(&vec![b'x'; 5000]);
    plain.extend_from_slice(b"\nlast plain\n");
    append(&syslog, &plain);

    let shipper = node.start(config);
    rx.wait_for(WAIT, "every entry", |l| l.len() >= 14);
    // Multiline events close on timeout: wait until nothing is pending.
    logs_common::settled(&shipper.stats(), WAIT);
    let lines = rx.lines();

    let of = |file: &Path| -> Vec<&logs_common::Line> {
        lines
            .iter()
            .filter(|l| l.labels["filename"] == file.to_string_lossy())
            .collect()
    };
    let cri_lines = of(&cri_path);
    // In order within each stream (events end at different times across
    // streams: stdout's last one on the multiline timeout).
    let stream = |name: &str| -> Vec<&str> {
        cri_lines
            .iter()
            .filter(|l| l.labels["stream"] == name)
            .map(|l| l.line.as_str())
            .collect()
    };
    assert_eq!(
        stream("stdout"),
        ["hello from cri", "part one, part two, end"]
    );
    assert_eq!(
        stream("stderr"),
        [
            "an error line",
            "Exception in thread main java.lang.IllegalStateException: boom\n\tat com.example.A.run(A.java:10)\n\tat com.example.Main.main(Main.java:3)",
            "after the trace",
        ]
    );
    let l = &cri_lines[0].labels;
    assert_eq!(l["namespace"], "shop");
    assert_eq!(l["pod"], "web-0");
    assert_eq!(l["pod_uid"], "uid-1");
    assert_eq!(l["container"], "app");
    assert_eq!(l["node"], "node-1");
    assert_eq!(l["job"], "osprey/containers");
    assert!(!l.contains_key("image"), "unknown values are left out");
    assert_eq!(cri_lines[0].ts_ns, 1_795_734_000_000_000_001);

    let docker_lines = of(&docker_path);
    let stream = |name: Option<&str>| -> Vec<&str> {
        docker_lines
            .iter()
            .filter(|l| l.labels.get("stream").map(String::as_str) == name)
            .map(|l| l.line.as_str())
            .collect()
    };
    assert_eq!(
        stream(Some("stdout")),
        ["docker line", "a 16K fragment joined"]
    );
    assert_eq!(
        stream(Some("stderr")),
        [
            "Traceback (most recent call last):\n  File \"x.py\", line 1",
            "ValueError: bad"
        ]
    );
    assert_eq!(stream(None), ["{\"log\":\"cut off"]);
    let l = &docker_lines[0].labels;
    assert_eq!(l["container"], "billing");
    assert_eq!(l["image"], "billing:2.1");
    assert_eq!(l["stream"], "stdout");
    assert!(
        !l.contains_key("label_tier"),
        "Docker labels are not pod labels"
    );
    assert_eq!(docker_lines[0].ts_ns, 1_795_734_001_500_000_000);

    let plain_lines = of(&syslog);
    assert_eq!(plain_lines.len(), 4);
    assert_eq!(plain_lines[0].line, "plain line one");
    assert_eq!(plain_lines[1].line, "bad utf8 \u{fffd}\u{fffd} here");
    assert_eq!(
        plain_lines[2].line,
        format!("{}{TRUNCATION_MARKER}", "x".repeat(1000))
    );
    assert_eq!(plain_lines[3].line, "last plain");
    assert_eq!(plain_lines[0].labels["job"], "syslog");
    assert!(!plain_lines[0].labels.contains_key("stream"));
    assert_eq!(lines.len(), 14, "nothing else: {:#?}", texts(&lines));

    let stats = shipper.stats();
    assert_eq!(LogStats::get(&stats.truncated), 1);
    assert_eq!(LogStats::get(&stats.invalid_utf8), 1);
    assert_eq!(LogStats::get(&stats.parse_errors), 1);
    assert_eq!(LogStats::get(&stats.entries_sent), 14);
    let seen = rx.seen.lock().unwrap();
    assert!(
        seen.content_types
            .iter()
            .all(|c| c == "application/x-protobuf")
    );
    assert_eq!((seen.gaps, seen.without_header), (0, 0));
    drop(seen);
    shipper.shutdown(Duration::from_secs(2));
}

#[test]
fn json_pushes_carry_the_bearer_token() {
    let node = Node::new();
    let rx = Receiver::start();
    rx.seen.lock().unwrap().token = Some("s3cret".into());
    let mut config = node.config(&rx.url);
    config.format = PushFormat::Json;
    config.bearer_token = Some("s3cret".into());
    append(&node.cri_file(), cri("stdout", "F", "über json").as_bytes());
    let shipper = node.start(config);
    rx.wait_for(WAIT, "the line", |l| !l.is_empty());
    assert_eq!(texts(&rx.lines()), ["über json"]);
    assert!(
        rx.seen
            .lock()
            .unwrap()
            .content_types
            .iter()
            .all(|c| c == "application/json")
    );
    shipper.shutdown(Duration::from_secs(2));
}

#[test]
fn receiver_down_then_failing_loses_and_duplicates_nothing() {
    let node = Node::new();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/loki/api/v1/push");
    let path = node.cri_file();
    for i in 0..500 {
        append(&path, cri("stdout", "F", &format!("line {i}")).as_bytes());
    }
    let shipper = node.start(node.config(&url));
    let stats = shipper.stats();
    let deadline = Instant::now() + WAIT;
    while LogStats::get(&stats.failed_attempts) < 3 {
        assert!(
            Instant::now() < deadline,
            "no failed push while the receiver is down"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 500..1000 {
        append(&path, cri("stdout", "F", &format!("line {i}")).as_bytes());
    }
    // Up again, but the next three pushes answer 500.
    let seen = Arc::new(std::sync::Mutex::new(logs_common::Seen {
        fail_next: 3,
        ..Default::default()
    }));
    let rx = Receiver::start_on(port, seen);
    rx.wait_for(WAIT, "all 1000 lines", |l| l.len() >= 1000);
    shipper.shutdown(Duration::from_secs(2));
    let lines = rx.lines();
    assert_eq!(lines.len(), 1000);
    let want: Vec<String> = (0..1000).map(|i| format!("line {i}")).collect();
    assert_eq!(texts(&lines), want, "every line once, in order");
    assert!(LogStats::get(&stats.failed_attempts) >= 6);
    assert_eq!(rx.seen.lock().unwrap().fail_next, 0);
}

#[test]
fn restart_resumes_exactly_including_a_pending_fragment() {
    let node = Node::new();
    let rx = Receiver::start();
    let path = node.cri_file();
    for i in 0..100 {
        append(&path, cri("stdout", "F", &format!("line {i}")).as_bytes());
    }
    append(&path, cri("stdout", "P", "split ").as_bytes());
    let shipper = node.start(node.config(&rx.url));
    rx.wait_for(WAIT, "the first 100 lines", |l| l.len() >= 100);
    // The fragment was read: its line counted.
    let stats = shipper.stats();
    let deadline = Instant::now() + WAIT;
    while LogStats::get(&stats.lines_read) < 101 {
        assert!(Instant::now() < deadline, "the fragment was never read");
        std::thread::sleep(Duration::from_millis(20));
    }
    shipper.shutdown(Duration::from_secs(2));
    append(&path, cri("stdout", "F", "across a restart").as_bytes());
    for i in 100..200 {
        append(&path, cri("stdout", "F", &format!("line {i}")).as_bytes());
    }
    let shipper = node.start(node.config(&rx.url));
    rx.wait_for(WAIT, "all lines", |l| l.len() >= 201);
    logs_common::settled(&shipper.stats(), WAIT);
    shipper.shutdown(Duration::from_secs(2));
    let mut want: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
    want.push("split across a restart".into());
    want.extend((100..200).map(|i| format!("line {i}")));
    assert_eq!(texts(&rx.lines()), want);
}

#[test]
fn a_batch_whose_acknowledgement_is_lost_is_resent_under_its_id_and_stored_once() {
    let node = Node::new();
    let rx = Receiver::start();
    // The receiver commits the next two batches but answers 500, as when
    // the connection breaks after the commit.
    rx.seen.lock().unwrap().fail_after_commit = 2;
    let path = node.cri_file();
    for i in 0..50 {
        append(&path, cri("stdout", "F", &format!("line {i}")).as_bytes());
    }
    let shipper = node.start(node.config(&rx.url));
    rx.wait_for(WAIT, "50 lines", |l| l.len() >= 50);
    for i in 50..100 {
        append(&path, cri("stdout", "F", &format!("line {i}")).as_bytes());
    }
    rx.wait_for(WAIT, "100 lines", |l| l.len() >= 100);
    let stats = shipper.stats();
    shipper.shutdown(Duration::from_secs(2));
    let want: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
    assert_eq!(texts(&rx.lines()), want);
    let seen = rx.seen.lock().unwrap();
    assert_eq!(seen.fail_after_commit, 0);
    assert!(seen.duplicates >= 1, "the resend was recognised");
    assert_eq!(seen.gaps, 0);
    assert!(LogStats::get(&stats.failed_attempts) >= 2);
}

#[test]
fn a_full_spool_pauses_reading_instead_of_growing() {
    let node = Node::new();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/loki/api/v1/push");
    let path = node.cri_file();
    let mut text = String::new();
    for i in 0..20_000 {
        text += &cri("stdout", "F", &format!("line {i} {}", "y".repeat(80)));
    }
    append(&path, text.as_bytes());
    let mut config = node.config(&url);
    config.batch_max_bytes = 64 << 10;
    config.max_inflight_bytes = 256 << 10;
    config.format = PushFormat::Json;
    let shipper = node.start(config);
    let stats = shipper.stats();
    let deadline = Instant::now() + WAIT;
    while LogStats::get(&stats.backpressure_pauses) == 0 {
        assert!(Instant::now() < deadline, "reading never paused");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let spooled = stats.spool_bytes.load(Ordering::Relaxed);
    let read = LogStats::get(&stats.bytes_read);
    assert!(
        spooled <= (256 << 10) + 2 * (64 << 10) + (64 << 10),
        "spool grew to {spooled} bytes"
    );
    assert!(
        read < text.len() as u64,
        "reading went on: {read} bytes read"
    );
    let rx = Receiver::start_on(port, Default::default());
    rx.wait_for(Duration::from_secs(60), "every line", |l| l.len() >= 20_000);
    shipper.shutdown(Duration::from_secs(2));
    let c = counts(&rx.lines());
    assert_eq!(c.len(), 20_000);
    assert!(c.values().all(|n| *n == 1));
}

#[test]
fn container_metadata_from_the_agent_labels_lines_once_it_is_known() {
    use osprey_collector::snapshot::{ContainerInfo, ContainerSample, Snapshot};
    let node = Node::new();
    let rx = Receiver::start();
    let latest: Arc<std::sync::Mutex<Option<Arc<Snapshot>>>> = Default::default();
    let slot = latest.clone();
    // Found only through the kubelet symlink: the name gives the id.
    let path = node.cri_file();
    let links = node.root().join("containers");
    fs::create_dir_all(&links).unwrap();
    std::os::unix::fs::symlink(&path, links.join(format!("web-0_shop_app-{ID}.log"))).unwrap();
    append(&path, cri("stdout", "F", "before metadata").as_bytes());
    let root = node.root().to_path_buf();
    let shipper = LogShipper::spawn(
        node.config(&rx.url),
        LogsContext {
            node: "node-1".into(),
            data_dir: root.join("data"),
            pod_log_root: root.join("pods"),
            container_log_root: links.clone(),
            docker_root: root.join("docker"),
            metadata: Box::new(move || slot.lock().unwrap().clone()),
        },
    )
    .unwrap();
    rx.wait_for(WAIT, "the first line", |l| !l.is_empty());
    let mut info = ContainerInfo {
        container_id: Some(ID.into()),
        image: "registry/app:1.0".into(),
        namespace: "shop".into(),
        pod: "web-0".into(),
        pod_uid: "uid-1".into(),
        container: "app".into(),
        ..ContainerInfo::default()
    };
    info.labels
        .insert("app.kubernetes.io/name".into(), "web".into());
    *latest.lock().unwrap() = Some(Arc::new(Snapshot {
        timestamp_ms: 1,
        containers: vec![ContainerSample {
            info: Arc::new(info),
            stats: Default::default(),
        }],
        ..Snapshot::default()
    }));
    // Probe lines until one carries the metadata (the next listing
    // relabels the file).
    let mut probes = 0;
    let deadline = Instant::now() + WAIT;
    loop {
        append(
            &path,
            cri("stdout", "F", &format!("probe {probes}")).as_bytes(),
        );
        probes += 1;
        rx.wait_for(WAIT, "the probe", |l| l.len() > probes);
        if rx.lines().last().unwrap().labels.contains_key("image") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the metadata never reached the labels"
        );
    }
    shipper.shutdown(Duration::from_secs(2));
    let lines = rx.lines();
    assert_eq!(lines[0].line, "before metadata");
    assert!(!lines[0].labels.contains_key("image"));
    let l = &lines.last().unwrap().labels;
    assert_eq!(l["image"], "registry/app:1.0");
    assert_eq!(l["label_app_kubernetes_io_name"], "web");
    assert_eq!(l["pod_uid"], "uid-1");
    assert_eq!(
        l["filename"],
        path.to_string_lossy(),
        "the pod file, not the symlink"
    );
}
