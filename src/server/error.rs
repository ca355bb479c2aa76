//! The JSON error body every endpoint answers with: `{"status":"error",
//! "errorType": …, "error": …}` (the Prometheus API's shape, which the
//! other APIs share so that clients handle one form).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API error: an HTTP status, a short machine-readable type and a
/// message that names the problem.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// `bad_data`, `unauthorized`, `forbidden`, `not_found`, `internal` …
    pub kind: &'static str,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// 400 with `bad_data`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "bad_data",
            message: message.into(),
        }
    }

    /// 404 with `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "not_found",
            message: message.into(),
        }
    }

    /// 500 with `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "internal",
            message: message.into(),
        }
    }

    /// The JSON body this error is answered with.
    pub fn body(&self) -> serde_json::Value {
        json!({ "status": "error", "errorType": self.kind, "error": self.message })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// The fallback for unknown routes.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no endpoint {}; see /api/openapi.json", uri.path()))
}

/// Largest non-JSON error body [`json_errors`] rewrites (axum's rejection
/// texts are a line or two).
const MAX_REWRITTEN_ERROR: usize = 64 << 10;

/// Middleware: every error answer is the JSON body above, including those
/// the framework writes itself before a handler runs — an unparsable path
/// or query parameter, a body over the size limit (413), a method the
/// route does not take (405) — which otherwise come as plain text or
/// empty.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let allow = resp.headers().get(axum::http::header::ALLOW).cloned();
    let text = match axum::body::to_bytes(resp.into_body(), MAX_REWRITTEN_ERROR).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let (kind, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            format!(
                "{path} does not take {method}{}; see /api/openapi.json",
                allow
                    .as_ref()
                    .and_then(|a| a.to_str().ok())
                    .map(|a| format!(" (it takes {a})"))
                    .unwrap_or_default()
            ),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "too_large",
            format!("the request body is over this server's limit (max_body_bytes): {text}"),
        ),
        s if s.is_server_error() && text.is_empty() => (
            "internal",
            s.canonical_reason().unwrap_or("error").to_string(),
        ),
        s if s.is_server_error() => ("internal", text),
        _ => ("bad_data", format!("{method} {path}: {text}")),
    };
    let mut out = ApiError {
        status,
        kind,
        message,
    }
    .into_response();
    if let Some(a) = allow {
        out.headers_mut().insert(axum::http::header::ALLOW, a);
    }
    out
}
