//! Bearer-token authentication. With no token and no user configured the
//! API is open; otherwise every request needs `Authorization: Bearer
//! <token>` (a configured token or a login session's secret) or the
//! session cookie of [`super::session`], whose role covers the request:
//! `write` pushes data, `read` reads, `admin` does everything.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ServerState;
use super::config::Role;
use super::error::ApiError;

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Pushing data.
    Write,
    /// Reading.
    Read,
    /// Changing configuration (dashboards, rules …).
    Admin,
}

/// Endpoints that take POST but only read (Prometheus allows POST for
/// long queries).
const READ_ONLY_POSTS: &[&str] = &[
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
];

/// Endpoints that push data.
const WRITE_PATHS: &[&str] = &["/api/v1/write", "/loki/api/v1/push"];

/// What `method path` needs.
pub fn need(method: &Method, path: &str) -> Need {
    if WRITE_PATHS.contains(&path) {
        Need::Write
    } else if method == Method::GET || method == Method::HEAD || READ_ONLY_POSTS.contains(&path) {
        Need::Read
    } else {
        Need::Admin
    }
}

fn allows(role: Role, need: Need) -> bool {
    matches!(
        (role, need),
        (Role::Admin, _) | (Role::Write, Need::Write) | (Role::Read, Need::Read)
    )
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = (a.len() ^ b.len()) as u8 | ((a.len() ^ b.len()) >> 8) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// The secret a request presents: its bearer token, else its session cookie.
pub fn presented(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .or_else(|| super::session::cookie_secret(headers))
        .map(str::to_string)
}

/// Who presents `secret`: a configured token or a live session.
pub fn identify(state: &ServerState, secret: &str) -> Option<(String, Role)> {
    state
        .tokens
        .iter()
        .find(|t| same_secret(&t.secret, secret))
        .map(|t| (t.name.clone(), t.role))
        .or_else(|| state.sessions.lookup(secret))
}

/// Middleware: refuses requests without a token good for them.
pub async fn require(
    State(state): State<Arc<ServerState>>,
    mut req: Request,
    next: Next,
) -> Response {
    if state.tokens.is_empty() && !state.sessions.has_users() {
        return next.run(req).await;
    }
    let need = need(req.method(), req.uri().path());
    let presented = presented(req.headers());
    let refuse = |status: StatusCode, kind: &'static str, reason: &str, message: String| {
        state
            .metrics
            .auth_refusals
            .with_label_values(&[reason])
            .inc();
        let mut resp = ApiError {
            status,
            kind,
            message,
        }
        .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    };
    let Some(presented) = presented else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing",
            "this server requires `Authorization: Bearer <token>` or a login session (POST /api/v1/login)".into(),
        );
    };
    let Some((name, role)) = identify(&state, &presented) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "invalid",
            "the bearer token is not valid".into(),
        );
    };
    if !allows(role, need) {
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            "role",
            format!("{name:?} has role {role:?}, which may not {need:?}"),
        );
    }
    req.extensions_mut()
        .insert(super::session::Caller { user: name, role });
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_cover_what_they_should() {
        assert_eq!(need(&Method::POST, "/api/v1/write"), Need::Write);
        assert_eq!(need(&Method::POST, "/api/v1/query"), Need::Read);
        assert_eq!(need(&Method::GET, "/api/v1/model/nodes/"), Need::Read);
        assert_eq!(need(&Method::DELETE, "/api/v1/dashboards/x"), Need::Admin);
        assert!(allows(Role::Write, Need::Write) && !allows(Role::Write, Need::Read));
        assert!(allows(Role::Read, Need::Read) && !allows(Role::Read, Need::Write));
        assert!(allows(Role::Admin, Need::Admin) && allows(Role::Admin, Need::Write));
        assert!(!allows(Role::Read, Need::Admin));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abcdefghijklmnop", "abcdefghijklmnop"));
        assert!(!same_secret("abcdefghijklmnop", "abcdefghijklmnoq"));
        assert!(!same_secret("abcdefghijklmnop", "abcdefghijklmno"));
        assert!(!same_secret("", "x"));
    }
}
