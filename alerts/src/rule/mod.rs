//! Alert rules: what a rule says ([`RuleSpec`]) and how each kind of
//! condition turns data into alert instances.
//!
//! | kind | module |
//! |---|---|
//! | threshold above/below, with a trigger over the scope's members | [`threshold`] |
//! | rate of change, percent over a window | [`rate`] |
//! | absence: no data for a duration | [`absence`] |
//! | group aggregate (sum/avg/min/max/count across the scope) | [`aggregate`] |
//! | baseline: a band learned from each member's history | [`baseline`] |
//! | host comparison: a member far from its peers | [`host_comparison`] |
//! | a plain PromQL expression (Prometheus rule files) | [`promql`], [`file`] |
//!
//! A condition returns the *instances violating now*; the engine owns
//! time (`for`, `keep_firing_for`, flap damping) and state.

pub mod absence;
pub mod aggregate;
pub mod baseline;
pub mod file;
pub mod host_comparison;
pub mod promql;
pub mod rate;
pub mod threshold;
pub mod trigger;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::labels::{LabelSet, METRIC_NAME};
use crate::matcher::{Matcher, matches_all};
use crate::source::{Sample, Source, SourceError};

pub use trigger::Trigger;

/// A rule as created through the API or loaded from a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Stable identifier (assigned when created if empty): letters,
    /// digits, `-`, `_`, `.`.
    #[serde(default)]
    pub id: String,
    /// The alert name (label `alertname` of its alerts).
    pub name: String,
    /// What the rule watches, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The group the rule is listed under in `/api/v1/rules` (a rule
    /// file's group name; `osprey` for rules created through the API).
    #[serde(default = "default_group")]
    pub group: String,
    /// The condition.
    pub condition: Condition,
    /// Evaluation interval; the engine's default when absent.
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<Duration>,
    /// How long the condition must hold at every evaluation before the
    /// alert fires (pending until then).
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub for_: Duration,
    /// How long a firing alert keeps firing after its condition stops.
    #[serde(default, with = "humantime_serde")]
    pub keep_firing_for: Duration,
    /// Labels added to every alert (templated).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations (summary, description, runbook …; templated).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Channels notified directly, besides the routing tree.
    #[serde(default)]
    pub channels: Vec<String>,
    /// A disabled rule is kept but not evaluated.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where the rule came from: `api`, or the rule file's path. Rules
    /// from files are read-only through the API.
    #[serde(default = "default_origin")]
    pub origin: String,
}

fn default_group() -> String {
    "osprey".into()
}
fn default_origin() -> String {
    "api".into()
}
fn yes() -> bool {
    true
}

/// What makes a rule fire. JSON: `{"kind": "threshold", …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    /// A value above or below a threshold.
    Threshold(threshold::Threshold),
    /// A change of more than a percentage over a window.
    RateOfChange(rate::RateOfChange),
    /// No data for a duration.
    Absence(absence::Absence),
    /// An aggregate across the scope above or below a threshold.
    GroupAggregate(aggregate::GroupAggregate),
    /// Outside the band learned from each member's own history.
    Baseline(baseline::BaselineCondition),
    /// Far from the group's robust centre for most of a window.
    HostComparison(host_comparison::HostComparisonCondition),
    /// A PromQL expression: every result series is an alert.
    Promql(promql::PromqlCondition),
}

impl Condition {
    /// The kind's name, as in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::Threshold(_) => "threshold",
            Condition::RateOfChange(_) => "rate_of_change",
            Condition::Absence(_) => "absence",
            Condition::GroupAggregate(_) => "group_aggregate",
            Condition::Baseline(_) => "baseline",
            Condition::HostComparison(_) => "host_comparison",
            Condition::Promql(_) => "promql",
        }
    }

    /// The PromQL expression whose series a chart of the alert shows.
    pub fn chart_query(&self) -> &str {
        match self {
            Condition::Threshold(c) => &c.query,
            Condition::RateOfChange(c) => &c.query,
            Condition::Absence(c) => &c.query,
            Condition::GroupAggregate(c) => &c.query,
            Condition::Baseline(c) => &c.query,
            Condition::HostComparison(c) => &c.query,
            Condition::Promql(c) => &c.expr,
        }
    }

    /// The threshold line of a chart, where the kind has one.
    pub fn chart_threshold(&self) -> Option<f64> {
        match self {
            Condition::Threshold(c) => Some(c.threshold),
            Condition::GroupAggregate(c) => Some(c.threshold),
            _ => None,
        }
    }

    /// A readable one-line summary (`/api/v1/rules` `query`).
    pub fn describe(&self) -> String {
        match self {
            Condition::Threshold(c) => format!(
                "{} {} {}{}",
                c.query,
                c.op.symbol(),
                c.threshold,
                scope_suffix(&c.scope)
            ),
            Condition::RateOfChange(c) => format!(
                "change of {} over {} {} {}%{}",
                c.query,
                humantime::format_duration(c.window),
                c.op.symbol(),
                c.percent,
                scope_suffix(&c.scope)
            ),
            Condition::Absence(c) => format!(
                "absent({}) for {}",
                c.query,
                humantime::format_duration(c.duration)
            ),
            Condition::GroupAggregate(c) => format!(
                "{:?}({}) by ({}) {} {}",
                c.aggregation,
                c.query,
                c.by.join(", "),
                c.op.symbol(),
                c.threshold
            )
            .to_lowercase(),
            Condition::Baseline(c) => format!(
                "{} outside its learned band ({:?} season, sensitivity {}){}",
                c.query,
                c.detector.season,
                c.detector.sensitivity,
                scope_suffix(&c.scope)
            ),
            Condition::HostComparison(c) => format!(
                "{} far from its peers by ({}) (sensitivity {}){}",
                c.query,
                c.group_by.join(", "),
                c.detector.sensitivity,
                scope_suffix(&c.scope)
            ),
            Condition::Promql(c) => c.expr.clone(),
        }
    }
}

