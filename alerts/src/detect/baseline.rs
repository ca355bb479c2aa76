//! Baseline detection: a band per series learned from its own history.
//!
//! The model ([`Baseline`]) has two parts, as recommended in the reference notes (§5.2):
//!
//! * **Seasonal slots.** The season (a day or a week) is cut into slots (30 minutes by default).
//!   Every time the series passes through a slot, the median and noise of the values seen there
//!   are kept; each slot remembers its last [`BaselineConfig::seasons_kept`] passes. The slot's
//!   reference is the median of those medians, its spread combines the typical within-slot
//!   noise (from successive differences, so a trend inside the slot does not count as noise)
//!   with the MAD of the medians across seasons. References are interpolated between slot centres.
//!   A slot is used once it has seen [`BaselineConfig::seasons_required`] passes.
//! * **A recent robust level.** An exponentially weighted level `ℓ` of the residual from the
//!   seasonal reference (or of the value itself before the seasons are learned: "basic mode"),
//!   and an exponentially weighted absolute deviation. Updates are winsorised at the band edge,
//!   so a spike barely moves them while a level shift pulls them over a few half-lives: the shift
//!   is caught first, then relearned.
//!
//! Expected value = seasonal reference + `ℓ`; scale = max(slot spread, recent deviation, floors);
//! score `z = (x − expected)/scale`. Two scores are watched:
//!
//! * the point score `z`, against [`Baseline::threshold`];
//! * a sustained score: the exponentially weighted mean of the (band-clipped) point scores,
//!   standardised, against [`Baseline::sustained_threshold`]. It catches a moderate deviation
//!   that lasts (a missing daily peak, a drift) which no single point shows.
//!
//! Each threshold is the [`BaselineConfig::sensitivity`], widened by *tail calibration*: at least
//! [`BaselineConfig::tail_factor`] times the [`BaselineConfig::tail_quantile`] of the series' own
//! past scores, so a heavy-tailed series alarms on new extremes rather than on its usual bursts.
//! The calibration restarts when the seasonal slots take over (the scores change meaning).
//! [`BaselineDetector`] adds the warm-up verdict and hysteresis on top.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::robust::{MAD_TO_SIGMA, median};
use super::{Direction, Sample};

/// Ratio of the standard deviation to the mean absolute deviation for normal data (√(π/2)).
const MEAN_ABS_TO_SIGMA: f64 = 1.2533;
/// Most values one slot pass keeps for its median; beyond it the pass is decimated by two.
const MAX_VALUES_PER_PASS: usize = 256;
const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;
/// Weight of one sample in the daily and weekly fit errors of [`Season::Auto`].
const FIT_WEIGHT: f64 = 0.002;
/// Samples compared before [`Season::Auto`] may switch to the weekly slots.
const FIT_MIN_POINTS: u32 = 500;
/// How much better (ratio of mean absolute errors) the other slots must fit to switch.
const FIT_MARGIN: f64 = 0.8;

/// A change between adjacent slots this many times larger than the changes beside it (and
/// than the slots' spreads) is a step, not interpolated.
const STEP_RATIO: f64 = 3.0;
/// How many slots away the interpolation looks for a learned slot on each side.
const MAX_SLOT_SEARCH: i64 = 4;
/// Upper bound of [`BaselineConfig::seasons_kept`] (keeps the per-point work on the stack).
pub const MAX_SEASONS_KEPT: u32 = 16;

/// The seasonality a baseline learns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Season {
    /// No seasonal slots: the band is the recent robust level and deviation only.
    None,
    /// Time-of-day slots (UTC).
    #[default]
    Daily,
    /// Time-of-week slots (UTC, weeks starting Thursday 1970-01-01).
    Weekly,
    /// Time-of-day slots, and time-of-week slots learned alongside that take over once they are
    /// learned if they fit the series clearly better (a weekday/weekend pattern), and hand back
    /// if they stop doing so.
    Auto,
}

impl Season {
    /// Length of one season in milliseconds (the daily one for [`Season::Auto`]), `None` for
    /// [`Season::None`].
    pub fn length_ms(self) -> Option<i64> {
        match self {
            Season::None => None,
            Season::Daily | Season::Auto => Some(DAY_MS),
            Season::Weekly => Some(WEEK_MS),
        }
    }
}

/// When the detector enters and leaves the anomalous state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hysteresis {
    /// Enter when at least this many of the last [`Hysteresis::enter_window`] points are
    /// anomalous.
    pub enter_points: u32,
    /// Number of recent points the entry condition looks at (1 to 64).
    pub enter_window: u32,
    /// Leave after this many consecutive points inside the clear band.
    pub exit_points: u32,
    /// The clear band is `clear_ratio ×` [`Baseline::threshold`] scales wide (below 1: a point between the
    /// clear band and the alert band neither enters nor leaves).
    pub clear_ratio: f64,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Hysteresis {
            enter_points: 1,
            enter_window: 1,
            exit_points: 30,
            clear_ratio: 0.7,
        }
    }
}

