//! A sample's time is when its cgroup's files were read, not when the tick
//! began: a tick's housekeeping before the reads (discovery, limits, the
//! pod list over HTTP) can take long, and a rate taken between two
//! samples would be off by as much as it took.

use std::sync::atomic::Ordering;
use std::time::Duration;

use osprey_collector::collect::{Collector, now_ms};
use osprey_collector::config::AgentConfig;
use osprey_collector::fixture::kubelet::serve_pod_list;
use osprey_collector::fixture::{FixtureTree, FixtureVersion, PathStyle, paths};

/// How long the kubelet takes to answer.
const KUBELET_DELAY: Duration = Duration::from_millis(1500);

#[test]
fn samples_are_stamped_when_read_not_when_the_tick_began() {
    let tree = FixtureTree::new(FixtureVersion::V1).unwrap();
    let style = PathStyle::KubepodsSystemd(paths::Qos::Burstable, paths::Runtime::Containerd);
    let containers = tree.add_containers(style, 0, 2).unwrap();
    let pods = r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]}"#;
    let (url, hits) = serve_pod_list(pods.to_string(), KUBELET_DELAY);
    let mut collector = Collector::new(AgentConfig {
        kubelet_pods_url: Some(url),
        ..tree.agent_config()
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
