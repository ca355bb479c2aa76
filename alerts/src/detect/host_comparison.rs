//! Host comparison: members of a group that behave unlike their peers.
//!
//! At every evaluation instant in the window, each member's value is its latest sample at or
//! before the instant (no older than [`HostComparisonConfig::lookback_ms`]). Across the members
//! present, the robust centre is the median `m` and the scale on each side is the double MAD
//! (`1.4826 ×` the median deviation of the values below, resp. above, `m`), floored relative to
//! `|m|` and absolutely so a tight group of large values does not make noise look like an
//! outlier. A member is outlying at that instant when it is more than
//! [`HostComparisonConfig::sensitivity`] scales from `m`; it is an [`Outlier`] when it is
//! outlying at no less than [`HostComparisonConfig::fraction_of_window`] of the instants it was
//! present. Instants with fewer than [`HostComparisonConfig::min_group`] members present are
//! skipped, and so are the outliers on one side of an instant where more than
//! [`HostComparisonConfig::max_outlying_share`] of the group deviate that way (a group-wide
//! change is not a host problem).

use serde::{Deserialize, Serialize};

use super::robust::{MAD_TO_SIGMA, double_mad, median};
use super::{Direction, Sample};

/// Configuration of a host-comparison rule's detector. Plain data; every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostComparisonConfig {
    /// Fewest members present for an instant to count (MAD is unstable below about 5).
    pub min_group: usize,
    /// Distance from the group's centre, in robust standard deviations, beyond which a member
    /// is outlying.
    pub sensitivity: f64,
    /// Length of the window ending at the newest sample, in milliseconds.
    pub window_ms: i64,
    /// Share of its instants in the window a member must be outlying at to be reported.
    pub fraction_of_window: f64,
    /// Oldest sample (relative to an instant) still taken as a member's value, in milliseconds.
    pub lookback_ms: i64,
    /// Which side of the group is reported.
    pub direction: Direction,
    /// Scale floor relative to the group's median (the "scaled MAD").
    pub rel_floor: f64,
    /// Absolute scale floor, in the metric's unit.
    pub abs_floor: f64,
    /// When more than this share of the members deviate the same way at an instant, that side
    /// is not scored there.
    pub max_outlying_share: f64,
    /// [`HostComparisonDetector`] only: a reported member stays reported until its outlying
    /// share of the window falls below this (hysteresis; at most `fraction_of_window`).
    pub clear_fraction: f64,
}

impl Default for HostComparisonConfig {
    fn default() -> Self {
        HostComparisonConfig {
            min_group: 5,
            sensitivity: 3.5,
            window_ms: 15 * 60_000,
            fraction_of_window: 0.7,
            lookback_ms: 5 * 60_000,
            direction: Direction::Both,
            rel_floor: 0.05,
            abs_floor: 1e-9,
            max_outlying_share: 0.5,
            clear_fraction: 0.1,
        }
    }
}

/// Whether the group could be compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum GroupStatus {
    /// At least one instant had enough members.
    Compared {
        /// Instants in the window with at least `min_group` members present.
        instants: usize,
    },
    /// No instant in the window had `min_group` members: nothing is reported.
    TooFewMembers {
        /// Most members present at any instant.
        present: usize,
        /// The configured minimum.
        required: usize,
    },
}

/// One member far from its peers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outlier<K> {
    /// The member's key, as given.
    pub member: K,
    /// Share of the member's instants at which it was outlying.
    pub fraction: f64,
    /// Median signed score over the member's outlying instants (positive: above the group).
    pub score: f64,
    /// The member's value at the last instant it was present.
    pub value: f64,
    /// The group's centre at that instant.
    pub centre: f64,
}

/// Result of one comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison<K> {
    /// Whether there was a group to compare with.
    pub status: GroupStatus,
    /// The outliers, in the order the members were given.
    pub outliers: Vec<Outlier<K>>,
}

