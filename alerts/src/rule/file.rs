//! Prometheus rule files (`groups:` of `alert`/`expr`/`for`/
//! `keep_firing_for`/`labels`/`annotations`), loaded as PromQL rules.
//! Recording rules are refused with a clear error rather than ignored.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::promql::PromqlCondition;
use super::{Condition, RuleError, RuleSpec};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    query_offset: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    rules: Vec<FileRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRule {
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    record: Option<String>,
    expr: String,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Parses a Prometheus duration (`5m`, `1h30m`, `90s`, `1d`, `2w`, `1y`).
pub fn parse_prom_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let mut total: u64 = 0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit_ms: u64 = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 604_800_000,
            'y' => 31_536_000_000,
            _ => return Err(format!("{s:?} is not a duration (e.g. 5m, 1h30m)")),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a duration (e.g. 5m, 1h30m)"))?;
        num.clear();
        total = total.saturating_add(n.saturating_mul(unit_ms));
    }
    if !num.is_empty() {
        if total == 0 && num.chars().all(|c| c == '0') {
            return Ok(Duration::ZERO);
        }
        return Err(format!("{s:?} lacks a unit (e.g. 5m)"));
    }
    Ok(Duration::from_millis(total))
}

/// Parses the text of a rule file; `origin` names it in rule ids and errors.
pub fn parse_rule_file(text: &str, origin: &str) -> Result<Vec<RuleSpec>, RuleError> {
    let file: RuleFile =
        serde_yaml_ng::from_str(text).map_err(|e| RuleError::Invalid(format!("{origin}: {e}")))?;
    let mut out = Vec::new();
    for g in file.groups {
        let bad = |i: usize, m: String| {
            RuleError::Invalid(format!("{origin}: group {:?}, rule {}: {m}", g.name, i + 1))
        };
        if g.limit.is_some() || g.query_offset.is_some() {
            tracing::warn!(origin, group = %g.name, "`limit` and `query_offset` are not supported and are ignored");
        }
        let interval = g
            .interval
            .as_deref()
            .map(parse_prom_duration)
            .transpose()
            .map_err(|e| {
                RuleError::Invalid(format!("{origin}: group {:?}: interval: {e}", g.name))
            })?;
        for (i, r) in g.rules.into_iter().enumerate() {
            let Some(alert) = r.alert else {
                return Err(bad(
                    i,
                    format!(
                        "recording rule {:?} is not supported (only alerting rules)",
                        r.record.unwrap_or_default()
                    ),
                ));
            };
            let dur = |d: Option<String>| {
                d.as_deref()
                    .map(parse_prom_duration)
                    .transpose()
                    .map(Option::unwrap_or_default)
            };
            let mut labels = g.labels.clone();
            labels.extend(r.labels);
            let spec = RuleSpec {
                id: format!("{}.{}.{}", sanitize(origin), sanitize(&g.name), i + 1),
                name: alert,
                description: String::new(),
                group: g.name.clone(),
                condition: Condition::Promql(PromqlCondition { expr: r.expr }),
                interval,
                for_: dur(r.for_).map_err(|e| bad(i, format!("for: {e}")))?,
                keep_firing_for: dur(r.keep_firing_for)
                    .map_err(|e| bad(i, format!("keep_firing_for: {e}")))?,
                labels,
                annotations: r.annotations,
                channels: Vec::new(),
                enabled: true,
                origin: origin.to_string(),
            };
            spec.validate(None).map_err(|e| bad(i, e.to_string()))?;
            out.push(spec);
        }
    }
    Ok(out)
}

/// Reads and parses a rule file.
pub fn load_rule_file(path: &Path) -> Result<Vec<RuleSpec>, RuleError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| RuleError::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rules".into());
    parse_rule_file(&text, &name).map(|mut rules| {
        for r in &mut rules {
            r.origin = path.display().to_string();
        }
        rules
    })
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_prometheus_form() {
        assert_eq!(parse_prom_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_prom_duration("1h30m").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_prom_duration("250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_prom_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_prom_duration("5").is_err());
        assert!(parse_prom_duration("5x").is_err());
    }
}
