//! The head: the in-memory, appendable part of the store holding the most recent samples.
//!
//! Each series appends into one open XOR chunk; a chunk is sealed after
//! `samples_per_chunk` samples or when the next sample belongs to the next block range, so
//! that no chunk straddles a block boundary. Appending is two-phase: [`Head::plan`] decides
//! on every sample of a batch without changing anything (so the decisions can be written to
//! the WAL first), then [`Head::apply`] performs exactly those decisions.
//!
//! Rules for the write path (also in `docs/storage.md`):
//! * timestamps within `grid_tolerance_ms` of the series' expected next timestamp are snapped;
//! * a sample older than the head's `min_valid_t` (already sealed into a block) is rejected
//!   as `too_old`, unless the block holds a bit-identical sample within the grid tolerance
//!   (a retried batch): then it is a `duplicate` (checked by the engine);
//! * a sample whose timestamp already holds a bit-identical value is a harmless `duplicate`;
//!   a different value at an existing timestamp is rejected as `conflicting`;
//! * a sample older than the newest of its series is accepted when within
//!   `out_of_order_window_ms` of it (kept in a sorted side buffer, merged on read and when
//!   sealed), otherwise rejected as `out_of_order`.

use std::collections::HashMap;

use serde::Serialize;

use super::chunk::{XorAppender, XorIter};
use super::error::StorageError;
use super::head_chunks::{ChunkLoc, ChunkSpill};
use super::index::{FxHashMap, InvertedIndex, SeriesRef, pairs_hash};
use super::labels::{Labels, LabelsRef};
use super::matcher::Matcher;
use super::sample::{Sample, SeriesSamplesRef};

/// Per-batch outcome of an append.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AppendReport {
    /// Samples stored.
    pub accepted: u64,
    /// Of the accepted, how many had their timestamp snapped to the series' grid.
    pub snapped: u64,
    /// Samples identical to a stored one (for example a retried batch); nothing stored.
    pub duplicates: u64,
    /// Rejected: older than the newest sample of the series by more than the window.
    pub out_of_order: u64,
    /// Rejected: older than the head (that time range is already sealed in a block).
    pub too_old: u64,
    /// Rejected: a different value at a timestamp that already has one.
    pub conflicting: u64,
    /// New series created by this batch.
    pub new_series: u64,
}

impl AppendReport {
    /// Total rejected samples, all reasons.
    pub fn rejected(&self) -> u64 {
        self.out_of_order + self.too_old + self.conflicting
    }

    /// Adds another report's counts to this one.
    pub fn add(&mut self, o: &AppendReport) {
        self.accepted += o.accepted;
        self.snapped += o.snapped;
        self.duplicates += o.duplicates;
        self.out_of_order += o.out_of_order;
        self.too_old += o.too_old;
        self.conflicting += o.conflicting;
        self.new_series += o.new_series;
    }
}

/// Tunables the head needs (a subset of the storage options).
#[derive(Debug, Clone, Copy)]
pub struct HeadOptions {
    /// Samples per chunk.
    pub samples_per_chunk: usize,
    /// Block length; chunks never straddle a multiple of it.
    pub block_ms: i64,
    /// Out-of-order acceptance window.
    pub ooo_window_ms: i64,
    /// Grid snapping tolerance.
    pub grid_tolerance_ms: i64,
}

/// A sealed chunk of the head.
#[derive(Debug, Clone)]
pub struct HeadChunk {
    /// First timestamp.
    pub min_t: i64,
    /// Last timestamp.
    pub max_t: i64,
    /// XOR-encoded bytes.
    pub bytes: Box<[u8]>,
}

/// A sealed chunk of a head series: time range, sample count and where its bytes are.
/// Kept small (24 bytes) because a series has one per 120 samples in the head.
#[derive(Debug, Clone)]
struct SealedRef {
    min_t: i64,
    /// `max_t - min_t`.
    span: u32,
    count: u16,
    loc: ChunkLoc,
}