/// The group's robust centre (median) and the scales below and above it
/// (double MAD as σ, floored) of one instant's values (reordered).
fn peer_scale(
    values: &mut [f64],
    cfg: &HostComparisonConfig,
    scratch: &mut Vec<f64>,
) -> (f64, f64, f64) {
    let m = median(values).expect("non-empty");
    let (lo, hi) = double_mad(values, m, scratch);
    let floor = (cfg.rel_floor * m.abs()).max(cfg.abs_floor);
    (
        m,
        (MAD_TO_SIGMA * lo).max(floor),
        (MAD_TO_SIGMA * hi).max(floor),
    )
}

/// The peers' band at one instant: `(lo, centre, hi)`, where a member's
/// score reaches the sensitivity; `None` with fewer than `min_group`
/// values (what the preview draws for host comparison rules).
pub fn peer_band(values: &[f64], cfg: &HostComparisonConfig) -> Option<(f64, f64, f64)> {
    if values.len() < cfg.min_group.max(1) {
        return None;
    }
    let mut v = values.to_vec();
    let (m, lo, hi) = peer_scale(&mut v, cfg, &mut Vec::with_capacity(values.len()));
    Some((m - cfg.sensitivity * lo, m, m + cfg.sensitivity * hi))
}

/// The members of `members` that are outliers over the window ending at the newest sample.
/// Shorthand for [`compare`]`(..).outliers`.
pub fn outliers<K: Clone>(
    members: &[(K, &[Sample])],
    cfg: &HostComparisonConfig,
) -> Vec<Outlier<K>> {
    compare(members, cfg).outliers
}

/// Compares every member with its peers over the window ending at the newest sample of any
/// member. Each member's samples must be in time order (as a range query returns them).
pub fn compare<K: Clone>(members: &[(K, &[Sample])], cfg: &HostComparisonConfig) -> Comparison<K> {
    compare_with(members, cfg, |_| cfg.fraction_of_window)
}

/// [`compare`] with the share of the window each member needs to be reported given by
/// `required_fraction`.
fn compare_with<K: Clone>(
    members: &[(K, &[Sample])],
    cfg: &HostComparisonConfig,
    required_fraction: impl Fn(&K) -> f64,
) -> Comparison<K> {
    let end = members
        .iter()
        .filter_map(|(_, s)| s.last().map(|p| p.0))
        .max();
    let Some(end) = end else {
        return Comparison {
            status: GroupStatus::TooFewMembers {
                present: 0,
                required: cfg.min_group,
            },
            outliers: Vec::new(),
        };
    };
    let start = end - cfg.window_ms;
    // The evaluation instants: every timestamp of any member inside the window.
    let mut instants: Vec<i64> = members
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.0))
        .filter(|t| *t > start && *t <= end)
        .collect();
    instants.sort_unstable();
    instants.dedup();

    let n = members.len();
    let mut cursors = vec![0usize; n];
    let mut present_ticks = vec![0usize; n];
    let mut outlying_scores: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut last_seen: Vec<Option<(f64, f64)>> = vec![None; n];
    let mut values: Vec<(usize, f64)> = Vec::with_capacity(n);
    let mut scratch = Vec::with_capacity(n);
    let mut scratch2 = Vec::with_capacity(n);
    let mut scores: Vec<(usize, f64)> = Vec::with_capacity(n);
    let mut max_present = 0;
    let mut evaluated = 0;

    for &t in &instants {
        values.clear();
        for (i, (_, samples)) in members.iter().enumerate() {
            let c = &mut cursors[i];
            while *c < samples.len() && samples[*c].0 <= t {
                *c += 1;
            }
            if *c > 0 {
                let (ts, v) = samples[*c - 1];
                if t - ts <= cfg.lookback_ms && v.is_finite() {
                    values.push((i, v));
                }
            }
        }
        max_present = max_present.max(values.len());
        if values.len() < cfg.min_group {
            continue;
        }
        evaluated += 1;
        scratch.clear();
        scratch.extend(values.iter().map(|v| v.1));
        let (m, sigma_lo, sigma_hi) = peer_scale(&mut scratch, cfg, &mut scratch2);
        scores.clear();
        scores.extend(values.iter().map(|&(i, v)| {
            let z = if v >= m {
                (v - m) / sigma_hi
            } else {
                (v - m) / sigma_lo
            };
            (i, z)
        }));
        let above = scores.iter().filter(|s| s.1 >= cfg.sensitivity).count();
        let below = scores.iter().filter(|s| -s.1 >= cfg.sensitivity).count();
        let limit = cfg.max_outlying_share * values.len() as f64;
        for &(i, z) in &scores {
            present_ticks[i] += 1;
            let side_ok = if z >= 0.0 {
                above as f64 <= limit
            } else {
                below as f64 <= limit
            };
            if side_ok && cfg.direction.exceeds(z, cfg.sensitivity) {
                outlying_scores[i].push(z);
            }
        }
        for &(i, v) in &values {
            last_seen[i] = Some((v, m));
        }
    }

    if evaluated == 0 {
        return Comparison {
            status: GroupStatus::TooFewMembers {
                present: max_present,
                required: cfg.min_group,
            },
            outliers: Vec::new(),
        };
    }
    let mut out = Vec::new();
    for (i, (key, _)) in members.iter().enumerate() {
        let present = present_ticks[i];
        let hits = &mut outlying_scores[i];
        if present == 0 || hits.is_empty() {
            continue;
        }
        let fraction = hits.len() as f64 / present as f64;
        if fraction + 1e-12 < required_fraction(key) {
            continue;
        }
        let (value, centre) = last_seen[i].expect("present at least once");
        out.push(Outlier {
            member: key.clone(),
            fraction,
            score: median(hits).expect("non-empty"),
            value,
            centre,
        });
    }
    Comparison {
        status: GroupStatus::Compared {
            instants: evaluated,
        },
        outliers: out,
    }
}

