//! The tantivy schema of a log partition, and how a pushed line becomes a
//! document: stream labels as raw terms, the level parsed from the line
//! when it says one, the message as full text.

use std::collections::BTreeMap;

use tantivy::TantivyDocument;
use tantivy::schema::{
    FAST, Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};

/// Stream labels that also get a field of their own, so queries can say
/// `namespace:prod` (the query parser's field names).
pub const LABEL_FIELDS: [&str; 5] = ["node", "namespace", "pod", "container", "stream"];

/// The fields of a log partition.
///
/// Stream labels are not stored or indexed per line: a line carries its
/// stream's id (see [`super::streams`]), and the label fields below exist
/// only so that the query parser accepts `namespace:prod`; such terms are
/// turned into stream id sets before a search (see [`super::query`]).
#[derive(Debug, Clone)]
pub struct LogSchema {
    /// The schema itself.
    pub schema: Schema,
    /// Line timestamp, Unix nanoseconds (fast field: sorting, ranges,
    /// histograms).
    pub timestamp: Field,
    /// Order of arrival within the partition (fast field): the tie-break
    /// for equal timestamps, so paging is total and stable.
    pub id: Field,
    /// The line's stream in the partition's stream table (indexed: label
    /// filters; fast: the labels of a hit).
    pub stream_id: Field,
    /// `node`, `namespace`, `pod`, `container`, `stream`, in the order of
    /// [`LABEL_FIELDS`]: query syntax only, never populated.
    pub label_fields: [Field; 5],
    /// The level parsed from the line (`error`, `warn` …), raw term,
    /// stored.
    pub level: Field,
    /// `labels:"name=value"` in query strings: query syntax only, never
    /// populated.
    pub labels: Field,
    /// The line, full text with positions (phrases), stored.
    pub message: Field,
    /// The line's length in bytes (fast field: index stats sum it without
    /// loading the stored lines). `None` in partitions of format 2, which
    /// predate it (their stats read the stored lines instead).
    pub bytes: Option<Field>,
}

impl Default for LogSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl LogSchema {
    /// Builds the schema of the current partition format
    /// ([`super::partition::FORMAT`]).
    pub fn new() -> Self {
        Self::for_format(super::partition::FORMAT)
    }

    /// The schema of partitions of `format` (2 to
    /// [`super::partition::FORMAT`]). Every field keeps its id in all of
    /// them, so queries built with the current schema run on each:
    ///
    /// - format 2: no `bytes` field (it was added last);
    /// - format 3: `bytes`; every indexed field with field norms (token
    ///   counts per line, tantivy's default, for BM25 scoring);
    /// - format 4: the same fields without field norms. Searches never
    ///   score (results are ordered by time), so the norms and the BM25
    ///   block maxima tantivy derives from them when it writes and merges
    ///   postings were work and bytes for nothing.
    pub fn for_format(format: u32) -> Self {
        Self::build(format >= 3, format < 4)
    }

    fn build(with_bytes: bool, fieldnorms: bool) -> Self {
        let mut b = Schema::builder();
        let timestamp = b.add_i64_field("timestamp", FAST);
        let id = b.add_u64_field("id", FAST);
        let mut stream_id_options = NumericOptions::default().set_indexed().set_fast();
        if fieldnorms {
            stream_id_options = stream_id_options.set_fieldnorm();
        }
        let stream_id = b.add_u64_field("stream_id", stream_id_options);
        // Raw terms (`STRING`), with or without norms.
        let raw = || {
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("raw")
                    .set_index_option(IndexRecordOption::Basic)
                    .set_fieldnorms(fieldnorms),
            )
        };
        let label_fields = LABEL_FIELDS.map(|name| b.add_text_field(name, raw()));
        let level = b.add_text_field("level", raw().set_stored());
        let labels = b.add_text_field("labels", raw());
        let message = b.add_text_field(
            "message",
            TextOptions::default()
                .set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer("default")
                        .set_index_option(IndexRecordOption::WithFreqsAndPositions)
                        .set_fieldnorms(fieldnorms),
                )
                .set_stored(),
        );
        let bytes = with_bytes.then(|| b.add_u64_field("bytes", FAST));
        Self {
            schema: b.build(),
            timestamp,
            id,
            stream_id,
            label_fields,
            level,
            labels,
            message,
            bytes,
        }
    }

    /// The fields a query string may name (`namespace:prod`), message
    /// being the default.
    pub fn query_fields(&self) -> Vec<Field> {
        let mut f = self.label_fields.to_vec();
        f.push(self.level);
        f.push(self.labels);
        f.push(self.message);
        f
    }

    /// The label name a query field stands for (`None` for `labels`,
    /// whose terms are `name=value`).
    pub fn label_field_name(&self, field: Field) -> Option<&'static str> {
        self.label_fields
            .iter()
            .position(|f| *f == field)
            .map(|i| LABEL_FIELDS[i])
    }

    /// The document of one line of stream `stream_id`.
    pub fn document(&self, line: &PreparedLine, id: u64, stream_id: u64) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_i64(self.timestamp, line.ts_ns);
        doc.add_u64(self.id, id);
        doc.add_u64(self.stream_id, stream_id);
        if let Some(level) = line.level {
            doc.add_text(self.level, level);
        }
        if let Some(bytes) = self.bytes {
            doc.add_u64(bytes, line.message.len() as u64);
        }
        doc.add_text(self.message, &line.message);
        doc
    }
}

