//! Bearer-token authentication. With no token and no user configured the
//! API is open; otherwise every request needs `Authorization: Bearer
//! <token>` (a configured token or a login session's secret) or the
//! session cookie of [`super::session`], whose role covers the request:
//! `write` pushes data, `read` reads, `admin` does everything.
//!
//! A token or user with `namespaces = [..]` is a *tenant*: the middleware
//! puts its [`Scope`] into the request's extensions and every handler that
//! reads or writes data filters by it (see `docs/tenants.md`). Tenants
//! never see cluster-wide data (nodes, the cluster, series without a
//! `namespace` label); a tenant with role admin may only change what is
//! scoped to it (its dashboards and silences, rule previews), never the
//! server's global configuration ([`TENANT_ADMIN_PATHS`]).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
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
    "/api/v1/dashboard/query_batch",
];

/// Endpoints that push data.
const WRITE_PATHS: &[&str] = &["/api/v1/write", "/loki/api/v1/push"];

/// Admin routes a tenant (a token with namespaces and role admin) may
/// use: what it changes is scoped to its namespaces by the handler.
/// Prefixes; everything else that needs admin is refused to tenants.
pub const TENANT_ADMIN_PATHS: &[&str] = &[
    "/api/v1/dashboards",
    "/api/v1/alerting/silences",
    "/api/v1/alerting/rules/preview",
];

/// Which data a request may see: everything, or only what carries a
/// `namespace` label with one of the listed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// No restriction (tokens without `namespaces`, open servers).
    All,
    /// Only these namespaces (sorted, unique, never empty).
    Namespaces(Vec<String>),
}

impl Scope {
    /// The scope of a configured `namespaces` list (`None`: all).
    pub fn from_config(namespaces: Option<&[String]>) -> Scope {
        match namespaces {
            None => Scope::All,
            Some(list) => {
                let mut list = list.to_vec();
                list.sort();
                list.dedup();
                Scope::Namespaces(list)
            }
        }
    }

    /// True for [`Scope::All`].
    pub fn is_all(&self) -> bool {
        matches!(self, Scope::All)
    }

    /// The namespaces of a tenant; `None` for [`Scope::All`].
    pub fn namespaces(&self) -> Option<&[String]> {
        match self {
            Scope::All => None,
            Scope::Namespaces(n) => Some(n),
        }
    }

    /// Whether data of namespace `ns` is visible.
    pub fn allows(&self, ns: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Namespaces(list) => list.iter().any(|n| n == ns),
        }
    }

    /// Whether data whose `namespace` label is `ns` (`None`: no such
    /// label, i.e. node- or cluster-level data) is visible.
    pub fn allows_label(&self, ns: Option<&str>) -> bool {
        match ns {
            Some(ns) => self.allows(ns),
            None => self.is_all(),
        }
    }

    /// Whether every namespace of `other` is in this scope (`other` =
    /// `None` stands for everything).
    pub fn covers(&self, other: Option<&[String]>) -> bool {
        match (self, other) {
            (Scope::All, _) => true,
            (Scope::Namespaces(_), None) => false,
            (Scope::Namespaces(_), Some(o)) => !o.is_empty() && o.iter().all(|n| self.allows(n)),
        }
    }

    /// The storage matcher a tenant's selectors get in addition to their
    /// own: `namespace` is exactly one of the scope's values (each value
    /// escaped, so the alternation is set membership; a series without the
    /// label never matches since no value is empty). `None` for
    /// [`Scope::All`].
    pub fn matcher(&self) -> Option<crate::storage::Matcher> {
        let list = self.namespaces()?;
        let alternation = list
            .iter()
            .map(|n| regex::escape(n))
            .collect::<Vec<_>>()
            .join("|");
        Some(
            crate::storage::Matcher::re(NAMESPACE_LABEL, alternation)
                .expect("escaped literals always compile"),
        )
    }

    /// A 403 naming what the tenant may not see.
    pub fn forbidden(&self, what: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            kind: "forbidden",
            message: format!(
                "{what} is outside this token's namespaces ({})",
                self.namespaces().unwrap_or_default().join(", ")
            ),
        }
    }
}

/// The label that puts series and log streams in a namespace.
pub const NAMESPACE_LABEL: &str = "namespace";

/// Handlers take the scope as an extractor. It is inserted by
/// [`require`] on every API route; a route without it fails closed (500)
/// rather than answering unscoped.
impl<S: Send + Sync> FromRequestParts<S> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Scope>().cloned().ok_or_else(|| {
            ApiError::internal("the request has no access scope (route not behind authentication)")
        })
    }
}

/// Who presents a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Token or user name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Which data it sees.
    pub scope: Scope,
}

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
pub fn identify(state: &ServerState, secret: &str) -> Option<Identity> {
    state
        .tokens
        .iter()
        .find(|t| same_secret(&t.secret, secret))
        .map(|t| Identity {
            name: t.name.clone(),
            role: t.role,
            scope: t.scope.clone(),
        })
        .or_else(|| state.sessions.lookup(secret))
}

/// Whether a tenant may use an admin route at all.
fn tenant_admin_path(path: &str) -> bool {
    TENANT_ADMIN_PATHS
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

/// Middleware: refuses requests without a token good for them.
pub async fn require(
    State(state): State<Arc<ServerState>>,
    mut req: Request,
    next: Next,
) -> Response {
    if state.tokens.is_empty() && !state.sessions.has_users() {
        req.extensions_mut().insert(Scope::All);
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
    let Some(Identity { name, role, scope }) = identify(&state, &presented) else {
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
    if need == Need::Admin && !scope.is_all() && !tenant_admin_path(req.uri().path()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            "tenant",
            format!(
                "{name:?} is limited to namespaces and may not change the server's global configuration"
            ),
        );
    }
    req.extensions_mut().insert(scope);
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
    fn scopes_are_exact_sets() {
        let s = Scope::from_config(Some(&["b".into(), "a.b".into(), "a.b".into()]));
        assert_eq!(s, Scope::Namespaces(vec!["a.b".into(), "b".into()]));
        let m = s.matcher().unwrap();
        assert!(m.matches("a.b") && m.matches("b"));
        // The dot is escaped; no prefix, suffix or empty value matches.
        for no in ["axb", "a.bc", "xb", "", "a.b|b"] {
            assert!(!m.matches(no), "{no}");
        }
        assert!(s.allows_label(Some("b")) && !s.allows_label(None));
        assert!(Scope::All.allows_label(None) && Scope::All.matcher().is_none());
        assert!(s.covers(Some(&["b".into()])) && !s.covers(Some(&["c".into()])));
        assert!(!s.covers(None) && !s.covers(Some(&[])));
        assert!(tenant_admin_path("/api/v1/dashboards/x"));
        assert!(tenant_admin_path("/api/v1/dashboards"));
        assert!(!tenant_admin_path("/api/v1/dashboardsx"));
        assert!(!tenant_admin_path("/api/v1/alerting/rules"));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abcdefghijklmnop", "abcdefghijklmnop"));
        assert!(!same_secret("abcdefghijklmnop", "abcdefghijklmnoq"));
        assert!(!same_secret("abcdefghijklmnop", "abcdefghijklmno"));
        assert!(!same_secret("", "x"));
    }
}
