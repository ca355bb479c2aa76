//! The Heapster-compatible REST API (`/api/v1/metric-export-schema/`,
//! `/api/v1/metric-export`, `/api/v1/model/...`) as views over the stored
//! series.

use std::sync::Arc;

use axum::Router;

use crate::server::ServerState;

/// The Heapster routes.
pub fn routes() -> Router<Arc<ServerState>> {
    Router::new()
}
