//! A seeded generator of labelled container-metric series, for scoring detectors
//! (reference notes §5.5). Same seed, same data, on every machine.
//!
//! Every series has a level (log-uniform over three decades), a daily cycle of random amplitude
//! (none for a quarter of them) with a second harmonic, optional organic growth, and noise of
//! 1–5 % of the level, Gaussian or (for a quarter) heavy-tailed Student-t with 3 degrees of
//! freedom scaled to the same standard deviation. Values stay ≥ 0. Anomalies are injected after
//! the history period, sized in units of the noise σ:
//!
//! * spike: 1–3 points at ±6–12 σ (80 % upwards); window = the spike;
//! * level shift: ±6–12 σ from then on; window = its first hour;
//! * drift: a ramp over 2–8 h to ±8–15 σ that then stays; window = the ramp;
//! * control: nothing (the false-alarm budget).
//!
//! Groups ("hosts" of one service) share one pattern with member offsets of ±5 % and their own
//! noise. In a diverging group one member moves 30–100 % of the level away from its peers (a
//! step, or a ramp of up to 2 h); in a control group all members spike together for 10–30
//! minutes, which a host comparison must not report.

use std::f64::consts::TAU;

use super::Sample;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// An injected offset as a function of time.
type Offset = Box<dyn Fn(i64) -> f64>;

/// Size and seed of a generated corpus.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    /// Seed of the random generator.
    pub seed: u64,
    /// Time between samples, in milliseconds.
    pub step_ms: i64,
    /// Total length of each series, in days.
    pub days: u32,
    /// Leading days with no anomaly (history for the detectors to learn from).
    pub history_days: u32,
    /// Series per anomaly kind (spike, level shift, drift).
    pub series_per_kind: usize,
    /// Anomaly-free series.
    pub controls: usize,
    /// Groups of each kind (diverging, group-wide spike).
    pub groups_per_kind: usize,
    /// Members per group.
    pub group_size: usize,
    /// First timestamp, in milliseconds (midnight UTC).
    pub start_ms: i64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 8,
            step_ms: 60_000,
            days: 10,
            history_days: 4,
            series_per_kind: 40,
            controls: 80,
            groups_per_kind: 20,
            group_size: 8,
            start_ms: 1_767_571_200_000, // 2026-01-05T00:00:00Z
        }
    }
}

impl SynthConfig {
    /// End of the history period (first instant anomalies may occur).
    pub fn history_end_ms(&self) -> i64 {
        self.start_ms + i64::from(self.history_days) * DAY_MS
    }

    /// Timestamp of the last sample.
    pub fn end_ms(&self) -> i64 {
        self.start_ms + i64::from(self.days) * DAY_MS - self.step_ms
    }

    fn timestamps(&self) -> impl Iterator<Item = i64> + use<> {
        let (start, step, end) = (self.start_ms, self.step_ms, self.end_ms());
        (0..)
            .map(move |i| start + i * step)
            .take_while(move |t| *t <= end)
    }
}

/// What was injected into a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A short spike or dip.
    Spike,
    /// A persistent step.
    LevelShift,
    /// A slow ramp that then stays.
    Drift,
    /// Nothing.
    Control,
}

impl Kind {
    /// Lower-case name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Spike => "spike",
            Kind::LevelShift => "level shift",
            Kind::Drift => "drift",
            Kind::Control => "control",
        }
    }
}

/// One labelled series.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledSeries {
    /// Unique name.
    pub name: String,
    /// What was injected.
    pub kind: Kind,
    /// The samples, in time order.
    pub samples: Vec<Sample>,
    /// Labelled anomaly windows `[start, end]` (ms, inclusive).
    pub windows: Vec<(i64, i64)>,
    /// Whether the noise is heavy-tailed (Student-t, 3 degrees of freedom) rather than Gaussian.
    pub heavy_tailed: bool,
}

/// What happens in a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupKind {
    /// One member moves away from its peers.
    HostDiverges,
    /// Every member spikes at once (must not be reported as a host problem).
    GroupWideSpike,
}

