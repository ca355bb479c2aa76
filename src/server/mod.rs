//! The Osprey server: receives samples from agents (and any Prometheus
//! remote-write sender), stores them in [`crate::storage`], and serves the
//! APIs. Handlers are thin; they share one [`ServerState`].
//!
//! - [`config`]: `[server]` settings; [`auth`]: bearer tokens and roles;
//! - [`ingest`]: `POST /api/v1/write` (decoding in [`write_request`]); [`health`]: `/livez`, `/readyz`,
//!   `/metrics`; [`error`]: the JSON error body every endpoint uses;
//! - [`alerting`]: rules, notifications and their API;
//! - [`forward`]: forwarding series and log streams to external
//!   remote-write and Loki endpoints;
//! - [`crate::heapster`]: the Heapster-compatible API;
//! - [`crate::logs`]: log push, search, histogram, tail and Loki queries.

pub mod alerting;
pub mod auth;
pub mod chart_batch;
pub mod chart_query;
pub mod config;
pub mod dashboards;
pub mod error;
pub mod forward;
pub mod health;
pub mod info;
pub mod ingest;
pub mod openapi;
pub mod render;
pub mod session;
pub mod state;
pub mod ui;
pub mod write_request;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

pub use config::ServerConfig;
pub use state::ServerState;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be opened.
    #[error("cannot open the data directory {dir}: {source}")]
    Storage {
        /// The directory.
        dir: std::path::PathBuf,
        /// The cause.
        source: crate::storage::StorageError,
    },
    /// The listener could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another server running? choose another --listen)"
    )]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration is invalid.
    #[error("invalid server configuration: {0}")]
    Config(String),
    /// Serving failed.
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    /// The TLS certificate, key or client CA cannot be used.
    #[error("cannot serve HTTPS: {0}")]
    Tls(#[from] osprey_collector::tls::TlsError),
}

/// Every route of the server, with authentication applied.
pub fn router(state: Arc<ServerState>) -> Router {
    let api = Router::new()
        .merge(ingest::routes())
        .merge(info::routes())
        .merge(crate::heapster::routes())
        .merge(crate::promql::routes())
        .merge(dashboards::routes())
        .route("/api/v1/render", axum::routing::get(render::render))
        .route(
            "/api/v1/dashboard/query_range",
            axum::routing::get(chart_query::query_range),
        )
        .route(
            "/api/v1/dashboard/query_batch",
            axum::routing::post(chart_batch::query_batch),
        )
        .merge(crate::logs::api::routes())
        .merge(alerting::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ));
    Router::new()
        .merge(api)
        .merge(health::routes())
        .merge(session::public_routes())
        .route("/api/openapi.json", axum::routing::get(openapi::serve))
        .merge(ui::routes())
        .fallback(error::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.max_body_bytes,
        ))
        .layer(axum::middleware::from_fn(error::json_errors))
        .with_state(state)
}

/// Opens the storage and serves until `shutdown` resolves, then stops
/// accepting, lets requests in flight finish, and flushes the storage.
pub async fn run(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    if config.header_read_timeout.is_zero() {
        return Err(ServerError::Config(
            "header_read_timeout must be more than 0 (e.g. \"10s\")".into(),
        ));
    }
    // Certificate problems stop the start before anything binds or opens.
    let tls = match &config.tls {
        Some(tls) => Some(tls.server_config()?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: config.listen,
            source,
        })?;
    let state = ServerState::open(config)?;
    let maintenance = state.spawn_maintenance();
    // One shutdown signal for the HTTP server and the alerting loop.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let alerting = state
        .alerting
        .clone()
        .map(|a| tokio::spawn(a.run(stopped(stop_rx.clone()))));
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let scheme = match &state.config.tls {
        Some(t) if t.client_ca_file.is_some() => "https (client certificates required)",
        Some(_) => "https",
        None => "http",
    };
    tracing::info!(listen = %state.config.listen, scheme, data_dir = %state.config.data_dir.display(), "server running");
    let logs = state.logs.clone();
    let http_stopped = stopped(stop_rx.clone());
    let shutdown = async move {
        http_stopped.await;
        // Live tails never end by themselves; graceful shutdown waits for
        // open responses.
        logs.close_tails();
    };
    let options = osprey_collector::serve::ServeOptions {
        header_read_timeout: state.config.header_read_timeout,
        tls,
        ..Default::default()
    };
    let served = osprey_collector::serve::serve(listener, router(state.clone()), options, shutdown)
        .await
        .map_err(ServerError::Serve);
    if let Some(a) = alerting {
        // The loop saw the same signal; it persists its state and returns.
        let _ = a.await;
    }
    served?;
    maintenance.abort();
    state.forward.shutdown().await;
    let logs = state.logs.clone();
    match tokio::task::spawn_blocking(move || logs.shutdown()).await {
        Ok(()) => tracing::info!("log index committed and closed"),
        Err(e) => tracing::error!(error = %e, "closing the log index panicked"),
    }
    let storage = state.storage.clone();
    let flushed = tokio::task::spawn_blocking(move || storage.sync()).await;
    match flushed {
        Ok(Ok(())) => tracing::info!("storage flushed; server stopped"),
        Ok(Err(e)) => tracing::error!(error = %e, "flushing the storage failed"),
        Err(e) => tracing::error!(error = %e, "flushing the storage panicked"),
    }
    Ok(())
}

/// How often background maintenance runs when not configured.
pub const DEFAULT_MAINTAIN_INTERVAL: Duration = Duration::from_secs(60);
