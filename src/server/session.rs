//! Logging in to the dashboard: users from the configuration
//! (`[[server.users]]` with an Argon2 password hash, made by
//! `osprey hash-password`) or any configured token, exchanged by
//! `POST /api/v1/login` for a session: a random secret kept in memory
//! (sessions end when the server restarts) and sent back as the cookie
//! `osprey_session` (HttpOnly, SameSite=Strict). [`super::auth::require`]
//! accepts it as a cookie or as a bearer token.
//!
//! - `POST /api/v1/login` with `{"user":"…","password":"…"}` or
//!   `{"token":"…"}` → 200 `{"status":"success","data":{"user","role"}}`
//!   and the cookie; 401 when they do not match;
//! - `POST /api/v1/logout` ends the session of the cookie;
//! - `GET /api/v1/whoami` (public, so that the dashboard learns it must
//!   log in without provoking a 401) →
//!   `{"status":"success","data":{"user","role","auth":bool}}` (plus
//!   `namespaces` for a tenant); `user` and `role` are null when the
//!   server needs a login and the caller has none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ServerError;
use super::ServerState;
use super::auth::{Identity, Scope};
use super::config::Role;
use super::error::ApiError;

/// The session cookie's name.
pub const COOKIE: &str = "osprey_session";
/// How long a session lasts without being used.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// One `[[server.users]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Login name.
    pub name: String,
    /// Argon2 hash in PHC form (`$argon2id$v=19$…`), from
    /// `osprey hash-password`.
    pub password_hash: String,
    /// `read` (viewer) or `admin` (may edit dashboards).
    pub role: Role,
    /// Limits the user to these namespaces, as a token's `namespaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
struct Session {
    who: Identity,
    last_used: Instant,
}

/// Configured users and live sessions.
pub struct Sessions {
    users: Vec<UserConfig>,
    /// A hash checked for unknown names, so that the answer's timing does
    /// not tell which names exist.
    decoy_hash: String,
    live: Mutex<HashMap<String, Session>>,
}

/// Hashes a password for `[[server.users]]`.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no random source: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

fn random_secret() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::internal(format!("no random source for a session: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Sessions {
    /// Checks the users' hashes parse (a typo would lock everyone out
    /// silently otherwise).
    pub fn new(users: &[UserConfig]) -> Result<Self, ServerError> {
        for (i, u) in users.iter().enumerate() {
            if u.name.is_empty() {
                return Err(ServerError::Config(format!("users[{i}] has no name")));
            }
            super::config::validate_namespaces(
                &format!("users[{i}] ({})", u.name),
                u.namespaces.as_deref(),
            )
            .map_err(ServerError::Config)?;
            if PasswordHash::new(&u.password_hash).is_err() {
                return Err(ServerError::Config(format!(
                    "users[{i}] ({}): password_hash is not a PHC string; make one with `osprey hash-password`",
                    u.name
                )));
            }
        }
        let decoy_hash = if users.is_empty() {
            String::new()
        } else {
            hash_password("decoy").map_err(ServerError::Config)?
        };
        Ok(Self {
            users: users.to_vec(),
            decoy_hash,
            live: Mutex::new(HashMap::new()),
        })
    }

    /// True when users are configured.
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    /// Who holds a live session secret (refreshing its use).
    pub fn lookup(&self, secret: &str) -> Option<Identity> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let s = live.get_mut(secret)?;
        if s.last_used.elapsed() > SESSION_TTL {
            live.remove(secret);
            return None;
        }
        s.last_used = Instant::now();
        Some(s.who.clone())
    }

    fn start(&self, who: Identity) -> Result<String, ApiError> {
        let secret = random_secret()?;
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, s| s.last_used.elapsed() <= SESSION_TTL);
        live.insert(
            secret.clone(),
            Session {
                who,
                last_used: Instant::now(),
            },
        );
        Ok(secret)
    }

    fn end(&self, secret: &str) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(secret);
    }
}

/// The session secret of a request's cookie, if any.
pub fn cookie_secret(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// Routes that must answer without authentication.
pub fn public_routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/whoami", get(whoami))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    user: Option<String>,
    password: Option<String>,
    token: Option<String>,
}

