//! The HTTP handlers: `/api/v1/metric-export-schema`, `/api/v1/metric-export`
//! and the model tree `/api/v1/model/...` with Heapster's JSON shapes
//! (reference §3–§6). Unknown entities and metrics answer 200 with an empty
//! result, as Heapster did; malformed `start`, `end` or `labels` answer 400.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::catalogue::{self, LabelDescriptor, MetricDef, MetricLabels, MetricType, ValueType};
use super::model::{Cgroup, CgroupRole, Entity, Inventory, PRESENCE_METRIC};
use super::views::{self, Evaluator, Points};
use crate::server::ServerState;
use crate::server::auth::Scope;
use crate::server::error::ApiError;
use crate::storage::{Matcher, Storage, StorageError};

/// Heapster's default window when `start` is absent: the 15 minutes its
/// in-memory store kept. Any older `start` within retention works.
pub const DEFAULT_WINDOW_MS: i64 = 15 * 60_000;

/// How recent an entity's data must be to appear in `metric-export`
/// (Heapster exported its newest batch only).
pub const EXPORT_WINDOW_MS: i64 = 2 * 60_000;

/// How far before [`EXPORT_WINDOW_MS`] `metric-export` reads, so that the
/// exported disk rates have a previous sample.
pub const EXPORT_LOOKBACK_MS: i64 = 60_000;

/// The Go zero time, Heapster's "no data" timestamp.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A timestamp as Go's JSON encoder writes it: RFC 3339 in UTC, fractional
/// seconds only when non-zero and without trailing zeros.
pub fn go_time(ms: i64) -> String {
    let Some(t) = DateTime::<Utc>::from_timestamp_millis(ms) else {
        return ZERO_TIME.into();
    };
    let secs = t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let frac = ms.rem_euclid(1000);
    if frac == 0 {
        return secs;
    }
    let digits = format!("{frac:03}");
    format!(
        "{}.{}Z",
        secs.trim_end_matches('Z'),
        digits.trim_end_matches('0')
    )
}

/// One point of a model metric.
#[derive(Debug, Serialize, PartialEq)]
pub struct MetricPoint {
    /// When.
    pub timestamp: String,
    /// The value as an unsigned integer (floats truncated toward zero).
    pub value: u64,
    /// The exact value of floating-point metrics (Heapster declared it but
    /// never filled it).
    #[serde(rename = "floatValue", skip_serializing_if = "Option::is_none")]
    pub float_value: Option<f64>,
}

/// A model metric's time series.
#[derive(Debug, Serialize, PartialEq)]
pub struct MetricResult {
    /// Points, oldest first.
    pub metrics: Vec<MetricPoint>,
    /// The newest point's timestamp, or the zero time.
    #[serde(rename = "latestTimestamp")]
    pub latest_timestamp: String,
}

impl MetricResult {
    /// No data.
    pub fn empty() -> Self {
        MetricResult {
            metrics: Vec::new(),
            latest_timestamp: ZERO_TIME.into(),
        }
    }

    fn from_points(points: &Points, def: &MetricDef) -> Self {
        let metrics: Vec<MetricPoint> = points
            .iter()
            .filter(|s| s.v.is_finite())
            .map(|s| MetricPoint {
                timestamp: go_time(s.t),
                value: s.v.max(0.0).trunc() as u64,
                float_value: (def.value_type == ValueType::Double).then_some(s.v),
            })
            .collect();
        let latest_timestamp = metrics
            .last()
            .map_or_else(|| ZERO_TIME.to_string(), |p| p.timestamp.clone());
        MetricResult {
            metrics,
            latest_timestamp,
        }
    }
}

/// The pod-list route's answer.
#[derive(Debug, Serialize)]
pub struct MetricResultList {
    /// One result per requested pod, in request order.
    pub items: Vec<MetricResult>,
}

/// A metric descriptor of the export schema.
#[derive(Debug, Serialize)]
pub struct MetricDescriptor {
    /// Name.
    pub name: &'static str,
    /// Description.
    pub description: &'static str,
    /// Extra labels of labeled metrics.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub labels: &'static [LabelDescriptor],
    /// `cumulative` or `gauge`.
    #[serde(rename = "type")]
    pub kind: MetricType,
    /// `int64` or `double`.
    pub value_type: ValueType,
    /// Units; absent for plain counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<&'static str>,
}

