//! Host comparison: members of a group (e.g. the nodes of a cluster, the
//! pods of a deployment) that sit far from their peers' robust centre for
//! most of a window ([`crate::detect::host_comparison`]). Groups are
//! formed by the `group_by` labels; each outlying member is an alert.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{EvalContext, Instance, RuleError, instance_labels, need_query};
use crate::detect::Sample as DetectSample;
use crate::detect::host_comparison::{HostComparisonConfig, compare};
use crate::labels::LabelSet;
use crate::matcher::{Matcher, matches_all};

/// `{"kind":"host_comparison","query":"…","group_by":["cluster"],"detector":{"min_group":5}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostComparisonCondition {
    /// PromQL giving one value per member.
    pub query: String,
    /// Only members whose labels match every matcher.
    #[serde(default)]
    pub scope: Vec<Matcher>,
    /// Labels forming the peer groups (none: one group).
    #[serde(default)]
    pub group_by: Vec<String>,
    /// The detector's settings (see `detect::host_comparison::HostComparisonConfig`).
    #[serde(default)]
    pub detector: HostComparisonConfig,
    /// Resolution of the window's samples.
    #[serde(default = "default_step", with = "humantime_serde")]
    pub step: Duration,
}

fn default_step() -> Duration {
    Duration::from_secs(60)
}

impl HostComparisonCondition {
    pub(crate) fn validate(&self) -> Result<(), RuleError> {
        need_query(&self.query)?;
        let d = &self.detector;
        if d.min_group < 3 {
            return Err(RuleError::Invalid(
                "`detector.min_group` must be at least 3".into(),
            ));
        }
        if d.window_ms <= 0 || d.lookback_ms < 0 {
            return Err(RuleError::Invalid(
                "`detector.window_ms` must be positive and `lookback_ms` not negative".into(),
            ));
        }
        let fraction_ok = d.fraction_of_window > 0.0 && d.fraction_of_window <= 1.0;
        if d.sensitivity.is_nan() || d.sensitivity <= 0.0 || !fraction_ok {
            return Err(RuleError::Invalid(
                "`detector.sensitivity` must be positive and `fraction_of_window` in (0, 1]".into(),
            ));
        }
        if self.step < Duration::from_millis(100) {
            return Err(RuleError::Invalid("`step` must be at least 100ms".into()));
        }
        Ok(())
    }

    pub(crate) fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<Vec<Instance>, RuleError> {
        let d = &self.detector;
        let start = ctx.now_ms - d.window_ms - d.lookback_ms;
        let series =
            ctx.source
                .range(&self.query, start, ctx.now_ms, self.step.as_millis() as i64)?;
        let mut groups: BTreeMap<LabelSet, Vec<(LabelSet, Vec<DetectSample>)>> = BTreeMap::new();
        for s in series {
            if !matches_all(&self.scope, &s.labels) {
                continue;
            }
            let key: LabelSet = self
                .group_by
                .iter()
                .filter_map(|b| s.labels.get(b).map(|v| (b.clone(), v.clone())))
                .collect();
            groups
                .entry(key)
                .or_default()
                .push((instance_labels(&s.labels), s.points));
        }
        let mut out = Vec::new();
        for members in groups.values() {
            let refs: Vec<(LabelSet, &[DetectSample])> = members
                .iter()
                .map(|(l, p)| (l.clone(), p.as_slice()))
                .collect();
            for o in compare(&refs, d).outliers {
                out.push(Instance {
                    labels: o.member,
                    value: o.value,
                });
            }
        }
        Ok(out)
    }
}
