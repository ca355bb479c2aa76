//! Prometheus remote-write 1.0 wire format: the protobuf messages and the
//! snappy block framing around them.
//!
//! The messages are declared by hand with `prost`'s derive, with the field
//! numbers of the spec's `types.proto`/`remote.proto`, so the build needs
//! neither `protoc` nor a build script. The body of a remote-write request is
//! the protobuf encoding of a [`WriteRequest`] compressed with the snappy
//! **raw block** format; the spec forbids the framed (streaming) format.
//!
//! The same code decodes, so a receiver (Osprey's own `POST /api/v1/write`)
//! can reuse [`decode_snappy`] and [`TimeSeries::validate`].

use prost::Message;

/// Value of the `X-Prometheus-Remote-Write-Version` header for spec 1.0.
pub const PROTOCOL_VERSION: &str = "0.1.0";
/// Value of the `Content-Type` header of a remote-write request.
pub const CONTENT_TYPE: &str = "application/x-protobuf";
/// Value of the `Content-Encoding` header of a remote-write request.
pub const CONTENT_ENCODING: &str = "snappy";
/// The label holding the metric name.
pub const METRIC_NAME_LABEL: &str = "__name__";

/// One remote-write request: a batch of series with their samples.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// The series, each with its full label set and samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Optional metric metadata (type, help, unit). Field 2 is reserved.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// One series: its complete label set and samples in timestamp order.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Labels sorted by name, `__name__` included, no duplicates.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples in increasing timestamp order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// One label pair.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Message)]
pub struct Label {
    /// Label name, `[a-zA-Z_][a-zA-Z0-9_]*` (or `__name__`).
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value, any non-empty UTF-8 string.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// One sample.
#[derive(Clone, Copy, PartialEq, Message)]
pub struct Sample {
    /// The value. A staleness marker is the NaN [`STALE_NAN_BITS`].
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Bit pattern of the NaN that marks a series stale.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Metadata about one metric family.
#[derive(Clone, PartialEq, Message)]
pub struct MetricMetadata {
    /// The family's type, a [`MetricType`] value.
    #[prost(enumeration = "MetricType", tag = "1")]
    pub r#type: i32,
    /// The family name, e.g. `container_cpu_usage_seconds_total`.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// The `# HELP` text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// The unit, e.g. `seconds`.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// Metric family types, as in the spec's `MetricMetadata.MetricType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    /// Type not known.
    Unknown = 0,
    /// Monotonic counter.
    Counter = 1,
    /// Gauge.
    Gauge = 2,
    /// Histogram.
    Histogram = 3,
    /// Gauge histogram.
    Gaugehistogram = 4,
    /// Summary.
    Summary = 5,
    /// Info metric.
    Info = 6,
    /// State set.
    Stateset = 7,
}

impl Label {
    /// A label pair.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl Sample {
    /// A sample at `timestamp` (milliseconds since the Unix epoch).
    pub fn new(timestamp: i64, value: f64) -> Self {
        Self { value, timestamp }
    }
}

impl TimeSeries {
    /// A series named `metric_name` with the other `labels`, sorted as the
    /// spec requires. `labels` must not contain `__name__` itself.
    pub fn new<N, V>(
        metric_name: impl Into<String>,
        labels: impl IntoIterator<Item = (N, V)>,
        samples: Vec<Sample>,
    ) -> Self
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut all: Vec<Label> = labels
            .into_iter()
            .map(|(name, value)| Label::new(name, value))
            .collect();
        all.push(Label::new(METRIC_NAME_LABEL, metric_name));
        let mut series = Self {
            labels: all,
            samples,
        };
        series.normalize_labels();
        series
    }

    /// Brings the labels to the spec's form: labels with an empty value
    /// removed (an empty value means "no such label" in Prometheus), the
    /// rest sorted by name (then value, to be deterministic).
    pub fn normalize_labels(&mut self) {
        self.labels.retain(|l| !l.value.is_empty());
        if !self.labels.is_sorted_by(|a, b| a.name <= b.name) {
            self.labels.sort_unstable();
        }
    }

    /// The value of `__name__`, if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == METRIC_NAME_LABEL)
            .map(|l| l.value.as_str())
    }