/// A labelled group of hosts.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledGroup {
    /// Unique name.
    pub name: String,
    /// What happens in it.
    pub kind: GroupKind,
    /// Each member's samples (all on the same timestamps).
    pub members: Vec<Vec<Sample>>,
    /// The diverging member's index and its anomaly window `[start, end]`.
    pub diverging: Option<(usize, (i64, i64))>,
    /// When the group-wide spike happens (for the control kind).
    pub group_spike: Option<(i64, i64)>,
}

/// A normal-pattern generator: level, daily cycle, growth, noise.
#[derive(Clone, Debug)]
struct Pattern {
    level: f64,
    amplitude: f64,
    phase: f64,
    second: f64,
    growth_per_day: f64,
    noise: f64,
    heavy_tailed: bool,
}

impl Pattern {
    fn random(rng: &mut fastrand::Rng) -> Pattern {
        let level = 10f64.powf(rng.f64() * 3.0);
        let amplitude = if rng.f64() < 0.25 {
            0.0
        } else {
            0.1 + 0.5 * rng.f64()
        };
        Pattern {
            level,
            amplitude,
            phase: TAU * rng.f64(),
            second: 0.3 * rng.f64(),
            growth_per_day: if rng.f64() < 0.2 {
                0.03 * rng.f64()
            } else {
                0.0
            },
            noise: level * (0.01 + 0.04 * rng.f64()),
            heavy_tailed: rng.f64() < 0.25,
        }
    }

    /// Noise-free value at `t_ms` (days since `start_ms`).
    fn mean(&self, start_ms: i64, t_ms: i64) -> f64 {
        let days = (t_ms - start_ms) as f64 / DAY_MS as f64;
        let cycle = (TAU * days + self.phase).sin() + self.second * (2.0 * TAU * days).sin();
        self.level * (1.0 + self.growth_per_day * days + self.amplitude * cycle)
    }

    fn noise(&self, rng: &mut fastrand::Rng) -> f64 {
        let z = if self.heavy_tailed {
            // Student-t with 3 degrees of freedom, scaled to unit variance (its variance is 3).
            let chi2: f64 = (0..3).map(|_| gaussian(rng).powi(2)).sum();
            gaussian(rng) / (chi2 / 3.0).sqrt() / 3f64.sqrt()
        } else {
            gaussian(rng)
        };
        self.noise * z
    }
}

/// A standard normal variate (Box–Muller).
fn gaussian(rng: &mut fastrand::Rng) -> f64 {
    let u1 = 1.0 - rng.f64(); // (0, 1]
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
}

fn uniform(rng: &mut fastrand::Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.f64()
}

fn sign(rng: &mut fastrand::Rng, p_up: f64) -> f64 {
    if rng.f64() < p_up { 1.0 } else { -1.0 }
}

/// A random onset, on a sample, between 6 h after the history and 12 h before the end.
fn onset(cfg: &SynthConfig, rng: &mut fastrand::Rng) -> i64 {
    let lo = cfg.history_end_ms() + 6 * HOUR_MS;
    let hi = cfg.end_ms() - 12 * HOUR_MS;
    let steps = ((hi - lo) / cfg.step_ms).max(1);
    lo + rng.i64(0..steps) * cfg.step_ms
}

