//! The Prometheus text exposition format.
//!
//! The container families (tens of thousands of samples on a busy node) are
//! written straight into one buffer: going through the `prometheus`
//! crate's model first allocates two strings per label per sample, and on
//! a 1000-container node each scrape grew the agent's heap by ~20 MiB that
//! the allocator kept. The agent's own, small registry still goes through
//! the crate's encoder, and the output of both is checked by `promtool
//! check metrics` in the tests.

use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use super::families::{Family, MetricKind};

/// Converts families into the `prometheus` crate's model.
pub fn to_proto(families: &[Family]) -> Vec<MetricFamily> {
    families
        .iter()
        .filter(|f| !f.samples.is_empty())
        .map(|f| {
            let mut mf = MetricFamily::default();
            mf.set_name(f.name.to_string());
            mf.set_help(f.help.to_string());
            mf.set_field_type(match f.kind {
                MetricKind::Counter => MetricType::COUNTER,
                MetricKind::Gauge => MetricType::GAUGE,
            });
            let metrics = f
                .samples
                .iter()
                .map(|s| {
                    let mut m = proto::Metric::default();
                    let labels = s
                        .labels()
                        .map(|(k, v)| {
                            let mut lp = LabelPair::default();
                            lp.set_name(k.to_string());
                            lp.set_value(v.to_string());
                            lp
                        })
                        .collect();
                    m.set_label(labels);
                    if let Some(t) = s.timestamp_ms {
                        m.set_timestamp_ms(t);
                    }
                    match f.kind {
                        MetricKind::Counter => {
                            let mut c = proto::Counter::default();
                            c.set_value(s.value);
                            m.set_counter(c);
                        }
                        MetricKind::Gauge => {
                            let mut g = proto::Gauge::default();
                            g.set_value(s.value);
                            m.set_gauge(g);
                        }
                    }
                    m
                })
                .collect();
            mf.set_metric(metrics);
            mf
        })
        .collect()
}

/// Encodes families, then any already-built ones (e.g. the agent's own
/// registry), as Prometheus text.
pub fn encode(families: &[Family], extra: &[MetricFamily]) -> Result<Vec<u8>, prometheus::Error> {
    use std::io::Write;
    // One allocation of about the right size: on a node of 2000 cgroups
    // the text is ~20 MB (cAdvisor's labels, the long kubepods ids, on
    // every line), and growing it by doubling copied it over again.
    let mut buf = Vec::with_capacity(encoded_len_estimate(families));
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        let kind = match f.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        };
        buf.extend_from_slice(b"# HELP ");
        buf.extend_from_slice(f.name.as_bytes());
        buf.push(b' ');
        escape_help(&mut buf, f.help);
        let _ = writeln!(buf, "\n# TYPE {} {kind}", f.name);
        for s in &f.samples {
            buf.extend_from_slice(f.name.as_bytes());
            let mut first = true;
            for (k, v) in s.labels() {
                buf.push(if first { b'{' } else { b',' });
                first = false;
                buf.extend_from_slice(k.as_bytes());
                buf.extend_from_slice(b"=\"");
                escape_label_value(&mut buf, v);
                buf.push(b'"');
            }
            if !first {
                buf.push(b'}');
            }
            buf.push(b' ');
            write_value(&mut buf, s.value);
            if let Some(t) = s.timestamp_ms {
                buf.push(b' ');
                buf.extend_from_slice(itoa::Buffer::new().format(t).as_bytes());
            }
            buf.push(b'\n');
        }
    }
    TextEncoder::new().encode(extra, &mut buf)?;
    Ok(buf)
}

/// About the length of the text of `families` (the `# HELP`/`# TYPE`
/// lines and every sample's name, labels and value), for one allocation.
fn encoded_len_estimate(families: &[Family]) -> usize {
    families
        .iter()
        .map(|f| {
            let line = |s: &super::families::Sample| {
                let labels: usize = s.labels().map(|(k, v)| k.len() + v.len() + 4).sum();
                f.name.len() + labels + 24 + if s.timestamp_ms.is_some() { 14 } else { 0 }
            };
            f.help.len() + 2 * f.name.len() + 32 + f.samples.iter().map(line).sum::<usize>()
        })
        .sum::<usize>()
        + 4096
}