async fn login(
    State(state): State<Arc<ServerState>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: LoginBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be {{\"user\":…,\"password\":…}} or {{\"token\":…}}: {e}"
        ))
    })?;
    let who = match (body.user, body.password, body.token) {
        (_, _, Some(token)) => state
            .tokens
            .iter()
            .find(|t| super::auth::same_secret(&t.secret, token.trim()))
            .map(|t| Identity {
                name: t.name.clone(),
                role: t.role,
                scope: t.scope.clone(),
            }),
        (Some(user), Some(password), None) => {
            let users = state.sessions.users.clone();
            let decoy = state.sessions.decoy_hash.clone();
            tokio::task::spawn_blocking(move || {
                // Every attempt costs one hash, known user or not.
                let found = users.iter().find(|u| u.name == user);
                let hash = found.map(|u| u.password_hash.as_str()).unwrap_or(&decoy);
                let ok = verify_password(&password, hash);
                found.filter(|_| ok).map(|u| Identity {
                    name: u.name.clone(),
                    role: u.role,
                    scope: Scope::from_config(u.namespaces.as_deref()),
                })
            })
            .await
            .map_err(|e| ApiError::internal(format!("password check failed: {e}")))?
        }
        _ => {
            return Err(ApiError::bad_request(
                "give \"user\" and \"password\", or \"token\"",
            ));
        }
    };
    let Some(who) = who else {
        state
            .metrics
            .auth_refusals
            .with_label_values(&["login"])
            .inc();
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            kind: "unauthorized",
            message: "the user name and password (or token) do not match".into(),
        });
    };
    let (user, role, namespaces) = (
        who.name.clone(),
        who.role,
        who.scope.namespaces().map(<[String]>::to_vec),
    );
    let secret = state.sessions.start(who)?;
    let cookie = format!(
        "{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    let mut data = json!({"user": user, "role": role});
    if let Some(ns) = namespaces {
        data["namespaces"] = json!(ns);
    }
    let mut resp = Json(json!({"status": "success", "data": data})).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("ASCII cookie"),
    );
    Ok(resp)
}

/// Ends the cookie's session. The body is unused; extracting it bounds it
/// by the server's body limit like every other POST.
async fn logout(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    _unused_body: axum::body::Bytes,
) -> Response {
    if let Some(secret) = cookie_secret(&headers) {
        state.sessions.end(secret);
    }
    let mut resp = Json(json!({"status": "success", "data": {}})).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("osprey_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    resp
}

/// Who [`super::auth::require`] found the caller to be.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User or token name; `anonymous` on an open server.
    pub user: String,
    /// Their role.
    pub role: Role,
}

async fn whoami(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    let auth = !state.tokens.is_empty() || state.sessions.has_users();
    let who = if auth {
        super::auth::presented(&headers).and_then(|s| super::auth::identify(&state, &s))
    } else {
        Some(Identity {
            name: "anonymous".to_string(),
            role: Role::Admin,
            scope: Scope::All,
        })
    };
    let (user, role, namespaces) = match who {
        Some(w) => (
            json!(w.name),
            json!(w.role),
            w.scope.namespaces().map(<[String]>::to_vec),
        ),
        None => (serde_json::Value::Null, serde_json::Value::Null, None),
    };
    let mut data = json!({"user": user, "role": role, "auth": auth});
    // Only tenants are told their namespaces; the answer is unchanged for
    // everyone else.
    if let Some(ns) = namespaces {
        data["namespaces"] = json!(ns);
    }
    Json(json!({"status": "success", "data": data}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_sessions_resolve() {
        let h = hash_password("s3cret!").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret!", &h));
        assert!(!verify_password("s3cret", &h));
        let s = Sessions::new(&[UserConfig {
            name: "ann".into(),
            password_hash: h,
            role: Role::Read,
            namespaces: None,
        }])
        .unwrap();
        let ann = Identity {
            name: "ann".into(),
            role: Role::Read,
            scope: Scope::Namespaces(vec!["a".into()]),
        };
        let secret = s.start(ann.clone()).unwrap();
        assert_eq!(secret.len(), 64);
        assert_eq!(s.lookup(&secret), Some(ann));
        s.end(&secret);
        assert_eq!(s.lookup(&secret), None);
    }

    #[test]
    fn bad_hashes_are_refused_at_start() {
        let e = Sessions::new(&[UserConfig {
            name: "bob".into(),
            password_hash: "plain".into(),
            role: Role::Admin,
            namespaces: None,
        }])
        .err()
        .unwrap();
        assert!(e.to_string().contains("hash-password"), "{e}");
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; osprey_session=abc; b=2"),
        );
        assert_eq!(cookie_secret(&h), Some("abc"));
    }
}
