//! Alerting in the server: the [`osprey_alerts`] service wired to the
//! server's storage (rules query through [`source::PromqlSource`]), the
//! dashboard's chart renderer for e-mails ([`chart::DashboardRenderer`]),
//! and the HTTP API ([`api`], the rule form's [`preview`]). Configured by `[server.alerting]`
//! ([`osprey_alerts::config::AlertingConfig`]); state is kept under
//! `<data_dir>/alerting`.

pub mod api;
pub mod chart;
pub mod preview;
pub mod source;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use osprey_alerts::service::Alerting;

use super::{ServerConfig, ServerError, ServerState};
use crate::storage::Storage;

/// Longest a rule's query may run.
pub const RULE_QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens the alerting service (`None` when disabled).
pub fn open(
    config: &ServerConfig,
    storage: Arc<Storage>,
) -> Result<Option<Arc<Alerting>>, ServerError> {
    if !config.alerting.enabled {
        return Ok(None);
    }
    let mut c = config.alerting.clone();
    if c.external_url.is_empty() {
        c.external_url = format!("http://{}", config.listen);
    }
    let dir = config.data_dir.join("alerting");
    let source = Arc::new(source::PromqlSource::new(storage, RULE_QUERY_TIMEOUT));
    Alerting::open(c, &dir, source, Some(Arc::new(chart::DashboardRenderer)))
        .map(Some)
        .map_err(|e| ServerError::Config(format!("alerting: {e}")))
}

/// The alerting routes (authentication is applied by the server's router:
/// GETs need read, everything else admin).
pub fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route(
            "/api/v1/alerting/rules",
            get(api::list_rules).post(api::create_rule),
        )
        .route("/api/v1/alerting/rules/preview", post(preview::preview))
        .route(
            "/api/v1/alerting/rules/{id}",
            get(api::get_rule)
                .put(api::put_rule)
                .delete(api::delete_rule),
        )
        .route(
            "/api/v1/alerting/channels",
            get(api::list_channels).post(api::create_channel),
        )
        .route(
            "/api/v1/alerting/channels/{id}",
            get(api::get_channel)
                .put(api::put_channel)
                .delete(api::delete_channel),
        )
        .route(
            "/api/v1/alerting/channels/{id}/test",
            post(api::test_channel),
        )
        .route(
            "/api/v1/alerting/silences",
            get(api::list_silences).post(api::create_silence),
        )
        .route(
            "/api/v1/alerting/silences/{id}",
            get(api::get_silence)
                .put(api::put_silence)
                .delete(api::delete_silence),
        )
        .route("/api/v1/alerting/history", get(api::history))
        .route("/api/v1/rules", get(api::prometheus_rules))
        .route("/api/v1/alerts", get(api::prometheus_alerts))
}
