//! `/livez`, `/readyz` and the server's own `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::proto::{Gauge, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use super::ServerState;

/// The health and self-metrics routes (never behind authentication, so
/// probes and scrapers need no token).
pub fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

async fn ready(State(state): State<Arc<ServerState>>) -> Response {
    // The storage is open once the state exists; readiness also checks
    // that the data directory is still there.
    if state.storage.dir().is_dir() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        super::error::ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "unavailable",
            message: "the data directory is gone".into(),
        }
        .into_response()
    }
}

fn gauge(name: &str, help: &str, value: f64) -> MetricFamily {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::default();
    m.set_gauge(g);
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(MetricType::GAUGE);
    f.set_metric(vec![m]);
    f
}

async fn metrics(State(state): State<Arc<ServerState>>) -> Response {
    let s = state.storage.metrics();
    let mut families = state.metrics.registry.gather();
    families.extend([
        gauge(
            "osprey_storage_samples_appended",
            "Samples accepted since start.",
            s.samples_appended as f64,
        ),
        gauge(
            "osprey_storage_wal_group_syncs",
            "WAL fsyncs made by group commit since start (each covers every append written before it).",
            s.wal_group_syncs as f64,
        ),
        gauge(
            "osprey_storage_samples_duplicate",
            "Identical samples dropped (retries) since start.",
            s.samples_duplicate as f64,
        ),
        gauge(
            "osprey_storage_samples_rejected",
            "Samples refused by ordering rules since start.",
            s.samples_rejected as f64,
        ),
        gauge(
            "osprey_storage_head_series",
            "Series in the in-memory head.",
            s.head_series as f64,
        ),
        gauge(
            "osprey_storage_head_bytes",
            "Approximate heap bytes of the head.",
            s.head_bytes as f64,
        ),
        gauge(
            "osprey_storage_wal_bytes",
            "Bytes in live WAL segments.",
            s.wal_bytes as f64,
        ),
        gauge(
            "osprey_storage_blocks",
            "Raw blocks on disk.",
            s.raw_blocks as f64,
        ),
        gauge(
            "osprey_storage_block_bytes",
            "Bytes of all blocks on disk.",
            s.block_bytes as f64,
        ),
        gauge(
            "osprey_storage_compactions",
            "Compactions since start.",
            s.compactions as f64,
        ),
    ]);
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&families, &mut buf) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            buf,
        )
            .into_response(),
        Err(e) => super::error::ApiError::internal(format!("encoding metrics failed: {e}"))
            .into_response(),
    }
}
