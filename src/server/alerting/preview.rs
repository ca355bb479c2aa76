//! `POST /api/v1/alerting/rules/preview`: what a rule would have done over
//! the last hours, for the dashboard's rule form.
//!
//! Body: a rule exactly as `POST /api/v1/alerting/rules` takes it, plus
//! optional `range` (how far back, a duration; default `6h`), `end` (RFC
//! 3339, Unix seconds or `now`; default now), `step` (evaluation step;
//! default the rule's interval, raised to at most 2,000 evaluations) and
//! `width` (chart pixels, default 1000). Needs the admin role like the
//! rule editing it accompanies (it runs up to 2,000 evaluations).
//!
//! Answer:
//! ```json
//! {"status":"success","data":{
//!   "start":…, "end":…,
//!   "chart": { … as GET /api/v1/dashboard/query_range … },  // the rule's query, its scope's members
//!   "simulation": {"step_ms":60000,"evaluations":361,"threshold":80,
//!     "bands":[{"labels":{…},"t":[…],"lo":[…],"centre":[…],"hi":[…]}],
//!     "intervals":[{"labels":{…},"state":"firing","start_ms":…,"end_ms":…,"open":false}],
//!     "failed_evaluations":0,"first_error":null}}}
//! ```
//! The intervals come from the engine's own state machine replayed at
//! every step (see [`osprey_alerts::preview`]).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use osprey_alerts::labels::LabelSet;
use osprey_alerts::matcher::{Matcher, matches_all};
use osprey_alerts::rule::{Condition, RuleSpec};
use serde_json::{Value, json};

use super::api::{api_error, service};
use super::source::PromqlSource;
use crate::promql::api::parse_duration;
use crate::server::ServerState;
use crate::server::auth::Scope;
use crate::server::chart_query::{ChartQuery, MAX_WIDTH, downsample, parse_chart_time};
use crate::server::error::ApiError;

/// Default range of a preview, ms.
const DEFAULT_RANGE_MS: i64 = 6 * 3_600_000;
/// Longest range a preview replays, ms.
const MAX_RANGE_MS: i64 = 7 * 86_400_000;
/// Chart resolution: the agents' default scrape interval.
const CHART_STEP_MS: i64 = 10_000;

fn bad(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid preview: `{field}`: {why}"))
}

/// The preview's own fields, taken out of the rule's body.
struct Window {
    start: i64,
    end: i64,
    step: Option<i64>,
    width: u32,
}

fn take_str(
    obj: &mut serde_json::Map<String, Value>,
    field: &str,
) -> Result<Option<String>, ApiError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(bad(field, format!("expected a string, got {other}"))),
    }
}

fn window(obj: &mut serde_json::Map<String, Value>, now: i64) -> Result<Window, ApiError> {
    let range = match take_str(obj, "range")? {
        Some(r) => {
            let d = parse_duration(&r).map_err(|e| bad("range", e))?.as_millis() as i64;
            if d <= 0 || d > MAX_RANGE_MS {
                return Err(bad("range", format!("{r} is not in (0, 7d]")));
            }
            d
        }
        None => DEFAULT_RANGE_MS,
    };
    let end = match take_str(obj, "end")? {
        Some(e) => parse_chart_time(&e, now).map_err(|e| bad("end", e))?,
        None => now,
    };
    let step = match take_str(obj, "step")? {
        Some(s) => {
            let d = parse_duration(&s).map_err(|e| bad("step", e))?.as_millis() as i64;
            let min = range / osprey_alerts::preview::MAX_EVALUATIONS;
            if d <= 0 || d < min {
                return Err(bad(
                    "step",
                    format!(
                        "{s} gives more than 2000 evaluations over the range; use at least {min} ms"
                    ),
                ));
            }
            Some(d)
        }
        None => None,
    };
    let width = match obj.remove("width") {
        None | Some(Value::Null) => 1000,
        Some(v) => v
            .as_u64()
            .filter(|w| (1..=u64::from(MAX_WIDTH)).contains(w))
            .ok_or_else(|| bad("width", format!("{v} is not an integer in 1..={MAX_WIDTH}")))?
            as u32,
    };
    Ok(Window {
        start: end - range,
        end,
        step,
        width,
    })
}

/// What the preview charts: the rule's query and the scope its members are
/// filtered by. A group aggregate without a scope charts the aggregate the
/// threshold applies to (`avg by (node) (query)`); with a scope (which
/// PromQL cannot take around an arbitrary expression) its members.
fn chart_of(c: &Condition) -> (String, &[Matcher]) {
    let q = c.chart_query().to_string();
    match c {
        Condition::Threshold(x) => (q, &x.scope),
        Condition::RateOfChange(x) => (q, &x.scope),
        Condition::Absence(x) => (q, &x.scope),
        Condition::GroupAggregate(x) if x.scope.is_empty() => {
            let agg = serde_json::to_value(x.aggregation)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "avg".into());
            (format!("{agg} by ({}) ({q})", x.by.join(", ")), &[])
        }
        Condition::GroupAggregate(x) => (q, &x.scope),
        Condition::Baseline(x) => (q, &x.scope),
        Condition::HostComparison(x) => (q, &x.scope),
        Condition::Promql(_) => (q, &[]),
    }
}

/// `POST /api/v1/alerting/rules/preview`: see the module documentation.
/// A tenant's preview (and its chart) reads only its namespaces' series.
pub async fn preview(
    State(s): State<Arc<ServerState>>,
    scope: Scope,
    b: Bytes,
) -> Result<Response, ApiError> {
    let alerting = service(&s)?.clone();
    let mut value: Value = serde_json::from_slice(&b)
        .map_err(|e| ApiError::bad_request(format!("invalid preview: {e}")))?;
    let Some(obj) = value.as_object_mut() else {
        return Err(ApiError::bad_request(
            "invalid preview: the body must be a JSON object (a rule)",
        ));
    };
    let now = chrono::Utc::now().timestamp_millis();
    let w = window(obj, now)?;
    let spec: RuleSpec = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            ApiError::bad_request(format!("invalid rule: {}", e.inner()))
        } else {
            ApiError::bad_request(format!("invalid rule: `{path}`: {}", e.inner()))
        }
    })?;
    let sim_spec = spec.clone();
    let (start, end, step) = (w.start, w.end, w.step);
    let source =
        PromqlSource::new(s.storage.clone(), super::RULE_QUERY_TIMEOUT).restricted(scope.matcher());
    let simulation = tokio::task::spawn_blocking(move || {
        alerting.preview_with(&sim_spec, &source, start, end, step)
    })
    .await
    .map_err(|e| ApiError::internal(format!("preview task failed: {e}")))?
    .map_err(api_error)?;
    let (query, members) = chart_of(&spec.condition);
    let chart = ChartQuery {
        query,
        start: w.start,
        end: w.end,
        step: CHART_STEP_MS.max((w.end - w.start) / 11_000 + 1),
        width: w.width,
        legend: None,
        format: Default::default(),
    };
    let mut series = chart.evaluate(&s, &scope).await?;
    // The members the rule watches, as the engine filters them.
    series.retain(|x| {
        let labels: LabelSet = x
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        matches_all(members, &labels)
    });
    Ok(Json(json!({"status": "success", "data": {
        "start": w.start,
        "end": w.end,
        "chart": downsample(&chart, &series),
        "simulation": simulation,
    }}))
    .into_response())
}
