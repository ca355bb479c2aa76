//! Where rules read their data: instant and range PromQL evaluation over
//! labelled samples. The server implements [`Source`] over its own query
//! engine; the alerting crate never reads storage itself.

use crate::labels::LabelSet;

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels (with `__name__` when the expression keeps it).
    pub labels: LabelSet,
    /// The value at the evaluation time.
    pub value: f64,
}

/// One series of a range result.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoints {
    /// The series' labels.
    pub labels: LabelSet,
    /// `(t_ms, value)`, oldest first.
    pub points: Vec<(i64, f64)>,
}

/// Why a source could not answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// The expression is malformed or not allowed here (the rule is wrong).
    #[error("bad query: {0}")]
    BadQuery(String),
    /// Evaluation failed (timeout, storage error …); the rule may work later.
    #[error("query failed: {0}")]
    Failed(String),
}

/// Query access for rules. Calls block (they run on the engine's blocking
/// threads); implementations must be cheap to share.
pub trait Source: Send + Sync {
    /// Evaluates `expr` at `t_ms` as an instant vector (a scalar result is
    /// one sample without labels).
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<Sample>, SourceError>;

    /// Evaluates `expr` at every `step_ms` of `[start_ms, end_ms]`.
    fn range(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<SeriesPoints>, SourceError>;

    /// For a plain series selector (`metric{l="v"}`), the time of the
    /// newest sample of every series with a sample in `[start_ms, end_ms]`
    /// (what absence rules need: the instant vector would hide a gap
    /// behind the staleness lookback).
    fn last_seen(
        &self,
        selector: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(LabelSet, i64)>, SourceError>;

    /// Checks that `expr` parses (rules are validated when created).
    fn validate(&self, expr: &str) -> Result<(), SourceError> {
        let _ = expr;
        Ok(())
    }
}