/// The labels of a stream, in the forms the index needs (computed once per
/// stream of a push, shared by its lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLabels {
    /// Name → value.
    pub labels: BTreeMap<String, String>,
    /// The labels as a JSON object: the stream's key in the stream table.
    pub json: String,
}

impl StreamLabels {
    /// Derives the JSON form.
    pub fn new(labels: BTreeMap<String, String>) -> Self {
        let json = serde_json::to_string(&labels).expect("string map serialises");
        Self { labels, json }
    }
}

/// One validated line, ready to index.
#[derive(Debug, Clone)]
pub struct PreparedLine {
    /// Unix nanoseconds.
    pub ts_ns: i64,
    /// Its stream.
    pub stream: std::sync::Arc<StreamLabels>,
    /// The level the line states, normalised.
    pub level: Option<&'static str>,
    /// The line.
    pub message: String,
}

impl PreparedLine {
    /// Raw size: what the line weighs on the wire (message bytes), the
    /// unit of the size limits and throughput figures.
    pub fn raw_bytes(&self) -> usize {
        self.message.len()
    }
}

/// Maps a level word to its normalised name.
fn normalise_level(word: &str) -> Option<&'static str> {
    let w = word.trim_matches(|c: char| !c.is_ascii_alphabetic());
    if w.len() > 11 {
        return None;
    }
    Some(match w.to_ascii_lowercase().as_str() {
        "error" | "err" | "eror" => "error",
        "warn" | "warning" | "wrn" => "warn",
        "info" | "inf" | "information" | "notice" => "info",
        "debug" | "dbg" => "debug",
        "trace" | "trc" => "trace",
        "fatal" | "critical" | "crit" | "panic" | "emerg" | "alert" => "fatal",
        _ => return None,
    })
}

/// The level a line states, if it states one: a JSON `"level"`,
/// `"severity"` or `"lvl"` key, a logfmt `level=`, a leading upper-case
/// level word (possibly after a timestamp, in brackets or with a colon),
/// or a klog header (`E1126 12:00:00.000000 …`).
pub fn parse_level(line: &str) -> Option<&'static str> {
    let line = line.trim_start();
    let head = &line[..floor_char_boundary(line, 512)];
    if head.starts_with('{') {
        for key in ["\"level\"", "\"severity\"", "\"lvl\""] {
            if let Some(pos) = head.find(key) {
                let rest = head[pos + key.len()..].trim_start();
                if let Some(rest) = rest.strip_prefix(':') {
                    let rest = rest.trim_start();
                    if let Some(rest) = rest.strip_prefix('"') {
                        let value = rest.split('"').next().unwrap_or("");
                        if let Some(l) = normalise_level(value) {
                            return Some(l);
                        }
                    }
                }
            }
        }
        return None;
    }
    for key in ["level=", "lvl=", "severity="] {
        if let Some(pos) = head.find(key)
            && (pos == 0 || head.as_bytes()[pos - 1] == b' ')
        {
            let value = head[pos + key.len()..].trim_start_matches('"');
            let value = value
                .split(|c: char| c == '"' || c.is_whitespace())
                .next()
                .unwrap_or("");
            if let Some(l) = normalise_level(value) {
                return Some(l);
            }
        }
    }
    let b = head.as_bytes();
    if b.len() > 5
        && matches!(b[0], b'I' | b'W' | b'E' | b'F')
        && b[1..5].iter().all(u8::is_ascii_digit)
        && b[5] == b' '
    {
        return Some(match b[0] {
            b'I' => "info",
            b'W' => "warn",
            b'E' => "error",
            _ => "fatal",
        });
    }
    // A level word among the first few tokens, upper case only so that
    // prose ("an error occurred") does not count.
    for word in head.split_whitespace().take(4) {
        let w = word.trim_matches(|c: char| matches!(c, '[' | ']' | '<' | '>' | ':' | '(' | ')'));
        if w.len() >= 3
            && w.bytes().all(|c| c.is_ascii_uppercase())
            && let Some(l) = normalise_level(w)
        {
            return Some(l);
        }
    }
    None
}

