//! Dashboards: stored as JSON files under `<data_dir>/dashboards/` (one
//! `<uid>.json` each, written to a temporary file, synced and renamed so a
//! crash leaves the old or the new version, never half of one), plus
//! read-only ones provisioned at start: the built-in Cluster and Pods
//! dashboards and every `*.json` of `[server.dashboard] provision_dir`.
//!
//! The model (a subset of Grafana's dashboard JSON) is checked by
//! [`osprey_dashboard::model`]; fields Osprey does not know are kept.
//!
//! Routes (writes need the admin role, reads the read role):
//! - `GET /api/v1/dashboards` → `{"status":"success","data":[{"uid","title","tags","version","provisioned"}]}`, by title;
//! - `POST /api/v1/dashboards` creates or imports (a dashboard, or Grafana's
//!   `{"dashboard":…,"overwrite":bool}`); 409 if the uid exists and
//!   `overwrite` is not true → `{"status":"success","data":{"uid","version"}}`;
//! - `GET /api/v1/dashboards/{uid}` (export) → `{"status":"success","data":{"dashboard":…,"meta":{"provisioned","source"}}}`;
//! - `PUT /api/v1/dashboards/{uid}` replaces it (409 when the body's
//!   `version` is older than the stored one: someone saved in between);
//! - `DELETE /api/v1/dashboards/{uid}`;
//! - `GET /api/v1/dashboards/{uid}/panels/{id}/render` draws the panel's
//!   queries as an image (parameters of `/api/v1/render` without `query`;
//!   `var-<name>=<value>` sets variables).
//!
//! Tenants (tokens with `namespaces`, see [`super::auth::Scope`]): a
//! dashboard may carry `"ownerNamespaces": ["a", …]`. A tenant sees (lists,
//! reads, renders, and with role admin saves or deletes) only dashboards
//! whose owner namespaces are all in its scope, plus the built-in Pods
//! dashboard (its queries are scoped like any other); global dashboards
//! (no owner: the built-in Cluster overview, admins' dashboards) are
//! invisible to it (404, absent from the list). A tenant's save records
//! its namespaces as the owner unless the body names a subset of them (a
//! namespace outside its scope is a 403). Panel queries always run with
//! the caller's scope, whoever owns the dashboard.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use osprey_dashboard::model::{self, BUILTIN};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::ServerState;
use super::auth::Scope;
use super::chart_query::{ChartQuery, Downsampled, downsample};
use super::error::ApiError;
use super::render::{Look, image_response};
use crate::promql::api::Params;

/// `[server.dashboard]`: where dashboards come from besides the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardConfig {
    /// A directory of dashboard JSON files loaded (read-only) at start, for
    /// GitOps. A file without a `uid` gets its file name's.
    pub provision_dir: Option<PathBuf>,
}

/// Where a dashboard came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// Saved through the API (a file under the data directory).
    Stored,
    /// Built into Osprey.
    BuiltIn,
    /// A file of the provisioning directory.
    Provisioned(PathBuf),
}

#[derive(Debug, Clone)]
struct Entry {
    dashboard: Arc<Map<String, Value>>,
    origin: Origin,
}

/// Why a dashboard change was refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The body does not fit the model.
    #[error(transparent)]
    Invalid(#[from] model::ModelError),
    /// No such dashboard.
    #[error("no dashboard with uid {0:?}")]
    NotFound(String),
    /// The change conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// The file could not be written.
    #[error("cannot write the dashboard: {0}")]
    Io(#[from] std::io::Error),
    /// A tenant named namespaces outside its scope.
    #[error("{0}")]
    Forbidden(String),
}

/// The field naming the namespaces a dashboard belongs to.
pub const OWNER_FIELD: &str = "ownerNamespaces";

/// The owner namespaces of a dashboard (`None`: a global dashboard).
fn owner_of(d: &Map<String, Value>) -> Result<Option<Vec<String>>, StoreError> {
    let invalid = |m: &str| {
        StoreError::Invalid(model::ModelError {
            field: OWNER_FIELD.into(),
            message: m.into(),
        })
    };
    match d.get(OWNER_FIELD) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => {
            let list: Vec<String> = a
                .iter()
                .map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| invalid("must be a list of namespace names"))?;
            if list.is_empty() {
                return Err(invalid("must name at least one namespace (or be left out)"));
            }
            Ok(Some(list))
        }
        Some(_) => Err(invalid("must be a list of namespace names")),
    }
}

