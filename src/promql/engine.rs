//! Evaluation of a parsed PromQL expression over the storage.
//!
//! Every sub-expression is evaluated once for all the steps of a query
//! ([`Evaluated`]): a selector reads its series from storage once, over the
//! whole time span the query needs, and then picks each step's sample from
//! memory. An instant query is a range query of one step.
//!
//! Semantics follow Prometheus 2.x: an instant selector takes, at each step
//! time `t` (moved by `@` and `offset`), the newest sample in
//! `[t - lookback, t]` unless that sample is a staleness marker; a range
//! selector takes the samples in `[t - range, t]`, staleness markers
//! dropped.

use promql_parser::label::MatchOp as ParserMatchOp;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, AtModifier, Expr, Offset, VectorSelector};

use super::limits::{Budget, QueryError, QueryLimits};
use super::value::{
    Evaluated, InstantSample, StepSeries, Value, drop_metric_name, is_stale_marker, present_samples,
};
use super::{aggregate, binary, functions};
use crate::storage::{Labels, MatchOp, Matcher, Sample, Series, Storage};

/// Step width of a subquery written without one (`x[1h:]`): Prometheus's
/// default evaluation interval.
pub const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// The evaluation times of a query: `start, start + step, …, ≤ end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steps {
    /// First evaluation time, milliseconds.
    pub start: i64,
    /// Last evaluation time (inclusive bound), milliseconds.
    pub end: i64,
    /// Distance between evaluation times, milliseconds (> 0).
    pub step: i64,
}

impl Steps {
    /// Number of evaluation times (0 when `end < start`).
    pub fn len(&self) -> usize {
        if self.end < self.start {
            0
        } else {
            ((self.end - self.start) / self.step) as usize + 1
        }
    }

    /// True when there is no evaluation time.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th evaluation time.
    pub fn time(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// All evaluation times.
    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(|i| self.time(i))
    }
}

/// A series and the sample an instant selector picked at each step.
pub type PickedSeries = (Labels, Vec<Option<Sample>>);

/// Parses a query, reporting syntax errors as `bad_data`.
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    if query.trim().is_empty() {
        return Err(QueryError::BadData("the query is empty".into()));
    }
    parser::parse(query).map_err(|e| QueryError::BadData(format!("parse error: {e}")))
}

/// Evaluates `query` at `t` (milliseconds).
pub fn instant_query(
    storage: &Storage,
    query: &str,
    t: i64,
    limits: QueryLimits,
) -> Result<Value, QueryError> {
    instant_query_in(storage, query, t, Budget::start(limits), None)
}

/// [`instant_query`] under a given budget (e.g. one that can be canceled),
/// every selector restricted by `restrict` too (a tenant's
/// [`crate::server::auth::Scope::matcher`]).
pub fn instant_query_in(
    storage: &Storage,
    query: &str,
    t: i64,
    budget: Budget,
    restrict: Option<Matcher>,
) -> Result<Value, QueryError> {
    let expr = parse(query)?;
    let ev = Evaluator::new(storage, &budget, t, t).restricted(restrict);
    let steps = Steps {
        start: t,
        end: t,
        step: 1,
    };
    Ok(match ev.eval(&expr, &steps)? {
        Evaluated::Scalar(v) => Value::Scalar { t, v: v[0] },
        Evaluated::String(s) => Value::String { t, s },
        Evaluated::Matrix(m) => Value::Matrix(m),
        Evaluated::Vector(series) => Value::Vector(
            series
                .into_iter()
                .filter_map(|s| {
                    s.values[0].map(|v| InstantSample {
                        labels: s.labels,
                        t,
                        v,
                    })
                })
                .collect(),
        ),
    })
}

/// Evaluates `query` at every step of `[start, end]`; the result is a
/// matrix with the series sorted by labels.
pub fn range_query(
    storage: &Storage,
    query: &str,
    start: i64,
    end: i64,
    step: i64,
    limits: QueryLimits,
) -> Result<Value, QueryError> {
    range_query_in(
        storage,
        query,
        start,
        end,
        step,
        Budget::start(limits),
        None,
    )
}

