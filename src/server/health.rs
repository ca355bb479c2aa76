//! `/livez`, `/readyz` and the server's own `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
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
    family(name, help, MetricType::GAUGE, [(Vec::new(), value)])
}

/// A count since start: exported as a counter so `rate()` and
/// `increase()` treat a server restart as a reset.
fn counter(name: &str, help: &str, value: f64) -> MetricFamily {
    family(name, help, MetricType::COUNTER, [(Vec::new(), value)])
}

async fn metrics(State(state): State<Arc<ServerState>>) -> Response {
    let s = state.storage.metrics();
    let mut families = state.metrics.registry.gather();
    families.extend([
        counter(
            "osprey_storage_samples_appended_total",
            "Samples accepted since start.",
            s.samples_appended as f64,
        ),
        counter(
            "osprey_storage_wal_group_syncs_total",
            "WAL fsyncs made by group commit since start (each covers every append written before it).",
            s.wal_group_syncs as f64,
        ),
        counter(
            "osprey_storage_samples_duplicate_total",
            "Identical samples dropped (retries) since start.",
            s.samples_duplicate as f64,
        ),
        counter(
            "osprey_storage_samples_rejected_total",
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
        counter(
            "osprey_storage_compactions_total",
            "Compactions since start.",
            s.compactions as f64,
        ),
    ]);
    families.extend(forward_families(&state.forward.stats()));
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

/// One family with a sample per `(labels, value)`.
fn family(
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (Vec<(&'static str, String)>, f64)>,
) -> MetricFamily {
    let metrics = samples
        .into_iter()
        .map(|(labels, value)| {
            let mut m = Metric::default();
            m.set_label(
                labels
                    .into_iter()
                    .map(|(n, v)| {
                        let mut l = LabelPair::default();
                        l.set_name(n.to_string());
                        l.set_value(v);
                        l
                    })
                    .collect(),
            );
            if kind == MetricType::COUNTER {
                let mut c = Counter::default();
                c.set_value(value);
                m.set_counter(c);
            } else {
                let mut g = Gauge::default();
                g.set_value(value);
                m.set_gauge(g);
            }
            m
        })
        .collect::<Vec<_>>();
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

/// The forwarding targets' metrics, labelled `target` (and `type`:
/// `remote_write` counts samples, `loki` log lines).
fn forward_families(targets: &[super::forward::TargetStats]) -> Vec<MetricFamily> {
    if targets.is_empty() {
        return Vec::new();
    }
    let now = std::time::SystemTime::now();
    let id = |t: &super::forward::TargetStats| {
        vec![
            ("target", t.name.clone()),
            ("type", t.kind.as_str().to_string()),
        ]
    };
    let with = |t: &super::forward::TargetStats, outcome: &str| {
        let mut labels = id(t);
        labels.push(("outcome", outcome.to_string()));
        labels
    };
    let per = |f: &dyn Fn(&super::forward::TargetStats) -> f64| {
        targets.iter().map(|t| (id(t), f(t))).collect::<Vec<_>>()
    };
    let outcomes = targets
        .iter()
        .flat_map(|t| {
            let s = &t.shipper;
            [
                (with(t, "queued"), t.queued as f64),
                (with(t, "sent"), s.samples_sent as f64),
                (with(t, "dropped"), s.dropped_samples as f64),
                (with(t, "rejected"), s.rejected_samples as f64),
            ]
        })
        .collect::<Vec<_>>();
    let since_epoch = |t: Option<std::time::SystemTime>| {
        t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64())
    };
    vec![
        family(
            "osprey_forward_samples_total",
            "Samples (log lines for type=\"loki\") by outcome: queued, sent (the target answered 2xx), dropped (queue bound hit), rejected (the target answered a 4xx other than 429; not retried).",
            MetricType::COUNTER,
            outcomes,
        ),
        family(
            "osprey_forward_failed_requests_total",
            "Requests that failed (connection errors, timeouts, non-2xx answers); 5xx, 429 and connection errors are retried.",
            MetricType::COUNTER,
            per(&|t| t.shipper.failed_attempts as f64),
        ),
        family(
            "osprey_forward_retries_total",
            "Requests that were retries of a failed one.",
            MetricType::COUNTER,
            per(&|t| t.shipper.retries as f64),
        ),
        family(
            "osprey_forward_queue_bytes",
            "Bytes waiting in the target's persistent queue.",
            MetricType::GAUGE,
            per(&|t| (t.shipper.queue_disk_bytes + t.shipper.queue_memory_bytes) as f64),
        ),
        family(
            "osprey_forward_queue_batches",
            "Batches (ingest requests) waiting in the target's queue.",
            MetricType::GAUGE,
            per(&|t| t.shipper.queue_batches as f64),
        ),
        family(
            "osprey_forward_lag_seconds",
            "How long the oldest waiting sample has waited in the queue since it was received; 0 when nothing waits.",
            MetricType::GAUGE,
            per(&|t| t.lag_seconds(now)),
        ),
        family(
            "osprey_forward_last_success_timestamp_seconds",
            "When the target last accepted a request (Unix seconds); 0 if never since start.",
            MetricType::GAUGE,
            per(&|t| since_epoch(t.shipper.last_success)),
        ),
    ]
}
