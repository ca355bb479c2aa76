//! The LogQL subset Osprey answers on Loki's query endpoints:
//! a stream selector `{name="v", name2=~"re", name3!="v", name4!~"re"}`
//! followed by line filters `|= "text"`, `!= "text"`, `|~ "re"`, `!~ "re"`.
//!
//! The selector is matched against each partition's stream table (regexes
//! are anchored, as in Loki) and becomes a set of stream ids. Line filters are applied to each candidate's
//! message exactly as Loki does (case-sensitive substrings, unanchored
//! regexes); a `|=` needle's inner whole words also narrow the candidates
//! through the message index first, since they must appear as tokens.

use tantivy::Term;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;

use super::query::StreamFilter;
use super::schema::LogSchema;

/// A label matcher's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~`
    Re,
    /// `!~`
    NotRe,
}

/// One label matcher of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Value or regex.
    pub value: String,
}

/// A line filter.
#[derive(Debug, Clone)]
pub enum LineFilter {
    /// `|= "text"`
    Contains(String),
    /// `!= "text"`
    NotContains(String),
    /// `|~ "re"`
    Matches(regex::Regex),
    /// `!~ "re"`
    NotMatches(regex::Regex),
}

impl LineFilter {
    /// Whether `line` passes.
    pub fn passes(&self, line: &str) -> bool {
        match self {
            Self::Contains(s) => line.contains(s.as_str()),
            Self::NotContains(s) => !line.contains(s.as_str()),
            Self::Matches(r) => r.is_match(line),
            Self::NotMatches(r) => !r.is_match(line),
        }
    }
}

/// A parsed LogQL log query.
#[derive(Debug, Clone)]
pub struct LogQuery {
    /// The stream selector.
    pub matchers: Vec<Matcher>,
    /// The line filters, in order.
    pub filters: Vec<LineFilter>,
}

impl LogQuery {
    /// Parses the subset; `Err` names the problem and where.
    pub fn parse(s: &str) -> Result<Self, String> {
        let trimmed = s.trim_start();
        if !trimmed.starts_with('{') {
            let word: String = trimmed
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                return Err(format!(
                    "metric queries ({word}(…)) are not supported: Osprey answers log queries `{{label=\"value\"}} |= \"text\"`"
                ));
            }
        }
        let mut lx = Lexer::new(s);
        let matchers = lx.selector()?;
        if matchers.is_empty() {
            return Err("the stream selector needs at least one matcher".into());
        }
        if !matchers.iter().any(|m| match m.op {
            MatchOp::Eq => !m.value.is_empty(),
            MatchOp::Re => !regex_matches_empty(&m.value),
            _ => false,
        }) {
            return Err(
                "the stream selector needs at least one matcher that does not match the empty value (as in Loki)"
                    .into(),
            );
        }
        for m in &matchers {
            if matches!(m.op, MatchOp::Re | MatchOp::NotRe) {
                regex::Regex::new(&format!("^(?:{})$", m.value))
                    .map_err(|e| format!("label {} regex {:?}: {e}", m.name, m.value))?;
            }
        }
        let mut filters = Vec::new();
        loop {
            lx.skip_ws();
            if lx.at_end() {
                break;
            }
            let op = lx.filter_op()?;
            lx.skip_ws();
            let value = lx.string()?;
            filters.push(match op {
                "|=" => LineFilter::Contains(value),
                "!=" => LineFilter::NotContains(value),
                "|~" | "!~" => {
                    let re = regex::Regex::new(&value)
                        .map_err(|e| format!("line filter {op} {value:?}: {e}"))?;
                    if op == "|~" {
                        LineFilter::Matches(re)
                    } else {
                        LineFilter::NotMatches(re)
                    }
                }
                _ => unreachable!("filter_op returns only these"),
            });
        }
        Ok(Self { matchers, filters })
    }

    /// Whether a line passes every filter.
    pub fn passes(&self, line: &str) -> bool {
        self.filters.iter().all(|f| f.passes(line))
    }

    /// Whether a stream with `labels` matches the selector (as Loki: a
    /// missing label is the empty value, regexes are anchored).
    pub fn selects(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.compiled().selects(labels)
    }

    /// The selector as a stream filter (resolved per partition through its
    /// stream table).
    pub fn stream_filter(&self) -> StreamFilter {
        let sel = self.compiled();
        StreamFilter::new(format!("{:?}", self.matchers), move |l| sel.selects(l))
    }

    fn compiled(&self) -> Selector {
        Selector(
            self.matchers
                .iter()
                .map(|m| {
                    let re = match m.op {
                        MatchOp::Re | MatchOp::NotRe => {
                            // Validated in parse().
                            regex::Regex::new(&format!("^(?:{})$", m.value)).ok()
                        }
                        _ => None,
                    };
                    (m.clone(), re)
                })
                .collect(),
        )
    }

    /// The tantivy query selecting the candidates: the selector (a stream
    /// filter), and the inner words of `|=` needles.
    pub fn to_query(&self, schema: &LogSchema) -> Box<dyn Query> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, Box::new(self.stream_filter()))];
        for f in &self.filters {
            if let LineFilter::Contains(needle) = f {
                for word in inner_words(needle) {
                    clauses.push((
                        Occur::Must,
                        Box::new(TermQuery::new(
                            Term::from_field_text(schema.message, &word.to_lowercase()),
                            IndexRecordOption::Basic,
                        )),
                    ));
                }
            }
        }
        Box::new(BooleanQuery::new(clauses))
    }
}

