//! Loki's push API (`POST /loki/api/v1/push`) as the agent speaks it: the
//! JSON body and the snappy-compressed protobuf `logproto.PushRequest`,
//! plus the HTTP client that delivers one batch and says whether to retry.
//!
//! The protobuf messages are declared with `prost`'s derive and the field
//! numbers of Loki's `push.proto` (`logproto.PushRequest`, `StreamAdapter`,
//! `EntryAdapter`) and `google.protobuf.Timestamp`, as the remote-write
//! shipper does, so no `protoc` is needed. A receiver can reuse them to
//! decode.

use std::time::Duration;

use prost::Message;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use serde::{Deserialize, Serialize};

use super::batch::Batch;
use crate::ship::sender::error_chain;

/// The header carrying `<source-id>/<sequence>` for exactly-once delivery.
pub const BATCH_HEADER: &str = "X-Osprey-Batch";
/// `Content-Type` of a JSON push.
pub const JSON_CONTENT_TYPE: &str = "application/json";
/// `Content-Type` of a protobuf push (the body is a snappy block).
pub const PROTOBUF_CONTENT_TYPE: &str = "application/x-protobuf";
const AGENT: &str = concat!("osprey-agent/", env!("CARGO_PKG_VERSION"));
const MAX_LOGGED_BODY: usize = 1024;

/// Which body the agent sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushFormat {
    /// Snappy-compressed `logproto.PushRequest` (smaller; Loki's default).
    #[default]
    Protobuf,
    /// `{"streams":[{"stream":{…},"values":[["<ns>","<line>"],…]}]}`.
    Json,
}

