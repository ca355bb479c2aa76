//! The alerting HTTP API: CRUD of rules, channels and silences under
//! `/api/v1/alerting/…`, the history, a test notification, and the
//! Prometheus-compatible `GET /api/v1/rules` and `GET /api/v1/alerts`.
//! Handlers are thin: they parse, call [`Alerting`] and wrap the answer.

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
use crate::server::error::ApiError;

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

/// `GET /api/v1/alerting/rules`
pub async fn list_rules(State(s): State<Arc<ServerState>>) -> Result<Response, ApiError> {
    Ok(ok(service(&s)?.rules()))
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
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    service(&s)?.rule(&id).map(ok).map_err(api_error)
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
pub async fn list_channels(State(s): State<Arc<ServerState>>) -> Result<Response, ApiError> {
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
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
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
pub async fn list_silences(State(s): State<Arc<ServerState>>) -> Result<Response, ApiError> {
    Ok(ok(service(&s)?
        .silences()
        .into_iter()
        .map(silence_json)
        .collect::<Vec<_>>()))
}

/// `POST /api/v1/alerting/silences`
pub async fn create_silence(
    State(s): State<Arc<ServerState>>,
    b: Bytes,
) -> Result<Response, ApiError> {
    let silence: Silence = body("silence", &b)?;
    service(&s)?
        .create_silence(silence)
        .map(created)
        .map_err(api_error)
}

/// `GET /api/v1/alerting/silences/{id}`
pub async fn get_silence(
    State(s): State<Arc<ServerState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    service(&s)?
        .silence(&id)
        .map(|x| ok(silence_json(x)))
        .map_err(api_error)
}

/// `PUT /api/v1/alerting/silences/{id}`
pub async fn put_silence(
    State(s): State<Arc<ServerState>>,
    Path(id): Path<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
    let silence: Silence = body("silence", &b)?;
    service(&s)?
        .update_silence(&id, silence)
        .map(ok)
        .map_err(api_error)
}

/// `DELETE /api/v1/alerting/silences/{id}`: expires it now.
pub async fn delete_silence(
    State(s): State<Arc<ServerState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
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
    service(&s)?
        .history(q.rule.as_deref(), since, limit)
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
    Query(q): Query<RulesQuery>,
) -> Result<Response, ApiError> {
    match q.kind.as_deref() {
        None | Some("alert") => Ok(ok(service(&s)?.prometheus_rules())),
        Some("record") => Ok(ok(json!({"groups": []}))),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid parameter \"type\": {other:?} (use alert or record)"
        ))),
    }
}

/// `GET /api/v1/alerts`, Prometheus's shape.
pub async fn prometheus_alerts(State(s): State<Arc<ServerState>>) -> Result<Response, ApiError> {
    Ok(ok(service(&s)?.prometheus_alerts()))
}
