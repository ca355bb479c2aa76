//! Evaluation of the anomaly detectors: NAB score per category and overall, and event-level
//! precision, recall, latency and false alarms on the seeded container-metric corpus, next to a
//! static threshold and the PromQL z-score rule.
//!
//! `cargo bench -p osprey-alerts --bench detect_eval` (NAB data from `OSPREY_NAB_DIR`, default
//! `../shared/data/nab` next to the repository). `DETECT_EVAL=sweep` prints the parameter sweep
//! used for tuning instead (on the tuning half only).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use osprey_alerts::detect::Sample;
use osprey_alerts::detect::baseline::{BaselineConfig, BaselineDetector};
use osprey_alerts::detect::classic::{PromZScore, StaticThreshold};
use osprey_alerts::detect::eval::{EventStats, run_onsets};
use osprey_alerts::detect::host_comparison::{HostComparisonConfig, HostComparisonDetector};
use osprey_alerts::detect::nab::{self, FileScore};
use osprey_alerts::detect::synth::{self, GroupKind, Kind, SynthConfig};

const HOUR_MS: i64 = 3_600_000;
/// `tail_quantile` of the pager operating point.
const PAGER_TAIL_QUANTILE: f64 = 0.99999;

/// The system allocator, counting the bytes currently allocated: the per-series state figure
/// is measured, not estimated (it includes every allocation and its rounding by the caller's
/// sizes, not the allocator's own overhead).
struct CountingAlloc;

static LIVE_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn live_bytes() -> usize {
    LIVE_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}
/// Detection tolerance after a labelled window ends.
const TOLERANCE_MS: i64 = 30 * 60_000;

struct NabFile {
    category: String,
    name: String,
    samples: Vec<Sample>,
    windows: Vec<nab::Window>,
}

fn nab_dir() -> PathBuf {
    std::env::var_os("OSPREY_NAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/nab"))
}

fn parse_time(s: &str) -> i64 {
    let s = s.trim().trim_matches('"');
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("bad NAB timestamp {s:?}: {e}"))
        .and_utc()
        .timestamp_millis()
}

fn load_nab() -> Vec<NabFile> {
    let dir = nab_dir();
    let labels_path = dir.join("labels/combined_windows.json");
    let labels: BTreeMap<String, Vec<(String, String)>> = serde_json::from_str(
        &std::fs::read_to_string(&labels_path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", labels_path.display())),
    )
    .expect("combined_windows.json");
    let mut files = Vec::new();
    for (key, windows) in labels {
        let path = dir.join("data").join(&key);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // the category left out of this copy
        };
        let samples: Vec<Sample> = text
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (t, v) = l.split_once(',').expect("timestamp,value");
                (parse_time(t), v.trim().parse().expect("value"))
            })
            .collect();
        let ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
        let times: Vec<(i64, i64)> = windows
            .iter()
            .map(|(a, b)| (parse_time(a), parse_time(b)))
            .collect();
        let (category, name) = key.split_once('/').expect("category/name");
        files.push(NabFile {
            category: category.to_string(),
            name: name.to_string(),
            windows: nab::windows_from_times(&ts, &times),
            samples,
        });
    }
    assert!(!files.is_empty(), "no NAB data under {}", dir.display());
    files
}

/// Rows where `detector` starts alerting (NAB counts every flagged row, so an alert is flagged
/// once, at its onset).
fn onset_rows(samples: &[Sample], mut alerting: impl FnMut(i64, f64) -> bool) -> Vec<bool> {
    let mut was = false;
    samples
        .iter()
        .map(|&(t, v)| {
            let now = alerting(t, v);
            let onset = now && !was;
            was = now;
            onset
        })
        .collect()
}

#[derive(Default)]
struct NabTotals {
    raw: FileScore,
    null: f64,
    perfect: f64,
}

impl NabTotals {
    fn add(&mut self, f: &NabFile, detections: &[bool]) {
        let s = nab::score_file(detections, &f.windows, nab::STANDARD);
        let (null, perfect) = nab::null_and_perfect(f.samples.len(), &f.windows, nab::STANDARD);
        self.raw += s;
        self.null += null;
        self.perfect += perfect;
    }
    fn normalised(&self) -> f64 {
        nab::normalised(self.raw.score, self.null, self.perfect)
    }
}

