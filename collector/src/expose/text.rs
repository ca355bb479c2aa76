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
                        m.set_timestamp_ms(t.get());
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
/// registry), as Prometheus text, all in one buffer (for `--once` and
/// tests; `/metrics` streams [`TextChunks`]).
pub fn encode(
    families: Vec<Family>,
    extra: Vec<MetricFamily>,
) -> Result<Vec<u8>, prometheus::Error> {
    let mut chunks = TextChunks::new(families, extra);
    let mut buf = Vec::new();
    while chunks.fill(&mut buf, usize::MAX)? {}
    Ok(buf)
}

/// The text exposition of families, then of already-built ones, produced
/// a chunk at a time as the reader takes it: a dense node's text is tens of
/// megabytes (cAdvisor's label set on each of ~80 000 lines) and built
/// whole it set the agent's peak memory, twice its steady size.
#[derive(Debug)]
pub struct TextChunks {
    families: Vec<Family>,
    extra: Vec<MetricFamily>,
    /// The family being written, and its next sample.
    family: usize,
    sample: usize,
    /// Whether the current family's `# HELP`/`# TYPE` lines are out.
    header_written: bool,
    extra_written: bool,
    chunk_size: usize,
}

/// What one chunk of `/metrics` holds, about: large enough that writing a
/// chunk costs little beside its text, small enough to stay below the
/// allocator's mmap threshold (1 MiB in the agent) and so be reused.
pub const CHUNK_SIZE: usize = 128 * 1024;

impl TextChunks {
    /// The text of `families` (empty ones are left out), then `extra`.
    pub fn new(families: Vec<Family>, extra: Vec<MetricFamily>) -> Self {
        TextChunks {
            families: families
                .into_iter()
                .filter(|f| !f.samples.is_empty())
                .collect(),
            extra,
            family: 0,
            sample: 0,
            header_written: false,
            extra_written: false,
            chunk_size: CHUNK_SIZE,
        }
    }

    /// Chunks of about `bytes` instead of [`CHUNK_SIZE`].
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// Appends whole lines of the text to `buf` until it holds at least
    /// `min` bytes or the text ends; `false` once nothing is left.
    pub fn fill(&mut self, buf: &mut Vec<u8>, min: usize) -> Result<bool, prometheus::Error> {
        use std::io::Write;
        while buf.len() < min {
            let Some(f) = self.families.get(self.family) else {
                if self.extra_written {
                    return Ok(false);
                }
                self.extra_written = true;
                TextEncoder::new().encode(&self.extra, buf)?;
                continue;
            };
            if !self.header_written {
                let kind = match f.kind {
                    MetricKind::Counter => "counter",
                    MetricKind::Gauge => "gauge",
                };
                buf.extend_from_slice(b"# HELP ");
                buf.extend_from_slice(f.name.as_bytes());
                buf.push(b' ');
                escape_help(buf, f.help);
                let _ = writeln!(buf, "\n# TYPE {} {kind}", f.name);
                self.header_written = true;
            }
            let end = f.samples.len();
            while self.sample < end && buf.len() < min {
                write_sample(buf, f.name, &f.samples[self.sample]);
                self.sample += 1;
            }
            if self.sample == end {
                self.family += 1;
                self.sample = 0;
                self.header_written = false;
            }
        }
        Ok(true)
    }
}

impl Iterator for TextChunks {
    type Item = Result<Vec<u8>, prometheus::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        // Room for one more line past the chunk size, so that a chunk is
        // one allocation.
        let mut buf = Vec::with_capacity(self.chunk_size + 4096);
        match self.fill(&mut buf, self.chunk_size) {
            Ok(_) if buf.is_empty() => None,
            Ok(_) => Some(Ok(buf)),
            Err(e) => Some(Err(e)),
        }
    }
}

/// One sample's line: name, labels (the shared ones pre-rendered), value,
/// and the timestamp of a sample read at an earlier tick.
fn write_sample(buf: &mut Vec<u8>, name: &str, s: &super::families::Sample) {
    buf.extend_from_slice(name.as_bytes());
    let base = s.base.text();
    if !base.is_empty() || !s.extra.is_empty() {
        buf.push(b'{');
        buf.extend_from_slice(base);
        for (i, (k, v)) in s.extra.iter().enumerate() {
            if i > 0 || !base.is_empty() {
                buf.push(b',');
            }
            write_label(buf, k, v);
        }
        buf.push(b'}');
    }
    buf.push(b' ');
    write_value(buf, s.value);
    if let Some(t) = s.timestamp_ms {
        buf.push(b' ');
        buf.extend_from_slice(itoa::Buffer::new().format(t.get()).as_bytes());
    }
    buf.push(b'\n');
}

