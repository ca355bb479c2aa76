//! Forwarding to a real Alertmanager: `POST <url>/api/v2/alerts` with the
//! notified alerts as `postableAlert`s. Firing alerts carry an `endsAt`
//! of `now + resolve_timeout`; the group's repeat re-posts them, so set
//! the route's `repeat_interval` below that timeout for such a channel.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::webhook::rfc3339;
use super::{Notification, SendContext, SendError};
use crate::alert::AlertState;

/// An Alertmanager channel's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Alertmanager's base URL, e.g. `http://alertmanager:9093`.
    pub url: String,
    /// `endsAt` of firing alerts is this far ahead.
    #[serde(default = "default_resolve", with = "humantime_serde")]
    pub resolve_timeout: Duration,
}

fn default_resolve() -> Duration {
    Duration::from_secs(300)
}

impl AlertmanagerConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        reqwest::Url::parse(&self.url)
            .map(|_| ())
            .map_err(|e| format!("alertmanager `url` {:?} is not a URL: {e}", self.url))
    }
}

pub(crate) async fn send(
    c: &AlertmanagerConfig,
    n: &Notification,
    ctx: &SendContext<'_>,
) -> Result<(), SendError> {
    let body: Vec<_> = n
        .alerts
        .iter()
        .map(|a| {
            let ends = match a.state {
                AlertState::Resolved => a.resolved_at.unwrap_or(n.at_ms),
                _ => n.at_ms + c.resolve_timeout.as_millis() as i64,
            };
            json!({
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": rfc3339(a.fired_at.unwrap_or(a.active_at)),
                "endsAt": rfc3339(ends),
                "generatorURL": a.generator_url,
            })
        })
        .collect();
    let url = format!("{}/api/v2/alerts", c.url.trim_end_matches('/'));
    let resp = ctx
        .http
        .post(&url)
        .timeout(ctx.timeout)
        .json(&body)
        .send()
        .await
        .map_err(|e| super::http_error(&url, &e, ctx.timeout))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else if status.is_server_error() {
        Err(SendError::retry(format!("POST {url} answered {status}")))
    } else {
        let text = resp.text().await.unwrap_or_default();
        Err(SendError::permanent(format!(
            "POST {url} answered {status}: {text}"
        )))
    }
}