impl PushFormat {
    /// The request's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            PushFormat::Protobuf => PROTOBUF_CONTENT_TYPE,
            PushFormat::Json => JSON_CONTENT_TYPE,
        }
    }
}

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct PushRequest {
    /// The streams.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`: one stream's labels and entries.
#[derive(Clone, PartialEq, Message)]
pub struct StreamAdapter {
    /// Labels as `{a="b", c="d"}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// Entries in order.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    /// Loki's stream hash; 0 (unset) from pushers.
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`: one line.
#[derive(Clone, PartialEq, Message)]
pub struct EntryAdapter {
    /// When it was logged.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// The text.
    #[prost(string, tag = "2")]
    pub line: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Timestamp {
    /// Seconds since the epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second, 0..1e9.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// From ns since the epoch.
    pub fn from_nanos(ns: i64) -> Self {
        Self {
            seconds: ns.div_euclid(1_000_000_000),
            nanos: ns.rem_euclid(1_000_000_000) as i32,
        }
    }

    /// To ns since the epoch.
    pub fn to_nanos(self) -> i64 {
        self.seconds * 1_000_000_000 + i64::from(self.nanos)
    }
}

/// Encodes a batch as Loki's protobuf push body (snappy block).
pub fn encode_protobuf(batch: &Batch) -> Vec<u8> {
    let request = PushRequest {
        streams: batch
            .streams()
            .map(|(labels, entries)| StreamAdapter {
                labels: labels.rendered().to_owned(),
                entries: entries
                    .iter()
                    .map(|(ts, line)| EntryAdapter {
                        timestamp: Some(Timestamp::from_nanos(*ts)),
                        line: line.clone(),
                    })
                    .collect(),
                hash: 0,
            })
            .collect(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("snappy compresses any input")
}

/// Decodes a protobuf push body (for receivers and tests).
pub fn decode_protobuf(body: &[u8]) -> Result<PushRequest, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("not a snappy block: {e}"))?;
    PushRequest::decode(raw.as_slice()).map_err(|e| format!("not a PushRequest: {e}"))
}

#[derive(Serialize)]
struct JsonPush<'a> {
    streams: Vec<JsonStream<'a>>,
}

#[derive(Serialize)]
struct JsonStream<'a> {
    #[serde(serialize_with = "pairs_as_map")]
    stream: &'a [(String, String)],
    values: Vec<(String, &'a str)>,
}

fn pairs_as_map<S: serde::Serializer>(
    pairs: &&[(String, String)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

/// Encodes a batch as Loki's JSON push body.
pub fn encode_json(batch: &Batch) -> Vec<u8> {
    let push = JsonPush {
        streams: batch
            .streams()
            .map(|(labels, entries)| JsonStream {
                stream: labels.pairs(),
                values: entries
                    .iter()
                    .map(|(ts, line)| (ts.to_string(), line.as_str()))
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_vec(&push).expect("serialising strings cannot fail")
}

/// How one push went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the receiver committed the batch (or had it already).
    Accepted,
    /// Worth retrying: connection errors, timeouts, 5xx, 429, and the
    /// answers that mean the agent or receiver is misconfigured rather
    /// than the batch bad (401, 403, 404, 405, 408) — the batch waits on
    /// disk until that is fixed.
    Retry {
        /// What happened.
        error: String,
        /// A 429's or 503's `Retry-After`.
        retry_after: Option<Duration>,
        /// What to do, when the request failed in the TLS handshake.
        tls_hint: Option<&'static str>,
    },
    /// 400, 413 and other 4xx: this body will never be taken.
    Rejected {
        /// The status.
        status: u16,
        /// The receiver's answer (truncated).
        body: String,
    },
}

/// Delivers push bodies to one receiver.
pub struct PushClient {
    client: reqwest::blocking::Client,
    url: reqwest::Url,
    authorization: Option<HeaderValue>,
    format: PushFormat,
    source_id: String,
}

impl PushClient {
    /// A client for `url`; `token` is sent as a bearer token. Must not be
    /// called on a tokio runtime thread (it builds reqwest's blocking
    /// client).
    pub fn new(
        url: &str,
        token: Option<&str>,
        format: PushFormat,
        timeout: Duration,
        source_id: String,
        tls: Option<rustls::ClientConfig>,
    ) -> Result<Self, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("invalid logs url {url:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "invalid logs url {url}: only http:// and https:// receivers are supported"
            ));
        }
        let authorization = token
            .map(|t| {
                HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                    "the logs bearer token contains characters not allowed in an HTTP header"
                        .to_string()
                })
            })
            .transpose()?
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        let client = crate::tls::client::blocking_client(tls, |b| {
            b.timeout(timeout).connect_timeout(timeout)
        })
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            client,
            url,
            authorization,
            format,
            source_id,
        })
    }

    /// POSTs one batch's body with its `X-Osprey-Batch` id.
    pub fn send(&self, seq: u64, body: Vec<u8>) -> Outcome {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, self.format.content_type())
            .header(USER_AGENT, AGENT)
            .header(BATCH_HEADER, format!("{}/{seq}", self.source_id))
            .body(body);
        if let Some(a) = &self.authorization {
            request = request.header(AUTHORIZATION, a.clone());
        }
        let response = match request.send() {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    error: error_chain(&e),
                    retry_after: None,
                    tls_hint: crate::tls::client::failure_hint(&e),
                };
            }
        };
        let status = response.status();
        let retry_after = crate::ship::sender::retry_after(response.headers());
        let answer = response.bytes().unwrap_or_default();
        if status.is_success() {
            return Outcome::Accepted;
        }
        let mut text =
            String::from_utf8_lossy(&answer[..answer.len().min(MAX_LOGGED_BODY)]).into_owned();
        text.truncate(text.trim_end().len());
        let retry = status.is_server_error()
            || matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS
                    | StatusCode::UNAUTHORIZED
                    | StatusCode::FORBIDDEN
                    | StatusCode::NOT_FOUND
                    | StatusCode::METHOD_NOT_ALLOWED
                    | StatusCode::REQUEST_TIMEOUT
            );
        if retry {
            Outcome::Retry {
                error: format!("receiver answered {status}: {text}"),
                retry_after: if status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::SERVICE_UNAVAILABLE
                {
                    retry_after
                } else {
                    None
                },
                tls_hint: None,
            }
        } else {
            Outcome::Rejected {
                status: status.as_u16(),
                body: text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::labels::StreamLabels;

    fn batch() -> Batch {
        let a = StreamLabels::new([
            ("namespace".to_string(), "shop".to_string()),
            ("stream".to_string(), "stdout".to_string()),
        ]);
        let b = StreamLabels::new([("job".to_string(), "syslog".to_string())]);
        let mut batch = Batch::default();
        batch.push(&a, 1_700_000_000_123_456_789, "one".into());
        batch.push(&b, -1, "plain \"quoted\"".into());
        batch.push(&a, 1_700_000_000_123_456_790, "two é".into());
        batch
    }

    #[test]
    fn protobuf_round_trips() {
        let request = decode_protobuf(&encode_protobuf(&batch())).unwrap();
        assert_eq!(request.streams.len(), 2);
        let s = &request.streams[0];
        assert_eq!(s.labels, r#"{namespace="shop", stream="stdout"}"#);
        let lines: Vec<_> = s.entries.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(lines, ["one", "two é"]);
        let ts = s.entries[0].timestamp.unwrap();
        assert_eq!((ts.seconds, ts.nanos), (1_700_000_000, 123_456_789));
        assert_eq!(
            request.streams[1].entries[0].timestamp.unwrap().to_nanos(),
            -1
        );
    }

    #[test]
    fn json_has_lokis_shape() {
        let v: serde_json::Value = serde_json::from_slice(&encode_json(&batch())).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"streams":[
                {"stream":{"namespace":"shop","stream":"stdout"},
                 "values":[["1700000000123456789","one"],["1700000000123456790","two é"]]},
                {"stream":{"job":"syslog"},"values":[["-1","plain \"quoted\""]]}
            ]})
        );
    }
}