/// A selector with its regexes compiled.
#[derive(Debug, Clone)]
struct Selector(Vec<(Matcher, Option<regex::Regex>)>);

impl Selector {
    fn selects(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(m, re)| {
            let v = labels.get(&m.name).map_or("", String::as_str);
            match m.op {
                MatchOp::Eq => v == m.value,
                MatchOp::Ne => v != m.value,
                MatchOp::Re => re.as_ref().is_some_and(|r| r.is_match(v)),
                MatchOp::NotRe => re.as_ref().is_none_or(|r| !r.is_match(v)),
            }
        })
    }
}

/// Words of `needle` bounded by non-alphanumeric characters on both sides
/// inside the needle: any line containing the needle has them as whole
/// tokens of the message index (tokens over 40 bytes are not indexed).
fn inner_words(needle: &str) -> Vec<&str> {
    let parts: Vec<&str> = needle.split(|c: char| !c.is_alphanumeric()).collect();
    if parts.len() < 3 {
        return Vec::new();
    }
    parts[1..parts.len() - 1]
        .iter()
        .copied()
        .filter(|w| !w.is_empty() && w.len() <= 40)
        .collect()
}

fn regex_matches_empty(re: &str) -> bool {
    regex::Regex::new(&format!("^(?:{re})$"))
        .map(|r| r.is_match(""))
        .unwrap_or(false)
}