impl SealedRef {
    fn max_t(&self) -> i64 {
        self.min_t + self.span as i64
    }
}

#[derive(Debug)]
struct HeadSeries {
    sealed: Vec<SealedRef>,
    open: XorAppender,
    open_min_t: i64,
    /// Newest in-order sample.
    last: Option<Sample>,
    /// Interval between the last two in-order samples (0 when unknown).
    last_delta: i64,
    /// Out-of-order samples, sorted by timestamp, unique timestamps.
    ooo: Vec<Sample>,
}

impl HeadSeries {
    fn new() -> Self {
        HeadSeries {
            sealed: Vec::new(),
            open: XorAppender::new(),
            open_min_t: 0,
            last: None,
            last_delta: 0,
            ooo: Vec::new(),
        }
    }

    /// All samples in `[start, end]`, sorted, out-of-order ones merged in.
    fn samples(&self, spill: &ChunkSpill, start: i64, end: i64) -> Vec<Sample> {
        let mut out = Vec::new();
        // One buffer for every chunk read from the spill file.
        let mut buf = Vec::new();
        let decode = |bytes: &[u8], out: &mut Vec<Sample>, whole: bool| {
            let it = XorIter::new(bytes);
            out.reserve(it.total());
            if whole {
                out.extend(it);
            } else {
                out.extend(it.filter(|s| s.t >= start && s.t <= end));
            }
        };
        for c in &self.sealed {
            if c.max_t() >= start && c.min_t <= end {
                let whole = c.min_t >= start && c.max_t() <= end;
                decode(spill.load_into(&c.loc, &mut buf), &mut out, whole);
            }
        }
        if !self.open.is_empty() && self.open.last_t() >= start && self.open_min_t <= end {
            let whole = self.open_min_t >= start && self.open.last_t() <= end;
            decode(self.open.bytes(), &mut out, whole);
        }
        let ooo: Vec<Sample> = self
            .ooo
            .iter()
            .filter(|s| s.t >= start && s.t <= end)
            .copied()
            .collect();
        if !ooo.is_empty() {
            out.extend(ooo);
            out.sort_by_key(|s| s.t);
        }
        out
    }

    /// The stored sample closest to `t` within `tol`, if any.
    fn find_near(&self, spill: &ChunkSpill, t: i64, tol: i64) -> Option<Sample> {
        self.samples(spill, t - tol, t + tol)
            .into_iter()
            .min_by_key(|s| (s.t - t).abs())
    }

    fn heap_size(&self) -> usize {
        self.sealed.capacity() * std::mem::size_of::<SealedRef>()
            + self
                .sealed
                .iter()
                .map(|c| match &c.loc {
                    ChunkLoc::Mem(b) => b.len(),
                    ChunkLoc::File { .. } => 0,
                })
                .sum::<usize>()
            + self.open.heap_size()
            + self.ooo.capacity() * 16
    }
}

/// What [`Head::plan`] decided for one sample.
#[derive(Debug, Clone, Copy)]
enum Decision {
    Accept(Sample),
    Duplicate,
    OutOfOrder,
    TooOld,
    Conflicting,
}

/// Where a planned series lives: an existing head series or one to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlannedRef {
    /// An existing series.
    Existing(SeriesRef),
    /// The n-th new series of this plan.
    New(usize),
}

/// The decisions for one batch, produced by [`Head::plan`].
#[derive(Debug, Default)]
pub struct AppendPlan {
    /// Series to create, in order.
    pub new_series: Vec<Labels>,
    /// Accepted samples per series, in apply order.
    pub accepted: Vec<(PlannedRef, Sample)>,
    /// The counts to report.
    pub report: AppendReport,
    /// Samples older than the head (batch position of the series, sample), which the engine
    /// checks against the blocks: a retry of a batch already sealed is a duplicate.
    pub too_old: Vec<(usize, Sample)>,
}

