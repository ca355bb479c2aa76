//! A log stream's label set, in the names the contract fixes (`node`,
//! `namespace`, `pod`, `pod_uid`, `container`, `image`, `stream`,
//! `filename`, `job`, `label_<pod label>`), rendered once per file so
//! batching a line costs no allocation.

use std::fmt::Write;
use std::sync::Arc;

/// Sorted, de-duplicated label pairs with no empty values, and their Loki
/// rendering `{a="b", c="d"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamLabels {
    pairs: Vec<(String, String)>,
    rendered: String,
}

impl StreamLabels {
    /// Builds a label set: empty values are left out, names sorted, the
    /// first of duplicate names kept.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Arc<Self> {
        let mut pairs: Vec<(String, String)> =
            pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|b, a| a.0 == b.0);
        let mut rendered = String::from("{");
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                rendered.push_str(", ");
            }
            let _ = write!(rendered, "{k}=\"");
            for c in v.chars() {
                match c {
                    '\\' => rendered.push_str("\\\\"),
                    '"' => rendered.push_str("\\\""),
                    '\n' => rendered.push_str("\\n"),
                    c => rendered.push(c),
                }
            }
            rendered.push('"');
        }
        rendered.push('}');
        Arc::new(Self { pairs, rendered })
    }

    /// The pairs, sorted by name.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `{a="b", c="d"}` (Prometheus/Loki selector syntax, values escaped as
    /// Go strings), as the protobuf push format carries labels.
    pub fn rendered(&self) -> &str {
        &self.rendered
    }
}

/// A label name made of `[a-zA-Z0-9_]` (others become `_`), not starting
/// with a digit: `app.kubernetes.io/name` → `app_kubernetes_io_name`.
pub fn sanitize_label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sorted_escaped_without_empty_values() {
        let l = StreamLabels::new([
            ("pod".to_string(), "web-0".to_string()),
            ("namespace".to_string(), "shop".to_string()),
            ("image".to_string(), String::new()),
            ("filename".to_string(), "/a\"b\\c".to_string()),
        ]);
        assert_eq!(
            l.rendered(),
            r#"{filename="/a\"b\\c", namespace="shop", pod="web-0"}"#
        );
        assert_eq!(l.get("image"), None);
        assert_eq!(l.pairs().len(), 3);
    }

    #[test]
    fn sanitises_names() {
        assert_eq!(
            sanitize_label_name("app.kubernetes.io/name"),
            "app_kubernetes_io_name"
        );
        assert_eq!(sanitize_label_name("1tier"), "_1tier");
        assert_eq!(sanitize_label_name("ok_Name9"), "ok_Name9");
    }
}
