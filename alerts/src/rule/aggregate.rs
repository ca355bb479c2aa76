//! Group aggregate: the members of the scope reduced (sum, avg, min, max,
//! count) per group of `by` labels, each group compared with the
//! threshold; one alert per violating group.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Comparison, EvalContext, Instance, RuleError, finite, need_query, scoped_samples};
use crate::labels::LabelSet;
use crate::matcher::Matcher;

/// How members are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Sum.
    Sum,
    /// Mean.
    Avg,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Number of members.
    Count,
}

/// `{"kind":"group_aggregate","query":"…","aggregation":"avg","by":["node"],"op":"above","threshold":0.8}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupAggregate {
    /// PromQL giving one value per member.
    pub query: String,
    /// Only members whose labels match every matcher.
    #[serde(default)]
    pub scope: Vec<Matcher>,
    /// The reduction.
    pub aggregation: Aggregation,
    /// Group labels (none: the whole scope is one group).
    #[serde(default)]
    pub by: Vec<String>,
    /// Above or below.
    pub op: Comparison,
    /// The threshold.
    pub threshold: f64,
}

impl GroupAggregate {
    pub(crate) fn validate(&self) -> Result<(), RuleError> {
        need_query(&self.query)?;
        finite("threshold", self.threshold)
    }

    pub(crate) fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<Vec<Instance>, RuleError> {
        let mut groups: BTreeMap<LabelSet, Vec<f64>> = BTreeMap::new();
        for s in scoped_samples(ctx, &self.query, &self.scope)? {
            let key: LabelSet = self
                .by
                .iter()
                .filter_map(|b| s.labels.get(b).map(|v| (b.clone(), v.clone())))
                .collect();
            groups.entry(key).or_default().push(s.value);
        }
        Ok(groups
            .into_iter()
            .filter_map(|(labels, values)| {
                let v = reduce(self.aggregation, &values);
                self.op
                    .violates(v, self.threshold)
                    .then_some(Instance { labels, value: v })
            })
            .collect())
    }
}

/// Reduces a non-empty list.
pub fn reduce(agg: Aggregation, values: &[f64]) -> f64 {
    match agg {
        Aggregation::Sum => values.iter().sum(),
        Aggregation::Avg => values.iter().sum::<f64>() / values.len() as f64,
        Aggregation::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregation::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregation::Count => values.len() as f64,
    }
}