/// The grid timestamp `t` snaps to, if any: the previous timestamp plus a whole number of
/// seconds, or plus the previous interval, when `t` is within `tol` of it. Collectors scrape
/// on a whole-second interval, so this recovers the grid even when the first interval was
/// itself jittered.
fn snap(t: i64, last_t: i64, last_delta: i64, tol: i64) -> Option<i64> {
    if tol == 0 || t <= last_t - tol {
        return None;
    }
    let delta = t - last_t;
    let whole = (delta + 500).div_euclid(1000) * 1000;
    if whole > 0 && (delta - whole).abs() <= tol {
        return Some(last_t + whole);
    }
    (last_delta > 0 && (delta - last_delta).abs() <= tol).then_some(last_t + last_delta)
}

/// The in-memory head.
#[derive(Debug)]
pub struct Head {
    opts: HeadOptions,
    index: InvertedIndex,
    series: Vec<HeadSeries>,
    min_valid_t: i64,
    min_t: i64,
    max_t: i64,
    num_samples: u64,
    spill: ChunkSpill,
}

impl Head {
    /// An empty head accepting samples at or after `min_valid_t`, keeping sealed chunks in
    /// memory.
    pub fn new(opts: HeadOptions, min_valid_t: i64) -> Self {
        Self::with_spill(opts, min_valid_t, ChunkSpill::memory())
    }

    /// An empty head that moves sealed chunks to `spill`.
    pub fn with_spill(opts: HeadOptions, min_valid_t: i64, spill: ChunkSpill) -> Self {
        Head {
            spill,
            opts,
            index: InvertedIndex::new(),
            series: Vec::new(),
            min_valid_t,
            min_t: i64::MAX,
            max_t: i64::MIN,
            num_samples: 0,
        }
    }

    /// Number of series in the head.
    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    /// Number of samples in the head.
    pub fn num_samples(&self) -> u64 {
        self.num_samples
    }

    /// Oldest sample timestamp (`i64::MAX` when empty).
    pub fn min_t(&self) -> i64 {
        self.min_t
    }

    /// Newest sample timestamp (`i64::MIN` when empty).
    pub fn max_t(&self) -> i64 {
        self.max_t
    }

    /// Samples before this are rejected as too old.
    pub fn min_valid_t(&self) -> i64 {
        self.min_valid_t
    }

    /// Raises the oldest accepted timestamp (WAL checkpoints restate it).
    pub fn raise_min_valid_t(&mut self, t: i64) {
        self.min_valid_t = self.min_valid_t.max(t);
    }

    /// The head's index.
    pub fn index(&self) -> &InvertedIndex {
        &self.index
    }

