//! The log endpoints: Loki push, search, histogram, tail, and Loki's query
//! endpoints. Handlers parse and validate parameters, then run the store's
//! work off the async threads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tantivy::query::{BooleanQuery, Occur, Query};

use super::histogram::auto_step_ms;
use super::logql::LogQuery;
use super::push::{BodyFormat, PushLimits, decode, parse_batch_header};
use super::query::{Cursor, Direction, SearchParams, StreamFilter};
use super::{LogError, LogStore, now_ns};
use crate::promql::api::{Params, parse_duration, parse_time};
use crate::server::ServerState;
use crate::server::auth::Scope;
use crate::server::error::ApiError;

/// Default page size.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest page.
pub const MAX_LIMIT: usize = 5000;
/// Candidates a LogQL query with line filters looks at before it stops.
pub const LOGQL_SCAN_LIMIT: usize = 1_000_000;
/// Lines pushed in the future by more than this are refused.
const FUTURE_GRACE_NS: i64 = 86_400 * 1_000_000_000;

/// A Loki stream and its `[ns, line]` values.
type StreamValues = (BTreeMap<String, String>, Vec<[String; 2]>);

/// The log routes.
pub fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/loki/api/v1/push", post(push))
        .route("/api/v1/logs/search", get(search))
        .route("/api/v1/logs/histogram", get(histogram))
        .route("/api/v1/logs/tail", get(tail))
        .route("/loki/api/v1/query_range", get(loki_query_range))
        .route("/loki/api/v1/query", get(loki_query))
        .route("/loki/api/v1/series", get(loki_series).post(loki_series))
        .route("/loki/api/v1/labels", get(loki_labels))
        .route("/loki/api/v1/label/{name}/values", get(loki_label_values))
        .route("/loki/api/v1/index/stats", get(loki_index_stats))
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::BadQuery(m) => ApiError::bad_request(m),
            LogError::Overloaded | LogError::Closed => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "unavailable",
                message: e.to_string(),
            },
            other => ApiError::internal(other.to_string()),
        }
    }
}

fn bad_param(name: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid parameter \"{name}\": {why}"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("log query panicked: {e}")))?
        .map_err(ApiError::from)
}

async fn push(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let metrics = state.logs.metrics().clone();
    match push_inner(&state, &scope, &headers, body).await {
        Ok(()) => {
            metrics.push_requests.with_label_values(&["ok"]).inc();
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            let outcome = if e.status.is_client_error() {
                "bad_request"
            } else {
                "error"
            };
            metrics.push_requests.with_label_values(&[outcome]).inc();
            e.into_response()
        }
    }
}

