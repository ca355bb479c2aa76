//! `[server.alerting]`: the alerting settings of the server's config file.
//!
//! ```toml
//! [server.alerting]
//! evaluation_interval = "30s"
//! rule_files = ["/etc/osprey/rules/*.yml"]
//! external_url = "https://osprey.example.com"
//!
//! [[server.alerting.channels]]
//! id = "ops-mail"
//! type = "email"
//! to = ["ops@example.com"]
//! from = "osprey@example.com"
//! smarthost = "smtp.example.com:587"
//!
//! [server.alerting.route]
//! receiver = "ops-mail"
//! group_by = ["alertname", "namespace"]
//! group_wait = "30s"
//!
//! # Rules of any kind, in the API's form (read-only through the API).
//! [[server.alerting.rules]]
//! name = "NodeSilent"
//! for = "1m"
//! condition = { kind = "absence", query = "machine_cpu_cores", duration = "2m" }
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::FlapConfig;
use crate::labels::LabelSet;
use crate::notify::route::Route;
use crate::notify::{ChannelSpec, RetryConfig};
use crate::rule::RuleSpec;

/// Everything alerting can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertingConfig {
    /// Run the alerting engine.
    pub enabled: bool,
    /// Interval of rules that set none.
    #[serde(with = "humantime_serde")]
    pub evaluation_interval: Duration,
    /// How long resolved alerts are kept and offered to notifiers.
    #[serde(with = "humantime_serde")]
    pub resolved_retention: Duration,
    /// Flap damping.
    pub flap: FlapConfig,
    /// The server's URL as users reach it (links in notifications)
    /// [default: http://<listen address>].
    pub external_url: String,
    /// The dashboard's URL [default: the external URL].
    pub dashboard_url: String,
    /// `$externalLabels` in templates.
    pub external_labels: LabelSet,
    /// Prometheus rule files loaded at start (read-only through the API).
    pub rule_files: Vec<PathBuf>,
    /// Rules defined here (`[[server.alerting.rules]]`), in the form the
    /// API takes (any condition kind, e.g. `absence` or `host_comparison`,
    /// which Prometheus rule files cannot express); read-only through the
    /// API. An empty `id` is derived from the name.
    pub rules: Vec<RuleSpec>,
    /// Channels defined here (read-only through the API); more can be
    /// created through the API.
    pub channels: Vec<ChannelSpec>,
    /// The routing tree. The default routes nothing: alerts then go to
    /// the channels their rules name.
    pub route: Route,
    /// Retries of a notification.
    pub retry: RetryConfig,
    /// Time range of e-mail charts.
    #[serde(with = "humantime_serde")]
    pub chart_range: Duration,
    /// Most history entries answered by one request.
    pub history_limit: usize,
    /// The history log is rotated past this size, bytes.
    pub history_max_bytes: u64,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            evaluation_interval: Duration::from_secs(60),
            resolved_retention: Duration::from_secs(900),
            flap: FlapConfig::default(),
            external_url: String::new(),
            dashboard_url: String::new(),
            external_labels: LabelSet::new(),
            rule_files: Vec::new(),
            rules: Vec::new(),
            channels: Vec::new(),
            route: Route::default(),
            retry: RetryConfig::default(),
            chart_range: Duration::from_secs(3600),
            history_limit: 1000,
            history_max_bytes: 64 << 20,
        }
    }
}
