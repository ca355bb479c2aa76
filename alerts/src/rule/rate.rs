//! Rate of change: the percentage change of each member between now and
//! `window` ago, compared with a signed percentage (`above` 50 fires on a
//! rise of more than 50 %, `below` -50 on a fall of more than 50 %).
//! Members whose old value is 0 have no percentage and are skipped.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    Comparison, EvalContext, Instance, RuleError, Trigger, finite, instance_labels, need_query,
    scoped_samples,
};
use crate::labels::LabelSet;
use crate::matcher::Matcher;

/// `{"kind":"rate_of_change","query":"…","window":"10m","op":"above","percent":50}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateOfChange {
    /// PromQL giving one value per member.
    pub query: String,
    /// Only members whose labels match every matcher.
    #[serde(default)]
    pub scope: Vec<Matcher>,
    /// How far back the old value is taken.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Above (a rise) or below (a fall).
    pub op: Comparison,
    /// Percent change, signed.
    pub percent: f64,
    /// How many members must violate.
    #[serde(default)]
    pub trigger: Trigger,
}

impl RateOfChange {
    pub(crate) fn validate(&self) -> Result<(), RuleError> {
        need_query(&self.query)?;
        finite("percent", self.percent)?;
        if self.window.is_zero() {
            return Err(RuleError::Invalid("`window` must be positive".into()));
        }
        self.trigger.validate()
    }

    pub(crate) fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<Vec<Instance>, RuleError> {
        let now = scoped_samples(ctx, &self.query, &self.scope)?;
        let then_ctx = EvalContext {
            source: ctx.source,
            now_ms: ctx.now_ms - self.window.as_millis() as i64,
            active: ctx.active,
        };
        let then: HashMap<LabelSet, f64> = scoped_samples(&then_ctx, &self.query, &self.scope)?
            .into_iter()
            .map(|s| (s.labels, s.value))
            .collect();
        let mut members = 0;
        let mut violating = Vec::new();
        for s in now {
            let Some(old) = then.get(&s.labels).copied().filter(|o| *o != 0.0) else {
                continue;
            };
            members += 1;
            let pct = (s.value - old) / old.abs() * 100.0;
            if self.op.violates(pct, self.percent) {
                violating.push(Instance {
                    labels: instance_labels(&s.labels),
                    value: pct,
                });
            }
        }
        Ok(if self.trigger.met(violating.len(), members) {
            violating
        } else {
            Vec::new()
        })
    }
}