/// The export schema.
#[derive(Debug, Serialize)]
pub struct TimeseriesSchema {
    /// Exported metrics.
    pub metrics: Vec<MetricDescriptor>,
    /// Labels of every entity.
    pub common_labels: &'static [LabelDescriptor],
    /// Labels of pods and pod containers.
    pub pod_labels: &'static [LabelDescriptor],
}

/// The schema `/api/v1/metric-export-schema` answers.
pub fn schema() -> TimeseriesSchema {
    TimeseriesSchema {
        metrics: catalogue::exported()
            .map(|d| MetricDescriptor {
                name: d.name,
                description: d.description,
                labels: d.labels.descriptors(),
                kind: d.kind,
                value_type: d.value_type,
                units: d.units.as_schema(),
            })
            .collect(),
        common_labels: &catalogue::COMMON_LABELS,
        pod_labels: &catalogue::POD_LABELS,
    }
}

/// `GET /api/v1/metric-export-schema`.
pub async fn export_schema(Query(q): Query<BTreeMap<String, String>>) -> Response {
    if let Err(e) = no_parameters(&q) {
        return e.into_response();
    }
    Json(schema()).into_response()
}

/// One point of `metric-export`.
#[derive(Debug, Serialize)]
pub struct ExportPoint {
    /// Start of the value: the entity's start for cumulative metrics.
    pub start: String,
    /// When it was sampled.
    pub end: String,
    /// Extra labels of labeled metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<&'static str, String>>,
    /// Integer or float, by the metric's value type.
    pub value: serde_json::Value,
}

/// One entity's latest values in `metric-export`.
#[derive(Debug, Serialize)]
pub struct Timeseries {
    /// Metric name → points.
    pub metrics: BTreeMap<&'static str, Vec<ExportPoint>>,
    /// The entity's Heapster labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<&'static str, String>,
}

/// `GET /api/v1/metric-export`.
pub async fn export(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(e) = no_parameters(&q) {
        return e.into_response();
    }
    let storage = state.storage.clone();
    blocking(move || export_scoped(&storage, now_ms(), &scope)).await
}

/// Whether a tenant may see an entity: pods, their containers and
/// namespaces of its scope; never nodes, system containers or the cluster.
pub fn entity_in_scope(scope: &Scope, entity: &Entity) -> bool {
    match entity {
        Entity::Cluster | Entity::Node { .. } | Entity::FreeContainer { .. } => scope.is_all(),
        Entity::Namespace { namespace }
        | Entity::Pod { namespace, .. }
        | Entity::PodContainer { namespace, .. } => scope.allows(namespace),
    }
}

/// Refuses (403) a model route outside the scope: node, system-container
/// and cluster routes for any tenant, namespaced routes of namespaces
/// outside its list. The answer does not depend on whether the namespace
/// exists, so a refusal tells nothing about other tenants.
pub fn check_route(scope: &Scope, route: &ModelRoute) -> Result<(), ApiError> {
    if scope.is_all() {
        return Ok(());
    }
    let namespace = |ns: &str| {
        if scope.allows(ns) {
            Ok(())
        } else {
            Err(scope.forbidden(format_args!("namespace {ns:?}")))
        }
    };
    match route {
        ModelRoute::Namespaces | ModelRoute::AllKeys => Ok(()),
        ModelRoute::Nodes | ModelRoute::FreeContainers(_) => {
            Err(scope.forbidden("node-level data"))
        }
        ModelRoute::Pods(ns) | ModelRoute::Containers(ns, _) => namespace(ns),
        ModelRoute::PodList { namespace: ns, .. } => namespace(ns),
        ModelRoute::MetricNames(e) | ModelRoute::Metric(e, _) => match e {
            Entity::Cluster => Err(scope.forbidden("cluster-level data")),
            Entity::Node { .. } | Entity::FreeContainer { .. } => {
                Err(scope.forbidden("node-level data"))
            }
            Entity::Namespace { namespace: ns }
            | Entity::Pod { namespace: ns, .. }
            | Entity::PodContainer { namespace: ns, .. } => namespace(ns),
        },
    }
}

/// The `metric-export` answer at time `now`: the latest point of every
/// exported metric of every node, system container, pod and pod container
/// that reported within [`EXPORT_WINDOW_MS`].
pub fn export_all(storage: &Storage, now: i64) -> Result<Vec<Timeseries>, StorageError> {
    export_scoped(storage, now, &Scope::All)
}

