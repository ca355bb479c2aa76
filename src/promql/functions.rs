//! PromQL functions: those over range vectors (`rate`, `*_over_time` …),
//! element-wise math, label manipulation, `histogram_quantile` and the
//! rest, with Prometheus 2.x's arithmetic.

use promql_parser::parser::{Call, Expr};
use regex::Regex;

use super::engine::{Evaluator, RangeInput, Steps, merge_same_labels};
use super::limits::QueryError;
use super::value::{Evaluated, StepSeries, drop_metric_name, set_label};
use crate::storage::{Labels, METRIC_NAME, Sample};

/// Evaluates a function call.
pub fn call(ev: &Evaluator<'_>, call: &Call, steps: &Steps) -> Result<Evaluated, QueryError> {
    let name = call.func.name;
    let args: Vec<&Expr> = call.args.args.iter().map(|a| a.as_ref()).collect();
    let arg = |i: usize| -> Result<&Expr, QueryError> {
        args.get(i).copied().ok_or_else(|| {
            QueryError::BadData(format!("{name}() is missing its argument {}", i + 1))
        })
    };
    let n = steps.len();
    match name {
        "time" => Ok(Evaluated::Scalar(
            steps.times().map(|t| t as f64 / 1000.0).collect(),
        )),
        "vector" => {
            let v = ev.eval_scalar(arg(0)?, steps)?;
            Ok(Evaluated::Vector(vec![StepSeries {
                labels: Labels::default(),
                values: v.into_iter().map(Some).collect(),
            }]))
        }
        "scalar" => {
            let series = ev.eval_vector(arg(0)?, steps)?;
            let mut out = vec![f64::NAN; n];
            for (i, o) in out.iter_mut().enumerate() {
                let mut present = series.iter().filter_map(|s| s.values[i]);
                if let (Some(v), None) = (present.next(), present.next()) {
                    *o = v;
                }
            }
            Ok(Evaluated::Scalar(out))
        }
        "abs" | "ceil" | "floor" | "sqrt" | "exp" | "ln" | "log2" | "log10" | "sgn" => {
            let f: fn(f64) -> f64 = match name {
                "abs" => f64::abs,
                "ceil" => f64::ceil,
                "floor" => f64::floor,
                "sqrt" => f64::sqrt,
                "exp" => f64::exp,
                "ln" => f64::ln,
                "log2" => f64::log2,
                "log10" => f64::log10,
                _ => |x: f64| {
                    if x > 0.0 {
                        1.0
                    } else if x < 0.0 {
                        -1.0
                    } else {
                        x
                    }
                },
            };
            map_values(ev.eval_vector(arg(0)?, steps)?, |_, x| Some(f(x)))
        }
        "round" => {
            let to = match args.get(1) {
                Some(e) => ev.eval_scalar(e, steps)?,
                None => vec![1.0; n],
            };
            map_values(ev.eval_vector(arg(0)?, steps)?, |i, x| {
                let inv = 1.0 / to[i];
                Some((x * inv + 0.5).floor() / inv)
            })
        }
        "clamp" => {
            let lo = ev.eval_scalar(arg(1)?, steps)?;
            let hi = ev.eval_scalar(arg(2)?, steps)?;
            map_values(ev.eval_vector(arg(0)?, steps)?, |i, x| {
                (hi[i] >= lo[i]).then(|| x.max(lo[i]).min(hi[i]))
            })
        }
        "clamp_min" => {
            let lo = ev.eval_scalar(arg(1)?, steps)?;
            map_values(ev.eval_vector(arg(0)?, steps)?, |i, x| Some(x.max(lo[i])))
        }
        "clamp_max" => {
            let hi = ev.eval_scalar(arg(1)?, steps)?;
            map_values(ev.eval_vector(arg(0)?, steps)?, |i, x| Some(x.min(hi[i])))
        }
        "timestamp" => timestamp(ev, arg(0)?, steps),
        "absent" => {
            let series = ev.eval_vector(arg(0)?, steps)?;
            let values = (0..n)
                .map(|i| (!series.iter().any(|s| s.values[i].is_some())).then_some(1.0))
                .collect();
            Ok(absent_result(arg(0)?, values))
        }
        "absent_over_time" => {
            let input = ev.range_input(arg(0)?, steps)?;
            let mut seen = vec![false; n];
            for s in &input.series {
                input.for_each_window(steps, &s.samples, |i, w, _| seen[i] |= !w.is_empty());
            }
            let values = seen.into_iter().map(|s| (!s).then_some(1.0)).collect();
            Ok(absent_result(arg(0)?, values))
        }
        "sort" | "sort_desc" => {
            let mut series = ev.eval_vector(arg(0)?, steps)?;
            if n == 1 {
                let key = |s: &StepSeries| s.values[0].unwrap_or(f64::NAN);
                series.sort_by(|a, b| {
                    let (x, y) = (key(a), key(b));
                    let ord = x
                        .partial_cmp(&y)
                        .unwrap_or_else(|| y.is_nan().cmp(&x.is_nan()));
                    if name == "sort" {
                        ord.then(x.is_nan().cmp(&y.is_nan()))
                    } else {
                        ord.reverse().then(x.is_nan().cmp(&y.is_nan()))
                    }
                });
            }
            Ok(Evaluated::Vector(series))
        }
        "label_replace" => label_replace(ev, &args, steps),
        "label_join" => label_join(ev, &args, steps),
        "histogram_quantile" => histogram_quantile(ev, &args, steps),
        "quantile_over_time" => {
            let q = ev.eval_scalar(arg(0)?, steps)?;
            let input = ev.range_input(arg(1)?, steps)?;
            over_windows(ev, &input, steps, true, |i, w, _| {
                Some(quantile(
                    q[i],
                    &mut w.iter().map(|s| s.v).collect::<Vec<_>>(),
                ))
            })
        }
        "predict_linear" => {
            let input = ev.range_input(arg(0)?, steps)?;
            let ahead = ev.eval_scalar(arg(1)?, steps)?;
            over_windows(ev, &input, steps, true, |i, w, end| {
                if w.len() < 2 {
                    return None;
                }
                let (slope, intercept) = linear_regression(w, end);
                Some(slope * ahead[i] + intercept)
            })
        }
        _ => match RangeFunction::from_name(name) {
            Some(f) => {
                if let Some(answer) = super::rollup::over_rollups(ev, f, arg(0)?, steps)? {
                    return Ok(answer);
                }
                let input = ev.range_input(arg(0)?, steps)?;
                let range_s = input.range as f64 / 1000.0;
                let range = input.range;
                over_windows(
                    ev,
                    &input,
                    steps,
                    f != RangeFunction::LastOverTime,
                    |_, w, end| f.apply(w, end - range, end, range_s),
                )
            }
            None => Err(QueryError::BadData(format!(
                "function {name}() is not supported by this server"
            ))),
        },
    }
}

