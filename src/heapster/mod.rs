//! The Heapster-compatible REST API (`/api/v1/metric-export-schema/`,
//! `/api/v1/metric-export`, `/api/v1/model/...`) as views over the stored
//! series.
//!
//! Nothing is stored twice: every answer is computed at query time from the
//! cAdvisor series the agents ship, so history is as long as the storage's
//! retention and survives restarts.
//!
//! - [`catalogue`]: metric and label descriptors, legacy aliases;
//! - [`model`]: nodes, system containers, namespaces, pods and containers
//!   from the series' labels;
//! - [`derive`]: rates, grid alignment, member sums;
//! - [`views`]: which series make which metric of which entity;
//! - [`api`]: the handlers and Heapster's JSON shapes.

pub mod api;
pub mod catalogue;
pub mod derive;
pub mod model;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::server::ServerState;

/// The Heapster routes.
pub fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/api/v1/metric-export-schema", get(api::export_schema))
        .route("/api/v1/metric-export-schema/", get(api::export_schema))
        .route("/api/v1/metric-export", get(api::export))
        .route("/api/v1/metric-export/", get(api::export))
        .route("/api/v1/model/{*path}", get(api::model))
}
