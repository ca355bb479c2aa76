//! The dashboard model: a documented subset of Grafana's dashboard JSON
//! (the "classic" model users share and import). A dashboard is kept as the
//! JSON it was given — fields Osprey does not know are stored and exported
//! untouched — and checked here field by field: a field Osprey uses must
//! have the right shape, and an error names it (`panels[2].gridPos.w`).
//!
//! ## The subset
//! | field | meaning |
//! |---|---|
//! | `uid` | 1–40 characters `[A-Za-z0-9_-]`; generated when absent |
//! | `title` | required, non-empty |
//! | `tags` | list of strings |
//! | `time.from`, `time.to` | `now-6h`, `now`, RFC 3339 or epoch ms |
//! | `refresh` | `""`/`false` (off) or an interval such as `30s` |
//! | `version` | increases on each save (set by the server) |
//! | `templating.list[]` | `name`, `type` (`query`, `custom`, `interval`, `constant`, `textbox`), `query` (PromQL for `query`: `label_values(metric{…}, label)` or `label_values(label)`; comma-separated values for `custom`), `current.value`, `includeAll`, `multi` |
//! | `panels[]` | `id`, `title`, `type` (`graph`, `timeseries`, `singlestat`, `stat`, `text`, `table`, `logs`, `row`; others are kept and shown as unsupported), `gridPos` {`x` 0–23, `y` ≥ 0, `w` 1–24, `h` ≥ 1; 30 px per unit}, `targets[]` {`expr`, `legendFormat`, `refId`}, `fieldConfig.defaults` {`unit`, `min`, `max`, `decimals`, `thresholds` {`mode`, `steps[]` {`value` (null = base), `color`}}}, `options` {`content` (text), `mode` (`markdown`), `graphMode` (`area` = sparkline), `colorMode` (`value`, `background`), `reduceOptions.calcs`, `legend` {`displayMode` (`table`, `list`, `hidden`), `calcs`}, `query` (logs)}, `legend` (old graph: `min`, `max`, `avg`, `current`) |
//! | `rows[]` | the old (schema < 16) layout: each row's `panels[]` with `span` out of 12 are converted to `gridPos` on import |
//!
//! Grafana's import wrapper `{"dashboard": {...}, "overwrite": true}` is
//! accepted too. `id` is dropped (the `uid` identifies a dashboard).

use serde_json::{Map, Value, json};

/// The panel types Osprey draws.
pub const PANEL_TYPES: &[&str] = &[
    "graph",
    "timeseries",
    "singlestat",
    "stat",
    "text",
    "table",
    "logs",
    "row",
];

/// The variable types Osprey evaluates.
pub const VARIABLE_TYPES: &[&str] = &["query", "custom", "interval", "constant", "textbox"];

/// A field that does not fit the model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ModelError {
    /// The JSON path of the field, e.g. `panels[2].gridPos.w`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ModelError {
    ModelError {
        field: field.into(),
        message: message.into(),
    }
}

/// True for a valid dashboard uid.
pub fn valid_uid(uid: &str) -> bool {
    (1..=40).contains(&uid.len())
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a dashboard (or Grafana's import wrapper around one) and returns
/// it normalised: `id` removed, old `rows` turned into `panels` with
/// `gridPos`, panels without an `id` numbered. The `uid` is left as given
/// (possibly absent: the caller assigns one).
pub fn normalise(input: Value) -> Result<Map<String, Value>, ModelError> {
    let mut input = match input {
        Value::Object(m) => m,
        _ => return Err(err("(body)", "a dashboard must be a JSON object")),
    };
    // Grafana's import/save wrapper.
    if let Some(Value::Object(inner)) = input.remove("dashboard") {
        input = inner;
    }
    let mut d = input;
    d.remove("id");
    match d.get("title") {
        Some(Value::String(t)) if !t.trim().is_empty() => {}
        Some(Value::String(_)) => return Err(err("title", "must not be empty")),
        Some(_) => return Err(err("title", "must be a string")),
        None => return Err(err("title", "missing; every dashboard needs a title")),
    }
    if let Some(uid) = d.get("uid") {
        match uid {
            Value::String(u) if valid_uid(u) => {}
            Value::Null => {
                d.remove("uid");
            }
            _ => {
                return Err(err(
                    "uid",
                    "must be 1–40 characters of letters, digits, '-' or '_'",
                ));
            }
        }
    }
    if let Some(tags) = d.get("tags") {
        let ok = tags
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string));
        if !ok {
            return Err(err("tags", "must be a list of strings"));
        }
    }
    if let Some(time) = d.get("time") {
        let Some(t) = time.as_object() else {
            return Err(err("time", "must be an object with from and to"));
        };
        for k in ["from", "to"] {
            match t.get(k) {
                None | Some(Value::String(_)) => {}
                Some(_) => return Err(err(format!("time.{k}"), "must be a string like now-6h")),
            }
        }
    }
    match d.get("refresh") {
        None | Some(Value::String(_)) | Some(Value::Bool(false)) | Some(Value::Null) => {}
        Some(_) => return Err(err("refresh", "must be an interval like 30s, or false")),
    }
    check_templating(&d)?;
    if let Some(rows) = d.remove("rows")
        && !d.contains_key("panels")
    {
        let panels = rows_to_panels(&rows)?;
        d.insert("panels".into(), Value::Array(panels));
    }
    let panels = match d.remove("panels") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(p)) => p,
        Some(_) => return Err(err("panels", "must be a list")),
    };
    let mut next_id = panels
        .iter()
        .filter_map(|p| p.get("id").and_then(Value::as_u64))
        .max()
        .unwrap_or(0)
        + 1;
    let mut out = Vec::with_capacity(panels.len());
    for (i, p) in panels.into_iter().enumerate() {
        let mut p = check_panel(p, &format!("panels[{i}]"))?;
        if !p.get("id").is_some_and(Value::is_u64) {
            p.insert("id".into(), json!(next_id));
            next_id += 1;
        }
        out.push(Value::Object(p));
    }
    d.insert("panels".into(), Value::Array(out));
    Ok(d)
}

