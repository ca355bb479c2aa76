//! Binary operators: arithmetic, comparisons (filtering, or `bool`) and the
//! set operators `and`, `or`, `unless`, with vector matching by
//! `on`/`ignoring` and `group_left`/`group_right`, as Prometheus 2.x.

use std::collections::HashMap;

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::engine::{Evaluator, Steps, merge_same_labels};
use super::limits::QueryError;
use super::value::{
    Evaluated, StepSeries, drop_metric_name, only_labels, set_label, without_labels,
};
use crate::storage::{Labels, METRIC_NAME};

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `atan2`
    Atan2,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl Op {
    /// The operator written `s`.
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s.to_lowercase().as_str() {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            _ => return None,
        })
    }

    /// `==`, `!=`, `>`, `<`, `>=`, `<=`.
    pub fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    /// Whether the result loses the metric name: arithmetic does, except
    /// `atan2` (as in Prometheus 2.x); comparisons and set operators keep it.
    pub fn drops_metric_name(self) -> bool {
        matches!(
            self,
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod | Op::Pow
        )
    }

    /// `and`, `or`, `unless`.
    pub fn is_set(self) -> bool {
        matches!(self, Op::And | Op::Or | Op::Unless)
    }

    /// Applies the operator to two numbers: the result and, for
    /// comparisons, whether the comparison holds (the result is then `l`).
    pub fn apply(self, l: f64, r: f64) -> (f64, bool) {
        match self {
            Op::Add => (l + r, true),
            Op::Sub => (l - r, true),
            Op::Mul => (l * r, true),
            Op::Div => (l / r, true),
            Op::Mod => (l % r, true),
            Op::Pow => (l.powf(r), true),
            Op::Atan2 => (l.atan2(r), true),
            Op::Eq => (l, l == r),
            Op::Ne => (l, l != r),
            Op::Gt => (l, l > r),
            Op::Lt => (l, l < r),
            Op::Ge => (l, l >= r),
            Op::Le => (l, l <= r),
            Op::And | Op::Or | Op::Unless => (l, true),
        }
    }
}

/// Evaluates a binary expression.
pub fn eval(ev: &Evaluator<'_>, bin: &BinaryExpr, steps: &Steps) -> Result<Evaluated, QueryError> {
    let op_name = bin.op.to_string();
    let op = Op::parse(&op_name)
        .ok_or_else(|| QueryError::BadData(format!("the operator {op_name} is not supported")))?;
    let return_bool = bin.return_bool();
    let lhs = ev.eval(&bin.lhs, steps)?;
    let rhs = ev.eval(&bin.rhs, steps)?;
    match (lhs, rhs) {
        (Evaluated::Scalar(l), Evaluated::Scalar(r)) => Ok(Evaluated::Scalar(
            l.iter()
                .zip(&r)
                .map(|(&a, &b)| {
                    let (v, keep) = op.apply(a, b);
                    if op.is_comparison() {
                        if keep { 1.0 } else { 0.0 }
                    } else {
                        v
                    }
                })
                .collect(),
        )),
        (Evaluated::Vector(v), Evaluated::Scalar(s)) => {
            vector_scalar(v, &s, op, return_bool, false)
        }
        (Evaluated::Scalar(s), Evaluated::Vector(v)) => vector_scalar(v, &s, op, return_bool, true),
        (Evaluated::Vector(l), Evaluated::Vector(r)) => {
            let modifier = bin.modifier.as_ref();
            let matching = modifier.and_then(|m| m.matching.as_ref());
            if op.is_set() {
                return Ok(Evaluated::Vector(set_op(l, r, op, matching, steps.len())?));
            }
            let card = modifier
                .map(|m| m.card.clone())
                .unwrap_or(VectorMatchCardinality::OneToOne);
            vector_vector(l, r, op, return_bool, matching, &card, steps.len())
        }
        (l, r) => Err(QueryError::BadData(format!(
            "operator {op_name} is not defined between {} and {}",
            l.type_name(),
            r.type_name()
        ))),
    }
}

