//! A sample's time is when its cgroup's files were read, not when the tick
//! began: a tick's housekeeping before the reads (discovery, limits, the
//! pod list over HTTP) can take long, and a rate taken between two
//! samples would be off by as much as it took.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use osprey_collector::collect::{Collector, now_ms};
use osprey_collector::config::AgentConfig;
use osprey_collector::fixture::{FixtureTree, FixtureVersion, PathStyle, paths};

/// How long the kubelet takes to answer.
const KUBELET_DELAY: Duration = Duration::from_millis(1500);

/// A kubelet read-only port that answers each pod list request after
/// [`KUBELET_DELAY`], with no pods; returns its URL and a request count.
fn slow_kubelet() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/pods", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(KUBELET_DELAY);
            let body = r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, hits)
}

#[test]
fn samples_are_stamped_when_read_not_when_the_tick_began() {
    let tree = FixtureTree::new(FixtureVersion::V1).unwrap();
    let style = PathStyle::KubepodsSystemd(paths::Qos::Burstable, paths::Runtime::Containerd);
    let containers = tree.add_containers(style, 0, 2).unwrap();
    let (url, hits) = slow_kubelet();
    let mut collector = Collector::new(AgentConfig {
        cgroup_root: Some(tree.root().to_path_buf()),
        docker_root: tree.root().join("no-docker"),
        pod_log_root: tree.root().join("no-pods"),
        container_log_root: tree.root().join("no-containers"),
        containers_only: true,
        interval: Duration::from_secs(1),
        kubelet_pods_url: Some(url),
        ..AgentConfig::default()
    })
    .unwrap();

    let asked_before = hits.load(Ordering::SeqCst);
    let tick_began = now_ms();
    let snap = collector.collect();
    assert!(
        hits.load(Ordering::SeqCst) > asked_before,
        "the tick asked the kubelet for its pods"
    );
    let delay_ms = KUBELET_DELAY.as_millis() as i64;
    assert!(
        snap.timestamp_ms >= tick_began + delay_ms,
        "the snapshot is stamped {} ms after the tick began, before the kubelet answered ({delay_ms} ms)",
        snap.timestamp_ms - tick_began
    );
    for id in &containers {
        let c = snap
            .containers
            .iter()
            .find(|c| &c.info.id == id)
            .unwrap_or_else(|| panic!("{id} in the snapshot"));
        assert_eq!(c.stats.timestamp_ms, snap.timestamp_ms, "{id}");
    }
}
