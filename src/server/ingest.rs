//! `POST /api/v1/write`: Prometheus remote-write 1.0 (protobuf + snappy),
//! from Osprey agents and any other sender.
//!
//! A request is validated whole before anything is stored: one malformed
//! series makes the whole request a 400 that names it, and nothing of it
//! is kept. A repeated request (a sender retrying after a timeout) stores
//! nothing new: identical samples are counted as duplicates by the storage.
//! Samples the storage's ordering rules refuse (out of order, too old,
//! conflicting) are answered with 400 as Prometheus does, after the valid
//! rest is stored, so a sender does not retry them forever.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use osprey_collector::ship::remote_write::{self, WriteRequest};

use super::ServerState;
use super::error::ApiError;
use super::forward::ForwardError;
use crate::storage::{Labels, Sample, SeriesSamples};

/// The ingest routes.
pub fn routes() -> Router<Arc<ServerState>> {
    Router::new().route("/api/v1/write", post(write))
}

/// Checks the headers and decodes the body.
pub fn decode(
    headers: &HeaderMap,
    body: &[u8],
    max_decoded: usize,
) -> Result<WriteRequest, ApiError> {
    if let Some(enc) = headers
        .get(header::CONTENT_ENCODING)
        .filter(|enc| enc.as_bytes() != b"snappy")
    {
        return Err(ApiError::bad_request(format!(
            "Content-Encoding {:?} is not supported: remote-write bodies are snappy-compressed",
            String::from_utf8_lossy(enc.as_bytes())
        )));
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        if !ct.starts_with("application/x-protobuf") {
            return Err(ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                kind: "bad_data",
                message: format!(
                    "Content-Type {ct:?} is not supported: send application/x-protobuf (remote-write 1.0)"
                ),
            });
        }
    }
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty body: expected a snappy-compressed WriteRequest",
        ));
    }
    remote_write::decode_snappy(body, max_decoded)
        .map_err(|e| ApiError::bad_request(format!("cannot decode the body: {e}")))
}

/// Validates every series and converts the request for the storage.
pub fn to_batch(request: WriteRequest) -> Result<Vec<SeriesSamples>, ApiError> {
    let mut batch = Vec::with_capacity(request.timeseries.len());
    for (i, series) in request.timeseries.into_iter().enumerate() {
        if let Err(e) = series.validate() {
            let name = series.metric_name().unwrap_or("<no name>").to_string();
            return Err(ApiError::bad_request(format!(
                "series {i} ({name}): {e}; nothing of this request was stored"
            )));
        }
        if series.samples.is_empty() {
            continue;
        }
        let name = series.metric_name().unwrap_or("<no name>").to_string();
        let labels = Labels::from_pairs(series.labels.into_iter().map(|l| (l.name, l.value)));
        // The storage's own rules (label and metric name syntax) are
        // checked here too, so that a series it would refuse is a 400 that
        // names it rather than a failed append.
        if let Err(e) = labels.validate() {
            return Err(ApiError::bad_request(format!(
                "series {i} ({name}): {e}; nothing of this request was stored"
            )));
        }
        let samples = series
            .samples
            .iter()
            .map(|s| Sample::new(s.timestamp, s.value))
            .collect();
        batch.push(SeriesSamples { labels, samples });
    }
    Ok(batch)
}

async fn write(State(state): State<Arc<ServerState>>, headers: HeaderMap, body: Bytes) -> Response {
    let outcome = |o: &str| state.metrics.write_requests.with_label_values(&[o]).inc();
    let batch = match decode(&headers, &body, state.config.max_decoded_bytes).and_then(to_batch) {
        Ok(b) => b,
        Err(e) => {
            outcome("bad_request");
            return e.into_response();
        }
    };
    // Stored, then queued for every forwarding target that selects it, and
    // only then acknowledged (see `forward`).
    let task_state = state.clone();
    let stored = tokio::task::spawn_blocking(move || {
        task_state
            .forward
            .store_and_forward(&task_state.storage, &batch)
    });
    let report = match stored.await {
        Ok(Ok(report)) => report,
        Ok(Err(e @ ForwardError::Queue { .. })) => {
            outcome("error");
            return ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "unavailable",
                message: format!("{e}; the samples are stored, retry the request"),
            }
            .into_response();
        }
        Ok(Err(e)) => {
            outcome("error");
            return ApiError::internal(e.to_string()).into_response();
        }
        Err(e) => {
            outcome("error");
            return ApiError::internal(format!("storing the samples panicked: {e}"))
                .into_response();
        }
    };
    if report.rejected() > 0 {
        outcome("rejected_samples");
        return ApiError::bad_request(format!(
            "{} samples stored, {} refused: {} out of order, {} older than the head, {} conflicting with a stored value",
            report.accepted, report.rejected(), report.out_of_order, report.too_old, report.conflicting
        ))
        .into_response();
    }
    outcome("ok");
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_collector::ship::remote_write::{Label, Sample as WireSample, TimeSeries};

    #[test]
    fn series_the_storage_would_refuse_are_a_bad_request() {
        // Found by tests/security.rs: a label name outside
        // [a-zA-Z_][a-zA-Z0-9_]* passed the wire format's checks and made
        // the storage's append fail, answered 500.
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label::new("__name__", "up"), Label::new("bad-name", "x")],
                samples: vec![WireSample::new(1, 1.0)],
            }],
            metadata: Vec::new(),
        };
        let e = to_batch(request).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message.contains("bad-name") && e.message.contains("series 0 (up)"),
            "{}",
            e.message
        );
    }
}