/// NAB detector kinds compared.
#[derive(Clone, Copy)]
enum NabDetector<'a> {
    Baseline(&'a BaselineConfig),
    ZScore {
        for_ms: i64,
    },
    /// Thresholds at the probationary period's range widened by 10 %.
    Static,
}

fn nab_detections(f: &NabFile, d: NabDetector) -> Vec<bool> {
    match d {
        NabDetector::Baseline(cfg) => {
            let mut det = BaselineDetector::new(cfg.clone()).expect("valid config");
            onset_rows(&f.samples, |t, v| det.observe(t, v).is_anomalous())
        }
        NabDetector::ZScore { for_ms } => {
            let mut r = PromZScore::new(HOUR_MS, 3.0, for_ms);
            onset_rows(&f.samples, |t, v| r.observe(t, v))
        }
        NabDetector::Static => {
            let p = nab::probationary_rows(f.samples.len()).max(1);
            let (lo, hi) = range(&f.samples[..p]);
            let mut r =
                StaticThreshold::new(Some(hi + 0.1 * (hi - lo)), Some(lo - 0.1 * (hi - lo)), 0);
            onset_rows(&f.samples, |t, v| r.observe(t, v))
        }
    }
}

fn range(samples: &[Sample]) -> (f64, f64) {
    samples
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
            (lo.min(s.1), hi.max(s.1))
        })
}

/// NAB scores per category and overall for the files selected by `keep`.
fn nab_scores(
    files: &[NabFile],
    d: NabDetector,
    keep: impl Fn(usize) -> bool,
) -> (BTreeMap<String, NabTotals>, NabTotals) {
    let mut per = BTreeMap::<String, NabTotals>::new();
    let mut all = NabTotals::default();
    for (i, f) in files.iter().enumerate() {
        if !keep(i) {
            continue;
        }
        let det = nab_detections(f, d);
        per.entry(f.category.clone()).or_default().add(f, &det);
        all.add(f, &det);
    }
    (per, all)
}

/// Event statistics of one detector on the generated single series, per kind, and per noise
/// type (Gaussian, heavy-tailed).
struct SynthStats {
    per_kind: BTreeMap<Kind, EventStats>,
    per_noise: [EventStats; 2],
}

fn synth_stats(
    cfg: &SynthConfig,
    series: &[synth::LabelledSeries],
    mut make: impl FnMut(&[Sample]) -> Box<dyn FnMut(i64, f64) -> bool>,
) -> SynthStats {
    let history_end = cfg.history_end_ms();
    let split = |s: &[Sample]| s.partition_point(|p| p.0 < history_end);
    let mut out = SynthStats {
        per_kind: BTreeMap::new(),
        per_noise: Default::default(),
    };
    for s in series {
        let cut = split(&s.samples);
        let (history, scored) = s.samples.split_at(cut);
        let det = make(history);
        let onsets = run_onsets(scored, det);
        let (from, to) = (history_end, cfg.end_ms());
        out.per_kind.entry(s.kind).or_default().add_series(
            &onsets,
            &s.windows,
            TOLERANCE_MS,
            from,
            to,
        );
        out.per_noise[usize::from(s.heavy_tailed)].add_series(
            &onsets,
            &s.windows,
            TOLERANCE_MS,
            from,
            to,
        );
    }
    out
}

fn baseline_maker(
    cfg: BaselineConfig,
) -> impl FnMut(&[Sample]) -> Box<dyn FnMut(i64, f64) -> bool> {
    move |history| {
        let mut d = BaselineDetector::from_history(history, cfg.clone()).expect("valid config");
        Box::new(move |t, v| d.observe(t, v).is_anomalous())
    }
}

fn static_maker(history: &[Sample]) -> Box<dyn FnMut(i64, f64) -> bool> {
    let (lo, hi) = range(history);
    let mut r = StaticThreshold::new(Some(hi + 0.1 * (hi - lo)), Some(lo - 0.1 * (hi - lo)), 0);
    Box::new(move |t, v| r.observe(t, v))
}