fn check_templating(d: &Map<String, Value>) -> Result<(), ModelError> {
    let Some(t) = d.get("templating") else {
        return Ok(());
    };
    let Some(list) = t.get("list") else {
        return Ok(());
    };
    let Some(list) = list.as_array() else {
        return Err(err("templating.list", "must be a list"));
    };
    let mut names = std::collections::HashSet::new();
    for (i, v) in list.iter().enumerate() {
        let at = |f: &str| format!("templating.list[{i}].{f}");
        let Some(v) = v.as_object() else {
            return Err(err(format!("templating.list[{i}]"), "must be an object"));
        };
        let name = match v.get("name") {
            Some(Value::String(n))
                if !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                n
            }
            _ => return Err(err(at("name"), "must be a name of letters, digits or '_'")),
        };
        if !names.insert(name.clone()) {
            return Err(err(at("name"), format!("{name:?} is defined twice")));
        }
        match v.get("type").and_then(Value::as_str) {
            Some(ty) if VARIABLE_TYPES.contains(&ty) => {}
            Some(ty) => {
                return Err(err(
                    at("type"),
                    format!("{ty:?} is not supported; use one of {VARIABLE_TYPES:?}"),
                ));
            }
            None => return Err(err(at("type"), "missing")),
        }
        match v.get("query") {
            None | Some(Value::String(_)) | Some(Value::Null) => {}
            // Grafana 9+ keeps the query as an object {query: "…"}.
            Some(Value::Object(q)) if q.get("query").is_none_or(Value::is_string) => {}
            Some(_) => return Err(err(at("query"), "must be a string")),
        }
    }
    Ok(())
}

