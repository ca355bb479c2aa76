//! `POST /api/v1/write`: Prometheus remote-write 1.0 (protobuf + snappy),
//! from Osprey agents and any other sender.
//!
//! A request is validated whole before anything is stored: one malformed
//! series makes the whole request a 400 that names it, and nothing of it
//! is kept.
//!
//! The body is decoded in place ([`super::write_request`]): labels stay
//! borrowed from the decompressed bytes, and the storage copies and
//! validates them only for series it does not hold yet, so a request of
//! known series allocates almost nothing per sample. A repeated request (a sender retrying after a timeout) stores
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
use osprey_collector::ship::remote_write::InvalidSeries;

use super::ServerState;
use super::auth::Scope;
use super::error::ApiError;
use super::forward::{ForwardError, Forwarders};
use super::write_request::{self, WriteBatch};
use crate::storage::{AppendReport, Storage, StorageError};

/// The ingest routes.
pub fn routes() -> Router<Arc<ServerState>> {
    Router::new().route("/api/v1/write", post(write))
}

/// Checks the headers and that there is a body.
pub fn check_request(headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
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
    Ok(())
}

/// Decompresses a body (refusing one that would decompress past `max_decoded` bytes).
pub fn decompress(body: &[u8], max_decoded: usize) -> Result<Vec<u8>, ApiError> {
    osprey_collector::ship::remote_write::decompress(body, max_decoded)
        .map_err(|e| ApiError::bad_request(format!("cannot decode the body: {e}")))
}

/// Decodes a decompressed body in place and checks the spec's sample rule (timestamps
/// strictly increasing per series). Labels are checked by the storage when it meets a
/// series it does not hold yet ([`store`]).
pub fn parse(protobuf: &[u8]) -> Result<WriteBatch<'_>, ApiError> {
    let batch = write_request::decode(protobuf)
        .map_err(|e| ApiError::bad_request(format!("cannot decode the body: {e}")))?;
    for (i, series) in batch.series().enumerate() {
        if let Some(w) = series.samples.windows(2).find(|w| w[0].t >= w[1].t) {
            let name = series.labels.metric_name().unwrap_or("<no name>");
            let e = InvalidSeries::UnorderedSamples(w[1].t);
            return Err(ApiError::bad_request(format!(
                "series {i} ({name}): {e}; nothing of this request was stored"
            )));
        }
    }
    Ok(batch)
}

/// Stores a decoded request and queues it for the forwarding targets (blocking). An
/// invalid series fails the whole request with a 400 naming it, and nothing is stored.
pub fn store(
    forward: &Forwarders,
    storage: &Storage,
    batch: &WriteBatch<'_>,
) -> Result<AppendReport, (&'static str, ApiError)> {
    match forward.store_and_forward_refs(storage, &batch.to_refs()) {
        Ok(report) => Ok(report),
        Err(ForwardError::Store(StorageError::InvalidBatch {
            series_index,
            reason,
        })) => Err((
            "bad_request",
            ApiError::bad_request(format!(
                "series {series_index}: {reason}; nothing of this request was stored"
            )),
        )),
        Err(e @ ForwardError::Queue { .. }) => Err((
            "error",
            ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "unavailable",
                message: format!("{e}; the samples are stored, retry the request"),
            },
        )),
        Err(e) => Err(("error", ApiError::internal(e.to_string()))),
    }
}

/// Refuses (403) a batch with a series `scope` may not write: a tenant
/// pushes only series whose `namespace` label is one of its own.
pub fn check_scope(scope: &Scope, batch: &WriteBatch<'_>) -> Result<(), ApiError> {
    match batch
        .series()
        .find(|s| !scope.allows_label(s.labels.get(super::auth::NAMESPACE_LABEL)))
    {
        None => Ok(()),
        Some(s) => Err(scope.forbidden(format_args!(
            "series {}; nothing of this request was stored",
            s.labels
        ))),
    }
}

/// Everything the handler does with an accepted body, off the async threads.
fn ingest(
    state: &ServerState,
    scope: &Scope,
    body: &[u8],
) -> Result<AppendReport, (&'static str, ApiError)> {
    let bad = |e| ("bad_request", e);
    let protobuf = decompress(body, state.config.max_decoded_bytes).map_err(bad)?;
    let batch = parse(&protobuf).map_err(bad)?;
    check_scope(scope, &batch).map_err(|e| ("forbidden", e))?;
    // Stored, then queued for every forwarding target that selects it, and
    // only then acknowledged (see `forward`).
    store(&state.forward, &state.storage, &batch)
}

async fn write(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = |o: &str| state.metrics.write_requests.with_label_values(&[o]).inc();
    if let Err(e) = check_request(&headers, &body) {
        outcome("bad_request");
        return e.into_response();
    }
    let task_state = state.clone();
    let stored = tokio::task::spawn_blocking(move || ingest(&task_state, &scope, &body));
    let report = match stored.await {
        Ok(Ok(report)) => report,
        Ok(Err((kind, e))) => {
            outcome(kind);
            return e.into_response();
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