/// Configuration of a baseline rule's detector. Plain data; every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    /// Seasonality learned by the slots.
    pub season: Season,
    /// Slot length in milliseconds; must divide the season (default 30 minutes).
    pub slot_ms: i64,
    /// Passes remembered per slot (the "K weeks" of the band), 1 to [`MAX_SEASONS_KEPT`].
    pub seasons_kept: u32,
    /// Passes a slot needs before its reference is used (Datadog asks for 3 seasons).
    pub seasons_required: u32,
    /// Points observed before any verdict other than warming up (basic mode starts then).
    pub warmup_points: u32,
    /// Band half-width in robust standard deviations (the alert fires beyond it).
    pub sensitivity: f64,
    /// Which side of the band alerts.
    pub direction: Direction,
    /// Half-life of the recent level and deviation, in points. Short follows level shifts
    /// quickly ("agile"), long keeps flagging them ("robust").
    pub level_half_life: u32,
    /// Scale floor relative to the expected value (`0.01` = 1 % of it): flat series do not alarm
    /// on noise.
    pub rel_floor: f64,
    /// Absolute scale floor, in the metric's unit.
    pub abs_floor: f64,
    /// Tail calibration: the band is also at least [`BaselineConfig::tail_factor`] times this
    /// quantile of the series' own past absolute scores wide, so a heavy-tailed series alarms on
    /// new extremes rather than on its usual bursts (an extreme-value threshold in spirit).
    pub tail_quantile: f64,
    /// Multiple of the tail quantile; 0 turns tail calibration off.
    pub tail_factor: f64,
    /// Past scores remembered by the tail calibration (older ones fade out by halving).
    pub tail_memory: u32,
    /// Half-life in points of the sustained-deviation score: an exponentially weighted mean of
    /// the (band-clipped) scores, standardised, with its own tail calibration. It catches
    /// moderate deviations that persist (a missing daily peak, a slow drift) which no single
    /// point shows. 0 turns it off.
    pub sustained_half_life: u32,
    /// Consensus with a second, simpler detector: a point score beyond the threshold only counts
    /// when the sample's residual (value − expected) is also outside the range of the residuals
    /// of the last `extreme_horizon` points — a *new* extreme, not the series' usual burst —
    /// and a sustained score beyond its threshold only when it is outside the range of the
    /// sustained scores of that horizon. Until a whole horizon is known the scores alone decide.
    /// 0 turns the gate off.
    pub extreme_horizon: u32,
    /// Entry and exit rules of the anomalous state.
    pub hysteresis: Hysteresis,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            season: Season::Auto,
            slot_ms: 1_800_000,
            seasons_kept: 4,
            seasons_required: 3,
            warmup_points: 60,
            sensitivity: 5.0,
            direction: Direction::Both,
            level_half_life: 30,
            rel_floor: 0.01,
            abs_floor: 1e-9,
            tail_quantile: 0.998,
            tail_factor: 1.0,
            tail_memory: 10_000,
            sustained_half_life: 48,
            extreme_horizon: 3_000,
            hysteresis: Hysteresis::default(),
        }
    }
}

/// A configuration that cannot work, with the field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid baseline configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl BaselineConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: &str| Err(ConfigError(m.to_string()));
        if let Some(season) = self.season.length_ms()
            && (self.slot_ms <= 0 || season % self.slot_ms != 0)
        {
            return err("slot_ms must be positive and divide the season length");
        }
        if self.seasons_kept == 0 || self.seasons_kept > MAX_SEASONS_KEPT {
            return err("seasons_kept must be between 1 and 16");
        }
        if self.seasons_required == 0 || self.seasons_required > self.seasons_kept {
            return err("seasons_required must be between 1 and seasons_kept");
        }
        if !(self.sensitivity.is_finite() && self.sensitivity > 0.0) {
            return err("sensitivity must be a positive number");
        }
        if self.level_half_life == 0 {
            return err("level_half_life must be at least 1 point");
        }
        let floor_ok = |f: f64| f.is_finite() && f >= 0.0;
        if !(floor_ok(self.rel_floor) && floor_ok(self.abs_floor)) {
            return err("rel_floor and abs_floor must be finite and not negative");
        }
        if self.rel_floor == 0.0 && self.abs_floor == 0.0 {
            return err("rel_floor and abs_floor cannot both be 0 (a flat series would alarm)");
        }
        if !(self.tail_quantile > 0.0 && self.tail_quantile < 1.0) {
            return err("tail_quantile must be in (0, 1)");
        }
        if !(self.tail_factor.is_finite() && self.tail_factor >= 0.0) {
            return err("tail_factor must be finite and not negative");
        }
        if self.tail_memory < 100 {
            return err("tail_memory must be at least 100 points");
        }
        if self.extreme_horizon != 0 && self.extreme_horizon < RANGE_BUCKETS as u32 {
            return err("extreme_horizon must be 0 (off) or at least 32 points");
        }
        let h = &self.hysteresis;
        if h.enter_window == 0 || h.enter_window > 64 {
            return err("hysteresis.enter_window must be between 1 and 64");
        }
        if h.enter_points == 0 || h.enter_points > h.enter_window {
            return err("hysteresis.enter_points must be between 1 and enter_window");
        }
        if h.exit_points == 0 {
            return err("hysteresis.exit_points must be at least 1");
        }
        if !(h.clear_ratio > 0.0 && h.clear_ratio <= 1.0) {
            return err("hysteresis.clear_ratio must be in (0, 1]");
        }
        Ok(())
    }
}

/// The expected range at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// Lower edge: `centre - threshold × scale` (see [`Baseline::threshold`]).
    pub lo: f64,
    /// Expected value.
    pub centre: f64,
    /// Upper edge: `centre + threshold × scale`.
    pub hi: f64,
    /// Whether the seasonal slots contributed (false: basic mode, recent level only).
    pub seasonal: bool,
}

