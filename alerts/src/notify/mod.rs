//! Notifications: routing alerts to channels, grouping, deduplication
//! against a persisted notification log, silences, retries, and the
//! channels themselves.
//!
//! | module | concept |
//! |---|---|
//! | [`route`] | the routing tree (Alertmanager's `route`) |
//! | [`dispatch`] | aggregation groups, their timers, the notification log |
//! | [`email`] | SMTP with lettre (STARTTLS, TLS or plain; auth) |
//! | [`webhook`] | Alertmanager webhook payload v4, optional HMAC signature |
//! | [`alertmanager`] | forwarding to a real Alertmanager (`POST /api/v2/alerts`) |

pub mod alertmanager;
pub mod dispatch;
pub mod email;
pub mod route;
pub mod webhook;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::labels::LabelSet;

/// A notification channel. JSON:
/// `{"id":"ops-mail","name":"Ops","type":"email","to":["ops@example.com"],…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelSpec {
    /// Identifier (assigned when created if empty).
    #[serde(default)]
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Whether resolved notices are sent.
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// The kind and its settings.
    #[serde(flatten)]
    pub kind: ChannelKind,
    /// Where it came from: `api` or `config` (read-only).
    #[serde(default = "api")]
    pub origin: String,
}

fn yes() -> bool {
    true
}
fn api() -> String {
    "api".into()
}

/// The kinds of channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelKind {
    /// E-mail over SMTP.
    Email(email::EmailConfig),
    /// An HTTP webhook receiving Alertmanager's payload.
    Webhook(webhook::WebhookConfig),
    /// A real Alertmanager.
    Alertmanager(alertmanager::AlertmanagerConfig),
}

impl ChannelSpec {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if !self.id.is_empty()
            && !self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "channel id {:?} may hold only letters, digits, '-', '_' and '.'",
                self.id
            ));
        }
        match &self.kind {
            ChannelKind::Email(c) => c.validate(),
            ChannelKind::Webhook(c) => c.validate(),
            ChannelKind::Alertmanager(c) => c.validate(),
        }
    }

    /// `email`, `webhook` or `alertmanager`.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            ChannelKind::Email(_) => "email",
            ChannelKind::Webhook(_) => "webhook",
            ChannelKind::Alertmanager(_) => "alertmanager",
        }
    }
}

/// A transport error with its causes, and timeouts called what they are.
pub(crate) fn http_error(url: &str, e: &reqwest::Error, timeout: Duration) -> SendError {
    if e.is_timeout() {
        return SendError::retry(format!(
            "POST {url}: no answer within {} (timed out)",
            humantime::format_duration(timeout)
        ));
    }
    let mut msg = format!("POST {url}: {e}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        msg.push_str(&format!(": {c}"));
        cause = c.source();
    }
    SendError::retry(msg)
}

/// What one notification carries: one aggregation group's alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The channel id.
    pub receiver: String,
    /// `<route key>:<group labels>`.
    pub group_key: String,
    /// The group's labels.
    pub group_labels: LabelSet,
    /// `firing` if any included alert fires, else `resolved`.
    pub status: String,
    /// Why it is sent (`first notification`, `new alerts added`, …).
    pub reason: String,
    /// The alerts, firing first.
    pub alerts: Vec<Alert>,
    /// The server's URL (links).
    pub external_url: String,
    /// When it was decided, ms.
    pub at_ms: i64,
}

impl Notification {
    /// Labels equal across every alert.
    pub fn common_labels(&self) -> LabelSet {
        common(self.alerts.iter().map(|a| &a.labels))
    }

    /// Annotations equal across every alert.
    pub fn common_annotations(&self) -> LabelSet {
        common(self.alerts.iter().map(|a| &a.annotations))
    }

    /// Firing alerts.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .iter()
            .filter(|a| a.state == crate::alert::AlertState::Firing)
    }
}

fn common<'a>(mut sets: impl Iterator<Item = &'a LabelSet>) -> LabelSet {
    let Some(first) = sets.next() else {
        return LabelSet::new();
    };
    let mut out = first.clone();
    for s in sets {
        out.retain(|k, v| s.get(k) == Some(v));
    }
    out
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Whether trying again may help (connection refused, 5xx, timeout).
    pub retryable: bool,
    /// What happened.
    pub message: String,
}

impl SendError {
    /// A failure worth retrying.
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            retryable: true,
            message: message.into(),
        }
    }

    /// A failure that will not go away by itself (bad address, 4xx).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            message: message.into(),
        }
    }
}

/// Retries of one notification (`[server.alerting.retry]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles after each.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest wait between attempts.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Timeout of one attempt.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryConfig {
    /// The wait after failed attempt `n` (1-based): capped doubling.
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = 1u32 << (n.saturating_sub(1)).min(20);
        (self.initial_backoff * factor).min(self.max_backoff)
    }
}

/// What a channel needs to send besides the notification.
pub struct SendContext<'a> {
    /// Shared HTTP client.
    pub http: &'a reqwest::Client,
    /// PNG chart for e-mails.
    pub chart: Option<&'a [u8]>,
    /// Link to the dashboard's alert pages.
    pub dashboard_url: &'a str,
    /// Timeout of one attempt.
    pub timeout: Duration,
}

/// Sends once through `channel`.
pub async fn send_once(
    channel: &ChannelSpec,
    n: &Notification,
    ctx: &SendContext<'_>,
) -> Result<(), SendError> {
    let fut = async {
        match &channel.kind {
            ChannelKind::Email(c) => email::send(c, channel, n, ctx).await,
            ChannelKind::Webhook(c) => webhook::send(c, channel, n, ctx).await,
            ChannelKind::Alertmanager(c) => alertmanager::send(c, n, ctx).await,
        }
    };
    match tokio::time::timeout(ctx.timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(SendError::retry(format!(
            "no answer within {} (timed out)",
            humantime::format_duration(ctx.timeout)
        ))),
    }
}

/// The outcome of [`send_with_retries`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Attempts made.
    pub attempts: u32,
    /// The last error, if it never succeeded.
    pub error: Option<String>,
    /// The errors of failed attempts, in order.
    pub attempt_errors: Vec<String>,
}

/// Sends with retries and capped exponential backoff; only retryable
/// errors are retried.
pub async fn send_with_retries(
    channel: &ChannelSpec,
    n: &Notification,
    ctx: &SendContext<'_>,
    retry: &RetryConfig,
) -> Delivery {
    let mut errors = Vec::new();
    let max = retry.max_attempts.max(1);
    for attempt in 1..=max {
        match send_once(channel, n, ctx).await {
            Ok(()) => {
                return Delivery {
                    attempts: attempt,
                    error: None,
                    attempt_errors: errors,
                };
            }
            Err(e) => {
                tracing::warn!(channel = %channel.id, group = %n.group_key, attempt, error = %e.message, "notification attempt failed");
                errors.push(e.message.clone());
                if !e.retryable || attempt == max {
                    return Delivery {
                        attempts: attempt,
                        error: Some(e.message),
                        attempt_errors: errors,
                    };
                }
                tokio::time::sleep(retry.backoff(attempt)).await;
            }
        }
    }
    unreachable!("the loop returns on its last attempt")
}