async fn push_inner(
    state: &Arc<ServerState>,
    scope: &Scope,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(), ApiError> {
    let body = body.map_err(|e| ApiError {
        status: e.status(),
        kind: "bad_data",
        message: format!(
            "cannot read the body: {e} (the limit is {} bytes)",
            state.config.max_body_bytes
        ),
    })?;
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        let enc = String::from_utf8_lossy(enc.as_bytes());
        if !enc.eq_ignore_ascii_case("identity") {
            return Err(ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                kind: "bad_data",
                message: format!(
                    "Content-Encoding {enc:?} is not supported: send JSON uncompressed or protobuf with snappy block compression"
                ),
            });
        }
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let format = BodyFormat::from_content_type(ct.as_deref()).map_err(|m| ApiError {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        kind: "bad_data",
        message: m,
    })?;
    let batch = headers
        .get("x-osprey-batch")
        .map(|v| {
            v.to_str()
                .map_err(|_| "X-Osprey-Batch is not ASCII".to_string())
                .and_then(parse_batch_header)
        })
        .transpose()
        .map_err(ApiError::bad_request)?;
    let cfg = state.logs.config();
    let now = now_ns();
    let limits = PushLimits {
        max_decoded_bytes: state.config.max_decoded_bytes,
        max_line_bytes: cfg.max_line_bytes,
        oldest_ns: now.saturating_sub(cfg.retention_ns()),
        newest_ns: now.saturating_add(FUTURE_GRACE_NS),
    };
    let decoded = tokio::task::spawn_blocking(move || decode(&body, format, &limits))
        .await
        .map_err(|e| ApiError::internal(format!("decoding panicked: {e}")))?
        .map_err(|m| ApiError::bad_request(format!("{m}; nothing of this request was stored")))?;
    // A tenant pushes its own namespaces only; one stream outside them
    // refuses the whole request, before anything is written.
    if let Some(stream) = decoded.streams.iter().find(|s| {
        !scope.allows_label(
            s.labels
                .get(crate::server::auth::NAMESPACE_LABEL)
                .map(String::as_str),
        )
    }) {
        let ns = stream.labels.get(crate::server::auth::NAMESPACE_LABEL);
        return Err(scope.forbidden(match ns {
            Some(ns) => format!("a stream of namespace {ns:?}; nothing of this request was stored"),
            None => "a stream without a namespace label; nothing of this request was stored".into(),
        }));
    }
    let metrics = state.logs.metrics();
    if decoded.dropped_too_old > 0 {
        metrics
            .lines_dropped
            .with_label_values(&["too_old"])
            .inc_by(decoded.dropped_too_old as u64);
    }
    if decoded.truncated > 0 {
        metrics
            .lines_dropped
            .with_label_values(&["truncated"])
            .inc_by(decoded.truncated as u64);
    }
    if decoded.lines.is_empty() {
        return Ok(());
    }
    // The streams to forward, taken before the store consumes the lines.
    let forwarded = state
        .forward
        .forwards_logs()
        .then(|| group_by_stream(&decoded.lines));
    let outcome = state.logs.push(decoded.lines, batch).await?;
    if outcome.duplicate > 0 {
        metrics
            .lines_dropped
            .with_label_values(&["duplicate"])
            .inc_by(outcome.duplicate as u64);
    }
    // Queued for the forwarding targets after the commit and before the
    // answer, also when the batch was a duplicate: a crash between the
    // commit and this point is repaired by forwarding the sender's retry
    // (at least once towards the target).
    if let Some(streams) = forwarded {
        let st = state.clone();
        tokio::task::spawn_blocking(move || st.forward.forward_logs(&streams))
            .await
            .map_err(|e| ApiError::internal(format!("forwarding panicked: {e}")))?
            .map_err(|e| ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "unavailable",
                message: format!("{e}; the lines are stored, retry to forward them"),
            })?;
    }
    Ok(())
}

/// One forwardable stream per distinct label set of a push, entries in
/// request order.
fn group_by_stream(
    lines: &[super::schema::PreparedLine],
) -> Vec<crate::server::forward::LogStream> {
    let mut streams: Vec<crate::server::forward::LogStream> = Vec::new();
    let mut index: std::collections::HashMap<&BTreeMap<String, String>, usize> =
        std::collections::HashMap::new();
    for line in lines {
        let i = *index.entry(&line.stream.labels).or_insert_with(|| {
            streams.push(crate::server::forward::LogStream {
                labels: line
                    .stream
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                entries: Vec::new(),
            });
            streams.len() - 1
        });
        streams[i].entries.push((line.ts_ns, line.message.clone()));
    }
    streams
}

/// `start`/`end` in milliseconds: the last hour by default. Times are
/// clamped to what a line's timestamp (i64 nanoseconds, 1677–2262) can
/// be, so that every later computation in nanoseconds is exact.
fn range_ms(params: &Params, default_span_ms: i64) -> Result<(i64, i64), ApiError> {
    const MIN_MS: i64 = i64::MIN / 1_000_000;
    const MAX_MS: i64 = i64::MAX / 1_000_000;
    let end = match params.get("end") {
        Some(e) => parse_time(e).map_err(|m| bad_param("end", m))?,
        None => now_ns() / 1_000_000,
    }
    .clamp(MIN_MS, MAX_MS);
    let start = match params.get("start") {
        Some(s) => parse_time(s).map_err(|m| bad_param("start", m))?,
        None => end.saturating_sub(default_span_ms),
    }
    .clamp(MIN_MS, MAX_MS);
    if end <= start {
        return Err(bad_param("end", "must be after start"));
    }
    Ok((start, end))
}