    /// Decides on every sample of a batch without modifying the head.
    ///
    /// The labels of series the head does not hold yet are validated here (a series the
    /// head holds passed the same checks when it was created, so it is not checked again);
    /// the first invalid one fails the whole batch with [`StorageError::InvalidBatch`].
    pub fn plan(&self, batch: &[SeriesSamplesRef<'_>]) -> Result<AppendPlan, StorageError> {
        #[derive(Clone, Copy)]
        struct State {
            last: Option<Sample>,
            last_delta: i64,
        }
        let mut plan = AppendPlan::default();
        let mut new_refs: FxHashMap<LabelsRef<'_>, usize> = FxHashMap::default();
        let mut states: FxHashMap<PlannedRef, State> = FxHashMap::default();
        states.reserve(batch.len());
        // Out-of-order samples accepted earlier in this batch, for duplicate detection.
        let mut batch_ooo: HashMap<(PlannedRef, i64), u64> = HashMap::new();
        let tol = self.opts.grid_tolerance_ms;
        for (pos, ss) in batch.iter().enumerate() {
            let found = self
                .index
                .find_pairs(ss.labels, pairs_hash(ss.labels.iter()));
            if found.is_none() && !new_refs.contains_key(&ss.labels) {
                ss.labels
                    .validate()
                    .map_err(|reason| StorageError::InvalidBatch {
                        series_index: pos,
                        reason: format!("{}: {reason}", ss.labels),
                    })?;
            }
            if ss.samples.is_empty() {
                continue;
            }
            let r = match found {
                Some(r) => PlannedRef::Existing(r),
                None => {
                    let n = new_refs.len();
                    let n = *new_refs.entry(ss.labels).or_insert_with(|| {
                        plan.new_series.push(ss.labels.to_labels());
                        n
                    });
                    PlannedRef::New(n)
                }
            };
            let existing = match r {
                PlannedRef::Existing(r) => Some(&self.series[r as usize]),
                PlannedRef::New(_) => None,
            };
            let st = states.entry(r).or_insert_with(|| match existing {
                Some(s) => State {
                    last: s.last,
                    last_delta: s.last_delta,
                },
                None => State {
                    last: None,
                    last_delta: 0,
                },
            });
            for s in ss.samples {
                let mut s = *s;
                let d = if s.t < self.min_valid_t {
                    Decision::TooOld
                } else {
                    match st.last {
                        None => Decision::Accept(s),
                        Some(last) => {
                            // A retry of the newest sample with a jittered timestamp.
                            let near_last_repeat =
                                (s.t - last.t).abs() <= tol && s.v.to_bits() == last.v.to_bits();
                            if let Some(t) = snap(s.t, last.t, st.last_delta, tol)
                                && t != s.t
                            {
                                s.t = t;
                                plan.report.snapped += 1;
                            }
                            if near_last_repeat {
                                Decision::Duplicate
                            } else if s.t > last.t {
                                Decision::Accept(s)
                            } else if s.t == last.t
                                || (last.t - s.t <= tol && s.v.to_bits() == last.v.to_bits())
                            {
                                if s.v.to_bits() == last.v.to_bits() {
                                    Decision::Duplicate
                                } else {
                                    Decision::Conflicting
                                }
                            } else {
                                let stored = existing
                                    .and_then(|e| e.find_near(&self.spill, s.t, tol))
                                    .map(|x| x.v.to_bits())
                                    .or_else(|| batch_ooo.get(&(r, s.t)).copied());
                                match stored {
                                    Some(bits) if bits == s.v.to_bits() => Decision::Duplicate,
                                    Some(_) => Decision::Conflicting,
                                    None if last.t - s.t <= self.opts.ooo_window_ms => {
                                        batch_ooo.insert((r, s.t), s.v.to_bits());
                                        Decision::Accept(s)
                                    }
                                    None => Decision::OutOfOrder,
                                }
                            }
                        }
                    }
                };
                match d {
                    Decision::Accept(s) => {
                        plan.report.accepted += 1;
                        if st.last.is_none_or(|l| s.t > l.t) {
                            st.last_delta = st.last.map_or(0, |l| s.t - l.t);
                            st.last = Some(s);
                        }
                        plan.accepted.push((r, s));
                    }
                    Decision::Duplicate => plan.report.duplicates += 1,
                    Decision::OutOfOrder => plan.report.out_of_order += 1,
                    Decision::TooOld => {
                        plan.report.too_old += 1;
                        plan.too_old.push((pos, s));
                    }
                    Decision::Conflicting => plan.report.conflicting += 1,
                }
            }
        }
        plan.report.new_series = plan.new_series.len() as u64;
        Ok(plan)
    }

    /// Creates a series (used by `apply` and by WAL replay); returns its ref.
    pub fn create_series(&mut self, labels: &Labels) -> SeriesRef {
        if let Some(r) = self.index.find(labels) {
            return r;
        }
        let r = self.index.add(labels);
        self.series.push(HeadSeries::new());
        r
    }

    /// Performs a plan; returns the refs the plan's new series received.
    pub fn apply(&mut self, plan: &AppendPlan) -> Vec<SeriesRef> {
        let new_refs: Vec<SeriesRef> = plan
            .new_series
            .iter()
            .map(|l| self.create_series(l))
            .collect();
        for &(r, s) in &plan.accepted {
            let r = match r {
                PlannedRef::Existing(r) => r,
                PlannedRef::New(n) => new_refs[n],
            };
            self.push(r, s);
        }
        new_refs
    }

    /// Stores one accepted sample: in order into the open chunk, otherwise into the
    /// out-of-order buffer. Identical repeats are ignored, which makes WAL replay idempotent.
    pub fn push(&mut self, r: SeriesRef, s: Sample) {
        if s.t < self.min_valid_t {
            return;
        }
        let opts = self.opts;
        let spill = &mut self.spill;
        let series = &mut self.series[r as usize];
        match series.last {
            Some(last) if s.t <= last.t => {
                if s.t == last.t {
                    return;
                }
                match series.ooo.binary_search_by_key(&s.t, |x| x.t) {
                    Ok(_) => return,
                    Err(pos) => {
                        if series.find_near(spill, s.t, 0).is_some() {
                            return;
                        }
                        series.ooo.insert(pos, s)
                    }
                }
            }
            last => {
                let n = series.open.len();
                let crosses_block = n > 0
                    && s.t.div_euclid(opts.block_ms) != series.open_min_t.div_euclid(opts.block_ms);
                if n >= opts.samples_per_chunk || crosses_block || series.open.is_full() {
                    let next_cap = series.open.bytes().len() + series.open.bytes().len() / 8;
                    let open =
                        std::mem::replace(&mut series.open, XorAppender::with_capacity(next_cap));
                    let (max_t, count) = (open.last_t(), open.len() as u16);
                    let loc = spill.store(open.into_bytes());
                    let min_t = series.open_min_t;
                    series.sealed.push(SealedRef {
                        min_t,
                        // Chunks never straddle a block, so the span fits.
                        span: u32::try_from(max_t - min_t).unwrap_or(u32::MAX),
                        count,
                        loc,
                    });
                }
                if series.open.is_empty() {
                    series.open_min_t = s.t;
                }
                series.open.append(s.t, s.v);
                series.last_delta = last.map_or(0, |l| s.t - l.t);
                series.last = Some(s);
            }
        }
        self.num_samples += 1;
        self.min_t = self.min_t.min(s.t);
        self.max_t = self.max_t.max(s.t);
    }

    /// Samples of the series matching `matchers` within `[start, end]`.
    pub fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<(Labels, Vec<Sample>)> {
        if self.series.is_empty() || end < self.min_t || start > self.max_t {
            return Vec::new();
        }
        self.index
            .select(matchers)
            .into_iter()
            .filter_map(|r| {
                let samples = self.series[r as usize].samples(&self.spill, start, end);
                (!samples.is_empty()).then(|| (self.index.labels(r), samples))
            })
            .collect()
    }

    /// Every series with all its samples (for WAL checkpoints), in ref order.
    pub fn all_series(&self) -> impl Iterator<Item = (SeriesRef, Labels, Vec<Sample>)> + '_ {
        (0..self.series.len() as SeriesRef).map(|r| {
            (
                r,
                self.index.labels(r),
                self.series[r as usize].samples(&self.spill, i64::MIN, i64::MAX),
            )
        })
    }