/// Buckets of the score histogram: 16 per decade from 0.1 to 1000.
const TAIL_BUCKETS: usize = 64;
const TAIL_PER_DECADE: f64 = 16.0;
const TAIL_LOWEST: f64 = 0.1;
/// Fewest remembered scores above a tail quantile for the histogram to give it directly.
const TAIL_DIRECT_MIN: f64 = 5.0;

/// A log-bucketed histogram of past absolute scores, for tail quantiles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct TailTracker {
    /// Scores per bucket (f32: halving keeps them small, and the state halves).
    counts: Vec<f32>,
    total: f64,
    /// The configured quantile, recomputed on every added score.
    quantile: f64,
}

impl TailTracker {
    fn new() -> TailTracker {
        TailTracker {
            counts: vec![0.0; TAIL_BUCKETS],
            total: 0.0,
            quantile: 0.0,
        }
    }

    fn add(&mut self, abs_score: f64, memory: u32, q: f64) {
        let b = ((abs_score / TAIL_LOWEST).log10() * TAIL_PER_DECADE).floor();
        let b = if b.is_nan() {
            0
        } else {
            b.clamp(0.0, (TAIL_BUCKETS - 1) as f64) as usize
        };
        self.counts[b] += 1.0;
        self.total += 1.0;
        if self.total >= f64::from(memory) {
            self.counts.iter_mut().for_each(|c| *c /= 2.0);
            self.total /= 2.0;
        }
        self.quantile = self.compute_quantile(q, memory);
    }

    /// The `q` quantile of the remembered scores (0 with no scores yet). Read off the histogram
    /// when a memory of `memory` scores can hold it (`1 − q ≥ 1/memory`); a rarer quantile (a
    /// pager-grade 0.99999) is extrapolated along a Pareto tail through the quantiles exceeded
    /// by [`TAIL_DIRECT_MIN`] and by ten times as many of the remembered scores: the log of the
    /// quantile is linear in the log of the exceedance probability. That is right for
    /// power-law tails (Student-t, bursty counts) and errs high for light ones, where the
    /// `sensitivity` floor rules anyway.
    fn compute_quantile(&self, q: f64, memory: u32) -> f64 {
        if self.total == 0.0 {
            return 0.0;
        }
        let p = 1.0 - q;
        let pb = TAIL_DIRECT_MIN / self.total;
        let pa = 10.0 * pb;
        if p * f64::from(memory) >= 1.0 || pa >= 0.5 {
            return self.histogram_quantile(p);
        }
        let (qa, qb) = (self.histogram_quantile(pa), self.histogram_quantile(pb));
        qb * (qb / qa).powf((pb / p).log10())
    }

    /// Upper edge of the bucket holding the quantile exceeded with probability `p`. The walk
    /// starts at the top, where a high quantile is, so it is short.
    fn histogram_quantile(&self, p: f64) -> f64 {
        let mut above = p * self.total;
        for (b, c) in self.counts.iter().enumerate().rev() {
            above -= f64::from(*c);
            if above < 0.0 {
                return TAIL_LOWEST * 10f64.powf((b + 1) as f64 / TAIL_PER_DECADE);
            }
        }
        TAIL_LOWEST
    }
}

/// Buckets of the residual range tracker.
const RANGE_BUCKETS: usize = 32;

/// Minimum and maximum of the residuals of the last `horizon` points, kept as the extremes of
/// [`RANGE_BUCKETS`] consecutive runs of points (so the horizon is exact to one bucket, in
/// 256 bytes whatever its length).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct RangeTracker {
    /// `(min, max)` of each completed bucket, a ring of at most [`RANGE_BUCKETS`].
    done: Vec<(f32, f32)>,
    /// Next ring position to overwrite once the ring is full.
    head: u8,
    /// `(min, max)` over `done` (refreshed when a bucket completes).
    done_range: (f32, f32),
    /// `(min, max)` of the bucket being filled, and its number of points.
    current: (f32, f32),
    filled: u32,
}

impl RangeTracker {
    /// Whether `x` lies outside every residual of the horizon; `None` until a whole horizon has
    /// been seen (then nobody can tell a usual burst from a new one).
    fn is_new_extreme(&self, x: f64) -> Option<bool> {
        if self.done.len() < RANGE_BUCKETS {
            return None;
        }
        let (mut lo, mut hi) = self.done_range;
        if self.filled > 0 {
            lo = lo.min(self.current.0);
            hi = hi.max(self.current.1);
        }
        Some(x > f64::from(hi) || x < f64::from(lo))
    }

    fn add(&mut self, x: f64, horizon: u32) {
        let per_bucket = horizon.div_ceil(RANGE_BUCKETS as u32).max(1);
        let x = x as f32;
        self.current = if self.filled == 0 {
            (x, x)
        } else {
            (self.current.0.min(x), self.current.1.max(x))
        };
        self.filled += 1;
        if self.filled >= per_bucket {
            if self.done.len() < RANGE_BUCKETS {
                self.done.push(self.current);
            } else {
                self.done[usize::from(self.head)] = self.current;
                self.head = ((usize::from(self.head) + 1) % RANGE_BUCKETS) as u8;
            }
            self.filled = 0;
            self.done_range = self
                .done
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &(a, b)| {
                    (lo.min(a), hi.max(b))
                });
        }
    }
}