/// Applies `f(step, value)` to every present value; drops the metric name.
fn map_values(
    series: Vec<StepSeries>,
    f: impl Fn(usize, f64) -> Option<f64>,
) -> Result<Evaluated, QueryError> {
    let out = series
        .into_iter()
        .map(|s| StepSeries {
            labels: drop_metric_name(&s.labels),
            values: s
                .values
                .into_iter()
                .enumerate()
                .map(|(i, v)| v.and_then(|x| f(i, x)))
                .collect(),
        })
        .collect();
    Ok(Evaluated::Vector(merge_same_labels(out)?))
}

/// Applies `f(step, window, window end)` to every window of every series.
fn over_windows(
    ev: &Evaluator<'_>,
    input: &RangeInput,
    steps: &Steps,
    drop_name: bool,
    mut f: impl FnMut(usize, &[Sample], i64) -> Option<f64>,
) -> Result<Evaluated, QueryError> {
    let mut out = Vec::with_capacity(input.series.len());
    for (n, s) in input.series.iter().enumerate() {
        if n % 256 == 255 {
            ev.budget.check_time("a range function")?;
        }
        let mut values = vec![None; steps.len()];
        let mut any = false;
        input.for_each_window(steps, &s.samples, |i, w, end| {
            if !w.is_empty() {
                values[i] = f(i, w, end);
                any |= values[i].is_some();
            }
        });
        if any {
            out.push(StepSeries {
                labels: if drop_name {
                    drop_metric_name(&s.labels)
                } else {
                    s.labels.clone()
                },
                values,
            });
        }
    }
    Ok(Evaluated::Vector(merge_same_labels(out)?))
}