/// Host comparison over successive evaluations, with hysteresis: a member is reported once it is
/// outlying for [`HostComparisonConfig::fraction_of_window`] of the window and stays reported
/// until its share falls below [`HostComparisonConfig::clear_fraction`], so a member hovering
/// around the limit does not flap. Serde-serialisable so the engine can persist it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostComparisonDetector<K> {
    cfg: HostComparisonConfig,
    /// Members currently reported, with the time they were first reported.
    reported: Vec<(K, i64)>,
}

/// One member reported by a [`HostComparisonDetector`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reported<K> {
    /// The member's statistics over the current window.
    pub outlier: Outlier<K>,
    /// When the member was first reported (newest sample time of that evaluation).
    pub since_ms: i64,
}

impl<K: Clone + PartialEq> HostComparisonDetector<K> {
    /// A detector with nobody reported.
    pub fn new(cfg: HostComparisonConfig) -> HostComparisonDetector<K> {
        HostComparisonDetector {
            cfg,
            reported: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HostComparisonConfig {
        &self.cfg
    }

    /// Compares the group over the window ending at its newest sample and updates who is
    /// reported. With too few members nothing is reported and the state is kept.
    pub fn observe(&mut self, members: &[(K, &[Sample])]) -> (GroupStatus, Vec<Reported<K>>) {
        let enter = self.cfg.fraction_of_window;
        let clear = self.cfg.clear_fraction.min(enter);
        let reported = &self.reported;
        let c = compare_with(members, &self.cfg, |k| {
            if reported.iter().any(|(r, _)| r == k) {
                clear
            } else {
                enter
            }
        });
        if matches!(c.status, GroupStatus::TooFewMembers { .. }) {
            return (c.status, Vec::new());
        }
        let now = members
            .iter()
            .filter_map(|(_, s)| s.last().map(|p| p.0))
            .max()
            .unwrap_or(0);
        let out: Vec<Reported<K>> = c
            .outliers
            .into_iter()
            .map(|o| {
                let since_ms = self
                    .reported
                    .iter()
                    .find(|(r, _)| *r == o.member)
                    .map_or(now, |(_, since)| *since);
                Reported {
                    outlier: o,
                    since_ms,
                }
            })
            .collect();
        self.reported = out
            .iter()
            .map(|r| (r.outlier.member.clone(), r.since_ms))
            .collect();
        (c.status, out)
    }
}