/// Whether `scope` may see the dashboard `uid`.
fn visible(scope: &Scope, uid: &str, d: &Map<String, Value>) -> bool {
    scope.is_all()
        || uid == TENANT_BUILTIN
        || owner_of(d).is_ok_and(|o| o.is_some() && scope.covers(o.as_deref()))
}

/// The built-in dashboard tenants see: every query in it selects by
/// namespace and runs with the tenant's scope anyway.
pub const TENANT_BUILTIN: &str = "osprey-pods";

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let (status, kind) = match &e {
            StoreError::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_data"),
            StoreError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            StoreError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            StoreError::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            StoreError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        };
        ApiError {
            status,
            kind,
            message: e.to_string(),
        }
    }
}

/// The dashboards, in memory, written through to files.
pub struct DashboardStore {
    dir: PathBuf,
    entries: RwLock<BTreeMap<String, Entry>>,
}

/// A random uid of 12 letters and digits.
fn new_uid() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 12];
    // The OS random source failing is not recoverable here and never
    // happens on Linux after boot; fall back to the time to stay unique.
    if getrandom::fill(&mut bytes).is_err() {
        let t = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as u128;
        bytes = (t.to_le_bytes())[..12].try_into().expect("12 bytes");
    }
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename,
/// fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("a file in a directory");
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("dashboard")
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

fn version_of(d: &Map<String, Value>) -> u64 {
    d.get("version").and_then(Value::as_u64).unwrap_or(0)
}

