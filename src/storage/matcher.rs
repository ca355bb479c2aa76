//! Label matchers `=`, `!=`, `=~`, `!~` with Prometheus semantics: regexes are fully
//! anchored and a missing label matches as the empty string.

use regex::Regex;

use super::error::{Result, StorageError};

/// The comparison a [`Matcher`] performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `name="value"`
    Equal,
    /// `name!="value"`
    NotEqual,
    /// `name=~"regex"`
    RegexMatch,
    /// `name!~"regex"`
    RegexNoMatch,
}

/// Selects series by one label.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name the matcher looks at.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// Literal value or regex source.
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher; regexes are anchored as `^(?:value)$`.
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                Some(Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                    StorageError::InvalidMatcher {
                        name: name.clone(),
                        reason: e.to_string(),
                    }
                })?)
            }
            _ => None,
        };
        Ok(Matcher {
            name,
            op,
            value,
            regex,
        })
    }

    /// `name="value"`; never fails.
    pub fn eq(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher::new(MatchOp::Equal, name, value).expect("equality matchers always build")
    }

    /// `name!="value"`; never fails.
    pub fn ne(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher::new(MatchOp::NotEqual, name, value).expect("inequality matchers always build")
    }

    /// `name=~"regex"`.
    pub fn re(name: impl Into<String>, regex: impl Into<String>) -> Result<Self> {
        Matcher::new(MatchOp::RegexMatch, name, regex)
    }

    /// `name!~"regex"`.
    pub fn nre(name: impl Into<String>, regex: impl Into<String>) -> Result<Self> {
        Matcher::new(MatchOp::RegexNoMatch, name, regex)
    }

    /// True when a label value (empty string for a missing label) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::RegexMatch => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::RegexNoMatch => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// True when the matcher accepts series that lack the label entirely.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_are_anchored() {
        let m = Matcher::re("pod", "web-.*").unwrap();
        assert!(m.matches("web-1"));
        assert!(!m.matches("xweb-1"));
        let m = Matcher::re("pod", "web").unwrap();
        assert!(!m.matches("web-1"));
        let m = Matcher::nre("pod", "a|b").unwrap();
        assert!(m.matches("c") && !m.matches("a") && m.matches("ab"));
        assert!(m.matches_empty());
        assert!(!Matcher::eq("a", "x").matches_empty());
        assert!(Matcher::ne("a", "x").matches_empty());
    }

    #[test]
    fn bad_regex_is_a_clear_error() {
        let e = Matcher::re("pod", "(").unwrap_err();
        assert!(e.to_string().contains("pod"), "{e}");
    }
}
