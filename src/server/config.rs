//! The server's configuration: the `[server]` table of the TOML file,
//! overridden by `OSPREY_*` environment variables and flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::logs::LogsConfig;
use crate::storage::StorageOptions;

/// Everything `osprey server` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the API and dashboard.
    pub listen: SocketAddr,
    /// Where the server keeps its data (time series, logs, dashboards).
    pub data_dir: PathBuf,
    /// Bearer tokens. With none configured the API is open (the default of
    /// `osprey up`, which listens on loopback); with one or more, every
    /// request needs a valid token with the right role.
    pub tokens: Vec<TokenConfig>,
    /// Largest request body accepted, bytes (compressed, as received).
    pub max_body_bytes: usize,
    /// Largest remote-write payload accepted once decompressed, bytes.
    pub max_decoded_bytes: usize,
    /// How often the head is cut into blocks, blocks compacted and
    /// retention applied.
    #[serde(with = "humantime_serde")]
    pub maintain_interval: Duration,
    /// The storage engine's settings (`[server.storage]`).
    pub storage: StorageOptions,
    /// What one PromQL query may cost (`[server.query]`: `timeout`,
    /// `max_series`, `max_samples`, `lookback`).
    pub query: crate::promql::QueryLimits,
    /// Dashboards provisioned at start (`[server.dashboard]`).
    pub dashboard: super::dashboards::DashboardConfig,
    /// People who log in to the dashboard with a name and password
    /// (`[[server.users]]`); tokens work too.
    pub users: Vec<super::session::UserConfig>,
    /// Log indexing and retention (`[server.logs]`).
    pub logs: LogsConfig,
    /// Alerting: rules, channels, routing (`[server.alerting]`).
    pub alerting: osprey_alerts::config::AlertingConfig,
    /// Forwarding to external remote-write and Loki endpoints
    /// (`[[server.forward.remote_write]]`, `[[server.forward.loki]]`); see
    /// [`super::forward::ForwardConfig`].
    pub forward: super::forward::ForwardConfig,
    /// Time a client has for the TLS handshake, its first request head,
    /// and each later head from its first byte (e.g. `"10s"`); slower
    /// clients — a slowloris trickling its headers — are disconnected.
    /// Kept-alive connections may idle longer between requests (see
    /// [`osprey_collector::serve`]).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// HTTPS on the listener (`[server.tls]`: `cert_file`, `key_file`,
    /// optional `client_ca_file` for mutual TLS). Unset: plain HTTP.
    pub tls: Option<osprey_collector::tls::ListenerTls>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("/var/lib/osprey/server"),
            tokens: Vec::new(),
            max_body_bytes: 16 << 20,
            max_decoded_bytes: 128 << 20,
            maintain_interval: super::DEFAULT_MAINTAIN_INTERVAL,
            storage: StorageOptions::default(),
            query: crate::promql::QueryLimits::default(),
            dashboard: Default::default(),
            users: Vec::new(),
            logs: LogsConfig::default(),
            alerting: osprey_alerts::config::AlertingConfig::default(),
            forward: super::forward::ForwardConfig::default(),
            header_read_timeout: osprey_collector::serve::DEFAULT_HEADER_READ_TIMEOUT,
            tls: None,
        }
    }
}

/// One bearer token and what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// A name for logs (never the secret itself).
    #[serde(default)]
    pub name: String,
    /// The secret, inline. Prefer `token_file`.
    #[serde(default)]
    pub token: Option<String>,
    /// A file holding the secret (whitespace trimmed), e.g. a mounted
    /// Kubernetes Secret.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// What the token may do.
    pub role: Role,
    /// Makes it a tenant token: it sees only data whose `namespace` label
    /// is one of these (reads), may only push such data (writes), and
    /// with role admin may only change what is scoped to these namespaces
    /// (see `docs/tenants.md`). Absent: every namespace and cluster-wide
    /// data. Must not be empty when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
}

/// Checks a `namespaces` list of a token or user named `who`.
pub fn validate_namespaces(who: &str, namespaces: Option<&[String]>) -> Result<(), String> {
    let Some(list) = namespaces else {
        return Ok(());
    };
    if list.is_empty() {
        return Err(format!(
            "{who}: `namespaces` is empty; leave it out for access to everything or list at least one namespace"
        ));
    }
    if let Some(bad) = list
        .iter()
        .find(|n| n.trim().is_empty() || n.trim() != n.as_str())
    {
        return Err(format!(
            "{who}: namespace {bad:?} is empty or has surrounding spaces"
        ));
    }
    Ok(())
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Only push samples (`POST /api/v1/write`): what agents get.
    Write,
    /// Only read (queries, the Heapster API, the dashboard).
    Read,
    /// Everything.
    Admin,
}