/// [`export_all`] limited to the entities `scope` may see (a tenant's
/// pods and their containers).
pub fn export_scoped(
    storage: &Storage,
    now: i64,
    scope: &Scope,
) -> Result<Vec<Timeseries>, StorageError> {
    let start = now - EXPORT_WINDOW_MS;
    let inv = Inventory::load(storage, start, now)?;
    let entities: Vec<Entity> = inv
        .entities()
        .into_iter()
        .filter(|e| !matches!(e, Entity::Cluster | Entity::Namespace { .. }))
        .filter(|e| entity_in_scope(scope, e))
        .collect();
    // Entities are independent: split them over the cores, each share with
    // its own evaluator (and so its own per-metric cache), in order.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(entities.len().div_ceil(64))
        .max(1);
    let share = entities.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<Timeseries>, StorageError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = entities
            .chunks(share)
            .map(|part| scope.spawn(|| export_entities(storage, &inv, part, start, now)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("metric-export worker panicked"))
            .collect()
    });
    let mut out = Vec::with_capacity(entities.len());
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

/// The `metric-export` entries of `entities`.
fn export_entities(
    storage: &Storage,
    inv: &Inventory,
    entities: &[Entity],
    start: i64,
    now: i64,
) -> Result<Vec<Timeseries>, StorageError> {
    let ev = Evaluator::with_cache(storage, start, now, EXPORT_LOOKBACK_MS);
    let uptime = catalogue::lookup("uptime").expect("catalogued");
    let mut out = Vec::new();
    for entity in entities {
        let free_ids = free_ids_of(inv, entity);
        let latest = |def: &MetricDef, device: Option<&str>| -> Result<_, StorageError> {
            let Some(plan) = views::plan(entity, def, device, &free_ids) else {
                return Ok(None);
            };
            Ok(ev.eval(&plan, start, now)?.last().copied())
        };
        let started = latest(uptime, None)?.map(|s| s.t - s.v as i64);
        let mut metrics = BTreeMap::new();
        for def in catalogue::exported() {
            let point = |s: crate::storage::Sample, labels| ExportPoint {
                start: go_time(match (def.kind, started) {
                    (MetricType::Cumulative, Some(t0)) if !def.name.starts_with("disk/") => t0,
                    _ => s.t,
                }),
                end: go_time(s.t),
                labels,
                value: json_value(s.v, def.value_type),
            };
            let mut points = Vec::new();
            match def.labels {
                MetricLabels::None => {
                    if let Some(s) = latest(def, None)? {
                        points.push(point(s, None));
                    }
                }
                MetricLabels::ResourceId => {
                    let (Some(scope), Some(source)) = (
                        views::own_scope(entity, &free_ids),
                        views::labeled_source(def.name),
                    ) else {
                        continue;
                    };
                    for device in ev.devices(&scope, source, start, now)? {
                        if let Some(s) = latest(def, Some(&device))? {
                            let labels = BTreeMap::from([("resource_id", device)]);
                            points.push(point(s, Some(labels)));
                        }
                    }
                }
                MetricLabels::Accelerator => {}
            }
            if !points.is_empty() {
                metrics.insert(def.name, points);
            }
        }
        if !metrics.is_empty() {
            out.push(Timeseries {
                metrics,
                labels: inv.export_labels(entity),
            });
        }
    }
    Ok(out)
}

fn json_value(v: f64, t: ValueType) -> serde_json::Value {
    match t {
        ValueType::Int64 => serde_json::Value::from(v.trunc() as i64),
        ValueType::Double => serde_json::Number::from_f64(v)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
    }
}

fn free_ids_of(inv: &Inventory, entity: &Entity) -> Vec<String> {
    match entity {
        Entity::FreeContainer { node, name } => inv.free_container_ids(node, name),
        _ => Vec::new(),
    }
}