/// Help text escaping: backslash and newline.
fn escape_help(buf: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            _ => buf.push(b),
        }
    }
}

/// Label value escaping: backslash, double quote and newline. The runs
/// between escapes are found with a SIMD search and copied whole: label
/// values (cgroup paths, images) rarely hold any, and a byte-at-a-time
/// push, then a byte-at-a-time search, were most of a scrape's time.
fn escape_label_value(buf: &mut Vec<u8>, s: &str) {
    let mut rest = s.as_bytes();
    while let Some(at) = memchr::memchr3(b'\\', b'"', b'\n', rest) {
        buf.extend_from_slice(&rest[..at]);
        buf.extend_from_slice(match rest[at] {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            _ => b"\\n",
        });
        rest = &rest[at + 1..];
    }
    buf.extend_from_slice(rest);
}

/// Values as the format wants them: `+Inf`, `-Inf`, `NaN`, else the
/// shortest representation that reads back to the same float.
fn write_value(buf: &mut Vec<u8>, v: f64) {
    use std::io::Write;
    if v.is_nan() {
        buf.extend_from_slice(b"NaN");
    } else if v == f64::INFINITY {
        buf.extend_from_slice(b"+Inf");
    } else if v == f64::NEG_INFINITY {
        buf.extend_from_slice(b"-Inf");
    } else if v.fract() == 0.0 && v.abs() < 1e15 && !(v == 0.0 && v.is_sign_negative()) {
        // Most values are whole counts (bytes, pages, events): written as
        // integers, the same text `{v}` gives, without the float
        // formatting.
        buf.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
    } else {
        let _ = write!(buf, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::expose::families::Sample;

    #[test]
    fn whole_values_are_written_as_rust_formats_them() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -5.0,
            123_456_789.0,
            1e14,
            999_999_999_999_999.0,
            -999_999_999_999_999.0,
            1e15,
            1e16,
            1e21,
            u64::MAX as f64,
            0.5,
            -2.25,
            1.5e-9,
            4503599627370497.0,
        ] {
            let mut buf = Vec::new();
            write_value(&mut buf, v);
            assert_eq!(String::from_utf8(buf).unwrap(), format!("{v}"), "{v:?}");
        }
    }

    #[test]
    fn label_values_are_escaped_between_plain_runs() {
        for (value, escaped) in [
            ("", ""),
            ("plain/path", "plain/path"),
            ("\"", "\\\""),
            ("a\\b\"c\nd\n", "a\\\\b\\\"c\\nd\\n"),
            ("é\"ü", "é\\\"ü"),
        ] {
            let mut buf = Vec::new();
            escape_label_value(&mut buf, value);
            assert_eq!(String::from_utf8(buf).unwrap(), escaped, "{value:?}");
        }
    }

    #[test]
    fn writes_the_text_format_with_escapes_and_special_values() {
        let base = Arc::new(vec![("id".to_string(), "/a\"b\\c\nd".to_string())]);
        let fam = Family {
            name: "m_total",
            help: "Help with \\ and\nnewline.",
            kind: MetricKind::Counter,
            samples: vec![
                Sample {
                    base: base.clone(),
                    extra: vec![("cpu", "total".into())],
                    value: 1.5,
                    timestamp_ms: None,
                },
                Sample {
                    base: Arc::new(Vec::new()),
                    extra: Vec::new(),
                    value: f64::INFINITY,
                    timestamp_ms: None,
                },
                Sample {
                    base: base.clone(),
                    extra: Vec::new(),
                    value: f64::NAN,
                    timestamp_ms: None,
                },
                Sample {
                    base,
                    extra: Vec::new(),
                    value: 1e21,
                    timestamp_ms: None,
                },
            ],
        };
        let text = String::from_utf8(encode(&[fam], &[]).unwrap()).unwrap();
        let expected = "# HELP m_total Help with \\\\ and\\nnewline.\n# TYPE m_total counter\n\
            m_total{id=\"/a\\\"b\\\\c\\nd\",cpu=\"total\"} 1.5\n\
            m_total +Inf\n\
            m_total{id=\"/a\\\"b\\\\c\\nd\"} NaN\n\
            m_total{id=\"/a\\\"b\\\\c\\nd\"} 1000000000000000000000\n";
        assert_eq!(text, expected);
    }
}
