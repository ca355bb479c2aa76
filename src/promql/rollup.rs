//! Long ranges answered from the storage's rollups.
//!
//! `max_over_time(x[1d])` over a month at a one-day step reads 8640 raw samples
//! per window; the 1-hour rollup holds the same window in 24 buckets. A
//! PromQL range `[t - r, t]` is closed at both ends (Prometheus 2.x), so when
//! `t` and `r` are multiples of a rollup width `w` the window is exactly the
//! whole buckets starting in `[t - r, t)` plus the one sample that may sit at
//! `t` itself — the first sample of the bucket starting at `t`, which the
//! rollup keeps with its timestamp. The answer is then the one the raw samples
//! give, up to the order of floating-point additions:
//!
//! - `min`, `max`, `sum`, `count`, `avg` and `last_over_time` from the bucket
//!   columns (staleness markers are not in the rollups, as they are not in
//!   range vectors);
//! - `rate`, `increase` and `delta` from the first and last samples with
//!   their timestamps, the sample count and the reset sum, extrapolated as
//!   Prometheus does.
//!
//! Anything else (other functions, subqueries, windows or steps off the
//! bucket grid, ranges shorter than [`MIN_BUCKETS`] buckets, rollups turned
//! off) reads raw samples.

use promql_parser::parser::{Expr, MatrixSelector};

use super::engine::{Evaluator, Steps, merge_same_labels, offset_ms};
use super::functions::{RangeFunction, extrapolate};
use super::limits::QueryError;
use super::value::{Evaluated, StepSeries, drop_metric_name};
use crate::storage::rollup::{Bucket, Columns, RESOLUTIONS, reset_at};
use crate::storage::{Labels, Sample};

/// A window must span at least this many buckets for the rollup to be read:
/// below it, raw samples are cheap enough.
pub const MIN_BUCKETS: i64 = 4;

/// Evaluates `f(arg)` from rollups when the answer is the same as from raw
/// samples; `None` when it would not be (the caller reads raw samples).
pub fn over_rollups(
    ev: &Evaluator<'_>,
    f: RangeFunction,
    arg: &Expr,
    steps: &Steps,
) -> Result<Option<Evaluated>, QueryError> {
    if !supported(f) || steps.is_empty() || !ev.storage.options().rollups {
        return Ok(None);
    }
    let Some(ms) = matrix_selector(arg) else {
        return Ok(None);
    };
    let range = ms.range.as_millis() as i64;
    let at = ev.at_time(&ms.vs.at);
    let offset = offset_ms(&ms.vs.offset);
    let end_of = |t: i64| at.unwrap_or(t) - offset;
    let first_end = end_of(steps.start);
    let last_end = end_of(steps.time(steps.len() - 1));
    let Some(width) = RESOLUTIONS.iter().rev().copied().find(|&w| {
        range % w == 0
            && range / w >= MIN_BUCKETS
            && first_end.rem_euclid(w) == 0
            && (at.is_some() || steps.len() == 1 || steps.step % w == 0)
    }) else {
        return Ok(None);
    };

    let mut series: Vec<(Labels, Vec<Bucket>)> = Vec::new();
    let groups = ev.selector_groups(&ms.vs)?;
    let (lo, hi) = (first_end.min(last_end), first_end.max(last_end));
    for matchers in &groups {
        let read = ev
            .storage
            .select_rollup_columns(matchers, lo - range, hi, width, columns(f))?;
        for (labels, buckets) in read {
            ev.budget.take_series(buckets.len())?;
            series.push((labels, buckets));
        }
    }
    if groups.len() > 1 {
        series.sort_by(|a, b| a.0.cmp(&b.0));
        series.dedup_by(|a, b| a.0 == b.0);
    }
    ev.budget.check_time("reading rollups")?;

    let range_s = range as f64 / 1000.0;
    let mut out = Vec::with_capacity(series.len());
    for (n, (labels, buckets)) in series.into_iter().enumerate() {
        if n % 256 == 255 {
            ev.budget.check_time("a range function over rollups")?;
        }
        let mut values = vec![None; steps.len()];
        let mut any = false;
        let (mut lo, mut hi) = (0usize, 0usize);
        for (i, t) in steps.times().enumerate() {
            let end = end_of(t);
            let start = end - range;
            // With `@` every step has the same window; the pointers stay put.
            while hi < buckets.len() && buckets[hi].t < end {
                hi += 1;
            }
            while lo < hi && buckets[lo].t < start {
                lo += 1;
            }
            let edge = buckets
                .get(hi)
                .filter(|b| b.t == end && b.first_t == end)
                .map(|b| Sample::new(b.first_t, b.first));
            let Some(w) = Window::of(&buckets[lo..hi.max(lo)], edge) else {
                continue;
            };
            values[i] = w.apply(f, start, end, range_s);
            any |= values[i].is_some();
        }
        if any {
            out.push(StepSeries {
                labels: if f == RangeFunction::LastOverTime {
                    labels
                } else {
                    drop_metric_name(&labels)
                },
                values,
            });
        }
    }
    Ok(Some(Evaluated::Vector(merge_same_labels(out)?)))
}

