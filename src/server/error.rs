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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            Json(json!({ "status": "error", "errorType": self.kind, "error": self.message }));
        (self.status, body).into_response()
    }
}

/// The fallback for unknown routes.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no endpoint {}; see /api/openapi.json", uri.path()))
}