/// The passes remembered for every slot of one season, in flat arrays: no allocation per slot,
/// 8 bytes per remembered pass plus 10 per slot (a `VecDeque` per slot cost about 4 times that).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct SlotSet {
    /// Passes remembered per slot ([`BaselineConfig::seasons_kept`]).
    kept: u8,
    /// Median of each remembered pass; slot `j` owns `j × kept ..(j + 1) × kept`, a ring.
    medians: Vec<f32>,
    /// Noise scale of each remembered pass (median absolute successive difference / √2),
    /// same layout.
    noise: Vec<f32>,
    /// Passes remembered per slot (at most `kept`).
    count: Vec<u8>,
    /// Ring position the next pass of each slot is written to.
    next: Vec<u8>,
    /// `(reference, spread)` per slot, refreshed when a pass is added; meaningful once the slot
    /// has [`BaselineConfig::seasons_required`] passes.
    summary: Vec<(f32, f32)>,
}

impl SlotSet {
    fn new(slots: usize, kept: u32) -> SlotSet {
        let kept = kept.min(MAX_SEASONS_KEPT) as u8;
        let cells = slots * usize::from(kept);
        SlotSet {
            kept,
            medians: vec![0.0; cells],
            noise: vec![0.0; cells],
            count: vec![0; slots],
            next: vec![0; slots],
            summary: vec![(0.0, 0.0); slots],
        }
    }

    fn len(&self) -> usize {
        self.count.len()
    }

    fn is_empty(&self) -> bool {
        self.count.is_empty()
    }

    /// `(reference, spread)` of slot `j` once it has `required` passes.
    fn summary(&self, j: usize, required: u32) -> Option<(f64, f64)> {
        (u32::from(self.count[j]) >= required)
            .then(|| (f64::from(self.summary[j].0), f64::from(self.summary[j].1)))
    }

    /// Remembers one pass of slot `j` (forgetting its oldest when `kept` are known).
    fn push(&mut self, j: usize, median_value: f64, noise: f64) {
        let kept = usize::from(self.kept);
        let at = j * kept + usize::from(self.next[j]);
        // Kept as f32: 7 significant digits are plenty for a band, and the state halves.
        self.medians[at] = median_value as f32;
        self.noise[at] = noise as f32;
        self.next[j] = ((usize::from(self.next[j]) + 1) % kept) as u8;
        self.count[j] = (self.count[j] + 1).min(self.kept);
        let n = usize::from(self.count[j]);
        // The ring is filled from its start, so the first `n` cells are the remembered passes.
        let meds = &self.medians[j * kept..j * kept + n];
        let noises = &self.noise[j * kept..j * kept + n];
        let mut buf = [0.0; MAX_SEASONS_KEPT as usize];
        let b = &mut buf[..n];
        for (d, s) in b.iter_mut().zip(meds) {
            *d = f64::from(*s);
        }
        let reference = median(b).unwrap_or(0.0);
        for (d, s) in b.iter_mut().zip(meds) {
            *d = (f64::from(*s) - reference).abs();
        }
        let between = median(b).unwrap_or(0.0);
        for (d, s) in b.iter_mut().zip(noises) {
            *d = f64::from(*s);
        }
        let within = median(b).unwrap_or(0.0);
        self.summary[j] = (
            reference as f32,
            (MAD_TO_SIGMA * within.hypot(between)) as f32,
        );
    }

    /// Heap bytes held.
    fn heap_bytes(&self) -> usize {
        (self.medians.capacity() + self.noise.capacity()) * 4
            + self.count.capacity()
            + self.next.capacity()
            + self.summary.capacity() * 8
    }
}

/// Values of the slot pass in progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Pass {
    /// Absolute slot number (`t_ms / slot_ms`).
    index: i64,
    values: Vec<f32>,
    /// Every `stride`-th value is kept (grows when the pass is decimated).
    stride: u32,
    seen: u32,
}

/// Expected value and scale at one instant.
#[derive(Clone, Copy, Debug)]
struct Expectation {
    centre: f64,
    scale: f64,
    seasonal: bool,
}

/// A learned baseline for one series. Feed it every sample in time order with
/// [`Baseline::update`]; ask it for the band at any time with [`Baseline::band`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    cfg: BaselineConfig,
    slots: SlotSet,
    /// Time-of-week slots learned alongside the daily ones ([`Season::Auto`] only).
    weekly: SlotSet,
    /// Whether the weekly slots are the ones in use ([`Season::Auto`]).
    weekly_active: bool,
    /// Exponentially weighted mean absolute error of the daily and the weekly references.
    fit: (f64, f64),
    fit_points: u32,
    pass: Option<Pass>,
    /// Recent level: of the residual from the seasonal reference when `seasonal`, else of the
    /// value itself.
    level: f64,
    /// Exponentially weighted mean absolute deviation from the expected value.
    deviation: f64,
    seasonal: bool,
    /// Seasonal reference used at the last update (to leave seasonal mode continuously).
    last_reference: f64,
    points: u64,
    last_ms: Option<i64>,
    tail: TailTracker,
    /// Exponentially weighted mean of the clipped scores (the sustained-deviation channel).
    sustained: f64,
    sustained_tail: TailTracker,
    /// Range of the recent residuals, for the new-extreme gate.
    #[serde(default)]
    range: RangeTracker,
    /// Range of the recent sustained scores, for the same gate on the sustained channel.
    #[serde(default)]
    sustained_range: RangeTracker,
}

