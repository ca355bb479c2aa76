//! `POST /api/v1/dashboard/query_batch`: the chart queries of every panel
//! on screen in one request. The server evaluates them a few at a time and
//! streams each answer as soon as it is ready, so that the first panels
//! draw while the others are still being evaluated, and a dashboard's
//! dozen queries neither wait in the browser's six-connections-per-host
//! queue nor all finish together at the end.
//!
//! Request body (JSON):
//! ```json
//! {"queries": [{"query": "rate(x[1m])", "start": "now-6h", "end": "now",
//!               "width": 640, "legend": "{{pod}}", "step": "10s"}, …]}
//! ```
//! Each query takes the parameters of `GET /api/v1/dashboard/query_range`
//! (strings or numbers; `query` required, the rest optional), at most
//! [`MAX_QUERIES`] of them. A malformed body or parameter is refused as a
//! whole with 400 naming it (`queries[2].width: …`); nothing is evaluated.
//!
//! Answer (`application/x-osprey-chart-batch`): `OSB1`, then one frame per
//! query in the order they finish:
//!
//! | bytes | what |
//! |---|---|
//! | 0..4 | the query's index in `queries`, u32 little-endian |
//! | 4..8 | its HTTP status (200, or the 4xx/5xx the single query would get) |
//! | 8..12 | `L`, the body's length, u32 little-endian |
//! | 12..12+L | 200: the binary chart answer (`format=binary` of the single query); otherwise its JSON error `{status, errorType, error}` |
//!
//! A query that fails (a PromQL error, a limit) fails alone; the others
//! are answered. The tenant scope of the request applies to every query,
//! as it does to the single query.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;

use super::ServerState;
use super::auth::Scope;
use super::chart_query::{ChartQuery, WireFormat, downsample, encode_binary};
use super::error::ApiError;

/// Most queries in one batch.
pub const MAX_QUERIES: usize = 100;
/// The first four bytes of a batch answer.
pub const BATCH_MAGIC: &[u8; 4] = b"OSB1";
/// The batch answer's content type.
pub const CONTENT_TYPE: &str = "application/x-osprey-chart-batch";
/// The parameters a query of the batch may have.
const PARAMS: &[&str] = &["query", "start", "end", "step", "width", "legend"];

/// Reads and validates the request body: every query, or the first
/// problem found, named by its place.
pub fn parse_batch(body: &[u8]) -> Result<Vec<ChartQuery>, ApiError> {
    let bad = |what: String| ApiError::bad_request(format!("invalid batch: {what}"));
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "the body is not JSON ({e}); send {{\"queries\": [...]}}"
        ))
    })?;
    let Some(obj) = v.as_object() else {
        return Err(bad("the body must be an object {\"queries\": [...]}".into()));
    };
    if let Some(k) = obj.keys().find(|k| *k != "queries") {
        return Err(bad(format!(
            "unknown field {k:?}; the body is {{\"queries\": [...]}}"
        )));
    }
    let list = obj
        .get("queries")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("\"queries\" must be an array of queries".into()))?;
    if list.is_empty() {
        return Err(bad("\"queries\" is empty".into()));
    }
    if list.len() > MAX_QUERIES {
        return Err(bad(format!(
            "{} queries; at most {MAX_QUERIES} in one batch",
            list.len()
        )));
    }
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            let at = |why: String| ApiError::bad_request(format!("queries[{i}]: {why}"));
            let item = item
                .as_object()
                .ok_or_else(|| at("must be an object such as {\"query\": \"up\"}".into()))?;
            if let Some(k) = item.keys().find(|k| !PARAMS.contains(&k.as_str())) {
                return Err(at(format!(
                    "unknown parameter {k:?} (one of {})",
                    PARAMS.join(", ")
                )));
            }
            let mut text = Vec::with_capacity(item.len());
            for (k, v) in item {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Null => continue,
                    _ => {
                        return Err(at(format!(
                            "invalid parameter {k:?}: give a string or a number"
                        )));
                    }
                };
                text.push((k.as_str(), s));
            }
            let get = |k: &str| text.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
            let mut q = ChartQuery::from_params(get, 1000).map_err(|e| at(e.message))?;
            q.format = WireFormat::Binary;
            Ok(q)
        })
        .collect()
}