fn scope_suffix(scope: &[Matcher]) -> String {
    if scope.is_empty() {
        String::new()
    } else {
        let m: Vec<String> = scope.iter().map(ToString::to_string).collect();
        format!(" where {{{}}}", m.join(", "))
    }
}

/// Above or below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Violates when the value is greater than the threshold.
    Above,
    /// Violates when the value is less than the threshold.
    Below,
}

impl Comparison {
    /// Whether `value` violates `threshold`.
    pub fn violates(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::Below => value < threshold,
        }
    }

    /// `>` or `<`.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Above => ">",
            Comparison::Below => "<",
        }
    }
}

/// One alert instance a condition reports as violating now.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Its labels (before the rule's labels and `alertname` are added).
    pub labels: LabelSet,
    /// The value shown in notifications (`$value`).
    pub value: f64,
}

/// What a condition sees when evaluated.
pub struct EvalContext<'a> {
    /// Query access.
    pub source: &'a dyn Source,
    /// Evaluation time, ms.
    pub now_ms: i64,
    /// The instance label sets of this rule's alerts that are pending or
    /// firing (for hysteresis: a violating member clears at its clear
    /// threshold, not at the trip threshold).
    pub active: &'a HashSet<LabelSet>,
}

/// Why a rule could not be evaluated or accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// The rule is invalid.
    #[error("{0}")]
    Invalid(String),
    /// Reading its data failed.
    #[error(transparent)]
    Source(#[from] SourceError),
}

impl RuleSpec {
    /// Checks the rule; `source` validates its expressions.
    pub fn validate(&self, source: Option<&dyn Source>) -> Result<(), RuleError> {
        let bad = |m: String| Err(RuleError::Invalid(m));
        if self.name.trim().is_empty() {
            return bad("the rule needs a `name`".into());
        }
        if !self.id.is_empty()
            && !self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return bad(format!(
                "rule id {:?} may hold only letters, digits, '-', '_' and '.'",
                self.id
            ));
        }
        if let Some(i) = self.interval
            && i < Duration::from_millis(100)
        {
            return bad("`interval` must be at least 100ms".into());
        }
        for (k, v) in self.labels.iter().chain(self.annotations.iter()) {
            if k.is_empty() {
                return bad("label and annotation names must not be empty".into());
            }
            crate::template::check(v).map_err(|e| RuleError::Invalid(e.to_string()))?;
        }
        match &self.condition {
            Condition::Threshold(c) => c.validate()?,
            Condition::RateOfChange(c) => c.validate()?,
            Condition::Absence(c) => c.validate()?,
            Condition::GroupAggregate(c) => c.validate()?,
            Condition::Baseline(c) => c.validate()?,
            Condition::HostComparison(c) => c.validate()?,
            Condition::Promql(c) => c.validate()?,
        }
        if let Some(source) = source {
            source
                .validate(self.condition.chart_query())
                .map_err(|e| RuleError::Invalid(format!("`query`: {e}")))?;
        }
        Ok(())
    }

    /// The violating instances now; `memory` is the rule's learned state
    /// (baseline detectors), kept by the engine between evaluations.
    pub fn evaluate(
        &self,
        ctx: &EvalContext<'_>,
        memory: &mut RuleMemory,
    ) -> Result<Vec<Instance>, RuleError> {
        match &self.condition {
            Condition::Threshold(c) => c.evaluate(ctx),
            Condition::RateOfChange(c) => c.evaluate(ctx),
            Condition::Absence(c) => c.evaluate(ctx),
            Condition::GroupAggregate(c) => c.evaluate(ctx),
            Condition::Baseline(c) => c.evaluate(ctx, memory),
            Condition::HostComparison(c) => c.evaluate(ctx),
            Condition::Promql(c) => c.evaluate(ctx),
        }
    }
}

/// What a rule learns between evaluations (persisted with the alerts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleMemory {
    /// Baseline detectors by member.
    #[serde(with = "pairs")]
    pub baselines: BTreeMap<LabelSet, crate::detect::baseline::BaselineDetector>,
}

impl RuleMemory {
    /// Whether there is nothing to keep.
    pub fn is_empty(&self) -> bool {
        self.baselines.is_empty()
    }
}

/// A map with label-set keys as a list of pairs (JSON keys are strings).
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        m: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<
        'de,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    >(
        d: D,
    ) -> Result<BTreeMap<K, V>, D::Error> {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

/// Labels of a series as an alert instance: without `__name__`.
pub fn instance_labels(labels: &LabelSet) -> LabelSet {
    let mut l = labels.clone();
    l.remove(METRIC_NAME);
    l
}

/// Evaluates `query` now and keeps the samples the scope accepts (NaN
/// values dropped: they neither violate nor count as members).
pub fn scoped_samples(
    ctx: &EvalContext<'_>,
    query: &str,
    scope: &[Matcher],
) -> Result<Vec<Sample>, RuleError> {
    Ok(ctx
        .source
        .instant(query, ctx.now_ms)?
        .into_iter()
        .filter(|s| !s.value.is_nan() && matches_all(scope, &s.labels))
        .collect())
}

pub(crate) fn need_query(query: &str) -> Result<(), RuleError> {
    if query.trim().is_empty() {
        Err(RuleError::Invalid("the condition needs a `query`".into()))
    } else {
        Ok(())
    }
}

pub(crate) fn finite(name: &str, v: f64) -> Result<(), RuleError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(RuleError::Invalid(format!(
            "`{name}` must be a finite number"
        )))
    }
}