/// Scores of one learned sample.
#[derive(Clone, Copy, Debug)]
struct StepScores {
    point: f64,
    sustained: Option<f64>,
    /// Whether the residual is a new extreme (`None`: gate off or not enough history).
    new_extreme: Option<bool>,
    /// Whether the sustained score is a new extreme of its own recent range.
    sustained_new_extreme: Option<bool>,
}

impl Baseline {
    /// An empty baseline (it warms up on the samples given to [`Baseline::update`]).
    pub fn new(cfg: BaselineConfig) -> Result<Baseline, ConfigError> {
        cfg.validate()?;
        let slots = match cfg.season.length_ms() {
            Some(season) => SlotSet::new((season / cfg.slot_ms) as usize, cfg.seasons_kept),
            None => SlotSet::default(),
        };
        let weekly = match cfg.season {
            Season::Auto => SlotSet::new((WEEK_MS / cfg.slot_ms) as usize, cfg.seasons_kept),
            _ => SlotSet::default(),
        };
        Ok(Baseline {
            cfg,
            slots,
            weekly,
            weekly_active: false,
            fit: (0.0, 0.0),
            fit_points: 0,
            pass: None,
            level: 0.0,
            deviation: 0.0,
            seasonal: false,
            last_reference: 0.0,
            points: 0,
            last_ms: None,
            tail: TailTracker::new(),
            sustained: 0.0,
            sustained_tail: TailTracker::new(),
            range: RangeTracker::default(),
            sustained_range: RangeTracker::default(),
        })
    }

    /// A baseline learned from `history` (samples in time order, e.g. a range query over the last
    /// weeks). Out-of-order and non-finite samples are skipped.
    pub fn learn(history: &[Sample], cfg: BaselineConfig) -> Result<Baseline, ConfigError> {
        let mut b = Baseline::new(cfg)?;
        for &(t, v) in history {
            b.update(t, v);
        }
        Ok(b)
    }

    /// The configuration this baseline was built with.
    pub fn config(&self) -> &BaselineConfig {
        &self.cfg
    }

    /// Number of samples learned so far.
    pub fn points(&self) -> u64 {
        self.points
    }

    /// Timestamp of the last sample learned.
    pub fn last_ms(&self) -> Option<i64> {
        self.last_ms
    }

