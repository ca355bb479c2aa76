//! `GET /api/openapi.json`: an OpenAPI 3 description of every endpoint.
//!
//! Kept by hand next to the routes it describes (the handlers are spread
//! over several modules with their own request types); the test
//! `tests/server_api.rs` checks that every path listed here answers and
//! that the list covers the routes the tests exercise.

use axum::Json;
use serde_json::{Value, json};

/// One documented operation.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    auth: &'static str,
}

const OPS: &[Op] = &[
    Op {
        method: "post",
        path: "/api/v1/write",
        summary: "Prometheus remote-write 1.0 (protobuf + snappy). 204 on success; 400 names the malformed series and stores nothing of the request.",
        auth: "write",
    },
    Op {
        method: "get",
        path: "/api/v1/status/buildinfo",
        summary: "Version information (as Prometheus's API).",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/livez",
        summary: "Liveness: 200 while the process serves.",
        auth: "none",
    },
    Op {
        method: "get",
        path: "/readyz",
        summary: "Readiness: 200 once the storage is open.",
        auth: "none",
    },
    Op {
        method: "get",
        path: "/metrics",
        summary: "The server's own metrics, Prometheus text format.",
        auth: "none",
    },
    Op {
        method: "get",
        path: "/",
        summary: "The dashboard (HTML; its files are under /ui/).",
        auth: "none",
    },
    Op {
        method: "get",
        path: "/api/openapi.json",
        summary: "This document.",
        auth: "none",
    },
    Op {
        method: "get",
        path: "/api/v1/render",
        summary: "A PromQL range query drawn as an image: query, start, end (RFC 3339, Unix seconds or now-6h), step, width, height, format=png|svg, title, unit, threshold (repeatable), min, max, legend ({{label}} template).",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/dashboard/query_range",
        summary: "A PromQL range query for charts: at most one bucket per pixel (width) per series, each with its min and max; columnar JSON (t, series[].min/max/stats), or with format=binary a JSON header and little-endian f32 columns (application/octet-stream; the dashboard's format).",
        auth: "read",
    },
    Op {
        method: "post",
        path: "/api/v1/dashboard/query_batch",
        summary: "Several chart queries in one request, body {queries: [{query, start, end, step, width, legend}]} (at most 100; each as /api/v1/dashboard/query_range takes it): evaluated a few at a time and streamed as each is ready (application/x-osprey-chart-batch: OSB1, then per query its index, HTTP status and length as u32 little-endian and its binary chart answer or JSON error). 400 names the query and parameter at fault.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/dashboards",
        summary: "List dashboards (uid, title, tags, version, provisioned), by title.",
        auth: "read",
    },
    Op {
        method: "post",
        path: "/api/v1/dashboards",
        summary: "Create or import a dashboard (Grafana-model subset, or {dashboard, overwrite}); 400 names the bad field, 409 if the uid exists without overwrite.",
        auth: "admin",
    },
    Op {
        method: "get",
        path: "/api/v1/dashboards/{uid}",
        summary: "Export a dashboard: {dashboard, meta}.",
        auth: "read",
    },
    Op {
        method: "put",
        path: "/api/v1/dashboards/{uid}",
        summary: "Replace a dashboard; 409 for provisioned ones or a stale version.",
        auth: "admin",
    },
    Op {
        method: "delete",
        path: "/api/v1/dashboards/{uid}",
        summary: "Delete a stored dashboard.",
        auth: "admin",
    },
    Op {
        method: "get",
        path: "/api/v1/dashboards/{uid}/panels/{id}/render",
        summary: "A saved panel's queries drawn as PNG/SVG (render parameters; var-<name>=value).",
        auth: "read",
    },
    Op {
        method: "post",
        path: "/api/v1/login",
        summary: "Log in with {user, password} or {token}; sets the HttpOnly session cookie.",
        auth: "none",
    },
    Op {
        method: "post",
        path: "/api/v1/logout",
        summary: "End the cookie's session.",
        auth: "none",
    },
    Op {
        method: "get",
        path: "/api/v1/whoami",
        summary: "The caller's name and role (null without a session when one is needed), and whether the server requires authentication.",
        auth: "none",
    },
    Op {
        method: "get",
        path: "/api/v1/query",
        summary: "PromQL instant query (query, time, timeout); Prometheus's envelope and error types.",
        auth: "read",
    },
    Op {
        method: "post",
        path: "/api/v1/query",
        summary: "PromQL instant query with a form body.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/query_range",
        summary: "PromQL range query (query, start, end, step, timeout).",
        auth: "read",
    },
    Op {
        method: "post",
        path: "/api/v1/query_range",
        summary: "PromQL range query with a form body.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/series",
        summary: "Series matching match[] selectors between start and end.",
        auth: "read",
    },
    Op {
        method: "post",
        path: "/api/v1/series",
        summary: "As GET, with the parameters in a form body (long selectors).",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/labels",
        summary: "Label names (optionally of series matching match[]).",
        auth: "read",
    },
    Op {
        method: "post",
        path: "/api/v1/labels",
        summary: "As GET, with the parameters in a form body.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/label/{name}/values",
        summary: "Values of one label.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/metric-export-schema/",
        summary: "Heapster: the metric catalogue, common and pod labels.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/metric-export",
        summary: "Heapster: latest metrics of every entity with labels.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/model/metrics/",
        summary: "Heapster model: cluster metric names.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/model/metrics/{metric}",
        summary: "Heapster model: a cluster metric over time (start, end: RFC 3339).",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/model/nodes/",
        summary: "Heapster model: node names.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/model/nodes/{node}/metrics/{metric}",
        summary: "Heapster model: a node metric over time.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/model/nodes/{node}/freecontainers/",
        summary: "Heapster model: system containers of a node.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/model/namespaces/",
        summary: "Heapster model: namespace names.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/model/namespaces/{namespace}/pods/",
        summary: "Heapster model: pods of a namespace.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/model/namespaces/{namespace}/pods/{pod}/containers/",
        summary: "Heapster model: containers of a pod.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/model/namespaces/{namespace}/pod-list/{pods}/metrics/{metric}",
        summary: "Heapster model: one metric for several pods at once.",
        auth: "read",
    },
    Op {
        method: "post",
        path: "/loki/api/v1/push",
        summary: "Loki push (JSON, or protobuf + snappy). Optional X-Osprey-Batch: <source>/<sequence> makes retries exactly-once. 204 once committed (searchable); 400 names the problem and stores nothing.",
        auth: "write",
    },
    Op {
        method: "get",
        path: "/api/v1/logs/search",
        summary: "Log search (query, start, end, limit, cursor, direction): newest first, cursor paging.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/logs/histogram",
        summary: "Matching log lines per time bucket (query, start, end, step).",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/logs/tail",
        summary: "New matching log lines as Server-Sent Events (query).",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/loki/api/v1/query_range",
        summary: "Loki log query (LogQL subset: selector and line filters), Loki's JSON.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/loki/api/v1/query",
        summary: "Loki instant log query (query, time = end of the hour looked back, inclusive; limit, direction): the matching lines as Loki's streams result. Metric queries are refused with 400.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/loki/api/v1/series",
        summary: "Loki series: label sets of the log streams any match[] stream selector selects (none: every stream) in the partitions overlapping start–end (default the last 6 h).",
        auth: "read",
    },
    Op {
        method: "post",
        path: "/loki/api/v1/series",
        summary: "Loki series with the parameters in a form body.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/loki/api/v1/labels",
        summary: "Loki: log stream label names.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/loki/api/v1/label/{name}/values",
        summary: "Loki: values of one log stream label.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/loki/api/v1/index/stats",
        summary: "Loki index stats: {streams, chunks, entries, bytes} of the lines the stream selector query (no line filters) selects in start–end (default the last hour; end inclusive), not wrapped in status/data. A chunk is a stream's lines in one index segment. 400 names a bad parameter.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/alerting/rules",
        summary: "Alert rules with their state, health, last evaluation and alerts.",
        auth: "read",
    },
    Op {
        method: "post",
        path: "/api/v1/alerting/rules",
        summary: "Create a rule (JSON: name, condition{kind: threshold|rate_of_change|absence|group_aggregate|baseline|host_comparison|promql, …}, for, keep_firing_for, labels, annotations, channels). 201; 400 names the problem.",
        auth: "admin",
    },
    Op {
        method: "post",
        path: "/api/v1/alerting/rules/preview",
        summary: "A rule (as POST /api/v1/alerting/rules takes it, plus optional range, end, step, width) replayed over history without saving: its query's chart (as /api/v1/dashboard/query_range), the threshold or learned band, and the intervals it would have been pending or firing (the engine's state machine at every step). 400 names the field at fault.",
        auth: "admin",
    },
    Op {
        method: "get",
        path: "/api/v1/alerting/rules/{id}",
        summary: "One rule with its state.",
        auth: "read",
    },
    Op {
        method: "put",
        path: "/api/v1/alerting/rules/{id}",
        summary: "Replace a rule created through the API (rules from rule files are read-only).",
        auth: "admin",
    },
    Op {
        method: "delete",
        path: "/api/v1/alerting/rules/{id}",
        summary: "Delete a rule; its firing alerts resolve (and are notified as resolved).",
        auth: "admin",
    },
    Op {
        method: "get",
        path: "/api/v1/alerting/channels",
        summary: "Notification channels (email, webhook, alertmanager); secrets redacted.",
        auth: "read",
    },
    Op {
        method: "post",
        path: "/api/v1/alerting/channels",
        summary: "Create a channel. 201; 400 names the problem.",
        auth: "admin",
    },
    Op {
        method: "get",
        path: "/api/v1/alerting/channels/{id}",
        summary: "One channel.",
        auth: "read",
    },
    Op {
        method: "put",
        path: "/api/v1/alerting/channels/{id}",
        summary: "Replace a channel created through the API.",
        auth: "admin",
    },
    Op {
        method: "delete",
        path: "/api/v1/alerting/channels/{id}",
        summary: "Delete a channel no rule names.",
        auth: "admin",
    },
    Op {
        method: "post",
        path: "/api/v1/alerting/channels/{id}/test",
        summary: "Send a test notification now; answers {delivered, attempts, error}.",
        auth: "admin",
    },
    Op {
        method: "get",
        path: "/api/v1/alerting/silences",
        summary: "Silences with their state (pending, active, expired).",
        auth: "read",
    },
    Op {
        method: "post",
        path: "/api/v1/alerting/silences",
        summary: "Create a silence (matchers, starts_at, ends_at, created_by, comment). 201.",
        auth: "admin",
    },
    Op {
        method: "get",
        path: "/api/v1/alerting/silences/{id}",
        summary: "One silence.",
        auth: "read",
    },
    Op {
        method: "put",
        path: "/api/v1/alerting/silences/{id}",
        summary: "Change a silence.",
        auth: "admin",
    },
    Op {
        method: "delete",
        path: "/api/v1/alerting/silences/{id}",
        summary: "Expire a silence now.",
        auth: "admin",
    },
    Op {
        method: "get",
        path: "/api/v1/alerting/history",
        summary: "Alert state changes and notification deliveries/failures, newest first (rule, since, limit).",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/rules",
        summary: "Prometheus-compatible rule groups with their alerts.",
        auth: "read",
    },
    Op {
        method: "get",
        path: "/api/v1/alerts",
        summary: "Prometheus-compatible list of pending and firing alerts.",
        auth: "read",
    },
];