fn vector_scalar(
    series: Vec<StepSeries>,
    scalar: &[f64],
    op: Op,
    return_bool: bool,
    scalar_on_left: bool,
) -> Result<Evaluated, QueryError> {
    if op.is_set() {
        return Err(QueryError::BadData(
            "set operators (and, or, unless) are only defined between instant vectors".into(),
        ));
    }
    let drop_name = return_bool || op.drops_metric_name();
    let out: Vec<StepSeries> = series
        .into_iter()
        .map(|s| {
            let values = s
                .values
                .iter()
                .zip(scalar)
                .map(|(v, &sc)| {
                    let x = (*v)?;
                    let (l, r) = if scalar_on_left { (sc, x) } else { (x, sc) };
                    let (mut value, keep) = op.apply(l, r);
                    if op.is_comparison() && scalar_on_left {
                        value = x;
                    }
                    if return_bool {
                        Some(if keep { 1.0 } else { 0.0 })
                    } else {
                        keep.then_some(value)
                    }
                })
                .collect();
            StepSeries {
                labels: if drop_name {
                    drop_metric_name(&s.labels)
                } else {
                    s.labels
                },
                values,
            }
        })
        .filter(|s| s.values.iter().any(Option::is_some))
        .collect();
    Ok(Evaluated::Vector(if drop_name {
        merge_same_labels(out)?
    } else {
        out
    }))
}

/// The labels two series are matched on.
fn signature(labels: &Labels, matching: Option<&LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(ls)) => only_labels(labels, &ls.labels),
        Some(LabelModifier::Exclude(ls)) => {
            let mut names = ls.labels.clone();
            names.push(METRIC_NAME.into());
            without_labels(labels, &names)
        }
        None => drop_metric_name(labels),
    }
}

/// Signature ids of both sides: `(left ids, right ids, number of ids)`.
fn signature_ids(
    l: &[StepSeries],
    r: &[StepSeries],
    matching: Option<&LabelModifier>,
) -> (Vec<usize>, Vec<usize>, Vec<Labels>) {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut sigs = Vec::new();
    let mut id = |s: &StepSeries| {
        let sig = signature(&s.labels, matching);
        *index.entry(sig.clone()).or_insert_with(|| {
            sigs.push(sig);
            sigs.len() - 1
        })
    };
    let li = l.iter().map(&mut id).collect();
    let ri = r.iter().map(&mut id).collect();
    (li, ri, sigs)
}

fn set_op(
    mut l: Vec<StepSeries>,
    mut r: Vec<StepSeries>,
    op: Op,
    matching: Option<&LabelModifier>,
    n: usize,
) -> Result<Vec<StepSeries>, QueryError> {
    let (li, ri, sigs) = signature_ids(&l, &r, matching);
    let mut present = vec![false; sigs.len()];
    for i in 0..n {
        present.iter_mut().for_each(|p| *p = false);
        match op {
            Op::And | Op::Unless => {
                for (s, &id) in r.iter().zip(&ri) {
                    if s.values[i].is_some() {
                        present[id] = true;
                    }
                }
                for (s, &id) in l.iter_mut().zip(&li) {
                    if present[id] != (op == Op::And) {
                        s.values[i] = None;
                    }
                }
            }
            _ => {
                for (s, &id) in l.iter().zip(&li) {
                    if s.values[i].is_some() {
                        present[id] = true;
                    }
                }
                for (s, &id) in r.iter_mut().zip(&ri) {
                    if present[id] {
                        s.values[i] = None;
                    }
                }
            }
        }
    }
    if op == Op::Or {
        l.extend(r);
    }
    l.retain(|s| s.values.iter().any(Option::is_some));
    if op == Op::Or {
        merge_same_labels(l)
    } else {
        Ok(l)
    }
}

