//! A rule replayed over history: what the dashboard's rule form shows
//! before a rule is saved. The rule is evaluated at every step of a past
//! range by a private [`Engine`] with the service's settings, so the
//! pending and firing intervals come from the same state machine (`for`,
//! `keep_firing_for`, flap damping) that runs the real rule; nothing is
//! stored and nobody is notified.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::Serialize;

use crate::alert::AlertState;
use crate::detect::host_comparison::peer_band;
use crate::engine::{Engine, EngineConfig};
use crate::labels::LabelSet;
use crate::matcher::matches_all;
use crate::rule::host_comparison::HostComparisonCondition;
use crate::rule::{Condition, EvalContext, RuleError, RuleSpec};
use crate::source::{Source, SourceError};

/// Most evaluations one preview runs; the step is raised to stay under.
pub const MAX_EVALUATIONS: i64 = 2_000;

/// One stretch of time an alert instance spent pending or firing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    /// The alert's labels (instance labels, the rule's labels, `alertname`).
    pub labels: LabelSet,
    /// `pending` or `firing`.
    pub state: &'static str,
    /// First evaluation in that state, ms.
    pub start_ms: i64,
    /// The evaluation that left the state, ms; the range's end when it
    /// was still in that state there (`open`).
    pub end_ms: i64,
    /// Still in that state at the end of the range.
    pub open: bool,
}

/// A member's learned band (baseline rules) or a group's peer band (host
/// comparison rules: `labels` are the group's), one point per evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BandSeries {
    /// The member's instance labels.
    pub labels: LabelSet,
    /// Evaluation times, ms.
    pub t: Vec<i64>,
    /// Lower edge (`None`: warming up).
    pub lo: Vec<Option<f64>>,
    /// Expected value.
    pub centre: Vec<Option<f64>>,
    /// Upper edge.
    pub hi: Vec<Option<f64>>,
}

/// What a rule would have done over a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Simulation {
    /// Evaluation step used, ms.
    pub step_ms: i64,
    /// Evaluations run.
    pub evaluations: usize,
    /// The threshold line, for kinds that have one.
    pub threshold: Option<f64>,
    /// Learned bands (baseline rules) or peer bands (host comparison).
    pub bands: Vec<BandSeries>,
    /// Pending and firing intervals, by start.
    pub intervals: Vec<Interval>,
    /// Evaluations that failed (the engine keeps state across them), with
    /// the first error.
    pub failed_evaluations: usize,
    /// The first failure's message.
    pub first_error: Option<String>,
}

/// The evaluation step for a preview: `step` if given, else the rule's
/// interval (or the engine's default), raised so that the range needs at
/// most [`MAX_EVALUATIONS`].
pub fn preview_step(spec: &RuleSpec, config: &EngineConfig, start_ms: i64, end_ms: i64) -> i64 {
    let interval = spec.interval.unwrap_or(config.default_interval);
    let min = ((end_ms - start_ms) / MAX_EVALUATIONS).max(1);
    (interval.as_millis() as i64).max(min)
}

