//! Decoding and validating a Loki push request (`POST /loki/api/v1/push`):
//! JSON, or protobuf (`logproto.PushRequest`) compressed with snappy's
//! block format.
//!
//! A request is validated whole before anything of it is queued for
//! indexing: one malformed stream or entry makes it a 400 naming the
//! problem, and nothing of it is stored.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use osprey_collector::ship::remote_write::decompress;
use serde::Deserialize;
use serde::de::{self, SeqAccess, Visitor};

use super::schema::{PreparedLine, StreamLabels, floor_char_boundary, parse_level};

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    /// The streams.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`: one stream and its entries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// Labels in `{name="value", …}` form.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// The lines.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    /// Loki's stream hash (ignored).
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`: one line.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    /// When it was written.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// The line.
    #[prost(string, tag = "2")]
    pub line: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// The JSON form of a push.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(Debug, Deserialize)]
struct JsonStream {
    stream: BTreeMap<String, String>,
    values: Vec<JsonEntry>,
}

/// `["<ns>", "<line>"]` or `["<ns>", "<line>", {structured metadata}]`.
#[derive(Debug)]
struct JsonEntry {
    ts: String,
    line: String,
}

impl<'de> Deserialize<'de> for JsonEntry {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"an entry ["<unix nanoseconds>", "<line>"]"#)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonEntry, A::Error> {
                let ts: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let line: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                // Structured metadata is accepted and not indexed.
                let _: Option<de::IgnoredAny> = seq.next_element()?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(4, &self));
                }
                Ok(JsonEntry { ts, line })
            }
        }
        d.deserialize_seq(V)
    }
}

/// The limits a push is validated against.
#[derive(Debug, Clone, Copy)]
pub struct PushLimits {
    /// Largest decompressed protobuf body.
    pub max_decoded_bytes: usize,
    /// Lines longer than this are cut (on a character boundary) and
    /// marked.
    pub max_line_bytes: usize,
    /// Lines older than this (Unix ns) are dropped: retention would
    /// delete them at once.
    pub oldest_ns: i64,
    /// Lines newer than this (Unix ns) are refused: the sender's clock is
    /// wrong.
    pub newest_ns: i64,
}

/// A validated push.
#[derive(Debug, Default)]
pub struct PushBatch {
    /// The lines to index, in request order.
    pub lines: Vec<PreparedLine>,
    /// Lines dropped because retention would delete them immediately.
    pub dropped_too_old: usize,
    /// Lines cut to the size limit.
    pub truncated: usize,
    /// Every stream of the request, also those whose lines were all
    /// dropped (what a tenant's scope is checked against).
    pub streams: Vec<Arc<StreamLabels>>,
}

/// The body's encoding, from `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`.
    Json,
    /// `application/x-protobuf` (snappy block compressed), also assumed
    /// without a content type, as Loki does.
    Protobuf,
}

impl BodyFormat {
    /// The format a `Content-Type` names; `Err` names an unsupported one.
    pub fn from_content_type(ct: Option<&str>) -> Result<Self, String> {
        match ct.map(|c| c.split(';').next().unwrap_or("").trim()) {
            None | Some("") | Some("application/x-protobuf") => Ok(Self::Protobuf),
            Some("application/json") => Ok(Self::Json),
            Some(other) => Err(format!(
                "Content-Type {other:?} is not supported: send application/json or application/x-protobuf (snappy)"
            )),
        }
    }
}

/// Decodes and validates a push body; `Err` names the first problem.
pub fn decode(body: &[u8], format: BodyFormat, limits: &PushLimits) -> Result<PushBatch, String> {
    if body.is_empty() {
        return Err("empty body: expected a Loki push request".into());
    }
    let mut batch = PushBatch::default();
    match format {
        BodyFormat::Json => {
            let push: JsonPush = serde_json::from_slice(body)
                .map_err(|e| format!("cannot decode the JSON push request: {e}"))?;
            for (i, s) in push.streams.into_iter().enumerate() {
                let stream =
                    Arc::new(validate_labels(s.stream).map_err(|e| format!("stream {i}: {e}"))?);
                batch.streams.push(stream.clone());
                batch.lines.reserve(s.values.len());
                for (j, e) in s.values.into_iter().enumerate() {
                    let ts: i64 = e.ts.parse().map_err(|_| {
                        format!(
                            "stream {i} ({}), entry {j}: timestamp {:?} is not an integer of Unix nanoseconds",
                            stream.json, e.ts
                        )
                    })?;
                    add_line(&mut batch, &stream, ts, e.line, limits)
                        .map_err(|m| format!("stream {i} ({}), entry {j}: {m}", stream.json))?;
                }
            }
        }
        BodyFormat::Protobuf => {
            let raw = decompress(body, limits.max_decoded_bytes)
                .map_err(|e| format!("cannot decode the body: {e}"))?;
            let push = <PushRequest as prost::Message>::decode(raw.as_slice())
                .map_err(|e| format!("cannot decode the body as logproto.PushRequest: {e}"))?;
            for (i, s) in push.streams.into_iter().enumerate() {
                let labels = parse_label_string(&s.labels)
                    .map_err(|e| format!("stream {i}: labels {:?}: {e}", s.labels))?;
                let stream =
                    Arc::new(validate_labels(labels).map_err(|e| format!("stream {i}: {e}"))?);
                batch.streams.push(stream.clone());
                batch.lines.reserve(s.entries.len());
                for (j, e) in s.entries.into_iter().enumerate() {
                    let t = e.timestamp.ok_or_else(|| {
                        format!("stream {i} ({}), entry {j}: no timestamp", stream.json)
                    })?;
                    if !(0..1_000_000_000).contains(&t.nanos) {
                        return Err(format!(
                            "stream {i} ({}), entry {j}: timestamp nanos {} out of range",
                            stream.json, t.nanos
                        ));
                    }
                    let ts = t
                        .seconds
                        .checked_mul(1_000_000_000)
                        .and_then(|s| s.checked_add(i64::from(t.nanos)))
                        .ok_or_else(|| {
                            format!(
                                "stream {i} ({}), entry {j}: timestamp {}s out of range",
                                stream.json, t.seconds
                            )
                        })?;
                    add_line(&mut batch, &stream, ts, e.line, limits)
                        .map_err(|m| format!("stream {i} ({}), entry {j}: {m}", stream.json))?;
                }
            }
        }
    }
    Ok(batch)
}

fn add_line(
    batch: &mut PushBatch,
    stream: &Arc<StreamLabels>,
    ts: i64,
    mut line: String,
    limits: &PushLimits,
) -> Result<(), String> {
    if ts > limits.newest_ns {
        return Err(format!(
            "timestamp {ts} ns is in the future (more than a day ahead of the server's clock)"
        ));
    }
    if ts < limits.oldest_ns {
        batch.dropped_too_old += 1;
        return Ok(());
    }
    if line.len() > limits.max_line_bytes {
        let cut = floor_char_boundary(&line, limits.max_line_bytes);
        let dropped = line.len() - cut;
        line.truncate(cut);
        line.push_str(&format!(" …[truncated {dropped} bytes]"));
        batch.truncated += 1;
    }
    batch.lines.push(PreparedLine {
        ts_ns: ts,
        level: parse_level(&line),
        stream: stream.clone(),
        message: line,
    });
    Ok(())
}

/// Checks label names (Prometheus's rules) and builds the stream.
fn validate_labels(labels: BTreeMap<String, String>) -> Result<StreamLabels, String> {
    if labels.is_empty() {
        return Err("a stream needs at least one label".into());
    }
    for name in labels.keys() {
        if !valid_label_name(name) {
            return Err(format!(
                "label name {name:?} is invalid (must match [a-zA-Z_][a-zA-Z0-9_]*)"
            ));
        }
    }
    Ok(StreamLabels::new(labels))
}

/// Whether `name` is a valid label name.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `{name="value", …}` (Go string escapes in values).
pub fn parse_label_string(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut p = super::logql::Lexer::new(s);
    let matchers = p.selector()?;
    p.end()?;
    let mut labels = BTreeMap::new();
    for m in matchers {
        if m.op != super::logql::MatchOp::Eq {
            return Err(format!(
                "label {} uses {:?}; push labels need =",
                m.name, m.op
            ));
        }
        if labels.insert(m.name.clone(), m.value).is_some() {
            return Err(format!("label {} appears twice", m.name));
        }
    }
    Ok(labels)
}

/// Parses `X-Osprey-Batch: <source-id>/<sequence>`.
pub fn parse_batch_header(v: &str) -> Result<(String, u64), String> {
    let (source, seq) = v
        .rsplit_once('/')
        .ok_or_else(|| format!("X-Osprey-Batch {v:?} is not <source-id>/<sequence>"))?;
    if source.is_empty() || source.len() > 256 {
        return Err(format!(
            "X-Osprey-Batch {v:?}: the source id must be 1–256 bytes"
        ));
    }
    let seq = seq
        .parse::<u64>()
        .map_err(|_| format!("X-Osprey-Batch {v:?}: the sequence is not an unsigned integer"))?;
    Ok((source.to_string(), seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> PushLimits {
        PushLimits {
            max_decoded_bytes: 1 << 20,
            max_line_bytes: 16,
            oldest_ns: 1_000,
            newest_ns: i64::MAX,
        }
    }

    #[test]
    fn json_and_protobuf_decode_to_the_same_lines() {
        let json = br#"{"streams":[{"stream":{"namespace":"prod","pod":"web-1"},"values":[["2000","ERROR boom"],["3000","ok",{"trace":"x"}]]}]}"#;
        let a = decode(json, BodyFormat::Json, &limits()).unwrap();
        let req = PushRequest {
            streams: vec![StreamAdapter {
                labels: r#"{namespace="prod", pod="web-1"}"#.into(),
                entries: vec![
                    EntryAdapter {
                        timestamp: Some(Timestamp {
                            seconds: 0,
                            nanos: 2000,
                        }),
                        line: "ERROR boom".into(),
                    },
                    EntryAdapter {
                        timestamp: Some(Timestamp {
                            seconds: 0,
                            nanos: 3000,
                        }),
                        line: "ok".into(),
                    },
                ],
                hash: 0,
            }],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&prost::Message::encode_to_vec(&req))
            .unwrap();
        let b = decode(&body, BodyFormat::Protobuf, &limits()).unwrap();
        for batch in [&a, &b] {
            assert_eq!(batch.lines.len(), 2);
            assert_eq!(batch.lines[0].ts_ns, 2000);
            assert_eq!(batch.lines[0].level, Some("error"));
            assert_eq!(batch.lines[1].message, "ok");
            assert_eq!(batch.lines[0].stream.labels["pod"], "web-1");
        }
    }

    #[test]
    fn problems_are_named() {
        let l = limits();
        let cases: &[(&[u8], &str)] = &[
            (b"{", "cannot decode the JSON"),
            (
                br#"{"streams":[{"stream":{},"values":[]}]}"#,
                "at least one label",
            ),
            (
                br#"{"streams":[{"stream":{"a-b":"x"},"values":[]}]}"#,
                "label name \"a-b\"",
            ),
            (
                br#"{"streams":[{"stream":{"a":"x"},"values":[["x1","l"]]}]}"#,
                "entry 0: timestamp \"x1\"",
            ),
            (
                br#"{"streams":[{"stream":{"a":"x"},"values":[["1"]]}]}"#,
                "invalid length 1",
            ),
        ];
        for (body, want) in cases {
            let e = decode(body, BodyFormat::Json, &l).unwrap_err();
            assert!(e.contains(want), "{e} should contain {want}");
        }
        let e = decode(b"not snappy at all", BodyFormat::Protobuf, &l).unwrap_err();
        assert!(e.contains("snappy") || e.contains("PushRequest"), "{e}");
    }

    #[test]
    fn long_lines_are_cut_and_old_lines_dropped() {
        let json = r#"{"streams":[{"stream":{"a":"x"},"values":[["5000","héllo wörld this is long"],["10","old"]]}]}"#;
        let b = decode(json.as_bytes(), BodyFormat::Json, &limits()).unwrap();
        assert_eq!(b.lines.len(), 1);
        assert_eq!(b.dropped_too_old, 1);
        assert_eq!(b.truncated, 1);
        assert!(b.lines[0].message.starts_with("héllo wörld th"));
        assert!(b.lines[0].message.contains("truncated"));
    }

    #[test]
    fn batch_headers() {
        assert_eq!(
            parse_batch_header("node-1-ab/17").unwrap(),
            ("node-1-ab".into(), 17)
        );
        assert_eq!(parse_batch_header("a/b/3").unwrap(), ("a/b".into(), 3));
        assert!(parse_batch_header("x").is_err());
        assert!(parse_batch_header("/3").is_err());
        assert!(parse_batch_header("x/-1").is_err());
    }
}
