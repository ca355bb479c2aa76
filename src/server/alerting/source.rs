//! [`osprey_alerts::source::Source`] over the server's PromQL engine and
//! storage.

use std::sync::Arc;
use std::time::Duration;

use osprey_alerts::labels::LabelSet;
use osprey_alerts::source::{Sample, SeriesPoints, Source, SourceError};
use promql_parser::parser::Expr;

use crate::promql::engine::{instant_query_in, matcher_groups, parse, range_query_in};
use crate::promql::limits::Budget;
use crate::promql::value::is_stale_marker;
use crate::promql::{QueryError, QueryLimits, Value};
use crate::storage::{Labels, Matcher, Storage};

/// Rules read the server's own storage through its PromQL engine.
pub struct PromqlSource {
    storage: Arc<Storage>,
    limits: QueryLimits,
    restrict: Option<Matcher>,
}

impl PromqlSource {
    /// A source over `storage`; each rule query may run `timeout`.
    pub fn new(storage: Arc<Storage>, timeout: Duration) -> Self {
        Self {
            storage,
            limits: QueryLimits {
                timeout,
                ..QueryLimits::default()
            },
            restrict: None,
        }
    }

    /// The same source with every selector also matching `restrict` (a
    /// tenant's scope, for rule previews).
    pub fn restricted(mut self, restrict: Option<Matcher>) -> Self {
        self.restrict = restrict;
        self
    }
}

fn label_set(labels: &Labels) -> LabelSet {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn source_error(e: QueryError) -> SourceError {
    match e {
        QueryError::BadData(m) => SourceError::BadQuery(m),
        other => SourceError::Failed(other.to_string()),
    }
}

impl Source for PromqlSource {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<Sample>, SourceError> {
        let budget = Budget::start(self.limits);
        match instant_query_in(&self.storage, expr, t_ms, budget, self.restrict.clone())
            .map_err(source_error)?
        {
            Value::Vector(v) => Ok(v
                .into_iter()
                .map(|s| Sample {
                    labels: label_set(&s.labels),
                    value: s.v,
                })
                .collect()),
            Value::Scalar { v, .. } => Ok(vec![Sample {
                labels: LabelSet::new(),
                value: v,
            }]),
            other => Err(SourceError::BadQuery(format!(
                "the expression gives a {}; a rule needs an instant vector or a scalar",
                other.result_type()
            ))),
        }
    }

    fn range(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<SeriesPoints>, SourceError> {
        let budget = Budget::start(self.limits);
        let restrict = self.restrict.clone();
        match range_query_in(
            &self.storage,
            expr,
            start_ms,
            end_ms,
            step_ms,
            budget,
            restrict,
        )
        .map_err(source_error)?
        {
            Value::Matrix(m) => Ok(m
                .into_iter()
                .map(|s| SeriesPoints {
                    labels: label_set(&s.labels),
                    points: s.samples.iter().map(|p| (p.t, p.v)).collect(),
                })
                .collect()),
            other => Err(SourceError::BadQuery(format!(
                "a range query gave a {}",
                other.result_type()
            ))),
        }
    }

    fn last_seen(
        &self,
        selector: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(LabelSet, i64)>, SourceError> {
        let Expr::VectorSelector(vs) = parse(selector).map_err(source_error)? else {
            return Err(SourceError::BadQuery(format!(
                "{selector:?} is not a series selector (e.g. metric{{label=\"value\"}})"
            )));
        };
        let mut out: std::collections::BTreeMap<LabelSet, i64> = Default::default();
        for mut matchers in matcher_groups(&vs).map_err(source_error)? {
            matchers.extend(self.restrict.clone());
            let set = self
                .storage
                .select(&matchers, start_ms, end_ms)
                .map_err(|e| SourceError::Failed(e.to_string()))?;
            for s in set {
                let s = s.map_err(|e| SourceError::Failed(e.to_string()))?;
                // A staleness marker says the series ended: its last real
                // sample is what counts.
                if let Some(last) = s.samples.iter().rev().find(|p| !is_stale_marker(p.v)) {
                    let e = out.entry(label_set(&s.labels)).or_insert(last.t);
                    *e = (*e).max(last.t);
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    fn validate(&self, expr: &str) -> Result<(), SourceError> {
        parse(expr).map(|_| ()).map_err(source_error)
    }
}
