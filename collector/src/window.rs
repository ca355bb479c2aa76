//! The recent samples of every cgroup, kept in memory for the
//! `/api/v1/containers/{id}/stats` endpoint: bounded by age (and so, at a
//! fixed interval, by count).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::snapshot::{ContainerInfo, Snapshot};
use crate::stats::ContainerStats;

/// Samples younger than `window_ms`, per cgroup path.
#[derive(Debug, Default)]
pub struct RecentSamples {
    window_ms: i64,
    series: HashMap<String, Recent>,
}

#[derive(Debug)]
struct Recent {
    info: Arc<ContainerInfo>,
    samples: VecDeque<ContainerStats>,
}

impl RecentSamples {
    /// Keeps `window_ms` milliseconds of history.
    pub fn new(window_ms: i64) -> Self {
        Self {
            window_ms,
            series: HashMap::new(),
        }
    }

    /// Adds a tick's samples and forgets what fell out of the window,
    /// including cgroups that have not been seen for a whole window.
    pub fn push(&mut self, snap: &Snapshot) {
        for c in &snap.containers {
            let entry = self.series.entry(c.info.id.clone()).or_insert_with(|| Recent {
                info: c.info.clone(),
                samples: VecDeque::new(),
            });
            entry.info = c.info.clone();
            entry.samples.push_back(c.stats.clone());
        }
        let horizon = snap.timestamp_ms - self.window_ms;
        self.series.retain(|_, r| {
            while r.samples.front().is_some_and(|s| s.timestamp_ms < horizon) {
                r.samples.pop_front();
            }
            !r.samples.is_empty()
        });
    }

    /// The samples of cgroup `id` taken at or after `since_ms`, oldest first.
    pub fn since(&self, id: &str, since_ms: i64) -> Option<(Arc<ContainerInfo>, Vec<ContainerStats>)> {
        let r = self.series.get(id)?;
        let v = r.samples.iter().filter(|s| s.timestamp_ms >= since_ms).cloned().collect();
        Some((r.info.clone(), v))
    }

    /// Number of cgroups with history.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::ContainerSample;

    fn snap(ts: i64, ids: &[&str]) -> Snapshot {
        Snapshot {
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
        }
    }

    #[test]
    fn keeps_only_the_window_and_forgets_vanished_cgroups() {
        let mut r = RecentSamples::new(10_000);
        for t in 0..30 {
            let ids: &[&str] = if t < 5 { &["/a", "/b"] } else { &["/a"] };
            r.push(&snap(t * 1000, ids));
        }
        let (_, a) = r.since("/a", 0).unwrap();
        assert_eq!(a.first().unwrap().timestamp_ms, 19_000);
        assert_eq!(a.len(), 11);
        assert!(r.since("/b", 0).is_none(), "/b left more than a window ago");
        assert_eq!(r.since("/a", 25_000).unwrap().1.len(), 5);
    }
}