fn supported(f: RangeFunction) -> bool {
    use RangeFunction::*;
    matches!(
        f,
        MinOverTime
            | MaxOverTime
            | SumOverTime
            | CountOverTime
            | AvgOverTime
            | LastOverTime
            | Rate
            | Increase
            | Delta
    )
}

/// The rollup columns `f` reads (the edge sample needs the first-sample ones).
fn columns(f: RangeFunction) -> Columns {
    use RangeFunction::*;
    let edge = Columns::FIRST;
    match f {
        MinOverTime => Columns::MIN.with(edge),
        MaxOverTime => Columns::MAX.with(edge),
        SumOverTime | AvgOverTime => Columns::SUM_COUNT.with(edge),
        CountOverTime => Columns::COUNT.with(edge),
        LastOverTime => Columns::LAST.with(edge),
        _ => Columns::COUNTER,
    }
}

fn matrix_selector(e: &Expr) -> Option<&MatrixSelector> {
    match e {
        Expr::Paren(p) => matrix_selector(&p.expr),
        Expr::MatrixSelector(ms) => Some(ms),
        _ => None,
    }
}

/// The summary of one window: whole buckets plus the sample on its closing
/// edge.
struct Window {
    first: Sample,
    last: Sample,
    count: f64,
    sum: f64,
    min: f64,
    max: f64,
    /// Prometheus's counter change: `last - first` plus the value before
    /// each drop.
    counter_change: f64,
}

impl Window {
    fn of(buckets: &[Bucket], edge: Option<Sample>) -> Option<Window> {
        let mut w: Option<Window> = None;
        let mut resets = 0.0;
        let mut add = |w: &mut Option<Window>, b: &Bucket| match w {
            None => {
                *w = Some(Window {
                    first: Sample::new(b.first_t, b.first),
                    last: Sample::new(b.last_t, b.last),
                    count: b.count,
                    sum: b.sum,
                    min: b.min,
                    max: b.max,
                    counter_change: 0.0,
                });
                resets += b.resets;
            }
            Some(x) => {
                resets += reset_at(x.last.v, b.first) + b.resets;
                x.last = Sample::new(b.last_t, b.last);
                x.count += b.count;
                x.sum += b.sum;
                // As Prometheus folds: a NaN so far is replaced, a NaN later is not taken.
                if b.min < x.min || x.min.is_nan() {
                    x.min = b.min;
                }
                if b.max > x.max || x.max.is_nan() {
                    x.max = b.max;
                }
            }
        };
        for b in buckets {
            add(&mut w, b);
        }
        if let Some(e) = edge {
            add(&mut w, &Bucket::of(e.t, e));
        }
        let mut w = w?;
        w.counter_change = w.last.v - w.first.v + resets;
        Some(w)
    }

    fn apply(&self, f: RangeFunction, start: i64, end: i64, range_s: f64) -> Option<f64> {
        use RangeFunction::*;
        let n = self.count as usize;
        match f {
            MinOverTime => Some(self.min),
            MaxOverTime => Some(self.max),
            SumOverTime => Some(self.sum),
            CountOverTime => Some(self.count),
            AvgOverTime => Some(self.sum / self.count),
            LastOverTime => Some(self.last.v),
            Rate => extrapolate(
                self.first,
                self.last,
                n,
                self.counter_change,
                start,
                end,
                true,
                Some(range_s),
            ),
            Increase => extrapolate(
                self.first,
                self.last,
                n,
                self.counter_change,
                start,
                end,
                true,
                None,
            ),
            Delta => extrapolate(
                self.first,
                self.last,
                n,
                self.last.v - self.first.v,
                start,
                end,
                false,
                None,
            ),
            _ => None,
        }
    }
}
