//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`,
//! `stddev`, `stdvar`, `topk`, `bottomk`, `quantile`, `count_values`) with
//! `by`/`without`, computed per step the way Prometheus 2.x does
//! (including its incremental mean and its heap for `topk`, which decides
//! which of several equal values are kept).

use std::collections::HashMap;

use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use super::engine::{Evaluator, Steps};
use super::functions::quantile;
use super::limits::QueryError;
use super::value::{Evaluated, StepSeries, format_value, only_labels, set_label, without_labels};
use crate::storage::{Labels, METRIC_NAME};

/// Evaluates an aggregation.
pub fn eval(
    ev: &Evaluator<'_>,
    agg: &AggregateExpr,
    steps: &Steps,
) -> Result<Evaluated, QueryError> {
    let op = agg.op.to_string().to_lowercase();
    let n = steps.len();
    let param = agg.param.as_deref();
    let series = ev.eval_vector(&agg.expr, steps)?;
    let (group_of, keys) = group(&series, &agg.modifier);
    match op.as_str() {
        "topk" | "bottomk" => {
            let k = ev.eval_scalar(required(param, &op)?, steps)?;
            Ok(Evaluated::Vector(top_k(
                series,
                &group_of,
                keys.len(),
                &k,
                op == "topk",
            )))
        }
        "quantile" => {
            let q = ev.eval_scalar(required(param, &op)?, steps)?;
            let mut out = Vec::with_capacity(keys.len());
            let mut buf = Vec::new();
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
            for (si, g) in group_of.iter().enumerate() {
                members[*g].push(si);
            }
            for (g, labels) in keys.into_iter().enumerate() {
                let mut values = vec![None; n];
                for (i, v) in values.iter_mut().enumerate() {
                    buf.clear();
                    buf.extend(members[g].iter().filter_map(|&si| series[si].values[i]));
                    if !buf.is_empty() {
                        *v = Some(quantile(q[i], &mut buf));
                    }
                }
                out.push(StepSeries { labels, values });
            }
            Ok(Evaluated::Vector(out))
        }
        "count_values" => {
            let label = match required(param, &op)? {
                Expr::StringLiteral(s) => s.val.clone(),
                other => {
                    return Err(QueryError::BadData(format!(
                        "count_values() expects a label name string, got {other}"
                    )));
                }
            };
            let valid =
                label.chars().enumerate().all(|(i, c)| {
                    c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
                }) && !label.is_empty();
            if !valid {
                return Err(QueryError::BadData(format!(
                    "invalid label name {label:?} in count_values()"
                )));
            }
            let mut index: HashMap<Labels, usize> = HashMap::new();
            let mut out: Vec<StepSeries> = Vec::new();
            for (si, s) in series.iter().enumerate() {
                for (i, v) in s.values.iter().enumerate() {
                    let Some(v) = v else { continue };
                    let labels = set_label(&keys[group_of[si]], &label, &format_value(*v));
                    let oi = *index.entry(labels.clone()).or_insert_with(|| {
                        out.push(StepSeries {
                            labels,
                            values: vec![None; n],
                        });
                        out.len() - 1
                    });
                    let c = &mut out[oi].values[i];
                    *c = Some(c.unwrap_or(0.0) + 1.0);
                }
            }
            Ok(Evaluated::Vector(out))
        }
        "sum" | "avg" | "min" | "max" | "count" | "group" | "stddev" | "stdvar" => {
            let kind = match op.as_str() {
                "sum" => Simple::Sum,
                "avg" => Simple::Avg,
                "min" => Simple::Min,
                "max" => Simple::Max,
                "count" => Simple::Count,
                "group" => Simple::Group,
                "stddev" => Simple::Stddev,
                _ => Simple::Stdvar,
            };
            Ok(Evaluated::Vector(simple(kind, &series, &group_of, keys, n)))
        }
        other => Err(QueryError::BadData(format!(
            "the aggregation {other}() is not supported by this server"
        ))),
    }
}

fn required<'e>(param: Option<&'e Expr>, op: &str) -> Result<&'e Expr, QueryError> {
    param.ok_or_else(|| QueryError::BadData(format!("{op}() needs a parameter")))
}

/// The group of every series and the labels of every group, in order of
/// first appearance.
fn group(series: &[StepSeries], modifier: &Option<LabelModifier>) -> (Vec<usize>, Vec<Labels>) {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut keys = Vec::new();
    let mut group_of = Vec::with_capacity(series.len());
    let without: Vec<String> = match modifier {
        Some(LabelModifier::Exclude(ls)) => {
            let mut v = ls.labels.clone();
            v.push(METRIC_NAME.into());
            v
        }
        _ => Vec::new(),
    };
    for s in series {
        let key = match modifier {
            None => Labels::default(),
            Some(LabelModifier::Include(ls)) => only_labels(&s.labels, &ls.labels),
            Some(LabelModifier::Exclude(_)) => without_labels(&s.labels, &without),
        };
        let g = *index.entry(key.clone()).or_insert_with(|| {
            keys.push(key);
            keys.len() - 1
        });
        group_of.push(g);
    }
    (group_of, keys)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Simple {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
}

#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    value: f64,
    mean: f64,
    count: f64,
}