    /// Checks the spec's rules a receiver enforces: label names non-empty,
    /// sorted and unique, values non-empty, `__name__` present, samples in
    /// increasing timestamp order.
    pub fn validate(&self) -> Result<(), InvalidSeries> {
        if self.metric_name().is_none_or(str::is_empty) {
            return Err(InvalidSeries::MissingName);
        }
        for label in &self.labels {
            if label.name.is_empty() {
                return Err(InvalidSeries::EmptyLabelName);
            }
            if label.value.is_empty() {
                return Err(InvalidSeries::EmptyLabelValue(label.name.clone()));
            }
        }
        for pair in self.labels.windows(2) {
            if pair[0].name >= pair[1].name {
                return Err(InvalidSeries::UnsortedLabels(pair[1].name.clone()));
            }
        }
        for pair in self.samples.windows(2) {
            if pair[0].timestamp >= pair[1].timestamp {
                return Err(InvalidSeries::UnorderedSamples(pair[1].timestamp));
            }
        }
        Ok(())
    }
}

/// A series that breaks the remote-write 1.0 rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSeries {
    /// No `__name__` label, or an empty one.
    #[error("series has no __name__ label: every series must carry its metric name")]
    MissingName,
    /// A label with an empty name.
    #[error("series has a label with an empty name")]
    EmptyLabelName,
    /// A label with an empty value (the spec says to omit such labels).
    #[error("label {0:?} has an empty value: omit the label instead")]
    EmptyLabelValue(String),
    /// Labels not sorted by name, or a name repeated.
    #[error("labels are not sorted by name or repeat a name (at {0:?}): sort and deduplicate them")]
    UnsortedLabels(String),
    /// Sample timestamps not strictly increasing.
    #[error("sample timestamps are not strictly increasing (at {0} ms)")]
    UnorderedSamples(i64),
}

/// A remote-write body that could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body is not snappy block data (perhaps framed, or not compressed).
    /// Both remote-write and Loki's push API take the block format only.
    #[error("body is not snappy block-compressed (the framed format is not accepted): {0}")]
    Snappy(#[from] snap::Error),
    /// The body would decompress past the caller's limit.
    #[error("body decompresses to {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Announced decompressed size.
        size: usize,
        /// The caller's limit.
        limit: usize,
    },
    /// The decompressed bytes are not a `WriteRequest`.
    #[error("body is not a protobuf WriteRequest: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

/// A request that could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot snappy-compress a {size}-byte request; send smaller batches: {source}")]
pub struct EncodeError {
    size: usize,
    #[source]
    source: snap::Error,
}

/// Encodes `request` as a remote-write body: protobuf, then snappy block.
pub fn encode_snappy(request: &WriteRequest) -> Result<Vec<u8>, EncodeError> {
    compress(&request.encode_to_vec())
}

/// Decodes a remote-write body, refusing bodies that would decompress to
/// more than `max_decoded_bytes` (the size is read from the snappy header
/// before anything is allocated).
pub fn decode_snappy(body: &[u8], max_decoded_bytes: usize) -> Result<WriteRequest, DecodeError> {
    let protobuf = decompress(body, max_decoded_bytes)?;
    Ok(WriteRequest::decode(protobuf.as_slice())?)
}

/// Snappy block compression of an already encoded protobuf.
pub(crate) fn compress(protobuf: &[u8]) -> Result<Vec<u8>, EncodeError> {
    snap::raw::Encoder::new()
        .compress_vec(protobuf)
        .map_err(|source| EncodeError {
            size: protobuf.len(),
            source,
        })
}

