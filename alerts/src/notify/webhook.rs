//! Webhooks: Alertmanager's webhook payload, version "4", POSTed as JSON,
//! optionally signed: `X-Osprey-Signature: sha256=<hex HMAC-SHA256 of the
//! body>` with a shared secret, so the receiver can check the sender.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{ChannelSpec, Notification, SendContext, SendError};
use crate::alert::{Alert, AlertState};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Osprey-Signature";

/// A webhook channel's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: String,
    /// HMAC-SHA256 secret for the signature header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret: Option<String>,
    /// A file holding the secret (whitespace trimmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret_file: Option<PathBuf>,
    /// Most alerts per message (0: all); the rest are counted in
    /// `truncatedAlerts`.
    #[serde(default)]
    pub max_alerts: usize,
    /// Extra headers (e.g. an `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl WebhookConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| format!("webhook `url` {:?} is not a URL: {e}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("webhook `url` must be http or https".into());
        }
        for name in self.headers.keys() {
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("header name {name:?} is not valid"))?;
        }
        Ok(())
    }

    fn secret(&self) -> Result<Option<String>, SendError> {
        match (&self.hmac_secret, &self.hmac_secret_file) {
            (_, Some(p)) => std::fs::read_to_string(p)
                .map(|s| Some(s.trim().to_string()))
                .map_err(|e| SendError::permanent(format!("cannot read {}: {e}", p.display()))),
            (s, None) => Ok(s.clone()),
        }
    }
}

/// RFC 3339 with seconds' fractions as Go prints them.
pub fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

/// Go's zero time, which Alertmanager sends as `endsAt` of firing alerts.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn alert_json(a: &Alert) -> Value {
    let resolved = a.state == AlertState::Resolved;
    json!({
        "status": if resolved { "resolved" } else { "firing" },
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": rfc3339(a.fired_at.unwrap_or(a.active_at)),
        "endsAt": if resolved { rfc3339(a.resolved_at.unwrap_or_default()) } else { ZERO_TIME.to_string() },
        "generatorURL": a.generator_url,
        "fingerprint": a.fingerprint(),
    })
}

/// Go's `regexp.QuoteMeta`, which Alertmanager applies to the receiver.
fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The version-4 payload of a notification.
pub fn payload(n: &Notification, receiver_name: &str, max_alerts: usize) -> Value {
    let take = if max_alerts == 0 {
        n.alerts.len()
    } else {
        max_alerts.min(n.alerts.len())
    };
    let included = Notification {
        alerts: n.alerts[..take].to_vec(),
        ..n.clone()
    };
    let status = if included.firing().next().is_some() {
        "firing"
    } else {
        "resolved"
    };
    json!({
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": n.alerts.len() - take,
        "status": status,
        "receiver": quote_meta(receiver_name),
        "groupLabels": n.group_labels,
        "commonLabels": included.common_labels(),
        "commonAnnotations": included.common_annotations(),
        "externalURL": n.external_url,
        "notification_reason": n.reason,
        "alerts": included.alerts.iter().map(alert_json).collect::<Vec<_>>(),
    })
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) async fn send(
    c: &WebhookConfig,
    channel: &ChannelSpec,
    n: &Notification,
    ctx: &SendContext<'_>,
) -> Result<(), SendError> {
    let name = if channel.name.is_empty() {
        &channel.id
    } else {
        &channel.name
    };
    let body = serde_json::to_vec(&payload(n, name, c.max_alerts)).expect("serializable");
    let mut req = ctx
        .http
        .post(&c.url)
        .timeout(ctx.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, "Osprey-Alerting/1");
    for (k, v) in &c.headers {
        req = req.header(k, v);
    }
    if let Some(secret) = c.secret()? {
        req = req.header(SIGNATURE_HEADER, signature(&secret, &body));
    }
    let resp = req
        .body(body)
        .send()
        .await
        .map_err(|e| super::http_error(&c.url, &e, ctx.timeout))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let msg = format!("POST {} answered {status}: {text}", c.url);
    // As Alertmanager: 5xx (and 429) are worth retrying, other 4xx are not.
    if status.is_server_error() || status.as_u16() == 429 {
        Err(SendError::retry(msg))
    } else {
        Err(SendError::permanent(msg))
    }
}