fn check_panel(p: Value, at: &str) -> Result<Map<String, Value>, ModelError> {
    let Value::Object(mut p) = p else {
        return Err(err(at, "must be an object"));
    };
    let f = |name: &str| format!("{at}.{name}");
    match p.get("type") {
        Some(Value::String(_)) => {}
        Some(_) => return Err(err(f("type"), "must be a string")),
        None => return Err(err(f("type"), format!("missing; one of {PANEL_TYPES:?}"))),
    }
    match p.get("title") {
        None | Some(Value::String(_)) | Some(Value::Null) => {}
        Some(_) => return Err(err(f("title"), "must be a string")),
    }
    let Some(g) = p.get("gridPos") else {
        return Err(err(
            f("gridPos"),
            "missing; give {x, y, w, h} on the 24-column grid",
        ));
    };
    let Some(g) = g.as_object() else {
        return Err(err(f("gridPos"), "must be an object {x, y, w, h}"));
    };
    let num = |k: &str| -> Result<i64, ModelError> {
        g.get(k)
            .and_then(Value::as_i64)
            .ok_or_else(|| err(f(&format!("gridPos.{k}")), "must be a whole number"))
    };
    let (x, y, w, h) = (num("x")?, num("y")?, num("w")?, num("h")?);
    if !(1..=24).contains(&w) {
        return Err(err(f("gridPos.w"), format!("{w} is not in 1..=24")));
    }
    if !(0..24).contains(&x) || x + w > 24 {
        return Err(err(
            f("gridPos.x"),
            format!("{x} (with w {w}) leaves the 24 columns"),
        ));
    }
    if y < 0 {
        return Err(err(f("gridPos.y"), "must not be negative"));
    }
    if !(1..=200).contains(&h) {
        return Err(err(f("gridPos.h"), format!("{h} is not in 1..=200")));
    }
    if let Some(t) = p.get("targets") {
        let Some(ts) = t.as_array() else {
            return Err(err(f("targets"), "must be a list"));
        };
        for (j, t) in ts.iter().enumerate() {
            let Some(t) = t.as_object() else {
                return Err(err(f(&format!("targets[{j}]")), "must be an object"));
            };
            for k in ["expr", "legendFormat", "refId"] {
                match t.get(k) {
                    None | Some(Value::String(_)) | Some(Value::Null) => {}
                    Some(_) => {
                        return Err(err(f(&format!("targets[{j}].{k}")), "must be a string"));
                    }
                }
            }
        }
    }
    if let Some(fc) = p.get("fieldConfig") {
        check_field_config(fc, &f("fieldConfig"))?;
    }
    if let Some(o) = p.get("options") {
        if !o.is_object() {
            return Err(err(f("options"), "must be an object"));
        }
        if o.get("content").is_some_and(|c| !c.is_string()) {
            return Err(err(f("options.content"), "must be a string"));
        }
    }
    // Collapsed rows carry their panels inside.
    if let Some(inner) = p.remove("panels") {
        let Value::Array(inner) = inner else {
            return Err(err(f("panels"), "must be a list"));
        };
        let checked = inner
            .into_iter()
            .enumerate()
            .map(|(j, q)| check_panel(q, &f(&format!("panels[{j}]"))).map(Value::Object))
            .collect::<Result<Vec<_>, _>>()?;
        p.insert("panels".into(), Value::Array(checked));
    }
    Ok(p)
}

