//! A plain PromQL condition, Prometheus-style: every series the
//! expression returns is a violating instance (`expr: cpu > 0.8`).

use serde::{Deserialize, Serialize};

use super::{EvalContext, Instance, RuleError, instance_labels, need_query};

/// `{"kind":"promql","expr":"…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromqlCondition {
    /// The expression.
    pub expr: String,
}

impl PromqlCondition {
    pub(crate) fn validate(&self) -> Result<(), RuleError> {
        need_query(&self.expr)
    }

    pub(crate) fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<Vec<Instance>, RuleError> {
        let mut out: Vec<Instance> = ctx
            .source
            .instant(&self.expr, ctx.now_ms)?
            .into_iter()
            .filter(|s| !s.value.is_nan())
            .map(|s| Instance {
                labels: instance_labels(&s.labels),
                value: s.value,
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        if out.windows(2).any(|w| w[0].labels == w[1].labels) {
            return Err(RuleError::Invalid(
                "vector contains metrics with the same labelset after applying alert labels".into(),
            ));
        }
        Ok(out)
    }
}
