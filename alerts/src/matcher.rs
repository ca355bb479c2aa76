//! Label matchers (`name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`),
//! used by rule scopes, routes and silences. Regexes are anchored, and a
//! missing label matches as the empty string, as in Alertmanager.

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::labels::LabelSet;

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (anchored)
    Regex,
    /// `!~` (anchored)
    NotRegex,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher. In JSON, TOML and YAML it is written as a string,
/// e.g. `"namespace=~\"prod|staging\""` (quotes around the value optional).
#[derive(Clone)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or pattern.
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.name,
            self.op.as_str(),
            serde_json::Value::String(self.value.clone())
        )
    }
}

/// A matcher that does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid matcher {input:?}: {why}")]
pub struct MatcherError {
    /// What was given.
    pub input: String,
    /// What is wrong with it.
    pub why: String,
}

impl Matcher {
    /// Builds a matcher, compiling regexes anchored.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, MatcherError> {
        let err = |why: String| MatcherError {
            input: format!("{name}{}{value}", op.as_str()),
            why,
        };
        if name.is_empty()
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || name.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(err(format!("{name:?} is not a valid label name")));
        }
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| err(format!("bad regular expression: {e}")))?,
            ),
            _ => None,
        };
        Ok(Self {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// Parses `name op value`, the value optionally in double quotes.
    pub fn parse(s: &str) -> Result<Self, MatcherError> {
        let s = s.trim();
        let err = |why: &str| MatcherError {
            input: s.to_string(),
            why: why.to_string(),
        };
        let pos = s
            .find(['=', '!'])
            .ok_or_else(|| err("expected name=value, name!=value, name=~re or name!~re"))?;
        let name = s[..pos].trim();
        let rest = &s[pos..];
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            (MatchOp::Regex, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (MatchOp::Equal, v)
        } else {
            return Err(err("expected =, !=, =~ or !~ after the label name"));
        };
        let value = value.trim();
        let value = if value.starts_with('"') {
            serde_json::from_str::<String>(value)
                .map_err(|_| err("the quoted value is not a valid string"))?
        } else {
            value.to_string()
        };
        Self::new(name, op, &value)
    }

    /// Whether `labels` satisfy the matcher (a missing label is "").
    pub fn matches(&self, labels: &LabelSet) -> bool {
        let v = labels.get(&self.name).map(String::as_str).unwrap_or("");
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

/// Whether every matcher accepts `labels` (an empty list accepts all).
pub fn matches_all(matchers: &[Matcher], labels: &LabelSet) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

impl Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Matcher::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_each_operator_and_anchors_regexes() {
        let l = set(&[("ns", "prod"), ("pod", "web-1")]);
        assert!(Matcher::parse("ns=prod").unwrap().matches(&l));
        assert!(Matcher::parse("ns=\"prod\"").unwrap().matches(&l));
        assert!(!Matcher::parse("ns!=prod").unwrap().matches(&l));
        assert!(Matcher::parse("pod=~\"web-.*\"").unwrap().matches(&l));
        assert!(!Matcher::parse("pod=~web").unwrap().matches(&l), "anchored");
        assert!(Matcher::parse("pod!~db.*").unwrap().matches(&l));
        assert!(Matcher::parse("missing=\"\"").unwrap().matches(&l));
        assert!(Matcher::parse("nolabel").is_err());
        assert!(Matcher::parse("a=~\"(\"").is_err());
        assert!(Matcher::parse("9a=b").is_err());
        let m = Matcher::parse("pod=~\"web-.*\"").unwrap();
        let back: Matcher = serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