/// The labelled single series: `series_per_kind` of each anomaly kind, then the controls.
pub fn series(cfg: &SynthConfig) -> Vec<LabelledSeries> {
    let mut rng = fastrand::Rng::with_seed(cfg.seed);
    let mut out = Vec::new();
    let kinds = [Kind::Spike, Kind::LevelShift, Kind::Drift];
    let plan = kinds
        .iter()
        .flat_map(|k| std::iter::repeat_n(*k, cfg.series_per_kind))
        .chain(std::iter::repeat_n(Kind::Control, cfg.controls));
    for (i, kind) in plan.enumerate() {
        let p = Pattern::random(&mut rng);
        let s = onset(cfg, &mut rng);
        let sigma = p.noise;
        // The injected offset as a function of time, and the label window.
        let (window, offset): (Option<(i64, i64)>, Offset) = match kind {
            Kind::Spike => {
                let len = rng.i64(1..=3);
                let m = sign(&mut rng, 0.8) * uniform(&mut rng, 6.0, 12.0) * sigma;
                let e = s + (len - 1) * cfg.step_ms;
                (
                    Some((s, e)),
                    Box::new(move |t| if t >= s && t <= e { m } else { 0.0 }),
                )
            }
            Kind::LevelShift => {
                let m = sign(&mut rng, 0.5) * uniform(&mut rng, 6.0, 12.0) * sigma;
                (
                    Some((s, s + HOUR_MS)),
                    Box::new(move |t| if t >= s { m } else { 0.0 }),
                )
            }
            Kind::Drift => {
                let m = sign(&mut rng, 0.5) * uniform(&mut rng, 8.0, 15.0) * sigma;
                let d = rng.i64(2 * HOUR_MS..=8 * HOUR_MS);
                let f = move |t: i64| {
                    if t < s {
                        0.0
                    } else {
                        m * (((t - s) as f64) / d as f64).min(1.0)
                    }
                };
                (Some((s, s + d)), Box::new(f))
            }
            Kind::Control => (None, Box::new(|_| 0.0)),
        };
        let samples = cfg
            .timestamps()
            .map(|t| {
                (
                    t,
                    (p.mean(cfg.start_ms, t) + offset(t) + p.noise(&mut rng)).max(0.0),
                )
            })
            .collect();
        out.push(LabelledSeries {
            name: format!("{}-{i}", kind.name().replace(' ', "_")),
            kind,
            samples,
            windows: window.into_iter().collect(),
            heavy_tailed: p.heavy_tailed,
        });
    }
    out
}

/// The labelled groups: `groups_per_kind` diverging groups, then as many group-wide spikes.
pub fn groups(cfg: &SynthConfig) -> Vec<LabelledGroup> {
    let mut rng = fastrand::Rng::with_seed(cfg.seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    let plan = std::iter::repeat_n(GroupKind::HostDiverges, cfg.groups_per_kind).chain(
        std::iter::repeat_n(GroupKind::GroupWideSpike, cfg.groups_per_kind),
    );
    for (g, kind) in plan.enumerate() {
        let p = Pattern::random(&mut rng);
        let s = onset(cfg, &mut rng);
        let offsets: Vec<f64> = (0..cfg.group_size)
            .map(|_| uniform(&mut rng, -0.05, 0.05))
            .collect();
        let mut diverging = None;
        let mut group_spike = None;
        let offset: Box<dyn Fn(usize, i64) -> f64> = match kind {
            GroupKind::HostDiverges => {
                let who = rng.usize(0..cfg.group_size);
                let m = sign(&mut rng, 0.7) * uniform(&mut rng, 0.3, 1.0) * p.level;
                let ramp = if rng.bool() {
                    0
                } else {
                    rng.i64(0..=2 * HOUR_MS)
                };
                diverging = Some((who, (s, s + ramp)));
                Box::new(move |i, t| {
                    if i != who || t < s {
                        0.0
                    } else if ramp == 0 {
                        m
                    } else {
                        m * (((t - s) as f64) / ramp as f64).min(1.0)
                    }
                })
            }
            GroupKind::GroupWideSpike => {
                let d = rng.i64(10..=30) * 60_000;
                let m = uniform(&mut rng, 0.5, 1.0) * p.level;
                group_spike = Some((s, s + d));
                Box::new(move |_, t| if t >= s && t <= s + d { m } else { 0.0 })
            }
        };
        let members = (0..cfg.group_size)
            .map(|i| {
                cfg.timestamps()
                    .map(|t| {
                        let base = p.mean(cfg.start_ms, t) * (1.0 + offsets[i]);
                        (t, (base + offset(i, t) + p.noise(&mut rng)).max(0.0))
                    })
                    .collect()
            })
            .collect();
        out.push(LabelledGroup {
            name: format!("group-{g}"),
            kind,
            members,
            diverging,
            group_spike,
        });
    }
    out
}
