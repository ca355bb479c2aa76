//! `GET /api/v1/status/buildinfo`: what Grafana's Prometheus data source
//! asks first to learn what it talks to.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

use super::ServerState;

/// The status routes (behind authentication: they are reads).
pub fn routes() -> Router<Arc<ServerState>> {
    Router::new().route("/api/v1/status/buildinfo", get(buildinfo))
}

async fn buildinfo() -> Json<Value> {
    Json(json!({
        "status": "success",
        "data": {
            "version": env!("CARGO_PKG_VERSION"),
            "application": "osprey",
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        }
    }))
}