/// Snappy block decompression with a size limit, read from the snappy
/// header before anything is allocated (the server's remote-write ingest
/// and its Loki push endpoint use it too).
pub fn decompress(body: &[u8], max_decoded_bytes: usize) -> Result<Vec<u8>, DecodeError> {
    let size = snap::raw::decompress_len(body)?;
    if size > max_decoded_bytes {
        return Err(DecodeError::TooLarge {
            size,
            limit: max_decoded_bytes,
        });
    }
    Ok(snap::raw::Decoder::new().decompress_vec(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_request() -> WriteRequest {
        WriteRequest {
            timeseries: vec![
                TimeSeries::new(
                    "container_cpu_usage_seconds_total",
                    [("id", "/docker/abc"), ("cpu", "total")],
                    vec![
                        Sample::new(1_700_000_000_000, 1.5),
                        Sample::new(1_700_000_001_000, 2.5),
                    ],
                ),
                TimeSeries::new(
                    "container_memory_usage_bytes",
                    [("id", "/")],
                    vec![Sample::new(
                        1_700_000_000_000,
                        f64::from_bits(STALE_NAN_BITS),
                    )],
                ),
            ],
            metadata: vec![MetricMetadata {
                r#type: MetricType::Counter as i32,
                metric_family_name: "container_cpu_usage_seconds_total".into(),
                help: "Cumulative cpu time consumed in seconds.".into(),
                unit: "seconds".into(),
            }],
        }
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let request = sample_request();
        let body = encode_snappy(&request).unwrap();
        let decoded = decode_snappy(&body, 1 << 20).unwrap();
        assert_eq!(decoded.timeseries.len(), 2);
        assert_eq!(decoded.timeseries[0], request.timeseries[0]);
        assert_eq!(decoded.metadata, request.metadata);
        // NaN != NaN, so compare the staleness marker by bits.
        let stale = decoded.timeseries[1].samples[0].value;
        assert_eq!(stale.to_bits(), STALE_NAN_BITS);
    }

    #[test]
    fn field_numbers_match_the_spec() {
        // Label{name:"a", value:"b"} = tag 1 len 1 'a', tag 2 len 1 'b'.
        assert_eq!(Label::new("a", "b").encode_to_vec(), b"\x0a\x01a\x12\x01b");
        // Sample{value:1.0, timestamp:1} = tag 1 fixed64, tag 2 varint.
        let mut expected = vec![0x09];
        expected.extend_from_slice(&1.0f64.to_le_bytes());
        expected.extend_from_slice(&[0x10, 0x01]);
        assert_eq!(Sample::new(1, 1.0).encode_to_vec(), expected);
        // WriteRequest.timeseries is field 1 (length-delimited => 0x0a).
        let request = WriteRequest {
            timeseries: vec![TimeSeries::default()],
            metadata: vec![],
        };
        assert_eq!(request.encode_to_vec(), vec![0x0a, 0x00]);
    }

    #[test]
    fn body_is_raw_snappy_block_not_framed() {
        let request = sample_request();
        let protobuf = request.encode_to_vec();
        let body = encode_snappy(&request).unwrap();
        // A framed stream starts with the stream identifier chunk 0xff "sNaPpY";
        // a block starts with the uncompressed length as a varint.
        assert!(!body.starts_with(b"\xff\x06\x00\x00sNaPpY"));
        assert_eq!(snap::raw::decompress_len(&body).unwrap(), protobuf.len());
        assert_eq!(
            snap::raw::Decoder::new().decompress_vec(&body).unwrap(),
            protobuf
        );
        // And a framed body is refused rather than misread.
        let mut framed = Vec::new();
        {
            use std::io::Write;
            let mut writer = snap::write::FrameEncoder::new(&mut framed);
            writer.write_all(&protobuf).unwrap();
        }
        assert!(decode_snappy(&framed, 1 << 20).is_err());
    }

    #[test]
    fn decode_refuses_bodies_past_the_limit() {
        let body = encode_snappy(&sample_request()).unwrap();
        let err = decode_snappy(&body, 8).unwrap_err();
        assert!(
            matches!(err, DecodeError::TooLarge { limit: 8, .. }),
            "{err}"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for body in [
            &b""[..],
            b"\x00",
            b"\xff\xff\xff\xff\x0f",
            b"\x05abc",
            b"\x03\x08\xff\xff",
        ] {
            let _ = decode_snappy(body, 1 << 20);
        }
        assert!(decode_snappy(b"\x05\x10\x0a\x03abc", 1 << 20).is_err());
    }

    #[test]
    fn labels_are_sorted_with_name_included() {
        let series = TimeSeries::new(
            "up",
            [
                ("zone", "a"),
                ("image", ""),
                ("job", "x"),
                ("instance", "i"),
            ],
            vec![],
        );
        let names: Vec<&str> = series.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "instance", "job", "zone"]);
        assert_eq!(series.metric_name(), Some("up"));
        assert_eq!(series.validate(), Ok(()));
    }

    #[test]
    fn validate_reports_spec_violations() {
        let mut series = TimeSeries::new("up", [("b", "1"), ("a", "2")], vec![]);
        series.labels.swap(1, 2);
        assert!(matches!(
            series.validate(),
            Err(InvalidSeries::UnsortedLabels(_))
        ));
        let nameless = TimeSeries {
            labels: vec![Label::new("a", "1")],
            samples: vec![],
        };
        assert_eq!(nameless.validate(), Err(InvalidSeries::MissingName));
        let empty = TimeSeries {
            labels: vec![Label::new("__name__", "up"), Label::new("a", "")],
            samples: vec![],
        };
        assert!(matches!(
            empty.validate(),
            Err(InvalidSeries::EmptyLabelValue(_))
        ));
        let unordered = TimeSeries::new(
            "up",
            [("a", "1")],
            vec![Sample::new(2, 0.0), Sample::new(1, 0.0)],
        );
        assert_eq!(
            unordered.validate(),
            Err(InvalidSeries::UnorderedSamples(1))
        );
    }
}