/// The document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for op in OPS {
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        let security = if op.auth == "none" {
            json!([])
        } else {
            json!([{ "bearer": [] }])
        };
        entry[op.method] = json!({
            "summary": op.summary,
            "security": security,
            "x-osprey-role": op.auth,
            "responses": {
                "200": { "description": "success" },
                "400": { "description": "invalid input; JSON body {status, errorType, error} names the problem" },
                "401": { "description": "missing or invalid bearer token (when tokens are configured)" },
                "403": { "description": "the token's role does not allow this" }
            }
        });
    }
    if let Some(get) = paths
        .get_mut("/api/v1/dashboard/query_range")
        .and_then(|p| p.get_mut("get"))
    {
        chart_query_details(get);
    }
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Osprey", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Container monitoring and logging: ingestion, Heapster-compatible model, Prometheus-compatible queries, log search and the Loki API, alerting." },
        "components": { "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } } },
        "paths": paths,
    })
}

/// The chart query's parameters and its two encodings (see
/// `chart_query::encode_binary` for the binary layout).
fn chart_query_details(op: &mut Value) {
    let param = |name: &str, required: bool, schema: Value, description: &str| {
        json!({"name": name, "in": "query", "required": required, "schema": schema,
               "description": description})
    };
    let string = json!({"type": "string"});
    op["parameters"] = json!([
        param("query", true, string.clone(), "PromQL expression."),
        param(
            "start",
            false,
            string.clone(),
            "RFC 3339, Unix seconds, `now` or `now-<duration>`; default an hour before `end`."
        ),
        param("end", false, string.clone(), "As `start`; default now."),
        param(
            "step",
            false,
            string.clone(),
            "Evaluation step (e.g. `10s`); default 10 s, raised to keep at most 11,000 points per series."
        ),
        param(
            "width",
            false,
            json!({"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}),
            "Buckets wanted (the chart's width in pixels)."
        ),
        param(
            "legend",
            false,
            string,
            "Legend template, e.g. `{{pod}}/{{container}}`."
        ),
        param(
            "format",
            false,
            json!({"type": "string", "enum": ["json", "binary"], "default": "json"}),
            "`json`: {status, data: {start, end, step_ms, bucket_ms, t[], series[{metric, name, min[], max[], stats}]}} with null gaps. \
               `binary`: bytes 0-3 `OSC1`; 4-7 the header length H (u32 little-endian); then H bytes of JSON {start, end, step_ms, bucket_ms, buckets: N, series[{metric, name, stats}]}; \
               zero padding to a multiple of 4; then per series N minima and N maxima as little-endian f32 (NaN: no sample). Bucket i starts at start + i × bucket_ms."
        ),
    ]);
    op["responses"]["200"] = json!({
        "description": "the buckets",
        "content": {
            "application/json": { "schema": { "type": "object" } },
            "application/octet-stream": { "schema": { "type": "string", "format": "binary" } }
        }
    });
}

/// The handler.
pub async fn serve() -> Json<Value> {
    Json(document())
}

/// Every documented `(method, path)`, for tests.
pub fn operations() -> Vec<(&'static str, &'static str)> {
    OPS.iter().map(|o| (o.method, o.path)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn chart_query_documents_both_formats() {
        let doc = super::document();
        let op = &doc["paths"]["/api/v1/dashboard/query_range"]["get"];
        let format = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "format")
            .expect("the format parameter is documented");
        assert_eq!(
            format["schema"]["enum"],
            serde_json::json!(["json", "binary"])
        );
        assert!(format["description"].as_str().unwrap().contains("OSC1"));
        let content = &op["responses"]["200"]["content"];
        assert!(content["application/octet-stream"].is_object());
        assert!(content["application/json"].is_object());
    }
}
