//! The recent history behind `/api/v1/containers/{id}/stats`: the last
//! snapshots themselves, shared (`Arc`) with the rest of the agent rather
//! than copied per container, bounded by age and by count.
//!
//! The count bound keeps memory flat at short intervals: cAdvisor's two
//! minutes of full structs per cgroup at 1 s is what made its memory grow
//! with the container count.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::snapshot::{ContainerInfo, ContainerSample, Snapshot};
use crate::stats::ContainerStats;

/// The snapshots of the last `window_ms`, at most `max_snapshots` of them.
#[derive(Debug, Default)]
pub struct RecentSamples {
    window_ms: i64,
    max_snapshots: usize,
    snapshots: VecDeque<Arc<Snapshot>>,
}

impl RecentSamples {
    /// Keeps `window_ms` milliseconds of history, and no more than
    /// `max_snapshots` collections.
    pub fn new(window_ms: i64, max_snapshots: usize) -> Self {
        Self {
            window_ms,
            max_snapshots: max_snapshots.max(1),
            snapshots: VecDeque::new(),
        }
    }

    /// Adds a tick's snapshot and forgets what fell out of the window.
    pub fn push(&mut self, snap: Arc<Snapshot>) {
        let horizon = snap.timestamp_ms - self.window_ms;
        self.snapshots.push_back(snap);
        while self.snapshots.len() > self.max_snapshots
            || self
                .snapshots
                .front()
                .is_some_and(|s| s.timestamp_ms < horizon)
        {
            self.snapshots.pop_front();
        }
    }

    /// The samples of cgroup `id` taken at or after `since_ms`, oldest
    /// first, with its latest identity; `None` if no kept snapshot has it.
    pub fn since(
        &self,
        id: &str,
        since_ms: i64,
    ) -> Option<(Arc<ContainerInfo>, Vec<ContainerStats>)> {
        let mut info = None;
        let mut samples = Vec::new();
        for snap in self.snapshots.iter().filter(|s| s.timestamp_ms >= since_ms) {
            if let Some(c) = find_sorted(&snap.containers, id) {
                info = Some(c.info.clone());
                samples.push(c.stats.clone());
            }
        }
        info.map(|i| (i, samples))
    }

    /// Number of snapshots kept.
    pub fn len(&self) -> usize {
        self.snapshots.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
    }
}

/// Finds cgroup `id` in a snapshot's containers, which the collector emits
/// in path order.
pub fn find_sorted<'a>(containers: &'a [ContainerSample], id: &str) -> Option<&'a ContainerSample> {
    containers
        .binary_search_by(|c| c.info.id.as_str().cmp(id))
        .ok()
        .map(|i| &containers[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(ts: i64, ids: &[&str]) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            timestamp_ms: ts,
            containers: ids
                .iter()
                .map(|id| ContainerSample {
                    info: Arc::new(ContainerInfo {
                        id: id.to_string(),
                        ..Default::default()
                    }),
                    stats: ContainerStats {
                        timestamp_ms: ts,
                        ..Default::default()
                    },
                })
                .collect(),
            ..Default::default()
        })
    }

    #[test]
    fn keeps_only_the_window_and_forgets_vanished_cgroups() {
        let mut r = RecentSamples::new(10_000, 100);
        for t in 0..30 {
            let ids: &[&str] = if t < 5 { &["/a", "/b"] } else { &["/a"] };
            r.push(snap(t * 1000, ids));
        }
        let (_, a) = r.since("/a", 0).unwrap();
        assert_eq!(a.first().unwrap().timestamp_ms, 19_000);
        assert_eq!(a.len(), 11);
        assert!(r.since("/b", 0).is_none(), "/b left more than a window ago");
        assert_eq!(r.since("/a", 25_000).unwrap().1.len(), 5);
    }

    #[test]
    fn keeps_at_most_max_snapshots() {
        let mut r = RecentSamples::new(1_000_000, 4);
        for t in 0..10 {
            r.push(snap(t * 1000, &["/a", "/b", "/c"]));
        }
        let (_, b) = r.since("/b", 0).unwrap();
        assert_eq!(
            b.iter().map(|s| s.timestamp_ms).collect::<Vec<_>>(),
            vec![6000, 7000, 8000, 9000]
        );
        assert_eq!(r.len(), 4);
    }
}