/// A parsed route of the model tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRoute {
    /// `/nodes`
    Nodes,
    /// `/namespaces`
    Namespaces,
    /// `/namespaces/{ns}/pods`
    Pods(String),
    /// `/namespaces/{ns}/pods/{pod}/containers`
    Containers(String, String),
    /// `/nodes/{node}/freecontainers`
    FreeContainers(String),
    /// `/debug/allkeys`
    AllKeys,
    /// `<entity>/metrics`
    MetricNames(Entity),
    /// `<entity>/metrics/{metric-name}`
    Metric(Entity, String),
    /// `/namespaces/{ns}/pod-list/{p1,p2}/metrics/{metric-name}`
    PodList {
        /// Namespace.
        namespace: String,
        /// Pods, in request order.
        pods: Vec<String>,
        /// Metric name.
        metric: String,
    },
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the path below `/api/v1/model/`; trailing slashes are ignored and
/// metric names may contain slashes. `None` for paths Heapster did not
/// serve.
pub fn parse_model_path(path: &str) -> Option<ModelRoute> {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let metric = |entity: Entity, rest: &[&str]| -> Option<ModelRoute> {
        match rest {
            ["metrics"] => Some(ModelRoute::MetricNames(entity)),
            ["metrics", name @ ..] if !name.is_empty() => {
                Some(ModelRoute::Metric(entity, name.join("/")))
            }
            _ => None,
        }
    };
    match s.as_slice() {
        ["nodes"] => Some(ModelRoute::Nodes),
        ["namespaces"] => Some(ModelRoute::Namespaces),
        ["debug", "allkeys"] => Some(ModelRoute::AllKeys),
        ["metrics", ..] => metric(Entity::Cluster, &s),
        ["nodes", node, "freecontainers"] => Some(ModelRoute::FreeContainers(node.to_string())),
        ["nodes", node, "freecontainers", name, rest @ ..] => metric(
            Entity::FreeContainer {
                node: node.to_string(),
                name: name.to_string(),
            },
            rest,
        ),
        ["nodes", node, rest @ ..] => metric(
            Entity::Node {
                node: node.to_string(),
            },
            rest,
        ),
        ["namespaces", ns, "pods"] => Some(ModelRoute::Pods(ns.to_string())),
        ["namespaces", ns, "pods", pod, "containers"] => {
            Some(ModelRoute::Containers(ns.to_string(), pod.to_string()))
        }
        ["namespaces", ns, "pods", pod, "containers", c, rest @ ..] => metric(
            Entity::PodContainer {
                namespace: ns.to_string(),
                pod: pod.to_string(),
                container: c.to_string(),
            },
            rest,
        ),
        ["namespaces", ns, "pods", pod, rest @ ..] => metric(
            Entity::Pod {
                namespace: ns.to_string(),
                pod: pod.to_string(),
            },
            rest,
        ),
        ["namespaces", ns, "pod-list", pods, "metrics", name @ ..] if !name.is_empty() => {
            Some(ModelRoute::PodList {
                namespace: ns.to_string(),
                pods: pods.split(',').map(str::to_string).collect(),
                metric: name.join("/"),
            })
        }
        ["namespaces", ns, rest @ ..] => metric(
            Entity::Namespace {
                namespace: ns.to_string(),
            },
            rest,
        ),
        _ => None,
    }
}

/// The query parameters of a metric route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricQuery {
    /// Inclusive start, ms.
    pub start_ms: i64,
    /// Inclusive end, ms.
    pub end_ms: i64,
    /// The `labels` selection, sorted by key.
    pub labels: BTreeMap<String, String>,
}

fn parse_time(name: &str, v: &str) -> Result<i64, ApiError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            ApiError::bad_request(format!(
                "parameter {name}: timestamp argument cannot be parsed: {v:?} is not RFC 3339 ({e}); e.g. 2018-11-29T11:55:00Z"
            ))
        })
}

/// Validates `start`, `end` and `labels`; any other parameter is refused.
pub fn parse_metric_query(q: &BTreeMap<String, String>, now: i64) -> Result<MetricQuery, ApiError> {
    if let Some(k) = q
        .keys()
        .find(|k| !matches!(k.as_str(), "start" | "end" | "labels"))
    {
        return Err(ApiError::bad_request(format!(
            "unknown parameter {k:?}: metric routes take start, end and labels"
        )));
    }
    let end_ms = q
        .get("end")
        .map(|v| parse_time("end", v))
        .transpose()?
        .unwrap_or(now);
    let start_ms = q
        .get("start")
        .map(|v| parse_time("start", v))
        .transpose()?
        .unwrap_or(end_ms - DEFAULT_WINDOW_MS);
    if start_ms > end_ms {
        return Err(ApiError::bad_request(format!(
            "parameter start ({}) is after end ({})",
            go_time(start_ms),
            go_time(end_ms)
        )));
    }
    let mut labels = BTreeMap::new();
    if let Some(v) = q.get("labels") {
        for pair in v.split(',') {
            match pair.split_once(':') {
                Some((k, val)) if !k.is_empty() && !val.is_empty() => {
                    labels.insert(k.to_string(), val.to_string());
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "parameter labels: invalid label pair {pair:?}: expected key:value[,key:value...]"
                    )));
                }
            }
        }
    }
    Ok(MetricQuery {
        start_ms,
        end_ms,
        labels,
    })
}