/// [`range_query`] under a given budget (e.g. one that can be canceled),
/// every selector restricted by `restrict` too.
pub fn range_query_in(
    storage: &Storage,
    query: &str,
    start: i64,
    end: i64,
    step: i64,
    budget: Budget,
    restrict: Option<Matcher>,
) -> Result<Value, QueryError> {
    if step <= 0 {
        return Err(QueryError::BadData(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
                .into(),
        ));
    }
    if end < start {
        return Err(QueryError::BadData(
            "end timestamp must not be before start time".into(),
        ));
    }
    let expr = parse(query)?;
    match expr.value_type() {
        ValueType::Scalar | ValueType::Vector => {}
        other => {
            let name = if other == ValueType::Matrix {
                "range vector"
            } else {
                "string"
            };
            return Err(QueryError::BadData(format!(
                "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
            )));
        }
    }
    let ev = Evaluator::new(storage, &budget, start, end).restricted(restrict);
    let steps = Steps { start, end, step };
    let mut out: Vec<Series> = match ev.eval(&expr, &steps)? {
        Evaluated::Scalar(v) => vec![Series {
            labels: Labels::default(),
            samples: present_samples(&v.into_iter().map(Some).collect::<Vec<_>>(), steps.times()),
        }],
        Evaluated::Vector(series) => series
            .into_iter()
            .map(|s| Series {
                samples: present_samples(&s.values, steps.times()),
                labels: s.labels,
            })
            .filter(|s| !s.samples.is_empty())
            .collect(),
        other => {
            return Err(QueryError::BadData(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                other.type_name()
            )));
        }
    };
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(Value::Matrix(out))
}

/// A range vector argument: series with their samples (staleness markers
/// removed) and how to place the window of each step.
#[derive(Debug)]
pub struct RangeInput {
    /// The series and their samples, oldest first.
    pub series: Vec<Series>,
    /// Window length, milliseconds.
    pub range: i64,
    /// Fixed evaluation time from `@`, milliseconds.
    pub at: Option<i64>,
    /// `offset`, milliseconds.
    pub offset: i64,
}

impl RangeInput {
    /// The end of the window of the step at `t`.
    pub fn window_end(&self, t: i64) -> i64 {
        self.at.unwrap_or(t) - self.offset
    }

    /// Calls `f(step index, samples in [end - range, end], end)` for every
    /// step, for one series.
    pub fn for_each_window(
        &self,
        steps: &Steps,
        samples: &[Sample],
        mut f: impl FnMut(usize, &[Sample], i64),
    ) {
        let (mut lo, mut hi) = (0usize, 0usize);
        for i in 0..steps.len() {
            let end = self.window_end(steps.time(i));
            let start = end - self.range;
            while hi < samples.len() && samples[hi].t <= end {
                hi += 1;
            }
            while lo < hi && samples[lo].t < start {
                lo += 1;
            }
            f(i, &samples[lo..hi.max(lo)], end);
        }
    }
}

/// Evaluates expressions for one query.
pub struct Evaluator<'a> {
    /// Where the samples are.
    pub storage: &'a Storage,
    /// The query's limits and account.
    pub budget: &'a Budget,
    /// Lookback of instant selectors, milliseconds.
    pub lookback: i64,
    /// `start()` of the `@` modifier: the query's first evaluation time.
    pub query_start: i64,
    /// `end()` of the `@` modifier: the query's last evaluation time.
    pub query_end: i64,
    /// A matcher every selector gets besides its own (a tenant's scope):
    /// series it rejects are never read.
    pub restrict: Option<Matcher>,
}

