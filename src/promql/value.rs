//! Query values: what an expression evaluates to ([`Value`], as the API
//! returns it) and the step-aligned form the engine computes with
//! ([`Evaluated`]: every instant vector of a range query at once).

use serde_json::{Value as Json, json};

use crate::storage::{Label, Labels, METRIC_NAME, Sample, Series};

/// The staleness marker Prometheus writes when a series disappears: a NaN
/// with this exact bit pattern ends the series at its timestamp.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// True for the staleness marker (not for other NaNs).
pub fn is_stale_marker(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// The series' labels.
    pub labels: Labels,
    /// Evaluation time, milliseconds.
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// The result of a query, as the Prometheus API reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number at the evaluation time.
    Scalar {
        /// Milliseconds.
        t: i64,
        /// The number.
        v: f64,
    },
    /// A string at the evaluation time.
    String {
        /// Milliseconds.
        t: i64,
        /// The string.
        s: String,
    },
    /// One sample per series.
    Vector(Vec<InstantSample>),
    /// Samples over time per series, series sorted by labels.
    Matrix(Vec<Series>),
}

impl Value {
    /// Prometheus's `resultType`.
    pub fn result_type(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }

    /// The `data` object of a successful query response:
    /// `{"resultType": …, "result": …}`.
    pub fn to_json(&self) -> Json {
        let result = match self {
            Value::Scalar { t, v } => json!([json_time(*t), format_value(*v)]),
            Value::String { t, s } => json!([json_time(*t), s]),
            Value::Vector(samples) => Json::Array(
                samples
                    .iter()
                    .map(|s| {
                        json!({
                            "metric": labels_json(&s.labels),
                            "value": [json_time(s.t), format_value(s.v)],
                        })
                    })
                    .collect(),
            ),
            Value::Matrix(series) => Json::Array(
                series
                    .iter()
                    .map(|s| {
                        let values: Vec<Json> = s
                            .samples
                            .iter()
                            .map(|p| json!([json_time(p.t), format_value(p.v)]))
                            .collect();
                        json!({ "metric": labels_json(&s.labels), "values": values })
                    })
                    .collect(),
            ),
        };
        json!({ "resultType": self.result_type(), "result": result })
    }
}

/// A label set as a JSON object.
pub fn labels_json(labels: &Labels) -> Json {
    Json::Object(
        labels
            .iter()
            .map(|(n, v)| (n.to_string(), Json::String(v.to_string())))
            .collect(),
    )
}

/// A millisecond timestamp as Prometheus writes it: seconds, with the
/// milliseconds as a fraction when there are any.
pub fn json_time(t: i64) -> Json {
    if t % 1000 == 0 {
        json!(t / 1000)
    } else {
        json!(t as f64 / 1000.0)
    }
}

/// A sample value as Prometheus writes it (Go's `FormatFloat(v, 'f', -1)`,
/// `+Inf`, `-Inf`, `NaN`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// One series of an instant vector evaluated at every step of a query:
/// `values[i]` is its value at step `i`, `None` where it has none.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSeries {
    /// The series' labels.
    pub labels: Labels,
    /// A value or nothing, per step.
    pub values: Vec<Option<f64>>,
}

/// What a sub-expression evaluates to over all the steps of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluated {
    /// A number per step.
    Scalar(Vec<f64>),
    /// An instant vector per step.
    Vector(Vec<StepSeries>),
    /// A range vector (only at the top of an instant query).
    Matrix(Vec<Series>),
    /// A string literal.
    String(String),
}

impl Evaluated {
    /// The PromQL type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Evaluated::Scalar(_) => "scalar",
            Evaluated::Vector(_) => "instant vector",
            Evaluated::Matrix(_) => "range vector",
            Evaluated::String(_) => "string",
        }
    }
}

/// `labels` without the metric name.
pub fn drop_metric_name(labels: &Labels) -> Labels {
    if labels.metric_name().is_none() {
        return labels.clone();
    }
    Labels::from_sorted(
        labels
            .as_slice()
            .iter()
            .filter(|l| l.name != METRIC_NAME)
            .cloned()
            .collect(),
    )
}

/// `labels` without the labels named in `names`.
pub fn without_labels(labels: &Labels, names: &[String]) -> Labels {
    Labels::from_sorted(
        labels
            .as_slice()
            .iter()
            .filter(|l| !names.contains(&l.name))
            .cloned()
            .collect(),
    )
}

/// `labels` with only the labels named in `names`.
pub fn only_labels(labels: &Labels, names: &[String]) -> Labels {
    Labels::from_sorted(
        labels
            .as_slice()
            .iter()
            .filter(|l| names.contains(&l.name))
            .cloned()
            .collect(),
    )
}

/// `labels` with `name` set to `value`; an empty value removes the label.
pub fn set_label(labels: &Labels, name: &str, value: &str) -> Labels {
    let mut v: Vec<Label> = labels
        .as_slice()
        .iter()
        .filter(|l| l.name != name)
        .cloned()
        .collect();
    if !value.is_empty() {
        let at = v.partition_point(|l| l.name.as_str() < name);
        v.insert(
            at,
            Label {
                name: name.to_string(),
                value: value.to_string(),
            },
        );
    }
    Labels::from_sorted(v)
}

/// Samples of a series that are present (not `None`) at the given step
/// times.
pub fn present_samples(values: &[Option<f64>], times: impl Iterator<Item = i64>) -> Vec<Sample> {
    values
        .iter()
        .zip(times)
        .filter_map(|(v, t)| v.map(|v| Sample::new(t, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_format_like_go() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(json_time(1_500), json!(1.5));
        assert_eq!(json_time(2_000), json!(2));
    }

    #[test]
    fn label_edits_keep_order() {
        let l = Labels::from_pairs([("b", "2"), (METRIC_NAME, "m")]);
        let l2 = set_label(&l, "a", "1");
        assert_eq!(
            l2.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            [METRIC_NAME, "a", "b"]
        );
        assert_eq!(set_label(&l2, "a", "").len(), 2);
        assert_eq!(drop_metric_name(&l).len(), 1);
    }

    #[test]
    fn only_the_exact_stale_pattern_is_stale() {
        assert!(is_stale_marker(f64::from_bits(STALE_NAN_BITS)));
        assert!(!is_stale_marker(f64::NAN));
    }
}