impl DashboardStore {
    /// Loads the stored dashboards from `dir` (created if missing), then the
    /// built-in ones and those of `config.provision_dir`. A provisioned
    /// file that does not parse is logged and skipped; a stored one that
    /// does not parse stops the start (it would otherwise be overwritten).
    pub fn open(dir: PathBuf, config: &DashboardConfig) -> Result<Self, String> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut entries = BTreeMap::new();
        for (path, d) in read_dir_json(&dir)? {
            let d = d.map_err(|e| format!("stored dashboard {}: {e}", path.display()))?;
            let uid = d
                .get("uid")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("stored dashboard {} has no uid", path.display()))?;
            entries.insert(
                uid,
                Entry {
                    dashboard: Arc::new(d),
                    origin: Origin::Stored,
                },
            );
        }
        for (uid, text) in BUILTIN {
            let v: Value = serde_json::from_str(text).expect("built-in dashboards are valid JSON");
            let d = model::normalise(v).expect("built-in dashboards fit the model");
            entries.insert(
                uid.to_string(),
                Entry {
                    dashboard: Arc::new(d),
                    origin: Origin::BuiltIn,
                },
            );
        }
        if let Some(pdir) = &config.provision_dir {
            for (path, d) in read_dir_json(pdir)? {
                let mut d = match d {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::error!(file = %path.display(), error = %e, "provisioned dashboard skipped");
                        continue;
                    }
                };
                let uid = match d.get("uid").and_then(Value::as_str) {
                    Some(u) => u.to_string(),
                    None => {
                        let stem: String = path
                            .file_stem()
                            .and_then(|s| s.to_str())
                            .unwrap_or("dashboard")
                            .chars()
                            .map(|c| {
                                if c.is_ascii_alphanumeric() || c == '-' {
                                    c
                                } else {
                                    '_'
                                }
                            })
                            .take(40)
                            .collect();
                        d.insert("uid".into(), json!(stem));
                        stem
                    }
                };
                tracing::info!(uid, file = %path.display(), "dashboard provisioned");
                entries.insert(
                    uid,
                    Entry {
                        dashboard: Arc::new(d),
                        origin: Origin::Provisioned(path),
                    },
                );
            }
        }
        Ok(Self {
            dir,
            entries: RwLock::new(entries),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The list of what `scope` may see, by title.
    pub fn list(&self, scope: &Scope) -> Vec<Value> {
        let entries = self.read();
        let mut out: Vec<Value> = entries
            .iter()
            .filter(|(uid, e)| visible(scope, uid, &e.dashboard))
            .map(|(uid, e)| {
                json!({
                    "uid": uid,
                    "title": e.dashboard.get("title").cloned().unwrap_or(Value::Null),
                    "tags": e.dashboard.get("tags").cloned().unwrap_or(json!([])),
                    "version": version_of(&e.dashboard),
                    "provisioned": e.origin != Origin::Stored,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            let t = |v: &Value| v["title"].as_str().unwrap_or("").to_lowercase();
            t(a).cmp(&t(b))
        });
        out
    }

    /// One dashboard and where it came from (`None` also when `scope` may
    /// not see it).
    pub fn get(&self, uid: &str, scope: &Scope) -> Option<(Arc<Map<String, Value>>, Value)> {
        let entries = self.read();
        let e = entries
            .get(uid)
            .filter(|e| visible(scope, uid, &e.dashboard))?;
        let (provisioned, source) = match &e.origin {
            Origin::Stored => (false, Value::Null),
            Origin::BuiltIn => (true, json!("built-in")),
            Origin::Provisioned(p) => (true, json!(p.display().to_string())),
        };
        Some((
            e.dashboard.clone(),
            json!({"provisioned": provisioned, "source": source}),
        ))
    }

    /// Saves `body` (checked and normalised). `path_uid` is the uid of a
    /// PUT; `create` refuses an existing uid unless `overwrite`. A tenant
    /// `scope` owns what it saves and cannot touch what it cannot see.
    pub fn save(
        &self,
        body: Value,
        path_uid: Option<&str>,
        overwrite: bool,
        scope: &Scope,
    ) -> Result<(String, u64), StoreError> {
        let given_version = body
            .get("dashboard")
            .unwrap_or(&body)
            .get("version")
            .and_then(Value::as_u64);
        let mut d = model::normalise(body)?;
        let owner = owner_of(&d)?;
        if let Some(mine) = scope.namespaces() {
            match owner {
                None => {
                    d.insert(OWNER_FIELD.into(), json!(mine));
                }
                Some(o) if !scope.covers(Some(&o)) => {
                    return Err(StoreError::Forbidden(format!(
                        "`{OWNER_FIELD}` {o:?} names namespaces outside this token's ({})",
                        mine.join(", ")
                    )));
                }
                Some(_) => {}
            }
        }
        let uid = match (path_uid, d.get("uid").and_then(Value::as_str)) {
            (Some(p), Some(b)) if p != b => {
                return Err(model::ModelError {
                    field: "uid".into(),
                    message: format!("{b:?} differs from the uid in the URL ({p:?})"),
                }
                .into());
            }
            (Some(p), _) => p.to_string(),
            (None, Some(b)) => b.to_string(),
            (None, None) => new_uid(),
        };
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let old = entries.get(&uid);
        if old.is_some_and(|o| !visible(scope, &uid, &o.dashboard)) {
            // The same answers as for a dashboard that does not exist, or
            // one the caller may not overwrite: nothing is told about it.
            return Err(if path_uid.is_some() {
                StoreError::NotFound(uid)
            } else {
                StoreError::Conflict(format!(
                    "a dashboard with uid {uid:?} exists; choose another uid"
                ))
            });
        }
        if let Some(old) = old {
            if old.origin != Origin::Stored {
                return Err(StoreError::Conflict(format!(
                    "dashboard {uid:?} is provisioned (read-only); save a copy under another uid"
                )));
            }
            if path_uid.is_none() && !overwrite {
                return Err(StoreError::Conflict(format!(
                    "a dashboard with uid {uid:?} exists; import with \"overwrite\": true to replace it"
                )));
            }
            let stored = version_of(&old.dashboard);
            if path_uid.is_some() && given_version.is_some_and(|v| v < stored) {
                return Err(StoreError::Conflict(format!(
                    "dashboard {uid:?} was saved by someone else (version {stored}); reload it"
                )));
            }
        } else if path_uid.is_some() {
            return Err(StoreError::NotFound(uid));
        }
        let version = old.map(|o| version_of(&o.dashboard)).unwrap_or(0) + 1;
        d.insert("uid".into(), json!(uid));
        d.insert("version".into(), json!(version));
        let bytes = serde_json::to_vec_pretty(&d).expect("JSON values serialise");
        write_atomic(&self.dir.join(format!("{uid}.json")), &bytes)?;
        entries.insert(
            uid.clone(),
            Entry {
                dashboard: Arc::new(d),
                origin: Origin::Stored,
            },
        );
        Ok((uid, version))
    }

    /// Deletes a stored dashboard `scope` may see.
    pub fn delete(&self, uid: &str, scope: &Scope) -> Result<(), StoreError> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        match entries
            .get(uid)
            .filter(|e| visible(scope, uid, &e.dashboard))
        {
            None => return Err(StoreError::NotFound(uid.to_string())),
            Some(e) if e.origin != Origin::Stored => {
                return Err(StoreError::Conflict(format!(
                    "dashboard {uid:?} is provisioned (read-only) and cannot be deleted"
                )));
            }
            Some(_) => {}
        }
        let path = self.dir.join(format!("{uid}.json"));
        std::fs::remove_file(&path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        entries.remove(uid);
        Ok(())
    }
}

type Loaded = Result<Map<String, Value>, String>;

/// Every `*.json` of `dir`, parsed and normalised, in file name order.
fn read_dir_json(dir: &Path) -> Result<Vec<(PathBuf, Loaded)>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|p| {
            let d = std::fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()))
                .and_then(|v| model::normalise(v).map_err(|e| e.to_string()));
            (p, d)
        })
        .collect())
}

