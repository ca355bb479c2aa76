//! The alerting HTTP API: CRUD of rules, channels and silences under
//! `/api/v1/alerting/…`, the history, a test notification, and the
//! Prometheus-compatible `GET /api/v1/rules` and `GET /api/v1/alerts`.
//! Handlers are thin: they parse, call [`Alerting`] and wrap the answer.
//!
//! Tenants ([`Scope::Namespaces`]) see the alerts whose `namespace` label
//! is in their scope, the rules whose own `labels` put them in one of
//! their namespaces (with only their alerts), the silences that match
//! `namespace="<one of theirs>"`, and the history of their alerts' state
//! changes; channels (global configuration) are refused with 403. A tenant
//! with role admin may create, change and expire silences that carry such
//! a matcher; rules and channels stay with administrators.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use osprey_alerts::notify::ChannelSpec;
use osprey_alerts::rule::RuleSpec;
use osprey_alerts::service::{Alerting, ServiceError};
use osprey_alerts::silence::Silence;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::promql::api::parse_time;
use crate::server::ServerState;
use crate::server::auth::{NAMESPACE_LABEL, Scope};
use crate::server::error::ApiError;
use osprey_alerts::labels::LabelSet;
use osprey_alerts::service::RuleStatus;

pub(crate) fn service(state: &ServerState) -> Result<&Arc<Alerting>, ApiError> {
    state.alerting.as_ref().ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        kind: "not_found",
        message: "alerting is disabled ([server.alerting] enabled = false)".into(),
    })
}

pub(crate) fn api_error(e: ServiceError) -> ApiError {
    let (status, kind) = match &e {
        ServiceError::Invalid(_) | ServiceError::ReadOnly(_) => {
            (StatusCode::BAD_REQUEST, "bad_data")
        }
        ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        ServiceError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        ServiceError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    ApiError {
        status,
        kind,
        message: e.to_string(),
    }
}

fn ok(data: impl serde::Serialize) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

fn created(data: impl serde::Serialize) -> Response {
    (
        StatusCode::CREATED,
        Json(json!({"status": "success", "data": data})),
    )
        .into_response()
}

/// Parses a JSON body, naming the problem (field, line, column).
fn body<T: DeserializeOwned>(what: &str, bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request(format!(
            "the request needs a JSON {what} as its body"
        )));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            ApiError::bad_request(format!("invalid {what}: {}", e.inner()))
        } else {
            ApiError::bad_request(format!("invalid {what}: `{path}`: {}", e.inner()))
        }
    })
}

/// Whether a tenant sees an alert (or history entry) with these labels.
pub fn labels_visible(scope: &Scope, labels: &LabelSet) -> bool {
    scope.allows_label(labels.get(NAMESPACE_LABEL).map(String::as_str))
}

/// Whether a tenant sees a rule: its own labels name one of the tenant's
/// namespaces.
pub fn rule_visible(scope: &Scope, spec: &RuleSpec) -> bool {
    labels_visible(scope, &spec.labels)
}

/// A rule as `scope` sees it (only its alerts), `None` when invisible.
fn scoped_rule(scope: &Scope, mut r: RuleStatus) -> Option<RuleStatus> {
    if !rule_visible(scope, &r.spec) {
        return None;
    }
    r.alerts.retain(|a| labels_visible(scope, &a.labels));
    Some(r)
}

/// Whether a silence belongs to `scope`: one of its matchers is
/// `namespace="<a namespace of the scope>"`, so it can only ever mute the
/// tenant's alerts.
pub fn silence_visible(scope: &Scope, silence: &Silence) -> bool {
    scope.is_all()
        || silence.matchers.iter().any(|m| {
            m.name == NAMESPACE_LABEL
                && m.op == osprey_alerts::matcher::MatchOp::Equal
                && scope.allows(&m.value)
        })
}

fn check_silence(scope: &Scope, silence: &Silence) -> Result<(), ApiError> {
    if silence_visible(scope, silence) {
        Ok(())
    } else {
        Err(scope
            .forbidden("a silence without a matcher namespace=\"<one of the token's namespaces>\""))
    }
}

fn no_tenants(scope: &Scope, what: &str) -> Result<(), ApiError> {
    if scope.is_all() {
        Ok(())
    } else {
        Err(scope.forbidden(what))
    }
}

