//! What every handler shares: the configuration, the storage, the log
//! store, the tokens and the server's own counters.

use std::sync::Arc;

use prometheus::{IntCounterVec, Opts, Registry};

use super::ServerError;
use super::config::{Role, ServerConfig};
use crate::logs::LogStore;
use crate::storage::Storage;

/// A configured token, secret resolved.
#[derive(Debug, Clone)]
pub struct Token {
    /// Name for logs.
    pub name: String,
    /// The secret.
    pub secret: String,
    /// What it may do.
    pub role: Role,
    /// Which data it sees and may push.
    pub scope: super::auth::Scope,
}

/// The server's self-metrics.
pub struct ServerMetrics {
    /// Registry rendered on `/metrics`.
    pub registry: Registry,
    /// Remote-write requests by outcome (`ok`, `bad_request`, `error`).
    pub write_requests: IntCounterVec,
    /// Requests refused by authentication, by reason.
    pub auth_refusals: IntCounterVec,
}

impl ServerMetrics {
    fn new() -> Self {
        let registry = Registry::new();
        let write_requests = IntCounterVec::new(
            Opts::new(
                "osprey_server_write_requests_total",
                "Remote-write requests by outcome.",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let auth_refusals = IntCounterVec::new(
            Opts::new(
                "osprey_server_auth_refusals_total",
                "Requests refused by authentication, by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(write_requests.clone()))
            .expect("unique");
        registry
            .register(Box::new(auth_refusals.clone()))
            .expect("unique");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique");
        Self {
            registry,
            write_requests,
            auth_refusals,
        }
    }
}

/// Shared by every handler.
pub struct ServerState {
    /// The configuration the server runs with.
    pub config: ServerConfig,
    /// The time-series store.
    pub storage: Arc<Storage>,
    /// Tokens; empty means the API is open.
    pub tokens: Vec<Token>,
    /// Self-metrics.
    pub metrics: ServerMetrics,
    /// Stored and provisioned dashboards.
    pub dashboards: super::dashboards::DashboardStore,
    /// Users from the configuration and their login sessions.
    pub sessions: super::session::Sessions,
    /// The log store (`<data_dir>/logs`).
    pub logs: Arc<LogStore>,
    /// The alerting service (`None` when disabled); its loop is started
    /// by [`super::run`].
    pub alerting: Option<Arc<osprey_alerts::service::Alerting>>,
    /// Forwarding targets (none by default).
    pub forward: super::forward::Forwarders,
}

impl ServerState {
    /// Resolves tokens, opens the storage under `<data_dir>/tsdb` and the
    /// log store under `<data_dir>/logs`, and starts the forwarding targets
    /// (which needs a tokio runtime when any is configured).
    pub fn open(config: ServerConfig) -> Result<Arc<Self>, ServerError> {
        let tokens = resolve_tokens(&config)?;
        validate_query_limits(&config.query)?;
        let dir = config.data_dir.join("tsdb");
        std::fs::create_dir_all(&dir)
            .map_err(|e| ServerError::Config(format!("cannot create {}: {e}", dir.display())))?;
        let storage =
            Storage::open(&dir, config.storage.clone()).map_err(|source| ServerError::Storage {
                dir: dir.clone(),
                source,
            })?;
        let forward = super::forward::Forwarders::start(&config.forward, &config.data_dir)
            .map_err(ServerError::Config)?;
        let metrics = ServerMetrics::new();
        let logs_dir = config.data_dir.join("logs");
        let logs =
            LogStore::open(&logs_dir, config.logs.clone(), &metrics.registry).map_err(|e| {
                ServerError::Config(format!(
                    "cannot open the log store in {}: {e}",
                    logs_dir.display()
                ))
            })?;
        if tokens.is_empty() && config.users.is_empty() {
            tracing::warn!(
                "no API tokens configured: the API is open to anyone who can reach {}",
                config.listen
            );
        }
        let dashboards = super::dashboards::DashboardStore::open(
            config.data_dir.join("dashboards"),
            &config.dashboard,
        )
        .map_err(ServerError::Config)?;
        let sessions = super::session::Sessions::new(&config.users)?;
        let storage = Arc::new(storage);
        let alerting = super::alerting::open(&config, storage.clone())?;
        Ok(Arc::new(Self {
            config,
            storage,
            tokens,
            metrics,
            dashboards,
            sessions,
            logs: Arc::new(logs),
            alerting,
            forward,
        }))
    }

    /// Runs storage maintenance (cut, compact, retention, rollups) on the
    /// configured interval, off the async threads.
    pub fn spawn_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(state.config.maintain_interval);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                let storage = state.storage.clone();
                match tokio::task::spawn_blocking(move || storage.maintain()).await {
                    Ok(Ok(report)) => tracing::debug!(?report, "storage maintenance"),
                    Ok(Err(e)) => tracing::error!(error = %e, "storage maintenance failed"),
                    Err(e) => tracing::error!(error = %e, "storage maintenance panicked"),
                }
            }
        })
    }
}

fn validate_query_limits(limits: &crate::promql::QueryLimits) -> Result<(), ServerError> {
    let zero = |what: &str| {
        Err(ServerError::Config(format!(
            "query.{what} must be greater than zero"
        )))
    };
    if limits.timeout.is_zero() {
        return zero("timeout");
    }
    if limits.max_series == 0 {
        return zero("max_series");
    }
    if limits.max_samples == 0 {
        return zero("max_samples");
    }
    if limits.lookback.is_zero() {
        return zero("lookback");
    }
    Ok(())
}

fn resolve_tokens(config: &ServerConfig) -> Result<Vec<Token>, ServerError> {
    config
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let secret = match (&t.token, &t.token_file) {
                (_, Some(path)) => std::fs::read_to_string(path)
                    .map_err(|e| {
                        ServerError::Config(format!(
                            "token {i}: cannot read {}: {e}",
                            path.display()
                        ))
                    })?
                    .trim()
                    .to_string(),
                (Some(s), None) => s.clone(),
                (None, None) => {
                    return Err(ServerError::Config(format!(
                        "token {i} has neither `token` nor `token_file`"
                    )));
                }
            };
            super::config::validate_namespaces(
                &format!("token {i} ({})", t.name),
                t.namespaces.as_deref(),
            )
            .map_err(ServerError::Config)?;
            if secret.len() < 16 {
                return Err(ServerError::Config(format!(
                    "token {i} ({}) is shorter than 16 characters; use a long random secret",
                    t.name
                )));
            }
            Ok(Token {
                name: if t.name.is_empty() {
                    format!("token-{i}")
                } else {
                    t.name.clone()
                },
                secret,
                role: t.role,
                scope: super::auth::Scope::from_config(t.namespaces.as_deref()),
            })
        })
        .collect()
}