    /// Chunks and samples older than `boundary`, per series, ready to be written as a block.
    /// Out-of-order samples are merged in and their series re-encoded.
    pub fn collect_before(&self, boundary: i64) -> Vec<(Labels, Vec<HeadChunk>)> {
        let mut out = Vec::new();
        for (r, s) in self.series.iter().enumerate() {
            let has_ooo = s.ooo.first().is_some_and(|x| x.t < boundary);
            let mut chunks: Vec<HeadChunk> = Vec::new();
            if has_ooo {
                let samples = s.samples(&self.spill, i64::MIN, boundary - 1);
                for part in samples.chunks(self.opts.samples_per_chunk) {
                    chunks.push(HeadChunk {
                        min_t: part[0].t,
                        max_t: part[part.len() - 1].t,
                        bytes: super::chunk::encode_xor(part).into_boxed_slice(),
                    });
                }
            } else {
                chunks.extend(s.sealed.iter().filter(|c| c.max_t() < boundary).map(|c| {
                    HeadChunk {
                        min_t: c.min_t,
                        max_t: c.max_t(),
                        bytes: self.spill.load(&c.loc).into_owned().into_boxed_slice(),
                    }
                }));
                if !s.open.is_empty() && s.open.last_t() < boundary {
                    chunks.push(HeadChunk {
                        min_t: s.open_min_t,
                        max_t: s.open.last_t(),
                        bytes: s.open.bytes().to_vec().into_boxed_slice(),
                    });
                }
            }
            if !chunks.is_empty() {
                out.push((self.index.labels(r as SeriesRef), chunks));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Drops everything older than `boundary` (now sealed in a block) and rebuilds the
    /// head with the series that still have samples. Series refs change.
    pub fn truncate_before(&mut self, boundary: i64) {
        let mut fresh = Head::with_spill(
            self.opts,
            boundary.max(self.min_valid_t),
            self.spill.successor(),
        );
        let old_series = std::mem::take(&mut self.series);
        for (r, mut s) in old_series.into_iter().enumerate() {
            s.sealed.retain(|c| c.min_t >= boundary);
            s.sealed.shrink_to_fit();
            // Move the remaining sealed chunks into the new spill file.
            for c in &mut s.sealed {
                if let ChunkLoc::File { .. } = c.loc {
                    let bytes = self.spill.load(&c.loc).into_owned();
                    c.loc = fresh.spill.store(bytes);
                }
            }
            if !s.open.is_empty() && s.open.last_t() < boundary {
                s.open = XorAppender::new();
            }
            s.ooo.retain(|x| x.t >= boundary);
            let count: u64 = s.sealed.iter().map(|c| c.count as u64).sum::<u64>()
                + s.open.len() as u64
                + s.ooo.len() as u64;
            if count == 0 {
                continue;
            }
            let labels = self.index.labels(r as SeriesRef);
            let nr = fresh.create_series(&labels);
            for c in &s.sealed {
                fresh.min_t = fresh.min_t.min(c.min_t);
            }
            if !s.open.is_empty() {
                fresh.min_t = fresh.min_t.min(s.open_min_t);
            }
            if let Some(o) = s.ooo.first() {
                fresh.min_t = fresh.min_t.min(o.t);
            }
            if let Some(l) = s.last {
                fresh.max_t = fresh.max_t.max(l.t);
            }
            fresh.num_samples += count;
            fresh.series[nr as usize] = s;
        }
        *self = fresh;
    }

    /// Approximate heap bytes used by the head (index + chunks), for self-metrics.
    pub fn heap_size(&self) -> usize {
        self.index.heap_size()
            + self.series.iter().map(|s| s.heap_size()).sum::<usize>()
            + self.series.capacity() * std::mem::size_of::<HeadSeries>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::labels::METRIC_NAME;
    use crate::storage::sample::{SeriesSamples, with_refs};

    const T0: i64 = 1_700_000_000_000;

    fn head(ooo: i64) -> Head {
        Head::new(
            HeadOptions {
                samples_per_chunk: 4,
                block_ms: 7_200_000,
                ooo_window_ms: ooo,
                grid_tolerance_ms: 5,
            },
            0,
        )
    }

    fn batch(name: &str, samples: &[(i64, f64)]) -> Vec<SeriesSamples> {
        vec![SeriesSamples {
            labels: Labels::from_pairs([(METRIC_NAME, name)]),
            samples: samples.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
        }]
    }

    fn append(h: &mut Head, b: &[SeriesSamples]) -> AppendReport {
        let p = with_refs(b, |refs| h.plan(refs).unwrap());
        h.apply(&p);
        p.report
    }

    fn all(h: &Head) -> Vec<(i64, f64)> {
        h.select(&[], i64::MIN, i64::MAX)
            .into_iter()
            .flat_map(|(_, s)| s)
            .map(|s| (s.t, s.v))
            .collect()
    }

    #[test]
    fn snaps_jittered_timestamps_to_the_grid() {
        let mut h = head(0);
        let r = append(
            &mut h,
            &batch(
                "a",
                &[
                    (T0, 1.0),
                    (T0 + 10_000, 2.0),
                    (T0 + 20_003, 3.0),
                    (T0 + 29_996, 4.0),
                    (T0 + 40_020, 5.0),
                ],
            ),
        );
        assert_eq!(r.accepted, 5);
        assert_eq!(r.snapped, 2);
        assert_eq!(
            all(&h),
            vec![
                (T0, 1.0),
                (T0 + 10_000, 2.0),
                (T0 + 20_000, 3.0),
                (T0 + 30_000, 4.0),
                (T0 + 40_020, 5.0)
            ]
        );
    }

    #[test]
    fn duplicates_are_counted_and_harmless_conflicts_rejected() {
        let mut h = head(0);
        let b = batch(
            "a",
            &[
                (T0, 1.0),
                (T0 + 10_000, 2.0),
                (T0 + 20_000, 3.0),
                (T0 + 30_000, 4.0),
                (T0 + 40_000, 5.0),
                (T0 + 50_000, 6.0),
            ],
        );
        assert_eq!(append(&mut h, &b).accepted, 6);
        // A retried batch stores nothing and counts duplicates, even across sealed chunks.
        let r = append(&mut h, &b);
        assert_eq!((r.accepted, r.duplicates), (0, 6));
        let r = append(
            &mut h,
            &batch("a", &[(T0 + 50_000, 7.0), (T0 + 10_000, 9.0)]),
        );
        assert_eq!((r.accepted, r.conflicting), (0, 2));
        let r = append(&mut h, &batch("a", &[(T0 + 5_000, 1.5)]));
        assert_eq!((r.accepted, r.out_of_order), (0, 1));
        assert_eq!(all(&h).len(), 6);
    }

    #[test]
    fn out_of_order_within_window_is_merged_in_order() {
        let mut h = head(60_000);
        append(&mut h, &batch("a", &[(T0, 1.0), (T0 + 20_000, 3.0)]));
        let r = append(
            &mut h,
            &batch("a", &[(T0 + 10_000, 2.0), (T0 - 100_000, 0.0)]),
        );
        assert_eq!((r.accepted, r.out_of_order), (1, 1));
        assert_eq!(
            all(&h),
            vec![(T0, 1.0), (T0 + 10_000, 2.0), (T0 + 20_000, 3.0)]
        );
        let r = append(&mut h, &batch("a", &[(T0 + 10_000, 2.0)]));
        assert_eq!(r.duplicates, 1);
    }

    #[test]
    fn cut_moves_old_chunks_out_and_keeps_the_rest() {
        let mut h = head(0);
        let block = 7_200_000;
        let start = (T0 / block) * block;
        let samples: Vec<(i64, f64)> = (0..1000).map(|i| (start + i * 10_000, i as f64)).collect();
        append(&mut h, &batch("a", &samples));
        append(&mut h, &batch("b", &samples[..10]));
        let boundary = start + block;
        let cut = h.collect_before(boundary);
        let n: usize = cut
            .iter()
            .flat_map(|(_, c)| c)
            .map(|c| XorIter::new(&c.bytes).count())
            .sum();
        assert_eq!(n, 720 + 10);
        assert!(cut.iter().flat_map(|(_, c)| c).all(|c| c.max_t < boundary));
        h.truncate_before(boundary);
        assert_eq!(
            h.num_series(),
            1,
            "series b has nothing left and is dropped"
        );
        assert_eq!(h.num_samples(), 280);
        assert_eq!(all(&h).first().unwrap().0, boundary);
        let r = append(&mut h, &batch("b", &[(start + 100, 1.0)]));
        assert_eq!(r.too_old, 1);
    }
}