fn zscore_maker(for_ms: i64) -> impl FnMut(&[Sample]) -> Box<dyn FnMut(i64, f64) -> bool> {
    move |history| {
        let mut r = PromZScore::new(HOUR_MS, 3.0, for_ms);
        // Prime the window with the last hour of history.
        if let Some(last) = history.last() {
            for &(t, v) in history.iter().filter(|s| s.0 > last.0 - HOUR_MS) {
                r.observe(t, v);
            }
        }
        Box::new(move |t, v| r.observe(t, v))
    }
}

fn total(stats: &BTreeMap<Kind, EventStats>) -> EventStats {
    let mut t = EventStats::default();
    for s in stats.values() {
        t.windows += s.windows;
        t.detected += s.detected;
        t.onsets += s.onsets;
        t.false_alarms += s.false_alarms;
        t.latencies_ms.extend(&s.latencies_ms);
        t.series_days += s.series_days;
    }
    t
}

fn minutes(ms: Option<i64>) -> String {
    ms.map_or("-".into(), |m| format!("{:.0}", m as f64 / 60_000.0))
}

fn print_event_row(name: &str, all: &SynthStats) {
    let stats = &all.per_kind;
    let t = total(stats);
    let recall = |k| stats.get(&k).map_or(0.0, |s: &EventStats| s.recall());
    let control_fa = stats
        .get(&Kind::Control)
        .map_or(0.0, |s| s.false_alarms_per_100_series_days());
    println!(
        "| {name} | {:.2} | {:.2} | {:.2} / {:.2} / {:.2} | {} / {} | {:.1} | {:.1} | {:.1} / {:.1} | {:.2} / {:.2} |",
        t.precision(),
        t.recall(),
        recall(Kind::Spike),
        recall(Kind::LevelShift),
        recall(Kind::Drift),
        minutes(t.latency_quantile_ms(0.5)),
        minutes(t.latency_quantile_ms(0.95)),
        t.false_alarms_per_100_series_days(),
        control_fa,
        all.per_noise[0].false_alarms_per_100_series_days(),
        all.per_noise[1].false_alarms_per_100_series_days(),
        all.per_noise[0].recall(),
        all.per_noise[1].recall(),
    );
}

/// Host comparison over the groups: each member's onsets as the window slides tick by tick.
fn host_comparison_stats(
    cfg: &SynthConfig,
    groups: &[synth::LabelledGroup],
    hc: &HostComparisonConfig,
) -> (EventStats, EventStats) {
    let from = cfg.history_end_ms();
    let (mut diverging, mut control) = (EventStats::default(), EventStats::default());
    for g in groups {
        let ticks: Vec<i64> = g.members[0]
            .iter()
            .map(|s| s.0)
            .filter(|t| *t >= from)
            .collect();
        let mut alerting = vec![Vec::with_capacity(ticks.len()); g.members.len()];
        let mut detector = HostComparisonDetector::new(hc.clone());
        for &t in &ticks {
            let views: Vec<(usize, &[Sample])> = g
                .members
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let lo = m.partition_point(|s| s.0 <= t - hc.window_ms);
                    let hi = m.partition_point(|s| s.0 <= t);
                    (i, &m[lo..hi])
                })
                .collect();
            let (_, out) = detector.observe(&views);
            for (i, a) in alerting.iter_mut().enumerate() {
                a.push((t, out.iter().any(|o| o.outlier.member == i)));
            }
        }
        for (i, states) in alerting.into_iter().enumerate() {
            let onsets = osprey_alerts::detect::eval::onsets(states);
            let windows: Vec<(i64, i64)> = g
                .diverging
                .iter()
                .filter(|d| d.0 == i)
                .map(|d| d.1)
                .collect();
            let target = match g.kind {
                GroupKind::HostDiverges => &mut diverging,
                GroupKind::GroupWideSpike => &mut control,
            };
            target.add_series(&onsets, &windows, TOLERANCE_MS, from, cfg.end_ms());
        }
    }
    (diverging, control)
}