fn limit(params: &Params) -> Result<usize, ApiError> {
    match params.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(bad_param(
                "limit",
                format!("{l:?} is not an integer between 1 and {MAX_LIMIT}"),
            )),
        },
    }
}

fn direction(params: &Params) -> Result<Direction, ApiError> {
    params
        .get("direction")
        .map(Direction::parse)
        .transpose()
        .map_err(|m| bad_param("direction", m))
        .map(Option::unwrap_or_default)
}

/// The parameters of `/api/v1/logs/search` (`start`, `end`, `limit`,
/// `cursor`, `direction`; the query string is parsed by the store).
pub fn search_params(params: &Params) -> Result<SearchParams, ApiError> {
    let (start, end) = range_ms(params, 3_600_000)?;
    Ok(SearchParams {
        start_ns: start.saturating_mul(1_000_000),
        end_ns: end.saturating_mul(1_000_000),
        limit: limit(params)?,
        cursor: params
            .get("cursor")
            .filter(|c| !c.is_empty())
            .map(Cursor::decode)
            .transpose()
            .map_err(|m| bad_param("cursor", m))?,
        direction: direction(params)?,
    })
}

/// `start`, `end` and `step` (ms) of `/api/v1/logs/histogram`; the step is
/// chosen when not given.
pub fn histogram_params(params: &Params) -> Result<(i64, i64, i64), ApiError> {
    let (start, end) = range_ms(params, 3_600_000)?;
    let step = match params.get("step").filter(|s| !s.is_empty()) {
        Some(s) => {
            let d = parse_duration(s).map_err(|m| bad_param("step", m))?;
            let ms = d.as_millis() as i64;
            if ms < 1 {
                return Err(bad_param("step", "must be at least 1ms"));
            }
            ms
        }
        None => auto_step_ms(start, end),
    };
    super::histogram::bucket_count(start, end, step)?;
    Ok((start, end, step))
}

/// The LogQL query and search parameters of `/loki/api/v1/query_range`.
pub fn loki_query_params(params: &Params) -> Result<(LogQuery, SearchParams), ApiError> {
    let logql = log_query(params)?;
    let (start_ns, end_ns) = loki_range(params, 3_600 * 1_000_000_000)?;
    Ok((logql, loki_search(params, start_ns, end_ns)?))
}

/// A Loki query's search over `[start_ns, end_ns)`: its `limit` and
/// `direction` (Loki has no cursor).
fn loki_search(params: &Params, start_ns: i64, end_ns: i64) -> Result<SearchParams, ApiError> {
    Ok(SearchParams {
        start_ns,
        end_ns,
        limit: limit(params)?,
        cursor: None,
        direction: direction(params)?,
    })
}

async fn search(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::from_request(raw.as_deref(), &HeaderMap::new(), &[]);
    let search = search_params(&params)?;
    let store = state.logs.clone();
    let q = params.get("query").unwrap_or("").to_string();
    let page = blocking(move || {
        let query = store.scoped(store.parse_query(&q)?, &scope);
        store.search(query.as_ref(), &search)
    })
    .await?;
    Ok(Json(json!({ "status": "success", "data": page })).into_response())
}

async fn histogram(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::from_request(raw.as_deref(), &HeaderMap::new(), &[]);
    let (start, end, step) = histogram_params(&params)?;
    let store = state.logs.clone();
    let q = params.get("query").unwrap_or("").to_string();
    let h = blocking(move || {
        let query = store.scoped(store.parse_query(&q)?, &scope);
        store.histogram(query.as_ref(), start, end, step)
    })
    .await?;
    Ok(Json(json!({ "status": "success", "data": h })).into_response())
}

async fn tail(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::from_request(raw.as_deref(), &HeaderMap::new(), &[]);
    let q = params.get("query").unwrap_or("");
    let query: Arc<dyn tantivy::query::Query> =
        Arc::from(state.logs.scoped(state.logs.parse_query(q)?, &scope));
    let events = super::tail::events(state.logs.clone(), query);
    Ok(Sse::new(events)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text(" keepalive"),
        )
        .into_response())
}

