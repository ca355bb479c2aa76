//! Which series or log streams a target gets: PromQL series selectors
//! (`{namespace="prod"}`, `up{job=~"node.*"}`) and LogQL stream selectors
//! (the same `{…}` syntax without a metric name), matched with the
//! storage's [`Matcher`] so `=~` is anchored and a missing label matches
//! as the empty string, as in Prometheus and Loki.

use promql_parser::parser::{self, Expr};

use crate::storage::{Labels, Matcher};

/// Series matching any of several selectors; empty matches everything.
#[derive(Debug, Clone, Default)]
pub struct SelectorSet {
    /// One entry per selector (or `or` branch): all its matchers must hold.
    groups: Vec<Vec<Matcher>>,
}

impl SelectorSet {
    /// Parses PromQL series selectors. Anything but a plain selector
    /// (ranges, offsets, functions) is refused with the reason.
    pub fn parse_series(selectors: &[String]) -> Result<Self, String> {
        Self::parse(selectors, true)
    }

    /// Parses LogQL stream selectors: `{label op "value", …}` only.
    pub fn parse_streams(selectors: &[String]) -> Result<Self, String> {
        Self::parse(selectors, false)
    }

    fn parse(selectors: &[String], allow_name: bool) -> Result<Self, String> {
        let mut groups = Vec::new();
        for text in selectors {
            let bad = |why: String| format!("selector `{text}`: {why}");
            let expr = parser::parse(text).map_err(bad)?;
            let Expr::VectorSelector(vs) = expr else {
                return Err(bad(
                    "only a series selector like {namespace=\"prod\"} or metric_name{label=\"v\"} is allowed"
                        .into(),
                ));
            };
            if vs.offset.is_some() || vs.at.is_some() {
                return Err(bad("offset and @ are not allowed".into()));
            }
            if !allow_name && !text.trim_start().starts_with('{') {
                return Err(bad(
                    "a stream selector is a list of label matchers in braces, e.g. {namespace=\"prod\"}"
                        .into(),
                ));
            }
            let parsed =
                crate::promql::engine::matcher_groups(&vs).map_err(|e| bad(e.to_string()))?;
            groups.extend(parsed);
        }
        Ok(Self { groups })
    }

    /// True when no selector is configured (everything matches).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// True when `labels` match any selector (or none is configured).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_with(|name| labels.get(name))
    }

    /// Like [`SelectorSet::matches`] for labels found by `get`.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.groups.is_empty()
            || self.groups.iter().any(|group| {
                group
                    .iter()
                    .all(|m| m.matches(get(&m.name).unwrap_or_default()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn set(selectors: &[&str]) -> SelectorSet {
        SelectorSet::parse_series(&selectors.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap()
    }

    #[test]
    fn series_match_any_selector_with_prometheus_semantics() {
        let s = set(&[
            r#"{namespace="prod"}"#,
            "container_cpu_usage_seconds_total",
            r#"up{job=~"node.*",instance!=""}"#,
        ]);
        let prod = labels(&[("__name__", "x"), ("namespace", "prod")]);
        let dev = labels(&[("__name__", "x"), ("namespace", "dev")]);
        let cpu = labels(&[("__name__", "container_cpu_usage_seconds_total")]);
        let up_node = labels(&[
            ("__name__", "up"),
            ("job", "node-exporter"),
            ("instance", "a"),
        ]);
        // Anchored regex, and a missing label is "".
        let up_other = labels(&[("__name__", "up"), ("job", "xnode"), ("instance", "a")]);
        let up_no_instance = labels(&[("__name__", "up"), ("job", "node")]);
        assert!(s.matches(&prod));
        assert!(!s.matches(&dev));
        assert!(s.matches(&cpu));
        assert!(s.matches(&up_node));
        assert!(!s.matches(&up_other));
        assert!(!s.matches(&up_no_instance));
        assert!(SelectorSet::default().matches(&dev));
    }

    #[test]
    fn anything_but_a_selector_is_refused_with_the_reason() {
        for bad in [
            "rate(x[5m])",
            "x[5m]",
            "x offset 5m",
            "{",
            r#"{a=~"("}"#,
            "1 + 1",
        ] {
            let err = SelectorSet::parse_series(&[bad.to_string()]).unwrap_err();
            assert!(err.contains(bad), "{bad}: {err}");
        }
        assert!(SelectorSet::parse_streams(&["up".to_string()]).is_err());
        let streams = SelectorSet::parse_streams(&[r#"{namespace="prod"}"#.to_string()]).unwrap();
        assert!(streams.matches_with(|n| (n == "namespace").then_some("prod")));
        assert!(!streams.matches_with(|_| None));
    }
}