/// The baseline detector run on every group member on its own (for comparison).
fn baseline_on_groups(
    cfg: &SynthConfig,
    groups: &[synth::LabelledGroup],
    bc: &BaselineConfig,
) -> (EventStats, EventStats) {
    let from = cfg.history_end_ms();
    let (mut diverging, mut control) = (EventStats::default(), EventStats::default());
    for g in groups {
        for (i, m) in g.members.iter().enumerate() {
            let cut = m.partition_point(|s| s.0 < from);
            let mut d = BaselineDetector::from_history(&m[..cut], bc.clone()).expect("valid");
            let onsets = run_onsets(&m[cut..], |t, v| d.observe(t, v).is_anomalous());
            let windows: Vec<(i64, i64)> = g
                .diverging
                .iter()
                .filter(|d| d.0 == i)
                .map(|d| d.1)
                .collect();
            let target = match g.kind {
                GroupKind::HostDiverges => &mut diverging,
                GroupKind::GroupWideSpike => &mut control,
            };
            target.add_series(&onsets, &windows, TOLERANCE_MS, from, cfg.end_ms());
        }
    }
    (diverging, control)
}

fn print_group_row(name: &str, diverging: &EventStats, control: &EventStats) {
    let mut all = diverging.clone();
    all.onsets += control.onsets;
    all.false_alarms += control.false_alarms;
    all.series_days += control.series_days;
    println!(
        "| {name} | {:.2} | {:.2} | {} / {} | {:.1} | {:.1} |",
        all.precision(),
        all.recall(),
        minutes(all.latency_quantile_ms(0.5)),
        minutes(all.latency_quantile_ms(0.95)),
        diverging.false_alarms_per_100_series_days(),
        control.false_alarms_per_100_series_days(),
    );
}