fn check_field_config(fc: &Value, at: &str) -> Result<(), ModelError> {
    let Some(defaults) = fc.get("defaults") else {
        return Ok(());
    };
    let f = |name: &str| format!("{at}.defaults.{name}");
    match defaults.get("unit") {
        None | Some(Value::String(_)) | Some(Value::Null) => {}
        Some(_) => return Err(err(f("unit"), "must be a string such as bytes or percent")),
    }
    for k in ["min", "max", "decimals"] {
        match defaults.get(k) {
            None | Some(Value::Null) | Some(Value::Number(_)) => {}
            Some(_) => return Err(err(f(k), "must be a number")),
        }
    }
    if let Some(t) = defaults.get("thresholds") {
        match t
            .get("mode")
            .and_then(|m| m.as_str().map(Some).unwrap_or(Some("?")))
        {
            None | Some("absolute") | Some("percentage") => {}
            Some(_) => {
                return Err(err(f("thresholds.mode"), "must be absolute or percentage"));
            }
        }
        if let Some(steps) = t.get("steps") {
            let Some(steps) = steps.as_array() else {
                return Err(err(f("thresholds.steps"), "must be a list"));
            };
            for (i, s) in steps.iter().enumerate() {
                match s.get("value") {
                    None | Some(Value::Null) | Some(Value::Number(_)) => {}
                    Some(_) => {
                        return Err(err(
                            f(&format!("thresholds.steps[{i}].value")),
                            "must be a number (or null for the base step)",
                        ));
                    }
                }
                if !s.get("color").is_some_and(Value::is_string) {
                    return Err(err(
                        f(&format!("thresholds.steps[{i}].color")),
                        "must be a colour name or #rrggbb",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Turns the old layout (`rows[]`, each with `height` in pixels and
/// `panels[]` sized by `span` out of 12) into grid panels.
fn rows_to_panels(rows: &Value) -> Result<Vec<Value>, ModelError> {
    let Some(rows) = rows.as_array() else {
        return Err(err("rows", "must be a list"));
    };
    let mut out = Vec::new();
    let mut y = 0i64;
    for (i, row) in rows.iter().enumerate() {
        let h = match row.get("height") {
            Some(Value::String(s)) => s.trim_end_matches("px").parse::<i64>().unwrap_or(250),
            Some(Value::Number(n)) => n.as_i64().unwrap_or(250),
            _ => 250,
        };
        let h = (h / 30).clamp(3, 200);
        let Some(panels) = row.get("panels").and_then(Value::as_array) else {
            return Err(err(format!("rows[{i}].panels"), "must be a list"));
        };
        let mut x = 0i64;
        for p in panels {
            let Some(mut p) = p.as_object().cloned() else {
                return Err(err(format!("rows[{i}].panels"), "must hold objects"));
            };
            let span = p.get("span").and_then(Value::as_f64).unwrap_or(12.0);
            let w = ((span * 2.0).round() as i64).clamp(1, 24);
            if x + w > 24 {
                x = 0;
                y += h;
            }
            p.insert("gridPos".into(), json!({"x": x, "y": y, "w": w, "h": h}));
            p.remove("span");
            x += w;
            out.push(Value::Object(p));
        }
        y += h;
    }
    Ok(out)
}

/// The dashboards built into Osprey, provisioned at start (read-only):
/// `(uid, JSON)`.
pub const BUILTIN: &[(&str, &str)] = &[
    ("osprey-cluster", include_str!("../builtin/cluster.json")),
    ("osprey-pods", include_str!("../builtin/pods.json")),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn field(v: Value) -> String {
        normalise(v).unwrap_err().field
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field(json!([])), "(body)");
        assert_eq!(field(json!({})), "title");
        assert_eq!(field(json!({"title": "x", "uid": "a b"})), "uid");
        assert_eq!(field(json!({"title": "x", "tags": [1]})), "tags");
        assert_eq!(
            field(json!({"title": "x", "panels": [{"type": "graph"}]})),
            "panels[0].gridPos"
        );
        assert_eq!(
            field(
                json!({"title": "x", "panels": [{"type": "graph", "gridPos": {"x": 0, "y": 0, "w": 30, "h": 8}}]})
            ),
            "panels[0].gridPos.w"
        );
        assert_eq!(
            field(
                json!({"title": "x", "panels": [{"type": "graph", "gridPos": {"x": 20, "y": 0, "w": 8, "h": 8}}]})
            ),
            "panels[0].gridPos.x"
        );
        assert_eq!(
            field(
                json!({"title": "x", "panels": [{"type": "graph", "gridPos": {"x": 0, "y": 0, "w": 8, "h": 8}, "targets": [{"expr": 5}]}]})
            ),
            "panels[0].targets[0].expr"
        );
        assert_eq!(
            field(
                json!({"title": "x", "panels": [{"type": "stat", "gridPos": {"x": 0, "y": 0, "w": 8, "h": 8},
                "fieldConfig": {"defaults": {"thresholds": {"steps": [{"value": "80", "color": "red"}]}}}}]})
            ),
            "panels[0].fieldConfig.defaults.thresholds.steps[0].value"
        );
        assert_eq!(
            field(json!({"title": "x", "templating": {"list": [{"name": "a", "type": "adhoc"}]}})),
            "templating.list[0].type"
        );
        assert_eq!(
            field(
                json!({"title": "x", "templating": {"list": [{"name": "a", "type": "custom"}, {"name": "a", "type": "custom"}]}})
            ),
            "templating.list[1].name"
        );
    }

    #[test]
    fn unknown_fields_are_kept_and_ids_assigned() {
        let d = normalise(json!({"dashboard": {"id": 7, "title": "t", "schemaVersion": 39, "__inputs": [],
            "panels": [{"type": "piechart", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8}, "pieType": "donut"},
                       {"id": 5, "type": "graph", "gridPos": {"x": 12, "y": 0, "w": 12, "h": 8}}]}, "overwrite": true}))
            .unwrap();
        assert!(d.get("id").is_none());
        assert_eq!(d["schemaVersion"], 39);
        assert_eq!(d["panels"][0]["pieType"], "donut");
        assert_eq!(d["panels"][0]["id"], 6);
        assert_eq!(d["panels"][1]["id"], 5);
    }

    #[test]
    fn old_rows_become_grid_panels() {
        let d = normalise(json!({"title": "heapster", "rows": [
            {"height": "300px", "panels": [{"type": "graph", "span": 6}, {"type": "graph", "span": 6}]},
            {"panels": [{"type": "singlestat", "span": 4}]}]}))
        .unwrap();
        let g: Vec<&Value> = d["panels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["gridPos"])
            .collect();
        assert_eq!(g[0], &json!({"x": 0, "y": 0, "w": 12, "h": 10}));
        assert_eq!(g[1], &json!({"x": 12, "y": 0, "w": 12, "h": 10}));
        assert_eq!(g[2], &json!({"x": 0, "y": 10, "w": 8, "h": 8}));
    }

    #[test]
    fn builtins_are_valid() {
        for (uid, text) in BUILTIN {
            let v: Value = serde_json::from_str(text).unwrap();
            let d = normalise(v).unwrap_or_else(|e| panic!("{uid}: {e}"));
            assert_eq!(d["uid"], *uid);
            assert!(d["panels"].as_array().unwrap().len() >= 4);
        }
    }
}
