//! The recent history behind `/api/v1/containers/{id}/stats`: the latest
//! snapshot as it is, older ones packed, bounded by age and by count.
//!
//! The count bound keeps memory flat at short intervals: cAdvisor's two
//! minutes of full structs per cgroup at 1 s is what made its memory grow
//! with the container count. Older snapshots are kept encoded (postcard:
//! varints, so mostly-small counters take a few bytes each) because the
//! window is read only when someone asks for a container's history, while
//! the structs themselves cost ~450 bytes per cgroup per tick: at 2000
//! cgroups and 12 ticks that was a third of the agent's memory.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::snapshot::{ContainerInfo, ContainerSample, Snapshot};
use crate::stats::ContainerStats;

/// One older collection: each cgroup's identity (shared with the live
/// snapshots) and its statistics, encoded back to back.
#[derive(Debug)]
struct PackedSnapshot {
    timestamp_ms: i64,
    /// Sorted by id, as the collector emits them. Shared with the
    /// snapshot packed before when the cgroups are the same ones (the
    /// usual case): copying the list took a reference count on each
    /// identity at every tick and dropped one as the oldest snapshot left.
    infos: Arc<[Arc<ContainerInfo>]>,
    /// Where cgroup `i`'s encoded statistics end in `data`.
    ends: Vec<u32>,
    data: Vec<u8>,
}

impl PackedSnapshot {
    /// Packs `snap`. A sample carried from an earlier tick (an aggregate
    /// cgroup read on a slower cadence) is usually in `before`, the
    /// snapshot packed just before, under the same id and read time: its
    /// bytes are copied from there rather than encoded again, which at
    /// 1000 pods carried for nine ticks in ten was most of the packing.
    fn pack(snap: &Snapshot, before: Option<&PackedSnapshot>) -> Self {
        let mut data = Vec::with_capacity(before.map_or(0, |b| b.data.len()));
        let mut ends = Vec::with_capacity(snap.containers.len());
        let shared = before
            .filter(|b| same_identities(&b.infos, &snap.containers))
            .map(|b| b.infos.clone());
        // Both lists are sorted by id: one cursor walks `before` (in step
        // with `snap` when the lists are the same).
        let mut cursor = 0;
        for (i, c) in snap.containers.iter().enumerate() {
            let carried = c.stats.timestamp_ms != snap.timestamp_ms;
            let reused = carried
                && before.is_some_and(|b| {
                    let id = c.info.id.as_str();
                    if shared.is_some() {
                        // The same identities, one for one: entry `i` is
                        // this cgroup's, no need to compare ids.
                        cursor = i;
                    } else {
                        while cursor < b.infos.len() && b.infos[cursor].id.as_str() < id {
                            cursor += 1;
                        }
                    }
                    match b.entry(cursor) {
                        Some((info, bytes))
                            if (Arc::ptr_eq(info, &c.info) || info.id == id)
                                && encoded_timestamp(bytes) == Some(c.stats.timestamp_ms) =>
                        {
                            data.extend_from_slice(bytes);
                            true
                        }
                        _ => false,
                    }
                });
            if !reused {
                // Encoding plain structs into a Vec cannot fail.
                data = postcard::to_extend(&c.stats, data).expect("encoding statistics");
            }
            ends.push(data.len() as u32);
        }
        data.shrink_to_fit();
        Self {
            timestamp_ms: snap.timestamp_ms,
            infos: shared
                .unwrap_or_else(|| snap.containers.iter().map(|c| c.info.clone()).collect()),
            ends,
            data,
        }
    }

    /// The identity and encoded statistics of entry `i`.
    fn entry(&self, i: usize) -> Option<(&Arc<ContainerInfo>, &[u8])> {
        let info = self.infos.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some((info, &self.data[start..self.ends[i] as usize]))
    }

    fn get(&self, id: &str) -> Option<(Arc<ContainerInfo>, ContainerStats)> {
        let i = self
            .infos
            .binary_search_by(|info| info.id.as_str().cmp(id))
            .ok()?;
        let (_, bytes) = self.entry(i)?;
        // The bytes were written by `pack` from the same type.
        let stats = postcard::from_bytes(bytes).expect("decoding packed statistics");
        Some((self.infos[i].clone(), stats))
    }
}