fn sweep(files: &[NabFile]) {
    let tune = |i: usize| i.is_multiple_of(2);
    let cfg = SynthConfig {
        seed: 1,
        series_per_kind: 20,
        controls: 40,
        ..SynthConfig::default()
    };
    let series = synth::series(&cfg);
    println!("Tuning half: NAB files with an even index; generated corpus seed 1 (100 series).\n");
    println!(
        "| sensitivity | tail factor | sustained half-life | exit points | NAB (tuning half) | gen precision | gen recall | gen FA/100 series-days |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for sensitivity in [3.5, 4.0, 5.0] {
        for tail_factor in [0.9, 1.0, 1.1] {
            for sustained in [0, 24, 48, 96] {
                for exit in [5, 30] {
                    let mut bc = BaselineConfig {
                        sensitivity,
                        tail_factor,
                        sustained_half_life: sustained,
                        ..BaselineConfig::default()
                    };
                    bc.hysteresis.exit_points = exit;
                    let (_, all) = nab_scores(files, NabDetector::Baseline(&bc), tune);
                    let t = total(&synth_stats(&cfg, &series, baseline_maker(bc.clone())).per_kind);
                    rows.push((
                        all.normalised(),
                        sensitivity,
                        tail_factor,
                        sustained,
                        exit,
                        t,
                    ));
                }
            }
        }
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (nab, sensitivity, tail_factor, sustained, exit, t) in rows {
        println!(
            "| {sensitivity} | {tail_factor} | {sustained} | {exit} | {nab:.1} | {:.2} | {:.2} | {:.1} |",
            t.precision(),
            t.recall(),
            t.false_alarms_per_100_series_days()
        );
    }
}

/// The grid searched by the cross-validation: every combination, one configuration for all
/// files of the training categories. `CV_GATE=off` leaves the new-extreme gate out (the
/// detector as it was before the gate, for comparison).
fn cv_grid(base: &BaselineConfig) -> Vec<BaselineConfig> {
    let horizons: &[u32] = if std::env::var("CV_GATE").as_deref() == Ok("off") {
        &[0]
    } else {
        &[0, 2_000, 3_000, 4_000]
    };
    let mut grid = Vec::new();
    for sensitivity in [4.5, 5.0] {
        for tail_quantile in [0.998, 0.999] {
            for &extreme_horizon in horizons {
                for sustained_half_life in [24, 48, 96] {
                    grid.push(BaselineConfig {
                        sensitivity,
                        tail_quantile,
                        extreme_horizon,
                        sustained_half_life,
                        ..base.clone()
                    });
                }
            }
        }
    }
    grid
}

/// Leave-one-category-out cross-validation on NAB: for each category, the grid point that
/// scores best on the other categories is scored on it. Returns the held-out overall score
/// (the held-out raw scores of every category summed, then normalised) after printing each
/// fold.
fn cross_validate(files: &[NabFile], base: &BaselineConfig) -> f64 {
    let grid = cv_grid(base);
    // (raw, null, perfect) per grid point and file.
    let scores: Vec<Vec<(f64, f64, f64)>> = grid
        .iter()
        .map(|cfg| {
            files
                .iter()
                .map(|f| {
                    let det = nab_detections(f, NabDetector::Baseline(cfg));
                    let s = nab::score_file(&det, &f.windows, nab::STANDARD);
                    let (null, perfect) =
                        nab::null_and_perfect(f.samples.len(), &f.windows, nab::STANDARD);
                    (s.score, null, perfect)
                })
                .collect()
        })
        .collect();
    let sum = |g: usize, keep: &dyn Fn(&NabFile) -> bool| {
        files
            .iter()
            .zip(&scores[g])
            .filter(|(f, _)| keep(f))
            .fold((0.0, 0.0, 0.0), |a, (_, s)| {
                (a.0 + s.0, a.1 + s.1, a.2 + s.2)
            })
    };
    let categories: std::collections::BTreeSet<&str> =
        files.iter().map(|f| f.category.as_str()).collect();
    println!(
        "| held-out category | chosen on the others: sensitivity / tail_quantile / extreme_horizon / sustained_half_life | training score | held-out score |"
    );
    println!("|---|---|---|---|");
    let mut held = (0.0, 0.0, 0.0);
    for cat in categories {
        let train = |f: &NabFile| f.category != cat;
        let test = |f: &NabFile| f.category == cat;
        let (best, train_score) = (0..grid.len())
            .map(|g| {
                let (s, n, p) = sum(g, &train);
                (g, nab::normalised(s, n, p))
            })
            .fold((0, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
        let (s, n, p) = sum(best, &test);
        held = (held.0 + s, held.1 + n, held.2 + p);
        let c = &grid[best];
        let held_out = if p > n {
            format!("{:.1}", nab::normalised(s, n, p))
        } else {
            format!("raw {s:.2} (no windows)")
        };
        println!(
            "| {cat} | {} / {} / {} / {} | {train_score:.1} | {held_out} |",
            c.sensitivity, c.tail_quantile, c.extreme_horizon, c.sustained_half_life
        );
    }
    nab::normalised(held.0, held.1, held.2)
}

/// The default configuration, with overrides from the environment for exploration
/// (`SENS`, `HALF_LIFE`, `ENTER_K`, `ENTER_N`, `EXIT`, `TAIL_FACTOR`, `TAIL_Q`, `TAIL_MEM`,
/// `SUSTAINED`, `SLOT_MIN`, `SEASON` = 0 none, 1 daily, 2 weekly, 3 auto).
fn config_from_env() -> BaselineConfig {
    let mut bc = BaselineConfig::default();
    let var = |k: &str| std::env::var(k).ok().map(|v| v.parse::<f64>().expect(k));
    if let Some(v) = var("SENS") {
        bc.sensitivity = v;
    }
    if let Some(v) = var("HALF_LIFE") {
        bc.level_half_life = v as u32;
    }
    if let Some(v) = var("ENTER_K") {
        bc.hysteresis.enter_points = v as u32;
    }
    if let Some(v) = var("ENTER_N") {
        bc.hysteresis.enter_window = v as u32;
    }
    if let Some(v) = var("TAIL_FACTOR") {
        bc.tail_factor = v;
    }
    if let Some(v) = var("TAIL_Q") {
        bc.tail_quantile = v;
    }
    if let Some(v) = var("TAIL_MEM") {
        bc.tail_memory = v as u32;
    }
    if let Some(v) = var("SUSTAINED") {
        bc.sustained_half_life = v as u32;
    }
    if let Some(v) = var("SLOT_MIN") {
        bc.slot_ms = (v * 60_000.0) as i64;
    }
    if let Some(v) = var("SEASON") {
        use osprey_alerts::detect::baseline::Season;
        bc.season = [Season::None, Season::Daily, Season::Weekly, Season::Auto][v as usize];
    }
    if let Some(v) = var("EXTREME") {
        bc.extreme_horizon = v as u32;
    }
    if let Some(v) = var("EXIT") {
        bc.hysteresis.exit_points = v as u32;
    }
    bc
}

fn main() {
    let files = load_nab();
    if std::env::var("DETECT_EVAL").as_deref() == Ok("sweep") {
        sweep(&files);
        return;
    }
    let bc = config_from_env();
    if std::env::var("DETECT_EVAL").as_deref() == Ok("cv") {
        let started = Instant::now();
        let held_out = cross_validate(&files, &bc);
        println!(
            "\nHeld-out overall (leave one category out): {held_out:.1} ({:.1} s).",
            started.elapsed().as_secs_f64()
        );
        return;
    }
    if std::env::var("DETECT_EVAL").as_deref() == Ok("nab") {
        let (per, all) = nab_scores(&files, NabDetector::Baseline(&bc), |_| true);
        let (_, tune) = nab_scores(&files, NabDetector::Baseline(&bc), |i| i.is_multiple_of(2));
        let cats: Vec<String> = per
            .iter()
            .map(|(c, t)| format!("{c} {:.1}", t.normalised()))
            .collect();
        println!(
            "NAB {:.1} (tuning half {:.1}) tp {} fp {} fn {} | {}",
            all.normalised(),
            tune.normalised(),
            all.raw.tp,
            all.raw.fp,
            all.raw.fn_,
            cats.join(", ")
        );
        return;
    }
    if std::env::var("DETECT_EVAL").as_deref() == Ok("missed") {
        for f in &files {
            let mut det = BaselineDetector::new(bc.clone()).expect("valid");
            let mut ratio = vec![0.0; f.samples.len()];
            for (i, &(t, v)) in f.samples.iter().enumerate() {
                let thr = det.baseline().threshold();
                if let osprey_alerts::detect::baseline::Verdict::Normal { score }
                | osprey_alerts::detect::baseline::Verdict::Anomalous { score, .. } =
                    det.observe(t, v)
                {
                    ratio[i] = score.abs() / thr;
                }
            }
            let detections = nab_detections(f, NabDetector::Baseline(&bc));
            for w in &f.windows {
                let hit = detections[w.first..=w.last].iter().position(|d| *d);
                let (imax, max) = ratio[w.first..=w.last]
                    .iter()
                    .enumerate()
                    .fold((0, 0.0), |a, (i, r)| if *r > a.1 { (i, *r) } else { a });
                println!(
                    "{}/{} window {}..{} (len {}): hit at {:?}, max |z|/threshold {:.2} at +{}",
                    f.category,
                    f.name,
                    w.first,
                    w.last,
                    w.last - w.first + 1,
                    hit,
                    max,
                    imax
                );
            }
        }
        return;
    }
    if std::env::var("DETECT_EVAL").as_deref() == Ok("fps") {
        for f in &files {
            let mut det = BaselineDetector::new(bc.clone()).expect("valid");
            let p = nab::probationary_rows(f.samples.len());
            let mut was = false;
            for (i, &(t, v)) in f.samples.iter().enumerate() {
                let thr = det.baseline().threshold();
                let sthr = det.baseline().sustained_threshold();
                let z = det.baseline().score(t, v).unwrap_or(0.0);
                let zs = det.baseline().sustained_score(t, v).unwrap_or(0.0);
                let seasonal = det.baseline().band(t).is_some_and(|b| b.seasonal);
                let now = det.observe(t, v).is_anomalous();
                if now && !was && i >= p {
                    let inw = f.windows.iter().find(|w| w.first <= i && i <= w.last);
                    let next = f
                        .windows
                        .iter()
                        .find(|w| w.first > i)
                        .map(|w| w.first as i64 - i as i64);
                    println!(
                        "{}/{} row {i} ({:.2}) {} z/thr {:.2} zs/sthr {:.2} thr {:.1} sthr {:.1} seasonal {seasonal} next window in {:?}",
                        f.category,
                        f.name,
                        i as f64 / f.samples.len() as f64,
                        if inw.is_some() { "TP" } else { "FP" },
                        z / thr,
                        zs / sthr,
                        thr,
                        sthr,
                        next
                    );
                }
                was = now;
            }
        }
        return;
    }
    if std::env::var("DETECT_EVAL").as_deref() == Ok("files") {
        for f in &files {
            let det = nab_detections(f, NabDetector::Baseline(&bc));
            let s = nab::score_file(&det, &f.windows, nab::STANDARD);
            let (null, perfect) = nab::null_and_perfect(f.samples.len(), &f.windows, nab::STANDARD);
            println!(
                "{}/{}: raw {:.2} (null {null:.2}, perfect {perfect:.2}) tp {} fp {} fn {}",
                f.category, f.name, s.score, s.tp, s.fp, s.fn_
            );
        }
        return;
    }

    println!("## NAB (standard profile, {} files)\n", files.len());
    let started = Instant::now();
    // The same detector with a wider tail calibration: fewer pages, later or missed detections.
    let quiet = BaselineConfig {
        tail_factor: 1.5,
        ..bc.clone()
    };
    // The pager operating point: a one-in-100 000 tail (extrapolated), for a budget of about
    // one false alarm per 100 series-days on 1-minute data.
    let pager = BaselineConfig {
        tail_quantile: PAGER_TAIL_QUANTILE,
        ..bc.clone()
    };
    let detectors: [(&str, NabDetector); 6] = [
        ("baseline (ours)", NabDetector::Baseline(&bc)),
        (
            "baseline (ours), tail_factor 1.5",
            NabDetector::Baseline(&quiet),
        ),
        (
            "baseline (ours), pager profile",
            NabDetector::Baseline(&pager),
        ),
        ("PromQL z-score", NabDetector::ZScore { for_ms: 0 }),
        (
            "PromQL z-score, for 5m",
            NabDetector::ZScore { for_ms: 5 * 60_000 },
        ),
        ("static threshold", NabDetector::Static),
    ];
    let results: Vec<_> = detectors
        .iter()
        .map(|(n, d)| (*n, nab_scores(&files, *d, |_| true)))
        .collect();
    let held_out = nab_scores(&files, NabDetector::Baseline(&bc), |i| !i.is_multiple_of(2)).1;
    let categories: Vec<String> = results[0].1.0.keys().cloned().collect();
    print!("| detector |");
    for c in &categories {
        print!(" {c} |");
    }
    println!(" overall | TP / FP / FN |");
    println!("|---|{}---|---|", "---|".repeat(categories.len()));
    for (name, (per, all)) in &results {
        print!("| {name} |");
        for c in &categories {
            print!(" {:.1} |", per[c].normalised());
        }
        println!(
            " **{:.1}** | {} / {} / {} |",
            all.normalised(),
            all.raw.tp,
            all.raw.fp,
            all.raw.fn_
        );
    }
    println!(
        "\nBaseline on the held-out half (odd file indices): {:.1}. NAB evaluation took {:.1} s.\n",
        held_out.normalised(),
        started.elapsed().as_secs_f64()
    );
    println!("### Cross-validation across NAB categories (leave one category out)\n");
    let started = Instant::now();
    let cv = cross_validate(&files, &bc);
    println!(
        "\nHeld-out overall: {cv:.1} (each category scored with the grid point chosen on the other five; {} grid points, {:.1} s).\n",
        cv_grid(&bc).len(),
        started.elapsed().as_secs_f64()
    );
    let cfg = SynthConfig::default();
    let started = Instant::now();
    let series = synth::series(&cfg);
    let groups = synth::groups(&cfg);
    if std::env::var("DETECT_EVAL").as_deref() == Ok("cost") {
        cost(
            &cfg,
            &series,
            &groups,
            &bc,
            &HostComparisonConfig::default(),
        );
        return;
    }
    let days = f64::from(cfg.days - cfg.history_days);
    println!(
        "## Generated container metrics (seed {}, {} series + {} groups of {}, {} days scored each, 1-minute samples)\n",
        cfg.seed,
        series.len(),
        groups.len(),
        cfg.group_size,
        days
    );
    println!(
        "| detector | precision | recall | recall spike / shift / drift | latency median / p95 (min) | false alarms per 100 series-days (all) | (controls) | (Gaussian / heavy-tailed noise) | recall Gaussian / heavy-tailed |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    print_event_row(
        "baseline (ours)",
        &synth_stats(&cfg, &series, baseline_maker(bc.clone())),
    );
    print_event_row(
        "baseline (ours), tail_factor 1.5",
        &synth_stats(&cfg, &series, baseline_maker(quiet.clone())),
    );
    print_event_row(
        "baseline (ours), pager profile",
        &synth_stats(&cfg, &series, baseline_maker(pager.clone())),
    );
    print_event_row(
        "PromQL z-score",
        &synth_stats(&cfg, &series, zscore_maker(0)),
    );
    print_event_row(
        "PromQL z-score, for 5m",
        &synth_stats(&cfg, &series, zscore_maker(5 * 60_000)),
    );
    print_event_row(
        "static threshold",
        &synth_stats(&cfg, &series, static_maker),
    );
    println!("\n### Groups (one member diverging; controls: group-wide spike)\n");
    println!(
        "| detector | precision | recall | latency median / p95 (min) | false alarms per 100 series-days (diverging groups) | (group-wide spike groups) |"
    );
    println!("|---|---|---|---|---|---|");
    let hc = HostComparisonConfig::default();
    let (d, c) = host_comparison_stats(&cfg, &groups, &hc);
    print_group_row("host comparison (ours)", &d, &c);
    let (d, c) = baseline_on_groups(&cfg, &groups, &bc);
    print_group_row("baseline per member (ours)", &d, &c);
    println!(
        "\nGenerated-corpus evaluation took {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    cost(&cfg, &series, &groups, &bc, &hc);
}

/// CPU time of the calling thread, in seconds (not inflated by other processes on a busy machine).
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// CPU cost per sample and state size, on the generated corpus (thread CPU time).
fn cost(
    cfg: &SynthConfig,
    series: &[synth::LabelledSeries],
    groups: &[synth::LabelledGroup],
    bc: &BaselineConfig,
    hc: &HostComparisonConfig,
) {
    let history_end = cfg.history_end_ms();
    let before = live_bytes();
    let mut detectors: Vec<(BaselineDetector, &[Sample])> = series
        .iter()
        .map(|s| {
            let cut = s.samples.partition_point(|p| p.0 < history_end);
            let d = BaselineDetector::from_history(&s.samples[..cut], bc.clone()).expect("valid");
            (d, &s.samples[cut..])
        })
        .collect();
    // The detectors' heap plus their inline size (the vector holds them inline).
    let heap_bytes = live_bytes() - before;
    let json_bytes: usize = detectors
        .iter()
        .map(|(d, _)| serde_json::to_vec(d).expect("json").len())
        .sum();
    let memory_bytes: usize = detectors
        .iter()
        .map(|(d, _)| d.baseline().state_bytes())
        .sum();
    let started = thread_cpu_s();
    let mut samples = 0usize;
    let mut anomalous = 0usize;
    for (d, scored) in &mut detectors {
        for &(t, v) in scored.iter() {
            anomalous += usize::from(d.observe(t, v).is_anomalous());
            samples += 1;
        }
    }
    let per_sample = (thread_cpu_s() - started) / samples as f64;
    let started = thread_cpu_s();
    let mut evaluations = 0usize;
    for g in groups {
        let mut d = HostComparisonDetector::new(hc.clone());
        let first = g.members[0].partition_point(|s| s.0 < history_end);
        for k in first..g.members[0].len() {
            let lo = k.saturating_sub((hc.window_ms / cfg.step_ms) as usize);
            let views: Vec<(usize, &[Sample])> = g
                .members
                .iter()
                .enumerate()
                .map(|(i, m)| (i, &m[lo..=k]))
                .collect();
            std::hint::black_box(d.observe(&views));
            evaluations += 1;
        }
    }
    let per_group = (thread_cpu_s() - started) / evaluations as f64;
    println!("\n## Cost (thread CPU time)\n");
    println!("| what | figure |");
    println!("|---|---|");
    println!(
        "| `BaselineDetector::observe` | {:.0} ns per sample ({samples} samples, {anomalous} anomalous) |",
        per_sample * 1e9
    );
    println!(
        "| baseline state in memory (`Baseline::state_bytes`), season `{:?}` | {:.1} KiB per series |",
        bc.season,
        memory_bytes as f64 / detectors.len() as f64 / 1024.0
    );
    println!(
        "| baseline state in memory, measured (allocator count + inline size) | {:.1} KiB per series |",
        (heap_bytes as f64 / detectors.len() as f64) / 1024.0
    );
    println!(
        "| baseline state, serde JSON after 4 days of 1-minute history | {:.1} KiB per series |",
        json_bytes as f64 / detectors.len() as f64 / 1024.0
    );
    println!(
        "| `HostComparisonDetector::observe`, 8 members, 15-minute window of 1-minute samples | {:.1} µs per evaluation |",
        per_group * 1e6
    );
}