    /// Bytes this baseline occupies in memory (the struct and what it owns on the heap): the
    /// per-series cost of a baseline rule.
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Baseline>()
            + self.slots.heap_bytes()
            + self.weekly.heap_bytes()
            + self.pass.as_ref().map_or(0, |p| p.values.capacity() * 4)
            + (self.tail.counts.capacity() + self.sustained_tail.counts.capacity()) * 4
            + (self.range.done.capacity() + self.sustained_range.done.capacity()) * 8
    }

    /// Whether the warm-up is over (bands and scores are available).
    pub fn is_warm(&self) -> bool {
        self.points >= u64::from(self.cfg.warmup_points.max(2))
    }

    /// The expected range at `t_ms`; `None` during warm-up.
    pub fn band(&self, t_ms: i64) -> Option<Band> {
        let e = self.expectation(t_ms)?;
        let half = self.threshold() * e.scale;
        Some(Band {
            lo: e.centre - half,
            centre: e.centre,
            hi: e.centre + half,
            seasonal: e.seasonal,
        })
    }

    /// Band half-width in scales: the sensitivity, or the calibrated tail of past scores when
    /// that is wider.
    pub fn threshold(&self) -> f64 {
        let tail = self.cfg.tail_factor * self.tail.quantile;
        self.cfg.sensitivity.max(tail)
    }

    /// Threshold of the sustained-deviation score: the sensitivity, or its calibrated tail.
    pub fn sustained_threshold(&self) -> f64 {
        let tail = self.cfg.tail_factor * self.sustained_tail.quantile;
        self.cfg.sensitivity.max(tail)
    }

    /// Signed sustained-deviation score if `value` arrived at `t_ms`: the exponentially weighted
    /// mean of the scores (each clipped to the band), divided by its standard deviation for
    /// independent unit scores. `None` during warm-up or when turned off.
    pub fn sustained_score(&self, t_ms: i64, value: f64) -> Option<f64> {
        self.sustained_from(self.score(t_ms, value)?)
    }

    fn sustained_from(&self, z: f64) -> Option<f64> {
        let (alpha, norm) = self.sustained_weights()?;
        let limit = self.threshold();
        Some(((1.0 - alpha) * self.sustained + alpha * z.clamp(-limit, limit)) / norm)
    }

    fn sustained_weights(&self) -> Option<(f64, f64)> {
        if self.cfg.sustained_half_life == 0 {
            return None;
        }
        let alpha = 1.0 - 0.5f64.powf(1.0 / f64::from(self.cfg.sustained_half_life));
        Some((alpha, (alpha / (2.0 - alpha)).sqrt()))
    }

    /// Signed robust score of `value` at `t_ms`: distance from the expected value in scales
    /// (positive above). `None` during warm-up.
    pub fn score(&self, t_ms: i64, value: f64) -> Option<f64> {
        let e = self.expectation(t_ms)?;
        Some((value - e.centre) / e.scale)
    }

    /// Learns one sample. Samples not after the last one, and non-finite values, are ignored.
    /// Values beyond the band are winsorised to its edge first, so an outlier moves the model
    /// by at most one band width times the update weight.
    pub fn update(&mut self, t_ms: i64, value: f64) {
        self.step(t_ms, value, false);
    }

    /// Learns one sample and returns its point and sustained scores as they were before it was
    /// learned (`None` when ignored or warming up). When the detector is `anomalous`, the scores
    /// enter the tail calibration capped at the thresholds.
    fn step(&mut self, t_ms: i64, value: f64, anomalous: bool) -> Option<StepScores> {
        if !value.is_finite() || self.last_ms.is_some_and(|last| t_ms <= last) {
            return None;
        }
        let warm = self.is_warm();
        self.choose_slots(t_ms, value);
        let reference = self.reference(t_ms);
        let scores = if warm {
            let e = self.expectation_at(reference);
            let z = (value - e.centre) / e.scale;
            let zs = self.sustained_from(z);
            let (q, memory) = (self.cfg.tail_quantile, self.cfg.tail_memory);
            if let (Some(zs), Some((_, norm))) = (zs, self.sustained_weights()) {
                self.sustained = zs * norm;
                let cap = if anomalous {
                    self.sustained_threshold()
                } else {
                    f64::INFINITY
                };
                self.sustained_tail.add(zs.abs().min(cap), memory, q);
            }
            let cap = if anomalous {
                self.threshold()
            } else {
                f64::INFINITY
            };
            self.tail.add(z.abs().min(cap), memory, q);
            let horizon = self.cfg.extreme_horizon;
            let (mut new_extreme, mut sustained_new_extreme) = (None, None);
            if horizon > 0 {
                let residual = value - e.centre;
                new_extreme = self.range.is_new_extreme(residual);
                self.range.add(residual, horizon);
                if let Some(zs) = zs {
                    sustained_new_extreme = self.sustained_range.is_new_extreme(zs);
                    self.sustained_range.add(zs, horizon);
                }
            }
            Some(StepScores {
                point: z,
                sustained: zs,
                new_extreme,
                sustained_new_extreme,
            })
        } else {
            None
        };
        self.points += 1;
        self.last_ms = Some(t_ms);
        self.switch_mode(reference.map(|r| r.0));
        let b = reference.map_or(0.0, |r| r.0);
        let learned = if self.points == 1 {
            self.level = value - b;
            self.deviation = 0.0;
            value
        } else {
            let half_life = f64::from(self.cfg.level_half_life);
            // A running mean at first, then the exponential weight of the half-life.
            let alpha = (1.0 - 0.5f64.powf(1.0 / half_life)).max(1.0 / self.points as f64);
            let centre = b + self.level;
            let error = value - centre;
            let error = if warm {
                let limit = self.threshold() * self.scale(reference.map(|r| r.1), centre);
                error.clamp(-limit, limit)
            } else {
                error
            };
            self.level += alpha * error;
            self.deviation += alpha * (error.abs() - self.deviation);
            centre + error
        };
        if let Some(b) = reference {
            self.last_reference = b.0;
        }
        self.learn_slot(t_ms, learned);
        scores
    }

    /// [`Season::Auto`]: tracks how well the daily and the weekly references fit and switches to
    /// the one that fits clearly better, without a jump in the expected value.
    fn choose_slots(&mut self, t_ms: i64, value: f64) {
        if self.weekly.is_empty() {
            return;
        }
        let (slot_ms, required) = (self.cfg.slot_ms, self.cfg.seasons_required);
        // Only instants both references interpolate are compared: while a season is still being
        // learned, the newest learned slot is held across the slots not yet learned, and its
        // error there says how far learning has got, not how well that season fits.
        let (Some(daily), Some(weekly)) = (
            reference_in(&self.slots, DAY_MS, slot_ms, required, t_ms, false),
            reference_in(&self.weekly, WEEK_MS, slot_ms, required, t_ms, false),
        ) else {
            return;
        };
        self.fit.0 += FIT_WEIGHT * ((value - daily.0).abs() - self.fit.0);
        self.fit.1 += FIT_WEIGHT * ((value - weekly.0).abs() - self.fit.1);
        self.fit_points = self.fit_points.saturating_add(1);
        if self.fit_points < FIT_MIN_POINTS {
            return;
        }
        let switch = if self.weekly_active {
            self.fit.0 < FIT_MARGIN * self.fit.1
        } else {
            self.fit.1 < FIT_MARGIN * self.fit.0
        };
        if !switch {
            return;
        }
        let (from, to) = if self.weekly_active {
            (weekly.0, daily.0)
        } else {
            (daily.0, weekly.0)
        };
        self.weekly_active = !self.weekly_active;
        if self.seasonal {
            self.level += from - to;
            // The scores change meaning with the reference.
            self.tail = TailTracker::new();
            self.sustained_tail = TailTracker::new();
            self.sustained = 0.0;
        }
    }

    /// Leaves or enters seasonal mode without a jump in the expected value.
    fn switch_mode(&mut self, reference: Option<f64>) {
        match (self.seasonal, reference) {
            (false, Some(b)) => {
                self.level -= b;
                self.seasonal = true;
                // Seasonal scores have another distribution than basic-mode ones.
                self.tail = TailTracker::new();
                self.sustained_tail = TailTracker::new();
                self.sustained = 0.0;
            }
            (true, None) => {
                self.level += self.last_reference;
                self.seasonal = false;
            }
            _ => {}
        }
    }

    fn expectation(&self, t_ms: i64) -> Option<Expectation> {
        if !self.is_warm() {
            return None;
        }
        Some(self.expectation_at(self.reference(t_ms)))
    }

    /// Expected value and scale given the seasonal reference at that instant.
    fn expectation_at(&self, reference: Option<(f64, f64)>) -> Expectation {
        let centre = match (self.seasonal, reference) {
            (true, Some((b, _))) => b + self.level,
            (true, None) => self.last_reference + self.level,
            (false, _) => self.level,
        };
        let scale = self.scale(reference.map(|r| r.1), centre);
        Expectation {
            centre,
            scale,
            seasonal: reference.is_some(),
        }
    }

    fn scale(&self, slot_spread: Option<f64>, centre: f64) -> f64 {
        (MEAN_ABS_TO_SIGMA * self.deviation)
            .max(slot_spread.unwrap_or(0.0))
            .max(self.cfg.rel_floor * centre.abs())
            .max(self.cfg.abs_floor)
    }

    /// Seasonal `(reference, spread)` at `t_ms`, interpolated between the two nearest slot
    /// centres; `None` without seasons or before the slots have enough passes.
    fn reference(&self, t_ms: i64) -> Option<(f64, f64)> {
        if self.weekly_active {
            return reference_in(
                &self.weekly,
                WEEK_MS,
                self.cfg.slot_ms,
                self.cfg.seasons_required,
                t_ms,
                true,
            );
        }
        reference_in(
            &self.slots,
            self.cfg.season.length_ms()?,
            self.cfg.slot_ms,
            self.cfg.seasons_required,
            t_ms,
            true,
        )
    }

    fn learn_slot(&mut self, t_ms: i64, value: f64) {
        if self.slots.is_empty() {
            return;
        }
        let index = t_ms.div_euclid(self.cfg.slot_ms);
        if self.pass.as_ref().is_some_and(|p| p.index != index) {
            let done = self.pass.take().expect("checked");
            self.close_pass(done);
        }
        let pass = self.pass.get_or_insert_with(|| Pass {
            index,
            values: Vec::new(),
            stride: 1,
            seen: 0,
        });
        pass.seen += 1;
        if pass.seen.is_multiple_of(pass.stride) {
            pass.values.push(value as f32);
            if pass.values.len() >= MAX_VALUES_PER_PASS {
                let mut i = 0;
                pass.values.retain(|_| {
                    i += 1;
                    i % 2 == 0
                });
                pass.stride *= 2;
            }
        }
    }

    fn close_pass(&mut self, mut pass: Pass) {
        // Noise within the pass from successive differences (median |Δx| / √2), which a trend
        // inside the slot (the rising edge of a daily cycle) does not inflate as a MAD would.
        let mut diffs: Vec<f64> = pass
            .values
            .windows(2)
            .map(|w| f64::from((w[1] - w[0]).abs()) / std::f64::consts::SQRT_2)
            .collect();
        let spread = median(&mut diffs).unwrap_or(0.0);
        let mut values: Vec<f64> = pass.values.drain(..).map(f64::from).collect();
        let Some(m) = median(&mut values) else {
            return;
        };
        for slots in [&mut self.slots, &mut self.weekly] {
            if slots.is_empty() {
                continue;
            }
            let j = pass.index.rem_euclid(slots.len() as i64) as usize;
            slots.push(j, m, spread);
        }
    }
}