/// Replays `spec` at every `step_ms` of `[start_ms, end_ms]`. A query
/// the source calls bad is the rule's fault and fails the preview; other
/// failures are counted like the engine counts them.
pub fn simulate(
    spec: &RuleSpec,
    source: &dyn Source,
    config: EngineConfig,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<Simulation, RuleError> {
    let mut spec = spec.clone();
    if spec.id.is_empty() {
        spec.id = "preview".into();
    }
    let id = spec.id.clone();
    let mut engine = Engine::new(config);
    engine.set_rule(spec.clone(), start_ms);
    let mut open: BTreeMap<LabelSet, (AlertState, i64)> = BTreeMap::new();
    let mut intervals = Vec::new();
    let mut bands: BTreeMap<LabelSet, BandSeries> = BTreeMap::new();
    let (mut evaluations, mut failed, mut first_error) = (0usize, 0usize, None);
    let mut t = start_ms;
    while t <= end_ms {
        let rt = engine
            .rule(&id)
            .expect("the preview's rule is in its engine");
        let active: HashSet<LabelSet> = rt
            .alerts
            .iter()
            .filter(|(_, a)| a.state != AlertState::Resolved)
            .map(|(k, _)| k.clone())
            .collect();
        let mut memory = rt.memory.clone();
        let result = spec.evaluate(
            &EvalContext {
                source,
                now_ms: t,
                active: &active,
            },
            &mut memory,
        );
        evaluations += 1;
        match &result {
            Err(RuleError::Source(SourceError::BadQuery(_))) | Err(RuleError::Invalid(_)) => {
                return Err(result.expect_err("matched an error"));
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
            Ok(_) => {}
        }
        if matches!(spec.condition, Condition::Baseline(_)) {
            for (labels, det) in &memory.baselines {
                let b = bands.entry(labels.clone()).or_insert_with(|| BandSeries {
                    labels: labels.clone(),
                    t: Vec::new(),
                    lo: Vec::new(),
                    centre: Vec::new(),
                    hi: Vec::new(),
                });
                let band = det.baseline().band(t);
                b.t.push(t);
                b.lo.push(band.map(|b| b.lo));
                b.centre.push(band.map(|b| b.centre));
                b.hi.push(band.map(|b| b.hi));
            }
        }
        for tr in engine.apply(&id, t, result, Duration::ZERO, memory) {
            if let Some((state, since)) = open.remove(&tr.labels) {
                intervals.push(Interval {
                    labels: tr.labels.clone(),
                    state: state_name(state),
                    start_ms: since,
                    end_ms: t,
                    open: false,
                });
            }
            if let Some(to @ (AlertState::Pending | AlertState::Firing)) = tr.to {
                open.insert(tr.labels, (to, t));
            }
        }
        t += step_ms;
    }
    for (labels, (state, since)) in open {
        intervals.push(Interval {
            labels,
            state: state_name(state),
            start_ms: since,
            end_ms,
            open: true,
        });
    }
    intervals.sort_by(|a, b| (a.start_ms, &a.labels).cmp(&(b.start_ms, &b.labels)));
    if let Condition::HostComparison(c) = &spec.condition {
        bands = peer_bands(c, source, start_ms, end_ms, step_ms)
            .map_err(RuleError::Source)?
            .into_iter()
            .map(|b| (b.labels.clone(), b))
            .collect();
    }
    Ok(Simulation {
        step_ms,
        evaluations,
        threshold: spec.condition.chart_threshold(),
        bands: bands.into_values().collect(),
        intervals,
        failed_evaluations: failed,
        first_error,
    })
}

/// The peers' centre and band of each group of a host comparison rule at
/// every step: the members' latest values within the detector's lookback,
/// as the detector sees them at its instants.
fn peer_bands(
    c: &HostComparisonCondition,
    source: &dyn Source,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<Vec<BandSeries>, SourceError> {
    let d = &c.detector;
    let data_step = (c.step.as_millis() as i64).max((end_ms - start_ms) / 11_000 + 1);
    let series = source.range(&c.query, start_ms - d.lookback_ms, end_ms, data_step)?;
    let mut groups: BTreeMap<LabelSet, Vec<Vec<(i64, f64)>>> = BTreeMap::new();
    for s in series {
        if !matches_all(&c.scope, &s.labels) {
            continue;
        }
        let key: LabelSet = c
            .group_by
            .iter()
            .filter_map(|b| s.labels.get(b).map(|v| (b.clone(), v.clone())))
            .collect();
        groups.entry(key).or_default().push(s.points);
    }
    let mut out = Vec::new();
    for (labels, members) in groups {
        let mut b = BandSeries {
            labels,
            t: Vec::new(),
            lo: Vec::new(),
            centre: Vec::new(),
            hi: Vec::new(),
        };
        let mut cursors = vec![0usize; members.len()];
        let mut t = start_ms;
        while t <= end_ms {
            let mut values = Vec::with_capacity(members.len());
            for (m, cur) in members.iter().zip(cursors.iter_mut()) {
                while *cur < m.len() && m[*cur].0 <= t {
                    *cur += 1;
                }
                if *cur > 0 {
                    let (ts, v) = m[*cur - 1];
                    if t - ts <= d.lookback_ms.max(data_step) && v.is_finite() {
                        values.push(v);
                    }
                }
            }
            let band = peer_band(&values, d);
            b.t.push(t);
            b.lo.push(band.map(|x| x.0));
            b.centre.push(band.map(|x| x.1));
            b.hi.push(band.map(|x| x.2));
            t += step_ms;
        }
        out.push(b);
    }
    Ok(out)
}

fn state_name(s: AlertState) -> &'static str {
    match s {
        AlertState::Pending => "pending",
        AlertState::Firing => "firing",
        AlertState::Resolved => "resolved",
    }
}