/// A small hand-written lexer for selectors and filters (shared with the
/// push path's `{name="value"}` label strings).
pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// Starts at the beginning of `src`.
    pub fn new(src: &'a str) -> Self {
        Self { src, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn skip_ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }

    fn at_end(&self) -> bool {
        self.rest().is_empty()
    }

    fn err(&self, what: &str) -> String {
        let near: String = self.rest().chars().take(20).collect();
        if near.is_empty() {
            format!("{what} at the end of the query")
        } else {
            format!("{what} at position {} (near {near:?})", self.pos)
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Checks nothing but whitespace is left.
    pub fn end(&mut self) -> Result<(), String> {
        self.skip_ws();
        if self.at_end() {
            Ok(())
        } else {
            Err(self.err("unexpected text"))
        }
    }

    /// `{name op "value", …}`.
    pub fn selector(&mut self) -> Result<Vec<Matcher>, String> {
        self.skip_ws();
        if !self.eat("{") {
            return Err(self.err("expected a stream selector `{…}`"));
        }
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            if self.eat("}") {
                return Ok(out);
            }
            if !out.is_empty() {
                if !self.eat(",") {
                    return Err(self.err("expected `,` or `}`"));
                }
                self.skip_ws();
            }
            let name: String = self
                .rest()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() || !super::push::valid_label_name(&name) {
                return Err(self.err("expected a label name"));
            }
            self.pos += name.len();
            self.skip_ws();
            let op = if self.eat("=~") {
                MatchOp::Re
            } else if self.eat("!~") {
                MatchOp::NotRe
            } else if self.eat("!=") {
                MatchOp::Ne
            } else if self.eat("=") {
                MatchOp::Eq
            } else {
                return Err(self.err("expected =, !=, =~ or !~"));
            };
            self.skip_ws();
            let value = self.string()?;
            out.push(Matcher { name, op, value });
        }
    }

    fn filter_op(&mut self) -> Result<&'static str, String> {
        for op in ["|=", "!=", "|~", "!~"] {
            if self.eat(op) {
                return Ok(op);
            }
        }
        if self.rest().starts_with('|') {
            return Err(self
                .err("unsupported pipeline stage (Osprey supports the line filters |= != |~ !~)"));
        }
        Err(self.err("expected a line filter |= != |~ or !~"))
    }

    /// A double-quoted string with Go escapes, or a back-quoted raw one.
    fn string(&mut self) -> Result<String, String> {
        if self.eat("`") {
            let r = self.rest();
            let end = r
                .find('`')
                .ok_or_else(|| self.err("unterminated `string`"))?;
            let s = r[..end].to_string();
            self.pos += end + 1;
            return Ok(s);
        }
        if !self.eat("\"") {
            return Err(self.err("expected a quoted string"));
        }
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, '"')) => out.push('"'),
                    Some((_, '\'')) => out.push('\''),
                    Some((_, other)) => {
                        // Keep unknown escapes (regex classes such as \d).
                        out.push('\\');
                        out.push(other);
                    }
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(self.err("unterminated string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_subset() {
        let q = LogQuery::parse(
            r#"{namespace="prod", pod=~"web-.*", stream!="stderr"} |= "refused" != `debug` |~ "\d+ms" !~ "health""#,
        )
        .unwrap();
        assert_eq!(q.matchers.len(), 3);
        assert_eq!(q.matchers[1].op, MatchOp::Re);
        assert_eq!(q.filters.len(), 4);
        assert!(q.passes("connection refused after 30ms"));
        assert!(!q.passes("connection refused after debug 30ms"));
        assert!(!q.passes("connection refused"));
        assert!(!q.passes("health: connection refused 3ms"));
    }

    #[test]
    fn problems_are_named() {
        for (q, want) in [
            ("rate({a=\"b\"}[5m])", "metric queries"),
            ("{a=\"b\"} | json", "unsupported pipeline stage"),
            ("{a=\"b\"", "expected `,` or `}`"),
            ("{a=~\"(\"}", "regex"),
            ("{a=\"\"}", "does not match the empty value"),
            ("{}", "at least one matcher"),
            ("{a=\"b\"} |= \"x", "unterminated string"),
            ("{a=\"b\"} |~ \"(\"", "line filter"),
        ] {
            let e = LogQuery::parse(q).unwrap_err();
            assert!(e.contains(want), "{q}: {e}");
        }
    }

    #[test]
    fn inner_words_are_whole_tokens() {
        assert_eq!(inner_words("connection refused"), Vec::<&str>::new());
        assert_eq!(
            inner_words("dial tcp 10.0.0.1:5432: connect"),
            vec!["tcp", "10", "0", "0", "1", "5432"]
        );
        assert_eq!(inner_words("x"), Vec::<&str>::new());
    }
}