/// Seasonal `(reference, spread)` at `t_ms` from `slots` cut from a season of `season_ms`,
/// interpolated between the two nearest learned slot centres. With `one_sided`, a learned slot
/// on one side only (a gap, or the edge of what is learned so far) is held; without it, such an
/// instant has no reference.
fn reference_in(
    slots: &SlotSet,
    season_ms: i64,
    slot_ms: i64,
    required: u32,
    t_ms: i64,
    one_sided: bool,
) -> Option<(f64, f64)> {
    if slots.is_empty() {
        return None;
    }
    let n = slots.len() as i64;
    let pos = t_ms.rem_euclid(season_ms) as f64 / slot_ms as f64 - 0.5;
    let floor = pos.floor();
    let frac = pos - floor;
    // The nearest learned slot at or before the position and the nearest after it (slots
    // without enough passes, e.g. sparse samples or gaps, are skipped up to a limit).
    let find = |start: i64, step: i64| {
        (0..MAX_SLOT_SEARCH).find_map(|k| {
            let j = (start + step * k).rem_euclid(n) as usize;
            slots.summary(j, required).map(|s| (k as f64, s))
        })
    };
    let left = floor as i64;
    match (find(left, -1), find(left + 1, 1)) {
        (Some((kl, a)), Some((kr, b))) => {
            // Distances (in slots) from the position to the two slot centres.
            let (dl, dr) = (frac + kl, 1.0 - frac + kr);
            let w = dl / (dl + dr);
            // A step between the two slots (a square wave, the start of a weekend) is not
            // interpolated: the nearer slot holds. A step is a change much larger than the
            // changes on either side and than the slots' spreads.
            let outer = |j: i64| {
                slots
                    .summary(j.rem_euclid(n) as usize, required)
                    .map(|s| s.0)
            };
            let jl = left - kl as i64;
            let jr = left + 1 + kr as i64;
            let change = (b.0 - a.0).abs();
            let before = outer(jl - 1).map_or(0.0, |p| (a.0 - p).abs());
            let after = outer(jr + 1).map_or(0.0, |q| (q - b.0).abs());
            if change > STEP_RATIO * before.max(after).max(a.1 + b.1) {
                return Some(if w < 0.5 { a } else { b });
            }
            Some((a.0 + (b.0 - a.0) * w, a.1 + (b.1 - a.1) * w))
        }
        (Some((_, a)), None) if one_sided => Some(a),
        (None, Some((_, b))) if one_sided => Some(b),
        _ => None,
    }
}