/// The dashboard routes (behind the server's authentication).
pub fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/api/v1/dashboards", get(list).post(create))
        .route(
            "/api/v1/dashboards/{uid}",
            get(export).put(replace).delete(remove),
        )
        .route(
            "/api/v1/dashboards/{uid}/panels/{id}/render",
            get(render_panel),
        )
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

async fn list(State(state): State<Arc<ServerState>>, scope: Scope) -> Json<Value> {
    Json(json!({"status": "success", "data": state.dashboards.list(&scope)}))
}

async fn create(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    body: Bytes,
) -> Result<Response, ApiError> {
    let v = parse_body(&body)?;
    let overwrite = v.get("overwrite").and_then(Value::as_bool).unwrap_or(false);
    let (uid, version) = state.dashboards.save(v, None, overwrite, &scope)?;
    Ok((
        StatusCode::OK,
        Json(json!({"status": "success", "data": {"uid": uid, "version": version}})),
    )
        .into_response())
}

async fn export(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    UrlPath(uid): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let (d, meta) = state
        .dashboards
        .get(&uid, &scope)
        .ok_or_else(|| ApiError::from(StoreError::NotFound(uid)))?;
    Ok(Json(
        json!({"status": "success", "data": {"dashboard": *d, "meta": meta}}),
    ))
}

async fn replace(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    UrlPath(uid): UrlPath<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let v = parse_body(&body)?;
    let (uid, version) = state.dashboards.save(v, Some(&uid), true, &scope)?;
    Ok(Json(
        json!({"status": "success", "data": {"uid": uid, "version": version}}),
    ))
}

async fn remove(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    UrlPath(uid): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    state.dashboards.delete(&uid, &scope)?;
    Ok(Json(json!({"status": "success", "data": {"uid": uid}})))
}

/// Replaces `$name` and `${name}` by the variables' values (longest names
/// first so that `$pod` does not eat `$pod_name`).
pub fn substitute(expr: &str, vars: &[(String, String)]) -> String {
    let mut vars: Vec<&(String, String)> = vars.iter().collect();
    vars.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    let mut out = expr.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("${{{name}}}"), value);
        out = out.replace(&format!("${name}"), value);
    }
    out
}

