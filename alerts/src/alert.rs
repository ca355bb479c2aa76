//! An alert instance and its state, as the engine tracks it and as the
//! notifiers receive it.

use serde::{Deserialize, Serialize};

use crate::labels::{LabelSet, fingerprint_hex};

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds but not yet for the rule's `for`.
    Pending,
    /// Notified.
    Firing,
    /// Was firing; the condition stopped (kept for a while so the
    /// resolved notice goes out).
    Resolved,
}

impl AlertState {
    /// Prometheus's name (`pending`, `firing`, `inactive`).
    pub fn prometheus_name(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "inactive",
        }
    }
}

/// One alert instance of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Identity: the instance's labels, the rule's labels and `alertname`.
    pub labels: LabelSet,
    /// Rendered annotations.
    pub annotations: LabelSet,
    /// The rule it belongs to.
    pub rule_id: String,
    /// State.
    pub state: AlertState,
    /// The latest value (`$value`).
    pub value: f64,
    /// When the condition started holding, ms.
    pub active_at: i64,
    /// When it started firing, ms.
    pub fired_at: Option<i64>,
    /// When it resolved, ms.
    pub resolved_at: Option<i64>,
    /// Since when the condition no longer holds while still firing
    /// (`keep_firing_for` and flap damping), ms.
    pub keep_firing_since: Option<i64>,
    /// Times it switched between firing and resolved, ms (for flap
    /// detection; only the recent ones are kept).
    #[serde(default)]
    pub flips: Vec<i64>,
    /// Flapping: resolving is held back until the condition has been
    /// clear for the flap hold time.
    #[serde(default)]
    pub flapping: bool,
    /// Link to the expression in the server's UI.
    pub generator_url: String,
    /// The rule's chart query and threshold (for e-mail charts).
    pub chart_query: String,
    /// The threshold line of the chart, if the rule has one.
    pub chart_threshold: Option<f64>,
    /// Channels the rule names directly.
    #[serde(default)]
    pub channels: Vec<String>,
}

impl Alert {
    /// 16 hex digits of the label fingerprint.
    pub fn fingerprint(&self) -> String {
        fingerprint_hex(&self.labels)
    }

    /// `alertname`.
    pub fn name(&self) -> &str {
        self.labels
            .get(crate::labels::ALERTNAME)
            .map(String::as_str)
            .unwrap_or("")
    }
}