/// Keeps, in Prometheus-shaped `{"alerts":[…]}` or rule `{"groups":[…]}`
/// JSON, only what `scope` may see.
fn scope_prometheus_json(scope: &Scope, mut v: Value) -> Value {
    if scope.is_all() {
        return v;
    }
    let visible = |x: &Value| {
        let ns = x["labels"].get(NAMESPACE_LABEL).and_then(Value::as_str);
        scope.allows_label(ns)
    };
    if let Some(alerts) = v.get_mut("alerts").and_then(Value::as_array_mut) {
        alerts.retain(visible);
    }
    if let Some(groups) = v.get_mut("groups").and_then(Value::as_array_mut) {
        for g in groups.iter_mut() {
            if let Some(rules) = g.get_mut("rules").and_then(Value::as_array_mut) {
                rules.retain(visible);
                for r in rules.iter_mut() {
                    if let Some(alerts) = r.get_mut("alerts").and_then(Value::as_array_mut) {
                        alerts.retain(visible);
                    }
                }
            }
        }
        groups.retain(|g| g["rules"].as_array().is_some_and(|r| !r.is_empty()));
    }
    v
}

/// `GET /api/v1/alerting/rules`
pub async fn list_rules(
    State(s): State<Arc<ServerState>>,
    scope: Scope,
) -> Result<Response, ApiError> {
    let rules: Vec<RuleStatus> = service(&s)?
        .rules()
        .into_iter()
        .filter_map(|r| scoped_rule(&scope, r))
        .collect();
    Ok(ok(rules))
}

/// `POST /api/v1/alerting/rules`
pub async fn create_rule(
    State(s): State<Arc<ServerState>>,
    b: Bytes,
) -> Result<Response, ApiError> {
    let spec: RuleSpec = body("rule", &b)?;
    service(&s)?
        .create_rule(spec)
        .map(created)
        .map_err(api_error)
}

/// `GET /api/v1/alerting/rules/{id}`
pub async fn get_rule(
    State(s): State<Arc<ServerState>>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let r = service(&s)?.rule(&id).map_err(api_error)?;
    scoped_rule(&scope, r)
        .map(ok)
        .ok_or_else(|| api_error(ServiceError::NotFound(format!("no rule {id:?}"))))
}

/// `PUT /api/v1/alerting/rules/{id}`
pub async fn put_rule(
    State(s): State<Arc<ServerState>>,
    Path(id): Path<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
    let spec: RuleSpec = body("rule", &b)?;
    service(&s)?
        .update_rule(&id, spec)
        .map(ok)
        .map_err(api_error)
}

/// `DELETE /api/v1/alerting/rules/{id}`
pub async fn delete_rule(
    State(s): State<Arc<ServerState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    service(&s)?
        .delete_rule(&id)
        .map(|()| ok(json!({"deleted": id})))
        .map_err(api_error)
}

/// `GET /api/v1/alerting/channels`
pub async fn list_channels(
    State(s): State<Arc<ServerState>>,
    scope: Scope,
) -> Result<Response, ApiError> {
    no_tenants(&scope, "the notification channels (global configuration)")?;
    Ok(ok(service(&s)?.channels()))
}

/// `POST /api/v1/alerting/channels`
pub async fn create_channel(
    State(s): State<Arc<ServerState>>,
    b: Bytes,
) -> Result<Response, ApiError> {
    let c: ChannelSpec = body("channel", &b)?;
    service(&s)?
        .create_channel(c)
        .map(created)
        .map_err(api_error)
}

/// `GET /api/v1/alerting/channels/{id}`
pub async fn get_channel(
    State(s): State<Arc<ServerState>>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    no_tenants(&scope, "the notification channels (global configuration)")?;
    service(&s)?.channel(&id).map(ok).map_err(api_error)
}

/// `PUT /api/v1/alerting/channels/{id}`
pub async fn put_channel(
    State(s): State<Arc<ServerState>>,
    Path(id): Path<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
    let c: ChannelSpec = body("channel", &b)?;
    service(&s)?
        .update_channel(&id, c)
        .map(ok)
        .map_err(api_error)
}

/// `DELETE /api/v1/alerting/channels/{id}`
pub async fn delete_channel(
    State(s): State<Arc<ServerState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    service(&s)?
        .delete_channel(&id)
        .map(|()| ok(json!({"deleted": id})))
        .map_err(api_error)
}

/// `POST /api/v1/alerting/channels/{id}/test`: sends a test notification
/// now; 200 with `{delivered, attempts, error}` either way (a failed
/// delivery is the answer, not a failed request).
///
/// The request has no body; reading it anyway bounds it by the server's
/// body limit (413 rather than a notification sent on an oversized
/// request).
pub async fn test_channel(
    State(s): State<Arc<ServerState>>,
    Path(id): Path<String>,
    _unused_body: Bytes,
) -> Result<Response, ApiError> {
    let d = service(&s)?.test_channel(&id).await.map_err(api_error)?;
    Ok(ok(json!({
        "delivered": d.error.is_none(),
        "attempts": d.attempts,
        "error": d.error,
    })))
}

fn silence_json((s, state): (Silence, osprey_alerts::silence::SilenceState)) -> Value {
    let mut v = serde_json::to_value(&s).expect("serializable");
    v["state"] = serde_json::to_value(state).expect("serializable");
    v
}