/// The functions of one range-vector argument that look only at a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeFunction {
    /// `rate`
    Rate,
    /// `increase`
    Increase,
    /// `delta`
    Delta,
    /// `irate`
    Irate,
    /// `idelta`
    Idelta,
    /// `deriv`
    Deriv,
    /// `resets`
    Resets,
    /// `changes`
    Changes,
    /// `avg_over_time`
    AvgOverTime,
    /// `min_over_time`
    MinOverTime,
    /// `max_over_time`
    MaxOverTime,
    /// `sum_over_time`
    SumOverTime,
    /// `count_over_time`
    CountOverTime,
    /// `last_over_time`
    LastOverTime,
    /// `stddev_over_time`
    StddevOverTime,
    /// `stdvar_over_time`
    StdvarOverTime,
    /// `present_over_time`
    PresentOverTime,
}

impl RangeFunction {
    /// The function of this name.
    pub fn from_name(name: &str) -> Option<Self> {
        use RangeFunction::*;
        Some(match name {
            "rate" => Rate,
            "increase" => Increase,
            "delta" => Delta,
            "irate" => Irate,
            "idelta" => Idelta,
            "deriv" => Deriv,
            "resets" => Resets,
            "changes" => Changes,
            "avg_over_time" => AvgOverTime,
            "min_over_time" => MinOverTime,
            "max_over_time" => MaxOverTime,
            "sum_over_time" => SumOverTime,
            "count_over_time" => CountOverTime,
            "last_over_time" => LastOverTime,
            "stddev_over_time" => StddevOverTime,
            "stdvar_over_time" => StdvarOverTime,
            "present_over_time" => PresentOverTime,
            _ => return None,
        })
    }

    /// The value over the (non-empty) window `w` of `[start, end]`.
    pub fn apply(self, w: &[Sample], start: i64, end: i64, range_s: f64) -> Option<f64> {
        use RangeFunction::*;
        let last = w[w.len() - 1];
        match self {
            Rate => extrapolated_rate(w, start, end, true, Some(range_s)),
            Increase => extrapolated_rate(w, start, end, true, None),
            Delta => extrapolated_rate(w, start, end, false, None),
            Irate | Idelta => {
                if w.len() < 2 {
                    return None;
                }
                let prev = w[w.len() - 2];
                let dt = (last.t - prev.t) as f64 / 1000.0;
                if dt == 0.0 {
                    return None;
                }
                if self == Idelta {
                    Some(last.v - prev.v)
                } else if last.v < prev.v {
                    Some(last.v / dt)
                } else {
                    Some((last.v - prev.v) / dt)
                }
            }
            Deriv => (w.len() >= 2).then(|| linear_regression(w, w[0].t).0),
            Resets => Some(w.windows(2).filter(|p| p[1].v < p[0].v).count() as f64),
            Changes => Some(
                w.windows(2)
                    .filter(|p| p[1].v != p[0].v && !(p[1].v.is_nan() && p[0].v.is_nan()))
                    .count() as f64,
            ),
            AvgOverTime => {
                let mut mean = 0.0f64;
                let mut count = 0.0;
                for s in w {
                    count += 1.0;
                    if mean.is_infinite() {
                        if s.v.is_infinite() && (mean > 0.0) == (s.v > 0.0) {
                            continue;
                        }
                        if !s.v.is_infinite() && !s.v.is_nan() {
                            continue;
                        }
                    }
                    mean += s.v / count - mean / count;
                }
                Some(mean)
            }
            MinOverTime => Some(
                w.iter()
                    .fold(w[0].v, |m, s| if s.v < m || m.is_nan() { s.v } else { m }),
            ),
            MaxOverTime => Some(
                w.iter()
                    .fold(w[0].v, |m, s| if s.v > m || m.is_nan() { s.v } else { m }),
            ),
            SumOverTime => Some(w.iter().map(|s| s.v).sum()),
            CountOverTime => Some(w.len() as f64),
            LastOverTime => Some(last.v),
            PresentOverTime => Some(1.0),
            StddevOverTime | StdvarOverTime => {
                let (mut count, mut mean, mut aux) = (0.0, 0.0, 0.0);
                for s in w {
                    count += 1.0;
                    let delta = s.v - mean;
                    mean += delta / count;
                    aux += delta * (s.v - mean);
                }
                let var = aux / count;
                Some(if self == StddevOverTime {
                    var.sqrt()
                } else {
                    var
                })
            }
        }
    }
}

