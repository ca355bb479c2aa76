//! Threshold: each member of the scope above (or below) a value; the rule
//! fires for the violating members when the trigger is met. An optional
//! clear threshold gives hysteresis: a member that violates keeps
//! violating until it crosses the clear threshold.

use serde::{Deserialize, Serialize};

use super::{
    Comparison, EvalContext, Instance, RuleError, Trigger, finite, instance_labels, need_query,
    scoped_samples,
};
use crate::matcher::Matcher;

/// `{"kind":"threshold","query":"…","op":"above","threshold":80}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// PromQL giving one value per member (e.g. a CPU rate per container).
    pub query: String,
    /// Only members whose labels match every matcher.
    #[serde(default)]
    pub scope: Vec<Matcher>,
    /// Above or below.
    pub op: Comparison,
    /// The threshold.
    pub threshold: f64,
    /// Where an active member stops violating (hysteresis); the
    /// threshold itself when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_threshold: Option<f64>,
    /// How many members must violate.
    #[serde(default)]
    pub trigger: Trigger,
}

impl Threshold {
    pub(crate) fn validate(&self) -> Result<(), RuleError> {
        need_query(&self.query)?;
        finite("threshold", self.threshold)?;
        if let Some(c) = self.clear_threshold {
            finite("clear_threshold", c)?;
            if self.op.violates(c, self.threshold) {
                return Err(RuleError::Invalid(format!(
                    "`clear_threshold` {c} must be on the safe side of the threshold {}",
                    self.threshold
                )));
            }
        }
        self.trigger.validate()
    }

    pub(crate) fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<Vec<Instance>, RuleError> {
        let samples = scoped_samples(ctx, &self.query, &self.scope)?;
        let members = samples.len();
        let violating: Vec<Instance> = samples
            .into_iter()
            .filter_map(|s| {
                let labels = instance_labels(&s.labels);
                let limit = match self.clear_threshold {
                    Some(clear) if ctx.active.contains(&labels) => clear,
                    _ => self.threshold,
                };
                self.op.violates(s.value, limit).then_some(Instance {
                    labels,
                    value: s.value,
                })
            })
            .collect();
        Ok(if self.trigger.met(violating.len(), members) {
            violating
        } else {
            Vec::new()
        })
    }
}
