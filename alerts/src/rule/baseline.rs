//! Baseline: no threshold; each member's own history gives its expected
//! band (the [`crate::detect::baseline`] detector: seasonal robust band,
//! warm-up, sensitivity, hysteresis) and the rule fires for members the
//! detector calls anomalous. Detectors live in the rule's
//! [`RuleMemory`]: the first evaluation learns `history` from a range
//! query, later ones feed only the new samples.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{EvalContext, Instance, RuleError, RuleMemory, instance_labels, need_query};
use crate::detect::baseline::{BaselineConfig, BaselineDetector, Verdict};
use crate::labels::LabelSet;
use crate::matcher::{Matcher, matches_all};

/// `{"kind":"baseline","query":"…","detector":{"season":"daily","sensitivity":4}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineCondition {
    /// PromQL giving one value per member.
    pub query: String,
    /// Only members whose labels match every matcher.
    #[serde(default)]
    pub scope: Vec<Matcher>,
    /// The detector's settings (see `detect::baseline::BaselineConfig`).
    #[serde(default)]
    pub detector: BaselineConfig,
    /// Resolution the detector is fed at.
    #[serde(default = "default_step", with = "humantime_serde")]
    pub step: Duration,
    /// History learned when a member is first seen [default: the
    /// seasons the detector needs, at most 28 days].
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub history: Option<Duration>,
}

fn default_step() -> Duration {
    Duration::from_secs(60)
}

impl BaselineCondition {
    pub(crate) fn validate(&self) -> Result<(), RuleError> {
        need_query(&self.query)?;
        self.detector
            .validate()
            .map_err(|e| RuleError::Invalid(format!("`detector`: {}", e.0)))?;
        if self.step < Duration::from_millis(100) {
            return Err(RuleError::Invalid("`step` must be at least 100ms".into()));
        }
        Ok(())
    }

    fn history_ms(&self) -> i64 {
        if let Some(h) = self.history {
            return h.as_millis() as i64;
        }
        let season = self.detector.season.length_ms().unwrap_or(0);
        let needed = season * i64::from(self.detector.seasons_required)
            + self.step.as_millis() as i64 * i64::from(self.detector.warmup_points + 1);
        needed.min(28 * 86_400_000)
    }

    pub(crate) fn evaluate(
        &self,
        ctx: &EvalContext<'_>,
        memory: &mut RuleMemory,
    ) -> Result<Vec<Instance>, RuleError> {
        let step = self.step.as_millis() as i64;
        let history = self.history_ms();
        let detectors = &mut memory.baselines;
        // Read from just after the oldest member's last sample, or the
        // whole history when the rule has not seen anything yet.
        let from = detectors
            .values()
            .filter_map(|d| d.baseline().last_ms())
            .min()
            .map(|t| (t + 1).max(ctx.now_ms - history))
            .unwrap_or(ctx.now_ms - history);
        let series = ctx.source.range(&self.query, from, ctx.now_ms, step)?;
        let mut out = Vec::new();
        let mut seen: BTreeMap<LabelSet, ()> = BTreeMap::new();
        for s in series {
            if !matches_all(&self.scope, &s.labels) {
                continue;
            }
            let labels = instance_labels(&s.labels);
            let det = match detectors.get_mut(&labels) {
                Some(d) => d,
                None => {
                    let d = BaselineDetector::new(self.detector.clone())
                        .map_err(|e| RuleError::Invalid(e.0))?;
                    detectors.entry(labels.clone()).or_insert(d)
                }
            };
            let mut last_value = f64::NAN;
            for &(t, v) in &s.points {
                det.observe(t, v);
                last_value = v;
            }
            seen.insert(labels.clone(), ());
            if let Verdict::Anomalous { .. } = det.last_verdict()
                && !last_value.is_nan()
            {
                out.push(Instance {
                    labels,
                    value: last_value,
                });
            }
        }
        // Forget members gone for longer than the history.
        detectors.retain(|l, d| {
            seen.contains_key(l)
                || d.baseline()
                    .last_ms()
                    .is_some_and(|t| ctx.now_ms - t < history)
        });
        Ok(out)
    }
}