/// `rate`, `increase` and `delta`: the change over the window, extrapolated
/// towards the window's edges as Prometheus does (not beyond half an
/// average sample interval past the first and last samples, and for
/// counters not below zero); `per_second` divides by the range.
fn extrapolated_rate(
    w: &[Sample],
    start: i64,
    end: i64,
    counter: bool,
    per_second: Option<f64>,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.v - first.v;
    if counter {
        let mut prev = 0.0;
        for s in w {
            if s.v < prev {
                result += prev;
            }
            prev = s.v;
        }
    }
    extrapolate(
        first,
        last,
        w.len(),
        result,
        start,
        end,
        counter,
        per_second,
    )
}

/// The extrapolation of [`extrapolated_rate`] from a window's summary: its first and last
/// samples, how many samples it has and the raw change (`last - first`, plus for counters
/// the value before each reset).
#[allow(clippy::too_many_arguments)]
pub(crate) fn extrapolate(
    first: Sample,
    last: Sample,
    n: usize,
    mut result: f64,
    start: i64,
    end: i64,
    counter: bool,
    per_second: Option<f64>,
) -> Option<f64> {
    if n < 2 {
        return None;
    }
    let mut to_start = (first.t - start) as f64 / 1000.0;
    let to_end = (end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_interval = sampled / (n - 1) as f64;
    if counter && result > 0.0 && first.v >= 0.0 {
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg_interval * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        avg_interval / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        avg_interval / 2.0
    };
    result *= interval / sampled;
    if let Some(range) = per_second {
        result /= range;
    }
    Some(result)
}

/// Least-squares fit of the samples, x in seconds relative to
/// `intercept_time`: `(slope, intercept)`.
pub fn linear_regression(w: &[Sample], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut sum_y, mut sum_xy, mut sum_x2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = w[0].v;
    let mut const_y = true;
    for (i, s) in w.iter().enumerate() {
        if const_y && i > 0 && s.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t - intercept_time) as f64 / 1000.0;
        sum_x += x;
        sum_y += s.v;
        sum_xy += x * s.v;
        sum_x2 += x * x;
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// The `q`-quantile of `values` (sorted in place) with linear
/// interpolation, as Prometheus's `quantile`.
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| {
        a.partial_cmp(b)
            .unwrap_or_else(|| b.is_nan().cmp(&a.is_nan()))
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// `timestamp(v)`: the time of each sample; for a selector, the time of the
/// sample the lookback picked.
fn timestamp(ev: &Evaluator<'_>, arg: &Expr, steps: &Steps) -> Result<Evaluated, QueryError> {
    let mut inner = arg;
    while let Expr::Paren(p) = inner {
        inner = &p.expr;
    }
    if let Expr::VectorSelector(vs) = inner {
        let series = ev
            .instant_selector(vs, steps)?
            .into_iter()
            .map(|(labels, picked)| StepSeries {
                labels: drop_metric_name(&labels),
                values: picked
                    .into_iter()
                    .map(|p| p.map(|s| s.t as f64 / 1000.0))
                    .collect(),
            })
            .collect();
        return Ok(Evaluated::Vector(merge_same_labels(series)?));
    }
    let times: Vec<i64> = steps.times().collect();
    map_values(ev.eval_vector(arg, steps)?, |i, _| {
        Some(times[i] as f64 / 1000.0)
    })
}

/// The result of `absent`/`absent_over_time`: labels from the equality
/// matchers of a selector argument.
fn absent_result(arg: &Expr, values: Vec<Option<f64>>) -> Evaluated {
    let mut inner = arg;
    loop {
        match inner {
            Expr::Paren(p) => inner = &p.expr,
            Expr::MatrixSelector(m) => {
                return absent_result(&Expr::VectorSelector(m.vs.clone()), values);
            }
            _ => break,
        }
    }
    let mut labels = Labels::default();
    if let Expr::VectorSelector(vs) = inner {
        let mut seen: Vec<&str> = Vec::new();
        for m in &vs.matchers.matchers {
            if m.name == METRIC_NAME {
                continue;
            }
            if matches!(m.op, promql_parser::label::MatchOp::Equal)
                && !seen.contains(&m.name.as_str())
            {
                labels = set_label(&labels, &m.name, &m.value);
            } else if seen.contains(&m.name.as_str()) {
                labels = set_label(&labels, &m.name, "");
            }
            seen.push(&m.name);
        }
    }
    if values.iter().all(|v| v.is_none()) {
        return Evaluated::Vector(Vec::new());
    }
    Evaluated::Vector(vec![StepSeries { labels, values }])
}

fn string_arg(args: &[&Expr], i: usize, func: &str) -> Result<String, QueryError> {
    let mut e = *args.get(i).ok_or_else(|| {
        QueryError::BadData(format!("{func}() is missing its argument {}", i + 1))
    })?;
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    match e {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        other => Err(QueryError::BadData(format!(
            "{func}() expects a string literal as argument {}, got {other}",
            i + 1
        ))),
    }
}

fn check_label_name(name: &str, func: &str) -> Result<(), QueryError> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(QueryError::Execution(format!(
            "invalid destination label name in {func}(): {name:?}"
        )))
    }
}

fn label_replace(
    ev: &Evaluator<'_>,
    args: &[&Expr],
    steps: &Steps,
) -> Result<Evaluated, QueryError> {
    let dst = string_arg(args, 1, "label_replace")?;
    let replacement = string_arg(args, 2, "label_replace")?;
    let src = string_arg(args, 3, "label_replace")?;
    let regex = string_arg(args, 4, "label_replace")?;
    let re = Regex::new(&format!("^(?:{regex})$")).map_err(|e| {
        QueryError::BadData(format!(
            "invalid regular expression in label_replace(): {e}"
        ))
    })?;
    check_label_name(&dst, "label_replace")?;
    let series = ev.eval_vector(args[0], steps)?;
    let out = series
        .into_iter()
        .map(|s| {
            let value = s.labels.get(&src).unwrap_or("");
            let labels = match re.captures(value) {
                Some(caps) => {
                    let mut res = String::new();
                    caps.expand(&replacement, &mut res);
                    set_label(&s.labels, &dst, &res)
                }
                None => s.labels,
            };
            StepSeries {
                labels,
                values: s.values,
            }
        })
        .collect();
    Ok(Evaluated::Vector(merge_same_labels(out)?))
}

fn label_join(ev: &Evaluator<'_>, args: &[&Expr], steps: &Steps) -> Result<Evaluated, QueryError> {
    let dst = string_arg(args, 1, "label_join")?;
    let sep = string_arg(args, 2, "label_join")?;
    let srcs = (3..args.len())
        .map(|i| string_arg(args, i, "label_join"))
        .collect::<Result<Vec<_>, _>>()?;
    check_label_name(&dst, "label_join")?;
    let series = ev.eval_vector(args[0], steps)?;
    let out = series
        .into_iter()
        .map(|s| {
            let joined = srcs
                .iter()
                .map(|n| s.labels.get(n).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(&sep);
            StepSeries {
                labels: set_label(&s.labels, &dst, &joined),
                values: s.values,
            }
        })
        .collect();
    Ok(Evaluated::Vector(merge_same_labels(out)?))
}

/// `histogram_quantile(q, buckets)` over classic `le` buckets.
fn histogram_quantile(
    ev: &Evaluator<'_>,
    args: &[&Expr],
    steps: &Steps,
) -> Result<Evaluated, QueryError> {
    if args.len() != 2 {
        return Err(QueryError::BadData(
            "histogram_quantile() takes a quantile and a vector of buckets".into(),
        ));
    }
    let q = ev.eval_scalar(args[0], steps)?;
    let series = ev.eval_vector(args[1], steps)?;
    let mut groups: Vec<(Labels, Vec<(f64, usize)>)> = Vec::new();
    let mut index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    for (si, s) in series.iter().enumerate() {
        let Some(le) = s.labels.get("le").and_then(parse_bound) else {
            continue;
        };
        let key = super::value::without_labels(&s.labels, &["le".into(), METRIC_NAME.into()]);
        let gi = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[gi].1.push((le, si));
    }
    let mut out = Vec::with_capacity(groups.len());
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for (labels, members) in groups {
        let mut values = vec![None; steps.len()];
        for (i, v) in values.iter_mut().enumerate() {
            buckets.clear();
            buckets.extend(
                members
                    .iter()
                    .filter_map(|&(le, si)| series[si].values[i].map(|c| (le, c))),
            );
            if !buckets.is_empty() {
                *v = Some(bucket_quantile(q[i], &mut buckets));
            }
        }
        out.push(StepSeries { labels, values });
    }
    Ok(Evaluated::Vector(out))
}

fn parse_bound(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

/// Prometheus's `bucketQuantile` over `(upper bound, cumulative count)`.
pub fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    buckets.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            earlier.1 += later.1;
            true
        } else {
            false
        }
    });
    let mut max = f64::NEG_INFINITY;
    for b in buckets.iter_mut() {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let last = buckets.len() - 1;
    let b = buckets[..last].partition_point(|b| b.1 < rank);
    if b == last {
        return buckets[last - 1].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let mut start = 0.0;
    let end = buckets[b].0;
    let mut count = buckets[b].1;
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates() {
        assert_eq!(quantile(0.5, &mut [1.0, 3.0, 2.0, 4.0]), 2.5);
        assert_eq!(quantile(0.0, &mut [5.0, 1.0]), 1.0);
        assert_eq!(quantile(2.0, &mut [5.0]), f64::INFINITY);
    }

    #[test]
    fn bucket_quantile_interpolates_inside_a_bucket() {
        let mut b = vec![(0.1, 10.0), (0.5, 30.0), (f64::INFINITY, 40.0)];
        // rank 20 falls half way into (0.1, 0.5].
        assert!((bucket_quantile(0.5, &mut b) - 0.3).abs() < 1e-12);
        let mut b = vec![(0.1, 10.0), (f64::INFINITY, 40.0)];
        assert_eq!(bucket_quantile(0.99, &mut b), 0.1);
        let mut b = vec![(0.1, 10.0)];
        assert!(bucket_quantile(0.5, &mut b).is_nan());
    }
}