/// `GET /api/v1/alerting/silences`
pub async fn list_silences(
    State(s): State<Arc<ServerState>>,
    scope: Scope,
) -> Result<Response, ApiError> {
    Ok(ok(service(&s)?
        .silences()
        .into_iter()
        .filter(|(x, _)| silence_visible(&scope, x))
        .map(silence_json)
        .collect::<Vec<_>>()))
}

/// The silence `id` if `scope` may see it (else 404, as if it did not
/// exist).
fn visible_silence(
    s: &ServerState,
    scope: &Scope,
    id: &str,
) -> Result<(Silence, osprey_alerts::silence::SilenceState), ApiError> {
    let found = service(s)?.silence(id).map_err(api_error)?;
    if silence_visible(scope, &found.0) {
        Ok(found)
    } else {
        Err(api_error(ServiceError::NotFound(format!(
            "no silence {id:?}"
        ))))
    }
}

/// `POST /api/v1/alerting/silences`
pub async fn create_silence(
    State(s): State<Arc<ServerState>>,
    scope: Scope,
    b: Bytes,
) -> Result<Response, ApiError> {
    let silence: Silence = body("silence", &b)?;
    check_silence(&scope, &silence)?;
    service(&s)?
        .create_silence(silence)
        .map(created)
        .map_err(api_error)
}

/// `GET /api/v1/alerting/silences/{id}`
pub async fn get_silence(
    State(s): State<Arc<ServerState>>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    visible_silence(&s, &scope, &id).map(|x| ok(silence_json(x)))
}

/// `PUT /api/v1/alerting/silences/{id}`
pub async fn put_silence(
    State(s): State<Arc<ServerState>>,
    scope: Scope,
    Path(id): Path<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
    let silence: Silence = body("silence", &b)?;
    visible_silence(&s, &scope, &id)?;
    check_silence(&scope, &silence)?;
    service(&s)?
        .update_silence(&id, silence)
        .map(ok)
        .map_err(api_error)
}

/// `DELETE /api/v1/alerting/silences/{id}`: expires it now.
pub async fn delete_silence(
    State(s): State<Arc<ServerState>>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    visible_silence(&s, &scope, &id)?;
    service(&s)?
        .expire_silence(&id)
        .map(|()| ok(json!({"expired": id})))
        .map_err(api_error)
}

/// Query of `GET /api/v1/alerting/history`.
#[derive(Debug, serde::Deserialize)]
pub struct HistoryQuery {
    /// Only this rule's state changes.
    pub rule: Option<String>,
    /// Only entries at or after this time (RFC 3339 or Unix seconds).
    pub since: Option<String>,
    /// Most entries (default 100).
    pub limit: Option<String>,
}

/// `GET /api/v1/alerting/history`: state changes and deliveries, newest
/// first.
pub async fn history(
    State(s): State<Arc<ServerState>>,
    scope: Scope,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    let since = q
        .since
        .as_deref()
        .map(parse_time)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("invalid parameter \"since\": {e}")))?;
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(l) => l.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid parameter \"limit\": {l:?} is not a positive integer"
            ))
        })?,
    };
    // A tenant sees the state changes of its alerts; deliveries concern
    // channels and groups that may mix tenants, so they are left out.
    let keep = |e: &osprey_alerts::state::HistoryEntry| match &e.event {
        osprey_alerts::state::HistoryEvent::Transition { labels, .. } => {
            labels_visible(&scope, labels)
        }
        _ => scope.is_all(),
    };
    service(&s)?
        .history_where(q.rule.as_deref(), since, limit, keep)
        .map(ok)
        .map_err(api_error)
}

/// Query of `GET /api/v1/rules`.
#[derive(Debug, serde::Deserialize)]
pub struct RulesQuery {
    /// `alert` or `record`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// `GET /api/v1/rules`, Prometheus's shape.
pub async fn prometheus_rules(
    State(s): State<Arc<ServerState>>,
    scope: Scope,
    Query(q): Query<RulesQuery>,
) -> Result<Response, ApiError> {
    match q.kind.as_deref() {
        None | Some("alert") => Ok(ok(scope_prometheus_json(
            &scope,
            service(&s)?.prometheus_rules(),
        ))),
        Some("record") => Ok(ok(json!({"groups": []}))),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid parameter \"type\": {other:?} (use alert or record)"
        ))),
    }
}

/// `GET /api/v1/alerts`, Prometheus's shape.
pub async fn prometheus_alerts(
    State(s): State<Arc<ServerState>>,
    scope: Scope,
) -> Result<Response, ApiError> {
    Ok(ok(scope_prometheus_json(
        &scope,
        service(&s)?.prometheus_alerts(),
    )))
}
