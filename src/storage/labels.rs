//! The series model: a metric name plus a set of labels.
//!
//! A series is identified by its [`Labels`]: `(name, value)` pairs sorted by name, without
//! duplicates, including the metric name under [`METRIC_NAME`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// The label name that holds the metric name, as in Prometheus.
pub const METRIC_NAME: &str = "__name__";

/// One `(name, value)` pair of a series identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Label {
    /// Label name, `[a-zA-Z_][a-zA-Z0-9_]*`.
    pub name: String,
    /// Label value, any non-empty UTF-8 string.
    pub value: String,
}

/// The identity of a series: labels sorted by name, names unique.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Builds a label set from pairs in any order; sorts them by name.
    ///
    /// Duplicates and invalid names are not rejected here but by [`Labels::validate`], so that
    /// a bad batch can be reported with its position.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .collect();
        v.sort();
        Labels(v)
    }

    /// Builds a label set from labels that are already sorted by name (as read from disk).
    pub(crate) fn from_sorted(v: Vec<Label>) -> Self {
        Labels(v)
    }

    /// The labels, sorted by name.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// Iterates over `(name, value)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|l| (l.name.as_str(), l.value.as_str()))
    }

    /// The value of the label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Number of label pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps only the labels named in `names` (used for `sum by (...)`).
    pub fn keep_only(&self, names: &[&str]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| names.contains(&l.name.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// Checks the rules of the remote-write spec: `__name__` present, names valid and
    /// strictly increasing (sorted, unique), values non-empty.
    pub fn validate(&self) -> Result<(), String> {
        validate_pairs(self.metric_name(), self.iter())
    }

    /// The labels as a borrowed view (allocates the pairs).
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.iter().collect()
    }
}

/// A borrowed label set: `(name, value)` pairs pointing into a decoded request, sorted by
/// name once validated. The ingest path looks series up and appends through it, so a known
/// series costs no `String`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LabelsRef<'a>(&'a [(&'a str, &'a str)]);

impl<'a> LabelsRef<'a> {
    /// A view of `pairs` (expected sorted by name; see [`LabelsRef::validate`]).
    pub fn new(pairs: &'a [(&'a str, &'a str)]) -> Self {
        LabelsRef(pairs)
    }

    /// Iterates over `(name, value)` pairs in the given order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + 'a {
        self.0.iter().copied()
    }

    /// The value of the label `name`, if present (binary search, as [`Labels::get`]).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| self.0[i].1)
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&'a str> {
        self.get(METRIC_NAME)
    }

    /// Number of label pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The same rules as [`Labels::validate`].
    pub fn validate(&self) -> Result<(), String> {
        validate_pairs(self.metric_name(), self.iter())
    }

    /// An owned copy (the pairs as given; validate first).
    pub fn to_labels(&self) -> Labels {
        Labels::from_sorted(
            self.iter()
                .map(|(n, v)| Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
        )
    }
}

impl fmt::Display for LabelsRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        display(f, self.metric_name(), self.iter())
    }
}

/// The rules of [`Labels::validate`] over pairs in their given order.
fn validate_pairs<'a>(
    metric_name: Option<&str>,
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), String> {
    let Some(metric_name) = metric_name else {
        return Err(format!("missing {METRIC_NAME} label"));
    };
    let mut previous: Option<&str> = None;
    for (name, value) in pairs {
        if !valid_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
        if value.is_empty() {
            return Err(format!("empty value for label {name:?}"));
        }
        if previous.is_some_and(|p| p >= name) {
            return Err(format!("labels not sorted or duplicated at {name:?}"));
        }
        previous = Some(name);
    }
    if !valid_metric_name(metric_name) {
        return Err(format!("invalid metric name {metric_name:?}"));
    }
    Ok(())
}

fn display<'a>(
    f: &mut fmt::Formatter<'_>,
    metric_name: Option<&str>,
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> fmt::Result {
    write!(f, "{}{{", metric_name.unwrap_or(""))?;
    let mut first = true;
    for (name, value) in pairs.filter(|(n, _)| *n != METRIC_NAME) {
        if !first {
            write!(f, ", ")?;
        }
        first = false;
        write!(f, "{name}={value:?}")?;
    }
    write!(f, "}}")
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        display(f, self.metric_name(), self.iter())
    }
}

fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pairs_sorts_and_get_finds() {
        let l = Labels::from_pairs([("pod", "a"), (METRIC_NAME, "up"), ("ns", "x")]);
        let names: Vec<_> = l.iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec![METRIC_NAME, "ns", "pod"]);
        assert_eq!(l.get("ns"), Some("x"));
        assert_eq!(l.get("zz"), None);
        assert_eq!(l.to_string(), "up{ns=\"x\", pod=\"a\"}");
    }

    #[test]
    fn validate_rejects_bad_sets() {
        assert!(Labels::from_pairs([("a", "b")]).validate().is_err());
        assert!(
            Labels::from_pairs([(METRIC_NAME, "x"), ("a", "1"), ("a", "2")])
                .validate()
                .is_err()
        );
        assert!(
            Labels::from_pairs([(METRIC_NAME, "x"), ("1a", "1")])
                .validate()
                .is_err()
        );
        assert!(
            Labels::from_pairs([(METRIC_NAME, "x"), ("a", "")])
                .validate()
                .is_err()
        );
        assert!(
            Labels::from_pairs([(METRIC_NAME, "bad-name")])
                .validate()
                .is_err()
        );
        assert!(
            Labels::from_pairs([(METRIC_NAME, "ok:name"), ("a", "1")])
                .validate()
                .is_ok()
        );
    }
}