/// `name="value"`, the value escaped.
pub(super) fn write_label(buf: &mut Vec<u8>, name: &str, value: &str) {
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"=\"");
    escape_label_value(buf, value);
    buf.push(b'"');
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
    use super::*;
    use crate::expose::families::{LabelSet, Sample};

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
        let base = LabelSet::new(vec![("id".to_string(), "/a\"b\\c\nd".to_string())]);
        let fam = Family {
            name: "m_total",
            help: "Help with \\ and\nnewline.",
            kind: MetricKind::Counter,
            samples: vec![
                Sample {
                    base: base.clone(),
                    extra: vec![("cpu", "total".into())].into(),
                    value: 1.5,
                    timestamp_ms: None,
                },
                Sample {
                    base: LabelSet::new(Vec::new()),
                    extra: Box::default(),
                    value: f64::INFINITY,
                    timestamp_ms: None,
                },
                Sample {
                    base: base.clone(),
                    extra: Box::default(),
                    value: f64::NAN,
                    timestamp_ms: None,
                },
                Sample {
                    base,
                    extra: Box::default(),
                    value: 1e21,
                    timestamp_ms: None,
                },
            ],
        };
        let text = String::from_utf8(encode(vec![fam], Vec::new()).unwrap()).unwrap();
        let expected = "# HELP m_total Help with \\\\ and\\nnewline.\n# TYPE m_total counter\n\
            m_total{id=\"/a\\\"b\\\\c\\nd\",cpu=\"total\"} 1.5\n\
            m_total +Inf\n\
            m_total{id=\"/a\\\"b\\\\c\\nd\"} NaN\n\
            m_total{id=\"/a\\\"b\\\\c\\nd\"} 1000000000000000000000\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn chunks_are_whole_lines_that_add_up_to_the_whole_text() {
        let base = LabelSet::new(vec![
            ("id".to_string(), "/kubepods/pod1/abc".to_string()),
            ("image".to_string(), "nginx:1.25".to_string()),
        ]);
        let family = |name: &'static str, n: usize| Family {
            name,
            help: "Help.",
            kind: MetricKind::Gauge,
            samples: (0..n)
                .map(|i| Sample {
                    base: base.clone(),
                    extra: if i % 2 == 0 {
                        vec![("device", format!("sd{i}"))].into()
                    } else {
                        Box::default()
                    },
                    value: i as f64 * 1.5,
                    timestamp_ms: std::num::NonZeroI64::new(1_700_000_000_000 + i as i64)
                        .filter(|_| i % 3 == 0),
                })
                .collect(),
        };
        let families = vec![family("a", 5), family("empty", 0), family("b", 40)];
        let mut own = prometheus::proto::MetricFamily::default();
        own.set_name("osprey_agent_ticks_total".into());
        own.set_help("Ticks.".into());
        own.set_field_type(prometheus::proto::MetricType::COUNTER);
        let mut m = prometheus::proto::Metric::default();
        let mut c = prometheus::proto::Counter::default();
        c.set_value(3.0);
        m.set_counter(c);
        own.set_metric(vec![m]);
        let whole = encode(families.clone(), vec![own.clone()]).unwrap();
        let text = String::from_utf8(whole.clone()).unwrap();
        assert!(
            !text.contains("# HELP empty"),
            "empty families are left out"
        );
        assert!(text.ends_with("osprey_agent_ticks_total 3\n"), "{text}");
        assert_eq!(text.matches("\nb{").count(), 40);

        for size in [1, 7, 100, 1000, 1 << 20] {
            let chunks: Vec<Vec<u8>> = TextChunks::new(families.clone(), vec![own.clone()])
                .with_chunk_size(size)
                .map(Result::unwrap)
                .collect();
            assert_eq!(chunks.concat(), whole, "chunk size {size}");
            for chunk in &chunks[..chunks.len() - 1] {
                assert!(chunk.len() >= size, "chunk size {size}: {}", chunk.len());
                assert_eq!(chunk.last(), Some(&b'\n'), "whole lines");
            }
        }
    }
}