/// The largest index ≤ `i` on a character boundary of `s`.
pub fn floor_char_boundary(s: &str, i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    let mut i = i;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_parsed_where_the_line_states_them() {
        let cases = [
            (r#"{"level":"error","msg":"boom"}"#, Some("error")),
            (r#"{"ts":1, "severity" : "WARNING"}"#, Some("warn")),
            (r#"{"msg":"level=error inside json"}"#, None),
            ("ts=2026 level=info msg=started", Some("info")),
            ("level=\"debug\" msg=x", Some("debug")),
            ("xlevel=error", None),
            ("ERROR connection refused", Some("error")),
            ("[WARN] disk almost full", Some("warn")),
            ("2026-11-26T23:00:00Z INFO started", Some("info")),
            ("2026-11-26 23:00:00,123 ERROR: failed", Some("error")),
            (
                "E1126 12:00:00.000000 1 reflector.go] failed",
                Some("error"),
            ),
            ("I1126 12:00:00.000000 1 main.go] ok", Some("info")),
            ("an error occurred while reading", None),
            ("GET /index.html 200", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(parse_level(line), want, "{line}");
        }
    }

    /// The schemas older versions wrote, as they wrote them: a partition
    /// of format 2 or 3 only opens if [`LogSchema::for_format`] gives
    /// exactly its schema back.
    #[test]
    fn older_formats_keep_the_schema_they_were_written_with() {
        use tantivy::schema::{INDEXED, STORED, STRING};
        for with_bytes in [false, true] {
            let mut b = Schema::builder();
            b.add_i64_field("timestamp", FAST);
            b.add_u64_field("id", FAST);
            b.add_u64_field("stream_id", FAST | INDEXED);
            for name in LABEL_FIELDS {
                b.add_text_field(name, STRING);
            }
            b.add_text_field("level", STRING | STORED);
            b.add_text_field("labels", STRING);
            b.add_text_field(
                "message",
                TextOptions::default()
                    .set_indexing_options(
                        TextFieldIndexing::default()
                            .set_tokenizer("default")
                            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
                    )
                    .set_stored(),
            );
            if with_bytes {
                b.add_u64_field("bytes", FAST);
            }
            let format = if with_bytes { 3 } else { 2 };
            assert_eq!(LogSchema::for_format(format).schema, b.build(), "{format}");
        }
        // Format 4: the same fields, ids and options, without norms.
        let (f3, f4) = (LogSchema::for_format(3), LogSchema::new());
        assert_eq!(f3.schema.num_fields(), f4.schema.num_fields());
        for ((field, old), (_, new)) in f3.schema.fields().zip(f4.schema.fields()) {
            assert_eq!(old.name(), new.name());
            assert_eq!(old.is_indexed(), new.is_indexed(), "{}", old.name());
            assert_eq!(old.is_fast(), new.is_fast(), "{}", old.name());
            assert_eq!(old.is_stored(), new.is_stored(), "{}", old.name());
            assert!(!new.has_fieldnorms(), "{}", new.name());
            assert_eq!(
                f3.query_fields().contains(&field),
                f4.query_fields().contains(&field)
            );
        }
    }

    #[test]
    fn documents_carry_the_stream_id_not_the_labels() {
        let s = LogSchema::new();
        let stream = std::sync::Arc::new(StreamLabels::new(BTreeMap::from([
            ("namespace".to_string(), "prod".to_string()),
            ("app".to_string(), "web".to_string()),
        ])));
        assert_eq!(stream.json, r#"{"app":"web","namespace":"prod"}"#);
        let line = PreparedLine {
            ts_ns: 5,
            stream,
            level: Some("error"),
            message: "boom".into(),
        };
        let doc = s.document(&line, 7, 3);
        use tantivy::schema::Value;
        assert_eq!(doc.get_first(s.stream_id).and_then(|v| v.as_u64()), Some(3));
        assert!(doc.get_first(s.label_fields[1]).is_none());
        assert_eq!(s.label_field_name(s.label_fields[1]), Some("namespace"));
    }
}
