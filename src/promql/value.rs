//! Query values: what an expression evaluates to ([`Value`], as the API
//! returns it) and the step-aligned form the engine computes with
//! ([`Evaluated`]: every instant vector of a range query at once).

use serde_json::Value as Json;

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

    /// The `data` object of a successful query response,
    /// `{"resultType": …, "result": …}`, written straight into a string
    /// (large results are encoded without building a JSON tree).
    pub fn to_json_string(&self) -> String {
        let mut out = String::with_capacity(128);
        out.push_str("{\"resultType\":\"");
        out.push_str(self.result_type());
        out.push_str("\",\"result\":");
        match self {
            Value::Scalar { t, v } => write_point(&mut out, *t, *v),
            Value::String { t, s } => {
                out.push('[');
                write_time(&mut out, *t);
                out.push(',');
                write_str(&mut out, s);
                out.push(']');
            }
            Value::Vector(samples) => {
                out.push('[');
                for (i, s) in samples.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str("{\"metric\":");
                    write_labels(&mut out, &s.labels);
                    out.push_str(",\"value\":");
                    write_point(&mut out, s.t, s.v);
                    out.push('}');
                }
                out.push(']');
            }
            Value::Matrix(series) => {
                out.push('[');
                for (i, s) in series.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str("{\"metric\":");
                    write_labels(&mut out, &s.labels);
                    out.push_str(",\"values\":[");
                    for (j, p) in s.samples.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_point(&mut out, p.t, p.v);
                    }
                    out.push_str("]}");
                }
                out.push(']');
            }
        }
        out.push('}');
        out
    }
}

fn write_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    write_time(out, t);
    out.push_str(",\"");
    out.push_str(&format_value(v));
    out.push_str("\"]");
}

fn write_time(out: &mut String, t: i64) {
    use std::fmt::Write;
    if t % 1000 == 0 {
        let _ = write!(out, "{}", t / 1000);
    } else {
        let _ = write!(out, "{}", t as f64 / 1000.0);
    }
}

fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, (n, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, n);
        out.push(':');
        write_str(out, v);
    }
    out.push('}');
}

/// Writes `s` as a JSON string literal.
fn write_str(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
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
    use serde_json::json;

    #[test]
    fn values_format_like_go() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn results_encode_as_prometheus_json() {
        let labels = Labels::from_pairs([(METRIC_NAME, "m"), ("q", "a\"b\\c\n\u{1}")]);
        let v = Value::Vector(vec![InstantSample {
            labels: labels.clone(),
            t: 1_500,
            v: f64::INFINITY,
        }]);
        let parsed: Json = serde_json::from_str(&v.to_json_string()).unwrap();
        assert_eq!(
            parsed,
            json!({"resultType": "vector", "result": [
                {"metric": {"__name__": "m", "q": "a\"b\\c\n\u{1}"}, "value": [1.5, "+Inf"]}
            ]})
        );
        let m = Value::Matrix(vec![Series {
            labels,
            samples: vec![Sample::new(1_000, 1.0), Sample::new(2_000, 0.5)],
        }]);
        let parsed: Json = serde_json::from_str(&m.to_json_string()).unwrap();
        assert_eq!(parsed["result"][0]["values"], json!([[1, "1"], [2, "0.5"]]));
        let s = Value::String {
            t: 0,
            s: "x".into(),
        };
        assert_eq!(
            s.to_json_string(),
            r#"{"resultType":"string","result":[0,"x"]}"#
        );
        let sc = Value::Scalar { t: 2_000, v: -0.25 };
        assert_eq!(
            sc.to_json_string(),
            r#"{"resultType":"scalar","result":[2,"-0.25"]}"#
        );
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
