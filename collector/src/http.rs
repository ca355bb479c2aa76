//! The agent's HTTP API: `/metrics`, `/api/v1/containers`,
//! `/api/v1/containers/{id}/stats`, `/healthz`.
//!
//! Handlers are thin: they read the latest [`Snapshot`] and the recent
//! window from [`AgentState`], which the collection thread updates.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::expose::families::{DeviceNames, ExposeOptions};
use crate::expose::gzip::{GzipChunks, accepts_gzip};
use crate::expose::text::TextChunks;
use crate::self_metrics::SelfMetrics;
use crate::snapshot::{ContainerInfo, Snapshot};
use crate::stats::ContainerStats;
use crate::window::RecentSamples;

/// What the HTTP handlers and the collection thread share.
pub struct AgentState {
    /// The latest snapshot.
    pub latest: RwLock<Arc<Snapshot>>,
    /// Recent samples per cgroup.
    pub recent: Mutex<RecentSamples>,
    /// The agent's own metrics.
    pub self_metrics: SelfMetrics,
    /// Block device names for `device` labels.
    pub devices: Arc<DeviceNames>,
    /// Exposition options.
    pub expose: ExposeOptions,
    /// Collection interval (health is judged against it).
    pub interval: Duration,
    /// Whether `/metrics` may be gzipped (`metrics_gzip`).
    pub gzip: bool,
    /// Extra families appended to `/metrics` (e.g. the shipper's figures).
    pub extra_metrics: Box<dyn Fn() -> Vec<prometheus::proto::MetricFamily> + Send + Sync>,
}

impl AgentState {
    /// Publishes a new snapshot.
    pub fn publish(&self, snap: Snapshot) {
        let snap = Arc::new(snap);
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(snap.clone());
        *self.latest.write().unwrap_or_else(|e| e.into_inner()) = snap;
    }

    /// The latest snapshot.
    pub fn latest(&self) -> Arc<Snapshot> {
        self.latest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The agent's routes.
pub fn router(state: Arc<AgentState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/api/v1/containers", get(list_containers))
        .route("/api/v1/containers/{*id}", get(container))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint; see /api/v1/containers, /metrics, /healthz",
            )
        })
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("the agent's API is read-only: {method} is not allowed, use GET"),
            )
        })
        .with_state(state)
}

/// A JSON error body naming the problem.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn metrics(State(state): State<Arc<AgentState>>, request: HeaderMap) -> Response {
    let gzip = state.gzip && accepts_gzip(&request);
    // Counted before the text is taken, so a scrape shows itself.
    state
        .self_metrics
        .count_scrape(if gzip { "gzip" } else { "identity" });
    let mut extra = state.self_metrics.gather();
    extra.extend((state.extra_metrics)());
    // Streamed a chunk at a time as the client reads: the whole text of a
    // dense node is tens of megabytes.
    let text = ScrapeText(TextChunks::snapshot(
        state.latest(),
        &state.expose,
        state.devices.clone(),
        extra,
    ));
    let content_type = (
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    );
    let vary = (header::VARY, "Accept-Encoding");
    if gzip {
        let body = Body::from_stream(futures_util::stream::iter(GzipChunks::new(text)));
        let encoding = (header::CONTENT_ENCODING, "gzip");
        ([content_type, vary, encoding], body).into_response()
    } else {
        let body = Body::from_stream(futures_util::stream::iter(text));
        ([content_type, vary], body).into_response()
    }
}

/// The text of one scrape; hands the memory it took (the containers'
/// labels, a chunk, about a megabyte on a large node) back to the system
/// when done.
struct ScrapeText(TextChunks);

impl Iterator for ScrapeText {
    type Item = Result<Vec<u8>, prometheus::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

impl Drop for ScrapeText {
    fn drop(&mut self) {
        self.0 = TextChunks::new(Vec::new(), Vec::new());
        crate::agent::release_free_memory();
    }
}

async fn healthz(State(state): State<Arc<AgentState>>) -> Response {
    let snap = state.latest();
    let age_ms = crate::collect::now_ms() - snap.timestamp_ms;
    let limit_ms = 3 * state.interval.as_millis() as i64 + 5_000;
    if snap.timestamp_ms > 0 && age_ms <= limit_ms {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no collection in the last {limit_ms} ms (last one {age_ms} ms ago)"),
        )
    }
}

/// One container in the JSON API.
#[derive(Serialize)]
struct ContainerView<'a> {
    #[serde(flatten)]
    info: &'a ContainerInfo,
    latest: &'a ContainerStats,
}

async fn list_containers(State(state): State<Arc<AgentState>>) -> Response {
    let snap = state.latest();
    let containers: Vec<_> = snap
        .containers
        .iter()
        .map(|c| ContainerView {
            info: &c.info,
            latest: &c.stats,
        })
        .collect();
    Json(json!({
        "timestamp_ms": snap.timestamp_ms,
        "node": snap.machine.hostname,
        "containers": containers,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct StatsQuery {
    since: Option<String>,
}

/// `/api/v1/containers/<cgroup path>` and `…/<cgroup path>/stats`. The id
/// is the cgroup path (`/docker/<id>`, URL-encoded or not; `root` or an
/// empty path for `/`), a container id, or a container name.
async fn container(
    State(state): State<Arc<AgentState>>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<StatsQuery>, QueryRejection>,
) -> Response {
    // Malformed paths and query strings get the JSON error body too.
    let (Path(id), Query(q)) = match (id, q) {
        (Ok(id), Ok(q)) => (id, q),
        (Err(e), _) => {
            return error(
                e.status(),
                format!("invalid container path: {}", e.body_text()),
            );
        }
        (_, Err(e)) => {
            return error(
                e.status(),
                format!("invalid query string: {}", e.body_text()),
            );
        }
    };
    let (wanted, stats) = match id
        .strip_suffix("/stats")
        .or_else(|| (id == "stats").then_some(""))
    {
        Some(rest) => (rest.to_string(), true),
        None => (id.clone(), false),
    };
    let snap = state.latest();
    let Some(found) = find(&snap, &wanted) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no container {wanted:?} on this node"),
        );
    };
    if !stats {
        return Json(ContainerView {
            info: &found.info,
            latest: &found.stats,
        })
        .into_response();
    }
    let since_ms = match q.since.as_deref() {
        None => i64::MIN,
        Some(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.timestamp_millis(),
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "parameter since={s:?} is not an RFC 3339 time ({e}); e.g. 2026-11-26T10:00:00Z"
                    ),
                );
            }
        },
    };
    let recent = state.recent.lock().unwrap_or_else(|e| e.into_inner());
    let (info, samples) = recent
        .since(&found.info.id, since_ms)
        .unwrap_or((found.info.clone(), Vec::new()));
    Json(json!({ "container": &*info, "stats": samples })).into_response()
}

fn find<'a>(snap: &'a Snapshot, wanted: &str) -> Option<&'a crate::snapshot::ContainerSample> {
    let path = if wanted.is_empty() || wanted == "root" || wanted == "/" {
        "/".to_string()
    } else if wanted.starts_with('/') {
        wanted.to_string()
    } else {
        format!("/{wanted}")
    };
    crate::window::find_sorted(&snap.containers, &path)
        .or_else(|| {
            snap.containers.iter().find(|c| {
                c.info.container_id.as_deref().is_some_and(|id| {
                    id == wanted || (wanted.len() >= 12 && id.starts_with(wanted))
                })
            })
        })
        .or_else(|| snap.containers.iter().find(|c| c.info.name == wanted))
}