/// What the detector says about one sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Verdict {
    /// Not enough history yet: no band, never alerts.
    WarmingUp,
    /// Inside the band (or not anomalous for long enough to enter, or leaving).
    Normal {
        /// Signed robust score of the sample.
        score: f64,
    },
    /// In the anomalous state (entered by the hysteresis rule, not yet cleared).
    Anomalous {
        /// Signed robust score of the sample.
        score: f64,
        /// When the anomalous state was entered.
        since_ms: i64,
    },
}

impl Verdict {
    /// Whether this is [`Verdict::Anomalous`].
    pub fn is_anomalous(&self) -> bool {
        matches!(self, Verdict::Anomalous { .. })
    }
}

/// A baseline plus the hysteresis state machine: feed samples with
/// [`BaselineDetector::observe`], get a [`Verdict`] for each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineDetector {
    baseline: Baseline,
    /// Anomalous flags of the last points, newest in bit 0.
    recent: u64,
    anomalous_since: Option<i64>,
    /// Consecutive points inside the clear band while anomalous.
    clear_run: u32,
    last: Verdict,
}

impl BaselineDetector {
    /// A detector with no history (it reports [`Verdict::WarmingUp`] until the warm-up is over).
    pub fn new(cfg: BaselineConfig) -> Result<BaselineDetector, ConfigError> {
        Ok(BaselineDetector::with_baseline(Baseline::new(cfg)?))
    }

    /// A detector whose baseline has learned `history` (see [`Baseline::learn`]).
    pub fn from_history(
        history: &[Sample],
        cfg: BaselineConfig,
    ) -> Result<BaselineDetector, ConfigError> {
        Ok(BaselineDetector::with_baseline(Baseline::learn(
            history, cfg,
        )?))
    }

    /// A detector around an existing baseline, in the normal state.
    pub fn with_baseline(baseline: Baseline) -> BaselineDetector {
        let last = if baseline.is_warm() {
            Verdict::Normal { score: 0.0 }
        } else {
            Verdict::WarmingUp
        };
        BaselineDetector {
            baseline,
            recent: 0,
            anomalous_since: None,
            clear_run: 0,
            last,
        }
    }

    /// The learned baseline (for bands in previews and notifications).
    pub fn baseline(&self) -> &Baseline {
        &self.baseline
    }

    /// The verdict of the last accepted sample.
    pub fn last_verdict(&self) -> Verdict {
        self.last
    }

    /// Scores one sample, advances the hysteresis state machine and learns the sample.
    /// A sample not after the previous one, or not finite, changes nothing and gets the previous
    /// verdict back.
    pub fn observe(&mut self, t_ms: i64, value: f64) -> Verdict {
        if !value.is_finite() || self.baseline.last_ms.is_some_and(|last| t_ms <= last) {
            return self.last;
        }
        // Thresholds as they were before this sample (step() learns it).
        let threshold = self.baseline.threshold();
        let sustained_threshold = self.baseline.sustained_threshold();
        // While anomalous, scores enter the tail calibration capped at the threshold: anomalies
        // do not teach the band that they are normal.
        let anomalous = self.anomalous_since.is_some();
        let Some(scores) = self.baseline.step(t_ms, value, anomalous) else {
            self.last = Verdict::WarmingUp;
            return self.last;
        };
        let (score, sustained) = (scores.point, scores.sustained.unwrap_or(0.0));
        let cfg = &self.baseline.cfg;
        let h = cfg.hysteresis;
        let beyond = |ratio: f64| {
            cfg.direction.exceeds(score, ratio * threshold)
                || cfg
                    .direction
                    .exceeds(sustained, ratio * sustained_threshold)
        };
        // Entry: the point score, if the residual is also a new extreme (the consensus of two
        // detectors: heavy-tailed series burst beyond a calibrated tail several times a day,
        // but rarely beyond everything of the last days), or the sustained score, if it too is
        // beyond its recent range (a slow swing the series makes every few days is not news).
        let hit = (scores.new_extreme != Some(false) && cfg.direction.exceeds(score, threshold))
            || (scores.sustained_new_extreme != Some(false)
                && cfg.direction.exceeds(sustained, sustained_threshold));
        let mask = if h.enter_window >= 64 {
            u64::MAX
        } else {
            (1u64 << h.enter_window) - 1
        };
        self.recent = ((self.recent << 1) | u64::from(hit)) & mask;
        match self.anomalous_since {
            None => {
                if self.recent.count_ones() >= h.enter_points {
                    self.anomalous_since = Some(t_ms);
                    self.clear_run = 0;
                }
            }
            Some(_) => {
                if beyond(h.clear_ratio) {
                    self.clear_run = 0;
                } else {
                    self.clear_run += 1;
                    if self.clear_run >= h.exit_points {
                        self.anomalous_since = None;
                        self.recent = 0;
                    }
                }
            }
        }
        self.last = match self.anomalous_since {
            Some(since_ms) => Verdict::Anomalous { score, since_ms },
            None => Verdict::Normal { score },
        };
        self.last
    }
}