fn no_parameters(q: &BTreeMap<String, String>) -> Result<(), ApiError> {
    match q.keys().next() {
        Some(k) => Err(ApiError::bad_request(format!(
            "unknown parameter {k:?}: this route takes no parameters"
        ))),
        None => Ok(()),
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

async fn blocking<T: Serialize + Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => {
            ApiError::internal(format!("reading the storage failed: {e}")).into_response()
        }
        Err(e) => ApiError::internal(format!("the query panicked: {e}")).into_response(),
    }
}

/// The system-container cgroup paths named `name` on `node` in a window.
fn free_ids(
    storage: &Storage,
    node: &str,
    name: &str,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<String>, StorageError> {
    let mut ids = Vec::new();
    for s in storage.select(
        &[
            Matcher::eq("__name__", PRESENCE_METRIC),
            Matcher::eq("node", node),
        ],
        start_ms,
        end_ms,
    )? {
        let s = s?;
        let c = Cgroup::from_labels(&s.labels);
        if c.role == CgroupRole::Free && c.free_name == name && !s.samples.is_empty() {
            ids.push(c.id);
        }
    }
    Ok(ids)
}

/// One metric of one entity over the query's range.
pub fn metric_result(
    storage: &Storage,
    entity: &Entity,
    metric: &str,
    q: &MetricQuery,
) -> Result<MetricResult, StorageError> {
    let Some(def) = catalogue::lookup(metric) else {
        return Ok(MetricResult::empty());
    };
    // The `labels` selection must name exactly the metric's extra labels.
    let device = match def.labels {
        MetricLabels::None if q.labels.is_empty() => None,
        MetricLabels::ResourceId if q.labels.len() == 1 => match q.labels.get("resource_id") {
            Some(d) => Some(d.as_str()),
            None => return Ok(MetricResult::empty()),
        },
        _ => return Ok(MetricResult::empty()),
    };
    let ids = match entity {
        Entity::FreeContainer { node, name } => free_ids(
            storage,
            node,
            name,
            q.start_ms - views::LOOKBACK_MS,
            q.end_ms,
        )?,
        _ => Vec::new(),
    };
    let Some(plan) = views::plan(entity, def, device, &ids) else {
        return Ok(MetricResult::empty());
    };
    let points = Evaluator::new(storage).eval(&plan, q.start_ms, q.end_ms)?;
    Ok(MetricResult::from_points(&points, def))
}

/// The scalar metrics an entity has data for in `[start_ms, end_ms]`
/// (labeled metrics are not listed, as in Heapster).
pub fn metric_names(
    storage: &Storage,
    entity: &Entity,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<&'static str>, StorageError> {
    let q = MetricQuery {
        start_ms,
        end_ms,
        labels: BTreeMap::new(),
    };
    let mut out = Vec::new();
    for def in catalogue::METRICS
        .iter()
        .filter(|d| d.labels == MetricLabels::None)
    {
        if !metric_result(storage, entity, def.name, &q)?
            .metrics
            .is_empty()
        {
            out.push(def.name);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// `GET /api/v1/model/...`.
pub async fn model(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    uri: Uri,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let path = uri.path().strip_prefix("/api/v1/model").unwrap_or("");
    let Some(route) = parse_model_path(path) else {
        return ApiError::not_found(format!(
            "no Heapster model route {}; see /api/v1/model/nodes, /namespaces, /metrics",
            uri.path()
        ))
        .into_response();
    };
    if let Err(e) = check_route(&scope, &route) {
        return e.into_response();
    }
    let now = now_ms();
    let storage = state.storage.clone();
    let (start, end) = (now - DEFAULT_WINDOW_MS, now);
    let list_scope = scope.clone();
    let list = |f: fn(&Inventory, &Scope) -> Vec<String>| async move {
        blocking(move || Ok(f(&Inventory::load(&storage, start, end)?, &list_scope))).await
    };
    let storage = state.storage.clone();
    match route {
        ModelRoute::Metric(entity, metric) => {
            let q = match parse_metric_query(&q, now) {
                Ok(q) => q,
                Err(e) => return e.into_response(),
            };
            blocking(move || metric_result(&storage, &entity, &metric, &q)).await
        }
        ModelRoute::PodList {
            namespace,
            pods,
            metric,
        } => {
            let q = match parse_metric_query(&q, now) {
                Ok(q) => q,
                Err(e) => return e.into_response(),
            };
            blocking(move || {
                let items = pods
                    .into_iter()
                    .map(|pod| {
                        let entity = Entity::Pod {
                            namespace: namespace.clone(),
                            pod,
                        };
                        metric_result(&storage, &entity, &metric, &q)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(MetricResultList { items })
            })
            .await
        }
        other => {
            if let Err(e) = no_parameters(&q) {
                return e.into_response();
            }
            match other {
                ModelRoute::MetricNames(entity) => {
                    blocking(move || metric_names(&storage, &entity, start, end)).await
                }
                ModelRoute::Nodes => list(|inv, _| inv.nodes()).await,
                ModelRoute::Namespaces => {
                    list(|inv, scope| {
                        let mut all = inv.namespaces();
                        all.retain(|ns| scope.allows(ns));
                        all
                    })
                    .await
                }
                ModelRoute::AllKeys => {
                    list(|inv, scope| {
                        inv.entities()
                            .iter()
                            .filter(|e| entity_in_scope(scope, e))
                            .map(Entity::key)
                            .collect()
                    })
                    .await
                }
                ModelRoute::Pods(ns) => {
                    blocking(move || Ok(Inventory::load(&storage, start, end)?.pods(&ns))).await
                }
                ModelRoute::Containers(ns, pod) => {
                    blocking(move || {
                        Ok(Inventory::load(&storage, start, end)?.containers(&ns, &pod))
                    })
                    .await
                }
                ModelRoute::FreeContainers(node) => {
                    blocking(move || {
                        Ok(Inventory::load(&storage, start, end)?.free_containers(&node))
                    })
                    .await
                }
                ModelRoute::Metric(..) | ModelRoute::PodList { .. } => unreachable!(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_format() {
        assert_eq!(go_time(1_543_492_860_000), "2018-11-29T12:01:00Z");
        assert_eq!(go_time(1_543_492_860_500), "2018-11-29T12:01:00.5Z");
        assert_eq!(go_time(1_543_492_860_120), "2018-11-29T12:01:00.12Z");
    }

    #[test]
    fn model_paths() {
        use ModelRoute::*;
        assert_eq!(parse_model_path("/nodes/"), Some(Nodes));
        assert_eq!(
            parse_model_path("/metrics/cpu/usage_rate"),
            Some(Metric(Entity::Cluster, "cpu/usage_rate".into()))
        );
        assert_eq!(
            parse_model_path("/namespaces/ns/pods/p/containers/c/metrics/memory/usage/"),
            Some(Metric(
                Entity::PodContainer {
                    namespace: "ns".into(),
                    pod: "p".into(),
                    container: "c".into()
                },
                "memory/usage".into()
            ))
        );
        assert_eq!(
            parse_model_path("/namespaces/ns/pod-list/a,b,a/metrics/cpu-usage"),
            Some(PodList {
                namespace: "ns".into(),
                pods: vec!["a".into(), "b".into(), "a".into()],
                metric: "cpu-usage".into()
            })
        );
        assert_eq!(
            parse_model_path("/nodes/n1/freecontainers/docker.service/metrics"),
            Some(MetricNames(Entity::FreeContainer {
                node: "n1".into(),
                name: "docker.service".into()
            }))
        );
        assert_eq!(parse_model_path("/nodes/n1/nonsense"), None);
        assert_eq!(parse_model_path("/stats"), None);
    }

    #[test]
    fn query_validation() {
        let q = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let ok = parse_metric_query(
            &q(&[
                ("start", "2018-11-29T11:55:00Z"),
                ("labels", "resource_id:/"),
            ]),
            1_543_492_860_000,
        )
        .unwrap();
        assert_eq!(ok.start_ms, 1_543_492_500_000);
        assert_eq!(ok.end_ms, 1_543_492_860_000);
        assert_eq!(ok.labels["resource_id"], "/");
        for bad in [
            q(&[("start", "yesterday")]),
            q(&[("end", "2018-13-01T00:00:00Z")]),
            q(&[("labels", "resource_id")]),
            q(&[("labels", ":x")]),
            q(&[("step", "10s")]),
            q(&[
                ("start", "2018-11-29T12:00:00Z"),
                ("end", "2018-11-29T11:00:00Z"),
            ]),
        ] {
            let e = parse_metric_query(&bad, 0).unwrap_err();
            assert_eq!(e.status, 400);
            let key = bad.keys().next().unwrap();
            assert!(
                e.message.contains(key.as_str()),
                "{} names {key}",
                e.message
            );
        }
    }
}