/// The variables of a dashboard at their current values, overridden by
/// `var-<name>` parameters. `$__all` (or an empty value) becomes `.*`.
fn variables(d: &Map<String, Value>, params: &Params) -> Vec<(String, String)> {
    let list = d
        .get("templating")
        .and_then(|t| t.get("list"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.iter()
        .filter_map(|v| {
            let name = v.get("name")?.as_str()?.to_string();
            let current = v
                .get("current")
                .and_then(|c| c.get("value"))
                .map(|c| match c {
                    Value::String(s) => s.clone(),
                    Value::Array(a) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("|"),
                    _ => String::new(),
                })
                .unwrap_or_default();
            let value = params
                .get(&format!("var-{name}"))
                .map(str::to_string)
                .unwrap_or(current);
            let value = if value.is_empty() || value == "$__all" {
                ".*".to_string()
            } else {
                value
            };
            Some((name, value))
        })
        .collect()
}

async fn render_panel(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    UrlPath((uid, id)): UrlPath<(String, u64)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::from_request(raw.as_deref(), &Default::default(), &[]);
    let (d, _) = state
        .dashboards
        .get(&uid, &scope)
        .ok_or_else(|| ApiError::from(StoreError::NotFound(uid.clone())))?;
    let panel = d
        .get("panels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|p| {
            std::iter::once(p).chain(
                p.get("panels")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            )
        })
        .find(|p| p.get("id").and_then(Value::as_u64) == Some(id))
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("dashboard {uid:?} has no panel {id}")))?;
    let vars = variables(&d, &params);
    let targets: Vec<(String, Option<String>)> = panel
        .get("targets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let expr = t.get("expr")?.as_str()?;
            let legend = t
                .get("legendFormat")
                .and_then(Value::as_str)
                .filter(|l| !l.is_empty())
                .map(|l| substitute(l, &vars));
            Some((substitute(expr, &vars), legend))
        })
        .filter(|(e, _)| !e.trim().is_empty())
        .collect();
    if targets.is_empty() {
        return Err(ApiError::bad_request(format!(
            "panel {id} has no PromQL query to draw"
        )));
    }
    let mut look = Look::from_params(&params)?;
    if params.get("title").is_none() {
        look.title = panel
            .get("title")
            .and_then(Value::as_str)
            .map(|t| substitute(t, &vars))
            .unwrap_or_default();
    }
    let defaults = panel.get("fieldConfig").and_then(|f| f.get("defaults"));
    if params.get("unit").is_none() {
        look.unit = defaults
            .and_then(|d| d.get("unit"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
    }
    if look.thresholds.is_empty() {
        look.thresholds = defaults
            .and_then(|d| d.get("thresholds"))
            .and_then(|t| t.get("steps"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("value").and_then(Value::as_f64))
            .collect();
    }
    let mut merged: Option<Downsampled> = None;
    for (expr, legend) in targets {
        let mut q = ChartQuery::from_params(
            |k| match k {
                "query" => Some(expr.clone()),
                "legend" => legend.clone(),
                other => params.get(other).map(str::to_string),
            },
            look.width,
        )?;
        q.width = look.width;
        let series = q.evaluate(&state, &scope).await?;
        let d = downsample(&q, &series);
        match &mut merged {
            None => merged = Some(d),
            Some(m) => m.series.extend(d.series),
        }
    }
    let data = merged.expect("at least one target");
    tokio::task::spawn_blocking(move || image_response(&data, &look))
        .await
        .map_err(|e| ApiError::internal(format!("rendering failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> DashboardStore {
        DashboardStore::open(dir.join("dashboards"), &DashboardConfig::default()).unwrap()
    }

    #[test]
    fn saves_survive_reopening_and_versions_increase() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let (uid, v1) = s
            .save(
                json!({"title": "Mine", "custom": {"kept": true}}),
                None,
                false,
                &Scope::All,
            )
            .unwrap();
        assert_eq!(v1, 1);
        let (_, v2) = s
            .save(
                json!({"title": "Mine 2", "version": 1}),
                Some(&uid),
                true,
                &Scope::All,
            )
            .unwrap();
        assert_eq!(v2, 2);
        let err = s
            .save(
                json!({"title": "stale", "version": 1}),
                Some(&uid),
                true,
                &Scope::All,
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        drop(s);
        let s = store(tmp.path());
        let (d, meta) = s.get(&uid, &Scope::All).unwrap();
        assert_eq!(d["title"], "Mine 2");
        assert_eq!(d["version"], 2);
        assert_eq!(meta["provisioned"], false);
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(tmp.path().join("dashboards"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![format!("{uid}.json")]);
        s.delete(&uid, &Scope::All).unwrap();
        assert!(s.get(&uid, &Scope::All).is_none());
        assert!(matches!(
            s.delete(&uid, &Scope::All),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn builtins_and_provisioned_are_read_only() {
        let tmp = tempfile::tempdir().unwrap();
        let pdir = tmp.path().join("prov");
        std::fs::create_dir(&pdir).unwrap();
        std::fs::write(pdir.join("team board.json"), r#"{"title": "Team"}"#).unwrap();
        std::fs::write(pdir.join("broken.json"), r#"{"title": 1}"#).unwrap();
        let s = DashboardStore::open(
            tmp.path().join("dashboards"),
            &DashboardConfig {
                provision_dir: Some(pdir),
            },
        )
        .unwrap();
        let titles: Vec<String> = s
            .list(&Scope::All)
            .iter()
            .map(|d| d["title"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(titles, ["Cluster", "Pods", "Team"]);
        assert!(s.get("team_board", &Scope::All).is_some());
        assert!(matches!(
            s.save(
                json!({"title": "x"}),
                Some("osprey-cluster"),
                true,
                &Scope::All
            ),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.delete("team_board", &Scope::All),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.save(
                json!({"title": "x", "uid": "osprey-pods"}),
                None,
                true,
                &Scope::All
            ),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn import_refuses_existing_uid_without_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        s.save(
            json!({"title": "a", "uid": "fixed"}),
            None,
            false,
            &Scope::All,
        )
        .unwrap();
        assert!(matches!(
            s.save(
                json!({"title": "b", "uid": "fixed"}),
                None,
                false,
                &Scope::All
            ),
            Err(StoreError::Conflict(_))
        ));
        let (_, v) = s
            .save(
                json!({"dashboard": {"title": "b", "uid": "fixed"}, "overwrite": true}),
                None,
                true,
                &Scope::All,
            )
            .unwrap();
        assert_eq!(v, 2);
    }

    #[test]
    fn tenants_own_what_they_save_and_see_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let a = Scope::Namespaces(vec!["a".into()]);
        let b = Scope::Namespaces(vec!["b".into()]);
        let (global, _) = s
            .save(json!({"title": "Admin's"}), None, false, &Scope::All)
            .unwrap();
        let (mine, _) = s.save(json!({"title": "A's"}), None, false, &a).unwrap();
        assert_eq!(
            s.get(&mine, &Scope::All).unwrap().0[OWNER_FIELD],
            json!(["a"])
        );
        let titles = |scope: &Scope| -> Vec<String> {
            s.list(scope)
                .iter()
                .map(|d| d["title"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(titles(&a), ["A's", "Pods"]);
        assert_eq!(titles(&b), ["Pods"]);
        assert!(s.get(&global, &a).is_none() && s.get("osprey-cluster", &a).is_none());
        assert!(s.get(&mine, &b).is_none());
        // B can neither replace, overwrite, nor delete A's dashboard.
        assert!(matches!(
            s.save(json!({"title": "x"}), Some(&mine), true, &b),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.save(json!({"title": "x", "uid": mine.clone()}), None, true, &b),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(s.delete(&mine, &b), Err(StoreError::NotFound(_))));
        // Nor claim another namespace.
        assert!(matches!(
            s.save(json!({"title": "x", OWNER_FIELD: ["a"]}), None, false, &b),
            Err(StoreError::Forbidden(_))
        ));
        assert_eq!(s.get(&mine, &a).unwrap().0["title"], "A's");
        s.delete(&mine, &a).unwrap();
    }

    #[test]
    fn variables_substitute_longest_first() {
        let vars = vec![
            ("pod".to_string(), "web".to_string()),
            ("pod_name".to_string(), "x".to_string()),
        ];
        assert_eq!(
            substitute("up{pod=~\"$pod\",n=\"$pod_name\",b=\"${pod}\"}", &vars),
            "up{pod=~\"web\",n=\"x\",b=\"web\"}"
        );
    }
}