/// The snapshots of the last `window_ms`, at most `max_snapshots` of them.
#[derive(Debug, Default)]
pub struct RecentSamples {
    window_ms: i64,
    max_snapshots: usize,
    /// Oldest first; the newest is in `latest`.
    older: VecDeque<PackedSnapshot>,
    latest: Option<Arc<Snapshot>>,
}

impl RecentSamples {
    /// Keeps `window_ms` milliseconds of history, and no more than
    /// `max_snapshots` collections.
    pub fn new(window_ms: i64, max_snapshots: usize) -> Self {
        Self {
            window_ms,
            max_snapshots: max_snapshots.max(1),
            older: VecDeque::new(),
            latest: None,
        }
    }

    /// Adds a tick's snapshot and forgets what fell out of the window.
    pub fn push(&mut self, snap: Arc<Snapshot>) {
        let horizon = snap.timestamp_ms - self.window_ms;
        if let Some(previous) = self.latest.replace(snap) {
            let packed = PackedSnapshot::pack(&previous, self.older.back());
            self.older.push_back(packed);
        }
        while self.older.len() + 1 > self.max_snapshots
            || self.older.front().is_some_and(|s| s.timestamp_ms < horizon)
        {
            self.older.pop_front();
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
        // An aggregate cgroup read on a slower cadence appears in several
        // snapshots with the sample of its last read: each sample is
        // returned once, and only if read at or after `since_ms`.
        let push = |samples: &mut Vec<ContainerStats>, stats: ContainerStats| {
            let read_before = stats.timestamp_ms > 0 && stats.timestamp_ms < since_ms;
            if !read_before && samples.last() != Some(&stats) {
                samples.push(stats);
            }
        };
        for packed in self.older.iter().filter(|s| s.timestamp_ms >= since_ms) {
            if let Some((i, stats)) = packed.get(id) {
                info = Some(i);
                push(&mut samples, stats);
            }
        }
        if let Some(snap) = self.latest.as_ref().filter(|s| s.timestamp_ms >= since_ms)
            && let Some(c) = find_sorted(&snap.containers, id)
        {
            info = Some(c.info.clone());
            push(&mut samples, c.stats.clone());
        }
        info.map(|i| (i, samples))
    }

    /// Number of snapshots kept.
    pub fn len(&self) -> usize {
        self.older.len() + self.latest.is_some() as usize
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.latest.is_none()
    }
}

/// Whether `infos` are the identities of `containers`, one for one (the
/// same shared values, not merely equal ones).
fn same_identities(infos: &[Arc<ContainerInfo>], containers: &[ContainerSample]) -> bool {
    infos.len() == containers.len()
        && infos
            .iter()
            .zip(containers)
            .all(|(info, c)| Arc::ptr_eq(info, &c.info))
}

/// The read time at the front of encoded statistics (the first field of
/// [`ContainerStats`]).
fn encoded_timestamp(bytes: &[u8]) -> Option<i64> {
    postcard::take_from_bytes::<i64>(bytes).ok().map(|(t, _)| t)
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
    fn packed_snapshots_give_back_every_field() {
        use crate::stats::*;
        let full = ContainerStats {
            timestamp_ms: 1000,
            cpu: CpuStats {
                usage_ns: u64::MAX,
                user_ns: 7,
                system_ns: 1 << 40,
                cfs: Some(CfsStats {
                    periods: 3,
                    throttled_periods: 2,
                    throttled_ns: 1,
                    burst_periods: None,
                    burst_ns: Some(9),
                }),
            },
            memory: MemoryStats {
                usage: 123_456_789,
                max_usage: Some(200_000_000),
                working_set: 100_000_000,
                oom_kills: 1,
                ..Default::default()
            },
            blkio: vec![BlkioDevice {
                major: 8,
                minor: 0,
                read_bytes: 4096,
                write_bytes: 8192,
                reads: 1,
                writes: 2,
            }],
            pids: PidsStats {
                current: Some(12),
                limit: None,
            },
            pressure: Some(PressureStats {
                cpu: Psi {
                    some_total_us: 5,
                    full_total_us: 6,
                },
                ..Default::default()
            }),
            network: vec![InterfaceStats {
                name: "eth0".into(),
                rx_bytes: 1_000_000,
                tx_dropped: 3,
                ..Default::default()
            }],
            filesystem: vec![FilesystemStats {
                device: "/dev/vda1".into(),
                mountpoint: Some("/".into()),
                usage: 1 << 33,
                ..Default::default()
            }],
        };
        let snap = |ts: i64, stats: ContainerStats| {
            Arc::new(Snapshot {
                timestamp_ms: ts,
                containers: vec![ContainerSample {
                    info: Arc::new(ContainerInfo {
                        id: "/a".into(),
                        ..Default::default()
                    }),
                    stats,
                }],
                ..Default::default()
            })
        };
        let mut r = RecentSamples::new(60_000, 12);
        r.push(snap(1000, full.clone()));
        r.push(snap(2000, ContainerStats::default()));
        let (_, got) = r.since("/a", 0).unwrap();
        assert_eq!(got[0], full, "the packed (older) sample");
        assert_eq!(got[1], ContainerStats::default());
    }

    #[test]
    fn carried_samples_are_packed_as_read() {
        // A pod read at 1000 and carried through 2000 and 3000, read again
        // at 4000; a container read every tick.
        let pod = |read_ms: i64| ContainerStats {
            timestamp_ms: read_ms,
            cpu: crate::stats::CpuStats {
                usage_ns: 1_000_000 + read_ms as u64,
                ..Default::default()
            },
            blkio: vec![crate::stats::BlkioDevice {
                major: 8,
                reads: read_ms as u64,
                ..Default::default()
            }],
            ..Default::default()
        };
        let tick = |ts: i64, pod_read: i64| {
            let mut s = (*snap(ts, &["/c", "/pod"])).clone();
            s.containers[1].stats = pod(pod_read);
            Arc::new(s)
        };
        for max in [12, 2] {
            let mut r = RecentSamples::new(60_000, max);
            for (ts, read) in [(1000, 1000), (2000, 1000), (3000, 1000), (4000, 4000)] {
                r.push(tick(ts, read));
            }
            let (_, got) = r.since("/pod", 0).unwrap();
            // With a window of two the snapshot of the read left it; the
            // carried copy in the next one still gives the sample.
            let want = vec![pod(1000), pod(4000)];
            assert_eq!(got, want, "window of {max}");
            assert_eq!(r.since("/c", 0).unwrap().1.len(), max.min(4));
        }
        // A carried sample whose read is not in the snapshot before (the
        // read failed there, or that one holds another read) is encoded,
        // not copied from another read.
        let mut r = RecentSamples::new(60_000, 12);
        r.push(tick(1000, 1000));
        r.push(tick(2000, 700));
        r.push(snap(3000, &["/c"]));
        r.push(tick(4000, 500));
        r.push(tick(5000, 5000));
        let (_, got) = r.since("/pod", 0).unwrap();
        assert_eq!(got, vec![pod(1000), pod(700), pod(500), pod(5000)]);
    }

    #[test]
    fn packed_snapshots_share_the_identities_while_the_cgroups_stay() {
        let infos: Vec<Arc<ContainerInfo>> = ["/a", "/b"]
            .iter()
            .map(|id| {
                Arc::new(ContainerInfo {
                    id: id.to_string(),
                    ..Default::default()
                })
            })
            .collect();
        let tick = |ts: i64, infos: &[Arc<ContainerInfo>]| {
            Arc::new(Snapshot {
                timestamp_ms: ts,
                containers: infos
                    .iter()
                    .map(|info| ContainerSample {
                        info: info.clone(),
                        stats: ContainerStats {
                            timestamp_ms: ts,
                            ..Default::default()
                        },
                    })
                    .collect(),
                ..Default::default()
            })
        };
        let mut r = RecentSamples::new(60_000, 12);
        for ts in [1000, 2000, 3000] {
            r.push(tick(ts, &infos));
        }
        assert!(Arc::ptr_eq(&r.older[0].infos, &r.older[1].infos));
        // /b's identity was refreshed (a new label): a list of its own,
        // and each snapshot answers with the identity it was taken with.
        let mut refreshed = infos.clone();
        refreshed[1] = Arc::new(ContainerInfo {
            id: "/b".into(),
            image: "new".into(),
            ..Default::default()
        });
        r.push(tick(4000, &refreshed));
        r.push(tick(5000, &refreshed));
        assert!(Arc::ptr_eq(&r.older[0].infos, &r.older[2].infos));
        assert!(!Arc::ptr_eq(&r.older[2].infos, &r.older[3].infos));
        assert_eq!(r.older[2].get("/b").unwrap().0.image, "");
        assert_eq!(r.older[3].get("/b").unwrap().0.image, "new");
        assert_eq!(r.since("/b", 0).unwrap().1.len(), 5);
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