fn simple(
    kind: Simple,
    series: &[StepSeries],
    group_of: &[usize],
    keys: Vec<Labels>,
    n: usize,
) -> Vec<StepSeries> {
    let mut acc = vec![Acc::default(); keys.len() * n];
    for (s, &g) in series.iter().zip(group_of) {
        let row = &mut acc[g * n..(g + 1) * n];
        for (a, v) in row.iter_mut().zip(&s.values) {
            let Some(v) = *v else { continue };
            if a.count == 0.0 {
                *a = Acc {
                    value: if matches!(kind, Simple::Stddev | Simple::Stdvar) {
                        0.0
                    } else {
                        v
                    },
                    mean: v,
                    count: 1.0,
                };
                continue;
            }
            a.count += 1.0;
            match kind {
                Simple::Sum => a.value += v,
                Simple::Avg => {
                    if a.mean.is_infinite() {
                        if v.is_infinite() && (a.mean > 0.0) == (v > 0.0) {
                            continue;
                        }
                        if !v.is_infinite() && !v.is_nan() {
                            continue;
                        }
                    }
                    a.mean += v / a.count - a.mean / a.count;
                }
                Simple::Min => {
                    if a.value > v || a.value.is_nan() {
                        a.value = v;
                    }
                }
                Simple::Max => {
                    if a.value < v || a.value.is_nan() {
                        a.value = v;
                    }
                }
                Simple::Count | Simple::Group => {}
                Simple::Stddev | Simple::Stdvar => {
                    let delta = v - a.mean;
                    a.mean += delta / a.count;
                    a.value += delta * (v - a.mean);
                }
            }
        }
    }
    keys.into_iter()
        .enumerate()
        .map(|(g, labels)| StepSeries {
            labels,
            values: acc[g * n..(g + 1) * n]
                .iter()
                .map(|a| {
                    (a.count > 0.0).then(|| match kind {
                        Simple::Sum | Simple::Min | Simple::Max => a.value,
                        Simple::Avg => a.mean,
                        Simple::Count => a.count,
                        Simple::Group => 1.0,
                        Simple::Stddev => (a.value / a.count).sqrt(),
                        Simple::Stdvar => a.value / a.count,
                    })
                })
                .collect(),
        })
        .collect()
}

/// `topk`/`bottomk`: per step and group, the `k` series Go's
/// `container/heap` keeps when fed the series in order (so among equal
/// values the same ones as in Prometheus survive).
fn top_k(
    mut series: Vec<StepSeries>,
    group_of: &[usize],
    groups: usize,
    k: &[f64],
    top: bool,
) -> Vec<StepSeries> {
    let n = k.len();
    let mut keep = vec![vec![false; n]; series.len()];
    let mut heaps: Vec<Vec<(f64, usize)>> = vec![Vec::new(); groups];
    // "i is lower in the heap than j": the heap's root is the one to evict.
    let less = |a: &(f64, usize), b: &(f64, usize)| {
        if a.0.is_nan() {
            true
        } else if top {
            a.0 < b.0
        } else {
            a.0 > b.0
        }
    };
    for i in 0..n {
        if k[i].is_nan() || k[i] < 1.0 {
            continue;
        }
        let k = if k[i] >= series.len() as f64 {
            series.len()
        } else {
            k[i] as usize
        };
        for h in heaps.iter_mut() {
            h.clear();
        }
        for (si, s) in series.iter().enumerate() {
            let Some(v) = s.values[i] else { continue };
            let h = &mut heaps[group_of[si]];
            if h.len() < k {
                h.push((v, si));
                let last = h.len() - 1;
                heap_up(h, last, &less);
            } else {
                let root = h[0].0;
                let evict = if top { root < v } else { root > v };
                if evict || (root.is_nan() && !v.is_nan()) {
                    h[0] = (v, si);
                    heap_down(h, 0, &less);
                }
            }
        }
        for h in &heaps {
            for &(_, si) in h {
                keep[si][i] = true;
            }
        }
    }
    for (s, keep) in series.iter_mut().zip(keep) {
        for (v, k) in s.values.iter_mut().zip(keep) {
            if !k {
                *v = None;
            }
        }
    }
    series.retain(|s| s.values.iter().any(Option::is_some));
    series
}

fn heap_up<T>(h: &mut [T], mut j: usize, less: &impl Fn(&T, &T) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

fn heap_down<T>(h: &mut [T], mut i: usize, less: &impl Fn(&T, &T) -> bool) {
    let n = h.len();
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        if j1 + 1 < n && less(&h[j1 + 1], &h[j1]) {
            j = j1 + 1;
        }
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
}