/// One frame of the answer.
fn frame(index: usize, status: StatusCode, body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(12 + body.len());
    out.extend_from_slice(&(index as u32).to_le_bytes());
    out.extend_from_slice(&(status.as_u16() as u32).to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    out.into()
}

/// One query's frame: its binary answer, or its error.
async fn answer(state: Arc<ServerState>, scope: Scope, index: usize, q: ChartQuery) -> Bytes {
    let result = match q.evaluate(&state, &scope).await {
        // Bucketing and encoding off the async workers too.
        Ok(series) => tokio::task::spawn_blocking(move || encode_binary(&downsample(&q, &series)))
            .await
            .map_err(|e| ApiError::internal(format!("encoding task failed: {e}"))),
        Err(e) => Err(e),
    };
    match result {
        Ok(bytes) => frame(index, StatusCode::OK, &bytes),
        Err(e) => frame(index, e.status, e.body().to_string().as_bytes()),
    }
}

/// How many queries of a batch are evaluated at once: one per core, so
/// that the first answers come early instead of all at the end.
fn concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// `POST /api/v1/dashboard/query_batch`: see the module documentation.
pub async fn query_batch(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    body: Bytes,
) -> Result<Response, ApiError> {
    let queries = parse_batch(&body)?;
    let frames = futures_util::stream::iter(queries.into_iter().enumerate())
        .map(move |(i, q)| answer(state.clone(), scope.clone(), i, q))
        .buffer_unordered(concurrency());
    let stream = futures_util::stream::once(async { Bytes::from_static(BATCH_MAGIC) })
        .chain(frames)
        .map(Ok::<_, std::convert::Infallible>);
    Ok((
        [
            (header::CONTENT_TYPE, CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_validated_with_the_place_of_the_problem() {
        let err = |b: &str| parse_batch(b.as_bytes()).unwrap_err().message;
        assert!(err("nope").contains("not JSON"), "{}", err("nope"));
        assert!(err("[]").contains("must be an object"));
        assert!(err(r#"{"queries": []}"#).contains("empty"));
        assert!(err(r#"{"queries": [], "x": 1}"#).contains("\"x\""));
        assert!(err(r#"{"queries": {}}"#).contains("array"));
        assert!(err(r#"{"queries": [1]}"#).starts_with("queries[0]:"));
        let e = err(r#"{"queries": [{"query": "up"}, {"query": "up", "width": 0}]}"#);
        assert!(
            e.starts_with("queries[1]:") && e.contains("\"width\""),
            "{e}"
        );
        let e = err(r#"{"queries": [{"query": "up", "colour": "red"}]}"#);
        assert!(e.contains("\"colour\""), "{e}");
        let e = err(r#"{"queries": [{"query": "up", "width": [1]}]}"#);
        assert!(e.contains("\"width\""), "{e}");
        let e = err(r#"{"queries": [{"width": 10}]}"#);
        assert!(e.contains("\"query\""), "{e}");
        let many = format!(
            r#"{{"queries": [{}]}}"#,
            vec![r#"{"query": "up"}"#; MAX_QUERIES + 1].join(",")
        );
        assert!(err(&many).contains("at most"));
    }

    #[test]
    fn numbers_and_strings_are_both_parameters() {
        let q = parse_batch(
            br#"{"queries": [{"query": "up", "start": 0, "end": "3600", "width": 60, "legend": "{{pod}}"}]}"#,
        )
        .unwrap();
        assert_eq!((q[0].start, q[0].end, q[0].width), (0, 3_600_000, 60));
        assert_eq!(q[0].legend.as_deref(), Some("{{pod}}"));
        assert_eq!(q[0].format, WireFormat::Binary);
    }

    #[test]
    fn frames_carry_index_status_and_length() {
        let f = frame(7, StatusCode::BAD_REQUEST, b"{}");
        assert_eq!(&f[..4], &7u32.to_le_bytes());
        assert_eq!(&f[4..8], &400u32.to_le_bytes());
        assert_eq!(&f[8..12], &2u32.to_le_bytes());
        assert_eq!(&f[12..], b"{}");
    }
}