impl<'a> Evaluator<'a> {
    /// An evaluator for a query spanning `[query_start, query_end]`.
    pub fn new(storage: &'a Storage, budget: &'a Budget, query_start: i64, query_end: i64) -> Self {
        Self {
            storage,
            budget,
            lookback: budget.limits().lookback.as_millis() as i64,
            query_start,
            query_end,
            restrict: None,
        }
    }

    /// The same evaluator with every selector also matching `restrict`.
    pub fn restricted(mut self, restrict: Option<Matcher>) -> Self {
        self.restrict = restrict;
        self
    }

    /// The storage matcher sets of a selector, each with the restriction
    /// added: what every read of the storage goes through.
    pub fn selector_groups(&self, vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, QueryError> {
        let mut groups = matcher_groups(vs)?;
        if let Some(r) = &self.restrict {
            for g in &mut groups {
                g.push(r.clone());
            }
        }
        Ok(groups)
    }

    /// Evaluates `expr` at every step of `steps`.
    pub fn eval(&self, expr: &Expr, steps: &Steps) -> Result<Evaluated, QueryError> {
        self.budget.check_time("evaluation")?;
        match expr {
            Expr::NumberLiteral(n) => Ok(Evaluated::Scalar(vec![n.val; steps.len()])),
            Expr::StringLiteral(s) => Ok(Evaluated::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, steps),
            Expr::Unary(u) => match self.eval(&u.expr, steps)? {
                Evaluated::Scalar(v) => Ok(Evaluated::Scalar(v.into_iter().map(|x| -x).collect())),
                Evaluated::Vector(series) => Ok(Evaluated::Vector(merge_same_labels(
                    series
                        .into_iter()
                        .map(|s| StepSeries {
                            labels: drop_metric_name(&s.labels),
                            values: s.values.into_iter().map(|v| v.map(|x| -x)).collect(),
                        })
                        .collect(),
                )?)),
                other => Err(QueryError::BadData(format!(
                    "unary minus is not defined on a {}",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => Ok(Evaluated::Vector(
                self.instant_selector(vs, steps)?
                    .into_iter()
                    .map(|(labels, picked)| StepSeries {
                        labels,
                        values: picked.into_iter().map(|p| p.map(|s| s.v)).collect(),
                    })
                    .collect(),
            )),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                if steps.len() != 1 {
                    return Err(QueryError::BadData(
                        "a range vector can only be the result of an instant query".into(),
                    ));
                }
                let input = self.range_input(expr, steps)?;
                let mut out = Vec::new();
                for s in &input.series {
                    input.for_each_window(steps, &s.samples, |_, w, _| {
                        if !w.is_empty() {
                            out.push(Series {
                                labels: s.labels.clone(),
                                samples: w.to_vec(),
                            });
                        }
                    });
                }
                Ok(Evaluated::Matrix(out))
            }
            Expr::Call(call) => functions::call(self, call, steps),
            Expr::Aggregate(agg) => aggregate::eval(self, agg, steps),
            Expr::Binary(bin) => binary::eval(self, bin, steps),
            Expr::Extension(e) => Err(QueryError::BadData(format!(
                "the extension expression {} is not supported",
                e.expr.name()
            ))),
        }
    }

    /// Evaluates an expression that must be a scalar, per step.
    pub fn eval_scalar(&self, expr: &Expr, steps: &Steps) -> Result<Vec<f64>, QueryError> {
        match self.eval(expr, steps)? {
            Evaluated::Scalar(v) => Ok(v),
            other => Err(QueryError::BadData(format!(
                "expected a scalar, got {} in {expr}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates an expression that must be an instant vector.
    pub fn eval_vector(&self, expr: &Expr, steps: &Steps) -> Result<Vec<StepSeries>, QueryError> {
        match self.eval(expr, steps)? {
            Evaluated::Vector(v) => Ok(v),
            other => Err(QueryError::BadData(format!(
                "expected an instant vector, got {} in {expr}",
                other.type_name()
            ))),
        }
    }

    /// The evaluation time an `@` modifier fixes, if any.
    pub fn at_time(&self, at: &Option<AtModifier>) -> Option<i64> {
        at.as_ref().map(|at| match at {
            AtModifier::Start => self.query_start,
            AtModifier::End => self.query_end,
            AtModifier::At(time) => match time.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => d.as_millis() as i64,
                Err(e) => -(e.duration().as_millis() as i64),
            },
        })
    }

    /// Reads the series a selector matches, with samples in `[mint, maxt]`.
    pub fn fetch(
        &self,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let groups = self.selector_groups(vs)?;
        let mut out: Vec<Series> = Vec::new();
        for matchers in &groups {
            for s in self.storage.select(matchers, mint, maxt)? {
                let s = s?;
                self.budget.take_series(s.samples.len())?;
                out.push(s);
            }
        }
        if groups.len() > 1 {
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            out.dedup_by(|a, b| a.labels == b.labels);
        }
        self.budget.check_time("reading the storage")?;
        Ok(out)
    }

    /// An instant selector: per series, the sample picked at each step.
    pub fn instant_selector(
        &self,
        vs: &VectorSelector,
        steps: &Steps,
    ) -> Result<Vec<PickedSeries>, QueryError> {
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        let at = self.at_time(&vs.at);
        let offset = offset_ms(&vs.offset);
        let ts = |t: i64| at.unwrap_or(t) - offset;
        let (first, last) = (ts(steps.start), ts(steps.time(steps.len() - 1)));
        let series = self.fetch(vs, first.min(last) - self.lookback, first.max(last))?;
        let mut out = Vec::with_capacity(series.len());
        for (n, s) in series.into_iter().enumerate() {
            if n % 256 == 255 {
                self.budget.check_time("an instant selector")?;
            }
            let samples = &s.samples;
            let mut picked = Vec::with_capacity(steps.len());
            let mut j = 0usize;
            let mut any = false;
            for t in steps.times() {
                let t = ts(t);
                while j < samples.len() && samples[j].t <= t {
                    j += 1;
                }
                let p = (j > 0)
                    .then(|| samples[j - 1])
                    .filter(|p| p.t >= t - self.lookback && !is_stale_marker(p.v));
                any |= p.is_some();
                picked.push(p);
            }
            if any {
                out.push((s.labels, picked));
            }
        }
        Ok(out)
    }

    /// A range vector argument (`x[5m]` or a subquery `expr[1h:1m]`).
    pub fn range_input(&self, expr: &Expr, steps: &Steps) -> Result<RangeInput, QueryError> {
        match expr {
            Expr::Paren(p) => self.range_input(&p.expr, steps),
            Expr::MatrixSelector(ms) => {
                let at = self.at_time(&ms.vs.at);
                let offset = offset_ms(&ms.vs.offset);
                let range = ms.range.as_millis() as i64;
                let mut input = RangeInput {
                    series: Vec::new(),
                    range,
                    at,
                    offset,
                };
                if steps.is_empty() {
                    return Ok(input);
                }
                let (first, last) = (
                    input.window_end(steps.start),
                    input.window_end(steps.time(steps.len() - 1)),
                );
                let mut series = self.fetch(&ms.vs, first.min(last) - range, first.max(last))?;
                for s in &mut series {
                    s.samples.retain(|p| !is_stale_marker(p.v));
                }
                series.retain(|s| !s.samples.is_empty());
                input.series = series;
                Ok(input)
            }
            Expr::Subquery(sq) => {
                let at = self.at_time(&sq.at);
                let offset = offset_ms(&sq.offset);
                let range = sq.range.as_millis() as i64;
                let step = sq
                    .step
                    .map(|d| d.as_millis() as i64)
                    .filter(|s| *s > 0)
                    .unwrap_or(DEFAULT_SUBQUERY_STEP_MS);
                let mut input = RangeInput {
                    series: Vec::new(),
                    range,
                    at,
                    offset,
                };
                if steps.is_empty() {
                    return Ok(input);
                }
                let (first, last) = (
                    input.window_end(steps.start),
                    input.window_end(steps.time(steps.len() - 1)),
                );
                let mint = first.min(last) - range;
                let mut start = mint.div_euclid(step) * step;
                if start < mint {
                    start += step;
                }
                let inner = Steps {
                    start,
                    end: first.max(last),
                    step,
                };
                let series = match self.eval(&sq.expr, &inner)? {
                    Evaluated::Vector(v) => v,
                    Evaluated::Scalar(v) => vec![StepSeries {
                        labels: Labels::default(),
                        values: v.into_iter().map(Some).collect(),
                    }],
                    other => {
                        return Err(QueryError::BadData(format!(
                            "subquery is only allowed on an instant vector, got {}",
                            other.type_name()
                        )));
                    }
                };
                input.series = series
                    .into_iter()
                    .map(|s| Series {
                        samples: present_samples(&s.values, inner.times()),
                        labels: s.labels,
                    })
                    .filter(|s| !s.samples.is_empty())
                    .collect();
                Ok(input)
            }
            other => Err(QueryError::BadData(format!(
                "expected a range vector (a selector with [range] or a subquery), got {other}"
            ))),
        }
    }
}

/// `offset` in milliseconds (negative offsets look ahead).
pub fn offset_ms(offset: &Option<Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

/// The storage matchers of a selector: one set, or one per `or` branch.
pub fn matcher_groups(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, QueryError> {
    let convert = |list: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>, QueryError> {
        let mut out = Vec::with_capacity(list.len() + 1);
        if let Some(name) = &vs.name {
            out.push(Matcher::eq(crate::storage::METRIC_NAME, name.clone()));
        }
        for m in list {
            let op = match m.op {
                ParserMatchOp::Equal => MatchOp::Equal,
                ParserMatchOp::NotEqual => MatchOp::NotEqual,
                ParserMatchOp::Re(_) => MatchOp::RegexMatch,
                ParserMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
            };
            out.push(
                Matcher::new(op, m.name.clone(), m.value.clone())
                    .map_err(|e| QueryError::BadData(e.to_string()))?,
            );
        }
        Ok(out)
    };
    if vs.matchers.or_matchers.is_empty() {
        Ok(vec![convert(&vs.matchers.matchers)?])
    } else {
        vs.matchers
            .or_matchers
            .iter()
            .map(|group| {
                let mut all = group.clone();
                all.extend(vs.matchers.matchers.iter().cloned());
                convert(&all)
            })
            .collect()
    }
}

/// Merges series that ended up with the same labels (after the metric name
/// was dropped, say). They may share a label set only where they have
/// values at different steps, as in Prometheus; otherwise the query fails.
pub fn merge_same_labels(mut series: Vec<StepSeries>) -> Result<Vec<StepSeries>, QueryError> {
    if series.len() < 2 {
        return Ok(series);
    }
    let mut sorted = true;
    for w in series.windows(2) {
        match w[0].labels.cmp(&w[1].labels) {
            std::cmp::Ordering::Less => {}
            std::cmp::Ordering::Equal => {
                sorted = false;
                break;
            }
            std::cmp::Ordering::Greater => {
                sorted = false;
                break;
            }
        }
    }
    if sorted {
        return Ok(series);
    }
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut out: Vec<StepSeries> = Vec::with_capacity(series.len());
    for s in series {
        match out.last_mut() {
            Some(prev) if prev.labels == s.labels => {
                for (a, b) in prev.values.iter_mut().zip(s.values) {
                    if b.is_some() {
                        if a.is_some() {
                            return Err(QueryError::Execution(format!(
                                "vector cannot contain metrics with the same labelset {}",
                                s.labels
                            )));
                        }
                        *a = b;
                    }
                }
            }
            _ => out.push(s),
        }
    }
    Ok(out)
}