const NONE: usize = usize::MAX;

fn vector_vector(
    l: Vec<StepSeries>,
    r: Vec<StepSeries>,
    op: Op,
    return_bool: bool,
    matching: Option<&LabelModifier>,
    card: &VectorMatchCardinality,
    n: usize,
) -> Result<Evaluated, QueryError> {
    let swapped = matches!(card, VectorMatchCardinality::OneToMany(_));
    let include: &[String] = match card {
        VectorMatchCardinality::ManyToOne(ls) | VectorMatchCardinality::OneToMany(ls) => &ls.labels,
        _ => &[],
    };
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let (li, ri, sigs) = signature_ids(&l, &r, matching);
    let (many, many_ids, one, one_ids) = if swapped {
        (&r, ri, &l, li)
    } else {
        (&l, li, &r, ri)
    };
    let mut one_at = vec![NONE; sigs.len()];
    // Per match group and step: the result label sets produced so far.
    let mut matched: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut out: Vec<StepSeries> = Vec::new();
    let mut out_index: HashMap<Labels, usize> = HashMap::new();
    let mut pair_out: Vec<(usize, usize)> = vec![(NONE, NONE); many.len()];
    let drop_name = op.drops_metric_name() || return_bool;
    for i in 0..n {
        one_at.iter_mut().for_each(|x| *x = NONE);
        for (oi, s) in one.iter().enumerate() {
            if s.values[i].is_none() {
                continue;
            }
            let id = one_ids[oi];
            if one_at[id] != NONE {
                let side = if swapped { "left" } else { "right" };
                return Err(QueryError::Execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    sigs[id], s.labels, one[one_at[id]].labels
                )));
            }
            one_at[id] = oi;
        }
        matched.clear();
        for (mi, s) in many.iter().enumerate() {
            let Some(mv) = s.values[i] else { continue };
            let id = many_ids[mi];
            let oi = one_at[id];
            if oi == NONE {
                continue;
            }
            let ov = one[oi].values[i].expect("present");
            let (lv, rv) = if swapped { (ov, mv) } else { (mv, ov) };
            let (mut value, keep) = op.apply(lv, rv);
            if return_bool {
                value = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            }
            let o = if pair_out[mi].0 == oi {
                pair_out[mi].1
            } else {
                let labels = result_labels(
                    &s.labels,
                    &one[oi].labels,
                    matching,
                    one_to_one,
                    include,
                    drop_name,
                );
                let o = *out_index.entry(labels.clone()).or_insert_with(|| {
                    out.push(StepSeries {
                        labels,
                        values: vec![None; n],
                    });
                    out.len() - 1
                });
                pair_out[mi] = (oi, o);
                o
            };
            let group = matched.entry(id).or_default();
            if one_to_one {
                if !group.is_empty() {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                            .into(),
                    ));
                }
            } else if group.contains(&o) {
                return Err(QueryError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .into(),
                ));
            }
            group.push(o);
            if out[o].values[i].is_some() {
                return Err(QueryError::Execution(format!(
                    "vector cannot contain metrics with the same labelset {}",
                    out[o].labels
                )));
            }
            out[o].values[i] = Some(value);
        }
    }
    Ok(Evaluated::Vector(out))
}

fn result_labels(
    many: &Labels,
    one: &Labels,
    matching: Option<&LabelModifier>,
    one_to_one: bool,
    include: &[String],
    drop_name: bool,
) -> Labels {
    let mut labels = if drop_name {
        drop_metric_name(many)
    } else {
        many.clone()
    };
    if one_to_one {
        labels = match matching {
            Some(LabelModifier::Include(ls)) => only_labels(&labels, &ls.labels),
            Some(LabelModifier::Exclude(ls)) => without_labels(&labels, &ls.labels),
            None => labels,
        };
    }
    for name in include {
        labels = set_label(&labels, name, one.get(name).unwrap_or(""));
    }
    labels
}
