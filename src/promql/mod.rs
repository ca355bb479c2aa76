//! PromQL and the Prometheus-compatible query API.
//!
//! Queries are parsed with the `promql-parser` crate and evaluated here over
//! [`crate::storage`], with Prometheus 2.x's semantics (lookback, staleness
//! markers, extrapolation of `rate`, vector matching …).
//!
//! | module | concept |
//! |---|---|
//! | [`value`] | result values and their JSON form |
//! | [`limits`] | timeout, series and sample limits; query errors |
//! | [`engine`] | evaluation of expressions over all steps, selectors |
//! | [`functions`] | function calls |
//! | [`rollup`] | long ranges answered from the storage's rollups |
//! | [`aggregate`] | aggregation operators |
//! | [`binary`] | binary operators and vector matching |
//! | [`api`] | the HTTP endpoints |

pub mod aggregate;
pub mod api;
pub mod binary;
pub mod engine;
pub mod functions;
pub mod limits;
pub mod rollup;
pub mod value;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use engine::{instant_query, range_query};
pub use limits::{QueryError, QueryLimits};
pub use value::Value;

use crate::server::ServerState;

/// The query API's routes (authentication is applied by the server's
/// router; POSTs here only read).
pub fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/api/v1/query", get(api::query).post(api::query))
        .route(
            "/api/v1/query_range",
            get(api::query_range).post(api::query_range),
        )
        .route("/api/v1/series", get(api::series).post(api::series))
        .route("/api/v1/labels", get(api::labels).post(api::labels))
        .route("/api/v1/label/{name}/values", get(api::label_values))
}
