//! Absence: a series that had data within `lookback` but none for
//! `duration` (a target that vanished; `up == 0` cannot see it). Each such
//! series is an alert whose value is the seconds since its last sample.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{EvalContext, Instance, RuleError, Trigger, instance_labels, need_query};
use crate::matcher::{Matcher, matches_all};

/// `{"kind":"absence","query":"up{job=\"node\"}","duration":"5m"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Absence {
    /// A series selector, e.g. `container_cpu_usage_seconds_total{namespace="prod"}`.
    pub query: String,
    /// Only series whose labels match every matcher.
    #[serde(default)]
    pub scope: Vec<Matcher>,
    /// How long without a sample counts as absent.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// How far back a series must have been seen to be missed; series
    /// older than this are forgotten [default: 1 hour or 10 × duration,
    /// whichever is longer].
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub lookback: Option<Duration>,
    /// How many of the series seen must be absent.
    #[serde(default)]
    pub trigger: Trigger,
}

impl Absence {
    pub(crate) fn validate(&self) -> Result<(), RuleError> {
        need_query(&self.query)?;
        if self.duration.is_zero() {
            return Err(RuleError::Invalid("`duration` must be positive".into()));
        }
        if self.lookback().as_millis() <= self.duration.as_millis() {
            return Err(RuleError::Invalid(
                "`lookback` must be longer than `duration`".into(),
            ));
        }
        self.trigger.validate()
    }

    fn lookback(&self) -> Duration {
        self.lookback
            .unwrap_or_else(|| (self.duration * 10).max(Duration::from_secs(3600)))
    }

    pub(crate) fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<Vec<Instance>, RuleError> {
        let start = ctx.now_ms - self.lookback().as_millis() as i64;
        let seen = ctx.source.last_seen(&self.query, start, ctx.now_ms)?;
        let limit = self.duration.as_millis() as i64;
        let mut members = 0;
        let mut absent = Vec::new();
        for (labels, last) in seen {
            if !matches_all(&self.scope, &labels) {
                continue;
            }
            members += 1;
            let silent_for = ctx.now_ms - last;
            if silent_for >= limit {
                absent.push(Instance {
                    labels: instance_labels(&labels),
                    value: silent_for as f64 / 1000.0,
                });
            }
        }
        Ok(if self.trigger.met(absent.len(), members) {
            absent
        } else {
            Vec::new()
        })
    }
}