/// Loki's time parameters: Unix nanoseconds (integers over 10 digits),
/// Unix seconds (shorter integers or with a fraction) or RFC 3339.
pub fn loki_time(s: &str) -> Result<i64, String> {
    if !s.contains('.')
        && let Ok(n) = s.parse::<i64>()
    {
        return Ok(if s.trim_start_matches('-').len() <= 10 {
            n.saturating_mul(1_000_000_000)
        } else {
            n
        });
    }
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() || secs.abs() > 9.2e9 {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        return Ok((secs * 1e9) as i64);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

/// `start`/`end` of the Loki endpoints in ns (end made exclusive); the
/// last `default_span_ns` when `start` is absent.
pub fn loki_range(params: &Params, default_span_ns: i64) -> Result<(i64, i64), ApiError> {
    let end = match params.get("end") {
        Some(e) => loki_time(e).map_err(|m| bad_param("end", m))?,
        None => now_ns(),
    };
    let start = match params.get("start") {
        Some(s) => loki_time(s).map_err(|m| bad_param("start", m))?,
        None => end.saturating_sub(default_span_ns),
    };
    if end < start {
        return Err(bad_param("end", "must not be before start"));
    }
    // Loki's end is inclusive.
    Ok((start, end.saturating_add(1)))
}

async fn loki_query_range(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::from_request(raw.as_deref(), &HeaderMap::new(), &[]);
    let logql = log_query(&params)?;
    let (start_ns, end_ns) = loki_range(&params, 3_600 * 1_000_000_000)?;
    loki_streams(&state, &scope, logql, &params, start_ns, end_ns).await
}

/// How far back an instant log query looks from its `time`.
pub const INSTANT_LOOKBACK_NS: i64 = 3_600 * 1_000_000_000;

/// `GET /loki/api/v1/query`: a log query at an instant — the lines of the
/// hour ending at `time` (inclusive; default now), `limit` of them,
/// newest first unless `direction=forward`, in Loki's `streams` result.
async fn loki_query(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::from_request(raw.as_deref(), &HeaderMap::new(), &[]);
    let logql = log_query(&params)?;
    let time = match params.get("time") {
        Some(t) => loki_time(t).map_err(|m| bad_param("time", m))?,
        None => now_ns(),
    };
    let start_ns = time.saturating_sub(INSTANT_LOOKBACK_NS);
    loki_streams(
        &state,
        &scope,
        logql,
        &params,
        start_ns,
        time.saturating_add(1),
    )
    .await
}

fn log_query(params: &Params) -> Result<LogQuery, ApiError> {
    let q = params
        .get("query")
        .ok_or_else(|| bad_param("query", "missing"))?;
    LogQuery::parse(q).map_err(|m| bad_param("query", m))
}

/// The lines of `logql` in `[start_ns, end_ns)` as Loki's `streams`
/// result.
async fn loki_streams(
    state: &Arc<ServerState>,
    scope: &Scope,
    logql: LogQuery,
    params: &Params,
    start_ns: i64,
    end_ns: i64,
) -> Result<Response, ApiError> {
    let search = loki_search(params, start_ns, end_ns)?;
    let store = state.logs.clone();
    let scope = scope.clone();
    let (lines, _) = blocking(move || {
        let query = store.scoped(logql.to_query(store.schema()), &scope);
        store.search_filtered(
            query.as_ref(),
            &search,
            &|l| logql.passes(&l.message),
            LOGQL_SCAN_LIMIT,
        )
    })
    .await?;
    // Group by stream, keeping the order within each.
    let mut streams: Vec<StreamValues> = Vec::new();
    let mut index: BTreeMap<BTreeMap<String, String>, usize> = BTreeMap::new();
    for l in lines {
        let i = *index.entry(l.labels.clone()).or_insert_with(|| {
            streams.push((l.labels.clone(), Vec::new()));
            streams.len() - 1
        });
        streams[i].1.push([l.ts_ns, l.message]);
    }
    let result: Vec<_> = streams
        .into_iter()
        .map(|(stream, values)| json!({ "stream": stream, "values": values }))
        .collect();
    Ok(Json(json!({
        "status": "success",
        "data": { "resultType": "streams", "result": result, "stats": {} }
    }))
    .into_response())
}

/// `GET|POST /loki/api/v1/series`: the label sets of the streams that a
/// `match[]` selector (any of them; none = every stream) selects, in the
/// partitions overlapping `start`–`end` (default the last 6 h).
async fn loki_series(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::from_request(raw.as_deref(), &headers, &body);
    let mut selectors = Vec::new();
    for m in params.all("match[]") {
        let q = LogQuery::parse(m).map_err(|e| bad_param("match[]", e))?;
        if !q.filters.is_empty() {
            return Err(bad_param(
                "match[]",
                format!("{m:?}: a series selector takes no line filters"),
            ));
        }
        selectors.push(q);
    }
    if selectors.is_empty() {
        // Every stream: `{}` is not a valid selector, so match all here.
        selectors.push(LogQuery {
            matchers: Vec::new(),
            filters: Vec::new(),
        });
    }
    let (start, end) = loki_range(&params, 6 * 3_600 * 1_000_000_000)?;
    let store = state.logs.clone();
    let series = blocking(move || store.series(start, end, &selectors, &scope)).await?;
    Ok(Json(json!({ "status": "success", "data": series })).into_response())
}

async fn loki_labels(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::from_request(raw.as_deref(), &HeaderMap::new(), &[]);
    let (start, end) = loki_range(&params, 6 * 3_600 * 1_000_000_000)?;
    let store = state.logs.clone();
    let names = blocking(move || store.label_terms(start, end, None, &scope)).await?;
    Ok(Json(json!({ "status": "success", "data": names })).into_response())
}

async fn loki_label_values(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    if !super::push::valid_label_name(&name) {
        return Err(bad_param(
            "name",
            format!("{name:?} is not a valid label name"),
        ));
    }
    let params = Params::from_request(raw.as_deref(), &HeaderMap::new(), &[]);
    let (start, end) = loki_range(&params, 6 * 3_600 * 1_000_000_000)?;
    let store = state.logs.clone();
    let values = blocking(move || store.label_terms(start, end, Some(&name), &scope)).await?;
    Ok(Json(json!({ "status": "success", "data": values })).into_response())
}

/// `GET /loki/api/v1/index/stats`: how many streams, chunks, lines and
/// bytes the stream selector `query` (no line filters) selects in
/// `start`–`end` (default the last hour), as Loki answers it
/// (`{"streams":N,"chunks":N,"entries":N,"bytes":N}`, not wrapped in
/// `status`/`data`); for a tenant, of the streams in its namespaces only.
async fn loki_index_stats(
    State(state): State<Arc<ServerState>>,
    scope: Scope,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::from_request(raw.as_deref(), &HeaderMap::new(), &[]);
    let q = log_query(&params)?;
    if !q.filters.is_empty() {
        return Err(bad_param(
            "query",
            "index stats take a stream selector without line filters",
        ));
    }
    let (start, end) = loki_range(&params, 3_600 * 1_000_000_000)?;
    let store = state.logs.clone();
    let selector = q.stream_filter();
    let stats = blocking(move || {
        store.index_stats(
            &|labels| in_scope(&scope, labels) && selector.keeps(labels),
            start,
            end,
        )
    })
    .await?;
    Ok(Json(stats).into_response())
}

impl LogStore {
    /// `query` limited to the lines `scope` may see: those of streams
    /// whose `namespace` label is one of the scope's (streams without the
    /// label never match). Bound per partition like any stream filter.
    pub fn scoped(&self, query: Box<dyn Query>, scope: &Scope) -> Box<dyn Query> {
        match scope.namespaces() {
            None => query,
            Some(list) => {
                let list = list.to_vec();
                let filter = StreamFilter::new(format!("tenant scope {list:?}"), move |labels| {
                    labels
                        .get(crate::server::auth::NAMESPACE_LABEL)
                        .is_some_and(|ns| list.iter().any(|n| n == ns))
                });
                Box::new(BooleanQuery::new(vec![
                    (Occur::Must, query),
                    (Occur::Must, Box::new(filter)),
                ]))
            }
        }
    }

    /// Label names (`name` = `None`) or the values of label `name` of the
    /// streams in the partitions overlapping `[start, end)`, sorted and
    /// unique; for a tenant, only of the streams in its namespaces.
    pub fn label_terms(
        &self,
        start_ns: i64,
        end_ns: i64,
        name: Option<&str>,
        scope: &Scope,
    ) -> Result<Vec<String>, LogError> {
        let mut out = std::collections::BTreeSet::new();
        for part in self.partitions(start_ns, end_ns) {
            let table = part.streams.read().expect("stream table lock");
            for (_, labels) in table.iter() {
                if !in_scope(scope, labels) {
                    continue;
                }
                match name {
                    Some(n) => {
                        if let Some(v) = labels.get(n) {
                            out.insert(v.clone());
                        }
                    }
                    None => out.extend(labels.keys().cloned()),
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The label sets of the streams in the partitions overlapping
    /// `[start, end)` that any of `selectors` selects, sorted and unique
    /// (Loki's series API); for a tenant, only streams in its namespaces.
    pub fn series(
        &self,
        start_ns: i64,
        end_ns: i64,
        selectors: &[LogQuery],
        scope: &Scope,
    ) -> Result<Vec<BTreeMap<String, String>>, LogError> {
        let mut out = std::collections::BTreeSet::new();
        for part in self.partitions(start_ns, end_ns) {
            let table = part.streams.read().expect("stream table lock");
            for (_, labels) in table.iter() {
                if in_scope(scope, labels) && selectors.iter().any(|s| s.selects(labels)) {
                    out.insert((**labels).clone());
                }
            }
        }
        Ok(out.into_iter().collect())
    }
}

/// Whether a stream with `labels` is visible to `scope`.
fn in_scope(scope: &Scope, labels: &BTreeMap<String, String>) -> bool {
    scope.allows_label(
        labels
            .get(crate::server::auth::NAMESPACE_LABEL)
            .map(String::as_str),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loki_times() {
        assert_eq!(loki_time("1700000000").unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(
            loki_time("1700000000123456789").unwrap(),
            1_700_000_000_123_456_789
        );
        assert_eq!(
            loki_time("1700000000.5").unwrap(),
            1_700_000_000_500_000_000
        );
        assert_eq!(
            loki_time("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000_000_000
        );
        assert!(loki_time("yesterday").is_err());
    }

    fn params(q: &str) -> Params {
        Params::from_request(Some(q), &HeaderMap::new(), &[])
    }

    #[test]
    fn extreme_ranges_are_refused_or_answered_without_overflow() {
        // Found by the security sweep and the query_params fuzz target:
        // the default start (`end - span`) and the histogram's automatic
        // step overflowed on ranges near the ends of i64.
        let (start, end) = loki_range(&params("end=-9223372036854775808"), 3_600).unwrap();
        assert_eq!((start, end), (i64::MIN, i64::MIN + 1));
        // Before 1677 nothing can exist: an empty range, refused.
        assert!(search_params(&params("end=-9e15")).is_err());
        let s = search_params(&params("start=-9e15&end=9e15")).unwrap();
        assert_eq!(
            (s.start_ns, s.end_ns),
            (
                i64::MIN / 1_000_000 * 1_000_000,
                i64::MAX / 1_000_000 * 1_000_000
            )
        );
        let e = histogram_params(&params("start=-9e15&end=9e15&step=1")).unwrap_err();
        assert!(e.message.contains("buckets"), "{}", e.message);
        let (s, e, step) = histogram_params(&params("start=-9e15&end=9e15")).unwrap();
        assert!(s < e && (e - s) / step <= 100, "{s} {e} {step}");
        let (s, e, step) = histogram_params(&params("start=0&end=3600")).unwrap();
        assert_eq!((s, e, step), (0, 3_600_000, 60_000));
    }
}
