//! Searching: a query string becomes a tantivy query over the fields, a
//! time range prunes partitions, and a collector over the timestamp and id
//! fast fields keeps the newest (or oldest) matches. Paging continues after
//! an opaque cursor `(timestamp, id)`: the order is total, so pages never
//! overlap or skip a line, also across partitions (whose spans are
//! disjoint in time).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use serde::Serialize;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::ColumnValues;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, EnableScoring, Occur, Query, QueryParser, RangeQuery,
    TermQuery, TermSetQuery, Weight,
};
use tantivy::schema::Value;
use tantivy::tokenizer::TokenizerManager;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, Term};

use super::partition::Partition;
use super::schema::{LABEL_FIELDS, LogSchema};
use super::segments::{for_each_alive, may_overlap, timestamps, u64_column};
use super::{LogError, LogStore};

/// Which way results run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Newest first (the default).
    #[default]
    Backward,
    /// Oldest first.
    Forward,
    /// In order of arrival (ids ascending): tailing.
    Arrival,
}

impl Direction {
    /// Parses `backward` / `forward`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "backward" | "BACKWARD" => Ok(Self::Backward),
            "forward" | "FORWARD" => Ok(Self::Forward),
            other => Err(format!(
                "direction {other:?} is neither \"backward\" nor \"forward\""
            )),
        }
    }
}

/// Where the previous page ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Timestamp of the last line returned.
    pub ts_ns: i64,
    /// Its id.
    pub id: u64,
}

impl Cursor {
    /// The opaque form.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.ts_ns, self.id)
    }

    /// Parses [`Cursor::encode`]'s form.
    pub fn decode(s: &str) -> Result<Self, String> {
        let bad = || format!("cursor {s:?} is not one this server returned");
        let (t, i) = s.rsplit_once('_').ok_or_else(bad)?;
        Ok(Self {
            ts_ns: t.parse().map_err(|_| bad())?,
            id: i.parse().map_err(|_| bad())?,
        })
    }
}

/// What to search.
#[derive(Debug, Clone)]
pub struct SearchParams {
    /// First nanosecond (inclusive).
    pub start_ns: i64,
    /// Last nanosecond (exclusive).
    pub end_ns: i64,
    /// Most lines to return.
    pub limit: usize,
    /// Continue after this line.
    pub cursor: Option<Cursor>,
    /// Order.
    pub direction: Direction,
}

/// One line as the APIs return it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    /// RFC 3339 with nanoseconds.
    pub ts: String,
    /// Unix nanoseconds, as a string (JSON numbers lose precision).
    pub ts_ns: String,
    /// Stream label `node`.
    pub node: Option<String>,
    /// Stream label `namespace`.
    pub namespace: Option<String>,
    /// Stream label `pod`.
    pub pod: Option<String>,
    /// Stream label `container`.
    pub container: Option<String>,
    /// Stream label `stream`.
    pub stream: Option<String>,
    /// Level parsed from the line.
    pub level: Option<String>,
    /// All stream labels.
    pub labels: BTreeMap<String, String>,
    /// The line.
    pub message: String,
    /// Unix nanoseconds.
    #[serde(skip)]
    pub ts_value: i64,
    /// Arrival id in its partition.
    #[serde(skip)]
    pub id: u64,
}

/// A page of results.
#[derive(Debug, Clone, Serialize)]
pub struct SearchPage {
    /// The lines.
    pub lines: Vec<LogLine>,
    /// Where the next page starts; `None` when there is none.
    pub next_cursor: Option<String>,
}

/// Formats Unix nanoseconds as RFC 3339 with nine fraction digits.
pub fn format_ts(ts_ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ts_ns)
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

/// Sort key: larger comes first in the output.
type Key = (i128, i128);

fn key(direction: Direction, ts: i64, id: u64) -> Key {
    match direction {
        Direction::Backward => (i128::from(ts), i128::from(id)),
        Direction::Forward => (-i128::from(ts), -i128::from(id)),
        Direction::Arrival => (-i128::from(id), 0),
    }
}

/// A hit: where the document is and its sort values.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    key: Key,
    /// Timestamp.
    pub ts: i64,
    /// Id.
    pub id: u64,
    /// The line's stream in its partition's stream table.
    pub stream_id: u64,
    /// Document.
    pub addr: DocAddress,
}

/// Keeps the `limit` first matches in `direction` order within a time
/// range, after an optional cursor, within an optional id range.
#[derive(Debug, Clone, Copy)]
pub struct TopLines {
    start_ns: i64,
    end_ns: i64,
    limit: usize,
    after: Option<Key>,
    direction: Direction,
    ids: Option<(u64, u64)>,
    /// The `limit`-th best key found in segments searched before: a hit
    /// must beat it.
    floor: Option<Key>,
}

/// The hits of one partition and the searcher that holds them.
type PartitionHits = (Arc<Partition>, tantivy::Searcher, Vec<Hit>);

/// Per segment.
pub struct TopLinesSegment {
    ts: Arc<dyn ColumnValues<i64>>,
    id: Arc<dyn ColumnValues<u64>>,
    stream_id: Arc<dyn ColumnValues<u64>>,
    segment: SegmentOrdinal,
    parent: TopLines,
    heap: BinaryHeap<Reverse<(Key, i64, u64, DocId)>>,
    buf: Vec<i64>,
}

impl Collector for TopLines {
    type Fruit = Vec<Hit>;
    type Child = TopLinesSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<TopLinesSegment> {
        Ok(TopLinesSegment {
            ts: timestamps(reader)?,
            id: u64_column(reader, "id")?,
            stream_id: u64_column(reader, "stream_id")?,
            segment,
            parent: *self,
            heap: BinaryHeap::with_capacity(self.limit.min(1 << 16) + 1),
            buf: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    /// Skips segments whose timestamps (or ids) all fall outside the
    /// range without running the query on them: new lines sit in new
    /// segments, so tails and recent searches touch little.
    fn collect_segment(
        &self,
        weight: &dyn tantivy::query::Weight,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Vec<Hit>> {
        let mut c = self.for_segment(segment, reader)?;
        if !may_overlap(c.ts.as_ref(), self.start_ns, self.end_ns) {
            return Ok(Vec::new());
        }
        if let Some((lo, hi)) = self.ids
            && (c.id.max_value() < lo || c.id.min_value() > hi)
        {
            return Ok(Vec::new());
        }
        for_each_alive(weight, reader, &mut |docs| c.collect_block(docs))?;
        Ok(c.harvest())
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Hit>>) -> tantivy::Result<Vec<Hit>> {
        let mut all: Vec<Hit> = fruits.into_iter().flatten().collect();
        all.sort_unstable_by_key(|h| Reverse(h.key));
        all.truncate(self.limit);
        Ok(all)
    }
}

impl SegmentCollector for TopLinesSegment {
    type Fruit = Vec<Hit>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let ts = self.ts.get_val(doc);
        self.offer(doc, ts);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        let mut ts = std::mem::take(&mut self.buf);
        ts.resize(docs.len(), 0);
        self.ts.get_vals(docs, &mut ts);
        for (&d, &t) in docs.iter().zip(&ts) {
            self.offer(d, t);
        }
        self.buf = ts;
    }

    fn harvest(self) -> Vec<Hit> {
        let segment = self.segment;
        let streams = &self.stream_id;
        self.heap
            .into_iter()
            .map(|Reverse((key, ts, id, doc))| Hit {
                key,
                ts,
                id,
                stream_id: streams.get_val(doc),
                addr: DocAddress::new(segment, doc),
            })
            .collect()
    }
}

impl TopLinesSegment {
    /// Considers `doc` with timestamp `ts`.
    fn offer(&mut self, doc: DocId, ts: i64) {
        let TopLines {
            start_ns: start,
            end_ns: end,
            limit,
            after,
            direction,
            ids,
            floor,
        } = self.parent;
        if ts < start || ts >= end {
            return;
        }
        let id = self.id.get_val(doc);
        if let Some((lo, hi)) = ids
            && (id < lo || id > hi)
        {
            return;
        }
        let k = key(direction, ts, id);
        if after.is_some_and(|a| k >= a) || floor.is_some_and(|f| k <= f) {
            return;
        }
        if self.heap.len() < limit {
            self.heap.push(Reverse((k, ts, id, doc)));
        } else if let Some(Reverse(min)) = self.heap.peek()
            && k > min.0
        {
            self.heap.pop();
            self.heap.push(Reverse((k, ts, id, doc)));
        }
    }
}

/// Runs `collector` over the segments most likely to hold the first hits
/// first (newest first for a backward search) and skips a segment whose
/// best possible key cannot beat the `limit`-th hit found so far: lines
/// arrive roughly in time order, so recent results come from the newest
/// segments and older segments are not searched at all.
fn top_lines(
    searcher: &tantivy::Searcher,
    query: &dyn Query,
    collector: TopLines,
) -> tantivy::Result<Vec<Hit>> {
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let mut segments: Vec<(Key, SegmentOrdinal)> = Vec::new();
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        if reader.max_doc() == 0 {
            continue;
        }
        let ts = timestamps(reader)?;
        let id = u64_column(reader, "id")?;
        let best = match collector.direction {
            Direction::Backward => key(Direction::Backward, ts.max_value(), id.max_value()),
            Direction::Forward => key(Direction::Forward, ts.min_value(), id.min_value()),
            Direction::Arrival => key(Direction::Arrival, 0, id.min_value()),
        };
        segments.push((best, ord as SegmentOrdinal));
    }
    segments.sort_unstable_by_key(|(best, _)| Reverse(*best));
    let mut kept: Vec<Hit> = Vec::new();
    for (best, ord) in segments {
        let floor = (kept.len() == collector.limit).then(|| kept[kept.len() - 1].key);
        if floor.is_some_and(|f| best <= f) {
            // Nor can any later segment (sorted by their best key).
            break;
        }
        let c = TopLines { floor, ..collector };
        let hits = c.collect_segment(weight.as_ref(), ord, searcher.segment_reader(ord))?;
        kept.extend(hits);
        kept.sort_unstable_by_key(|h| Reverse(h.key));
        kept.truncate(collector.limit);
    }
    Ok(kept)
}

/// Whether a stream (its labels) is kept.
pub type StreamPredicate = dyn Fn(&BTreeMap<String, String>) -> bool + Send + Sync;

/// A filter on stream labels (`namespace:prod`, a LogQL selector): which
/// streams it keeps is decided per partition, from its stream table, and
/// becomes a set of stream ids ([`bind`]). It cannot run unbound.
#[derive(Clone)]
pub struct StreamFilter {
    keep: Arc<StreamPredicate>,
    what: String,
}

impl std::fmt::Debug for StreamFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StreamFilter({})", self.what)
    }
}

impl StreamFilter {
    /// Keeps the streams `keep` accepts; `what` describes it (debugging).
    pub fn new(
        what: impl Into<String>,
        keep: impl Fn(&BTreeMap<String, String>) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            keep: Arc::new(keep),
            what: what.into(),
        }
    }

    /// Keeps the streams whose label `name` is `value` (`""`: absent).
    pub fn label_is(name: &str, value: &str) -> Self {
        let (n, v) = (name.to_string(), value.to_string());
        Self::new(format!("{name}={value:?}"), move |l| {
            l.get(&n).map_or("", String::as_str) == v
        })
    }

    /// Whether the stream with `labels` is kept.
    pub fn keeps(&self, labels: &BTreeMap<String, String>) -> bool {
        (self.keep)(labels)
    }
}

impl Query for StreamFilter {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Err(tantivy::TantivyError::InternalError(format!(
            "{self:?} was not bound to a partition"
        )))
    }
}

/// `query` for one partition: its stream filters replaced by the ids of
/// the partition's streams they keep.
pub fn bind(schema: &LogSchema, query: &dyn Query, part: &Partition) -> Box<dyn Query> {
    if let Some(f) = query.downcast_ref::<StreamFilter>() {
        let ids = part
            .streams
            .read()
            .expect("stream table lock")
            .select(&*f.keep);
        if ids.is_empty() {
            return Box::new(EmptyQuery);
        }
        return Box::new(TermSetQuery::new(
            ids.into_iter()
                .map(|id| Term::from_field_u64(schema.stream_id, id)),
        ));
    }
    if let Some(b) = query.downcast_ref::<BooleanQuery>() {
        return Box::new(BooleanQuery::new(
            b.clauses()
                .iter()
                .map(|(o, c)| (*o, bind(schema, c.as_ref(), part)))
                .collect(),
        ));
    }
    query.box_clone()
}

/// Turns the parser's terms on label fields (`namespace:prod`,
/// `labels:"app=web"`) into stream filters; other query forms on label
/// fields (ranges, phrases of several terms) are refused.
fn label_filters(schema: &LogSchema, q: Box<dyn Query>) -> Result<Box<dyn Query>, LogError> {
    if let Some(b) = q.downcast_ref::<BooleanQuery>() {
        let clauses = b
            .clauses()
            .iter()
            .map(|(o, c)| Ok((*o, label_filters(schema, c.box_clone())?)))
            .collect::<Result<Vec<_>, LogError>>()?;
        return Ok(Box::new(BooleanQuery::new(clauses)));
    }
    if let Some(t) = q.downcast_ref::<TermQuery>() {
        let term = t.term();
        let field = term.field();
        let value = || term.value().as_str().unwrap_or("").to_string();
        if let Some(name) = schema.label_field_name(field) {
            return Ok(Box::new(StreamFilter::label_is(name, &value())));
        }
        if field == schema.labels {
            let v = value();
            let Some((name, value)) = v.split_once('=') else {
                return Err(LogError::BadQuery(format!(
                    "labels:{v:?} must be labels:\"name=value\""
                )));
            };
            return Ok(Box::new(StreamFilter::label_is(name, value)));
        }
        return Ok(q);
    }
    let mut bad = q
        .downcast_ref::<RangeQuery>()
        .map(|r| r.field())
        .filter(|f| schema.label_field_name(*f).is_some() || *f == schema.labels)
        .map(|f| schema.schema.get_field_name(f).to_string());
    q.query_terms(&mut |term, _| {
        let f = term.field();
        if schema.label_field_name(f).is_some() || f == schema.labels {
            bad = Some(schema.schema.get_field_name(f).to_string());
        }
    });
    match bad {
        Some(f) => Err(LogError::BadQuery(format!(
            "field {f:?} takes exact values only ({f}:value)"
        ))),
        None => Ok(q),
    }
}

/// tantivy's boolean query with only `MustNot` clauses matches nothing
/// (`a AND NOT b` parses as `+a +(-b)`); people mean "everything except",
/// so such groups get an all-documents clause.
fn complete_negations(q: Box<dyn Query>) -> Box<dyn Query> {
    let Some(b) = q.downcast_ref::<BooleanQuery>() else {
        return q;
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = b
        .clauses()
        .iter()
        .map(|(o, c)| (*o, complete_negations(c.box_clone())))
        .collect();
    if clauses.iter().all(|(o, _)| *o == Occur::MustNot) {
        clauses.push((Occur::Must, Box::new(AllQuery)));
    }
    Box::new(BooleanQuery::new(clauses))
}

impl LogStore {
    /// Parses a query string: tantivy's syntax over `message` by default,
    /// with the fields `node: namespace: pod: container: stream: level:
    /// labels:` (`labels:"app=web"`); terms are ANDed unless `OR` is
    /// written. Empty = every line.
    pub fn parse_query(&self, q: &str) -> Result<Box<dyn Query>, LogError> {
        if q.trim().is_empty() {
            return Ok(Box::new(AllQuery));
        }
        let schema = self.schema();
        let mut parser = QueryParser::new(
            schema.schema.clone(),
            vec![schema.message],
            TokenizerManager::default(),
        );
        parser.set_conjunction_by_default();
        let parsed = match parser.parse_query(q) {
            // `NOT x` alone: everything except x.
            Err(tantivy::query::QueryParserError::AllButQueryForbidden) => {
                parser.parse_query(&format!("* AND ({q})"))
            }
            other => other,
        }
        .map_err(|e| {
            LogError::BadQuery(format!(
                "cannot parse the query {q:?}: {e} (fields: {}, level, labels, message)",
                LABEL_FIELDS.join(", ")
            ))
        })?;
        // Field names the parser accepted but that are not searchable
        // text (timestamp, id, stream_id) would silently match nothing.
        let mut bad = None;
        parsed.query_terms(&mut |term, _| {
            let f = term.field();
            if !schema.query_fields().contains(&f) {
                bad = Some(schema.schema.get_field_name(f).to_string());
            }
        });
        if let Some(f) = bad {
            return Err(LogError::BadQuery(format!(
                "field {f:?} cannot be searched with a query string (fields: {}, level, labels, message)",
                LABEL_FIELDS.join(", ")
            )));
        }
        Ok(complete_negations(label_filters(schema, parsed)?))
    }

    /// The hits of `query` in order, at most `limit`, with the searchers
    /// that hold them.
    fn hits(
        &self,
        query: &dyn Query,
        params: &SearchParams,
        ids: Option<(i64, u64, u64)>,
    ) -> Result<Vec<PartitionHits>, LogError> {
        let (mut start, mut end) = (params.start_ns, params.end_ns);
        if let Some(c) = params.cursor {
            match params.direction {
                Direction::Backward => end = end.min(c.ts_ns.saturating_add(1)),
                Direction::Forward => start = start.max(c.ts_ns),
                Direction::Arrival => {}
            }
        }
        let mut parts = self.partitions(start, end);
        if let Some((p, _, _)) = ids {
            parts.retain(|q| q.span.start_ns == p);
        }
        if params.direction == Direction::Backward {
            parts.reverse();
        }
        let after = params.cursor.map(|c| key(params.direction, c.ts_ns, c.id));
        let mut need = params.limit;
        let mut out = Vec::new();
        for part in parts {
            if need == 0 {
                break;
            }
            let searcher = part.reader.searcher();
            // The collector keeps to [start, end) itself (and skips
            // segments outside it), so the query needs no range clause.
            let q = bind(self.schema(), query, &part);
            let collector = TopLines {
                start_ns: start,
                end_ns: end,
                limit: need,
                after,
                direction: params.direction,
                ids: ids.map(|(_, lo, hi)| (lo, hi)),
                floor: None,
            };
            let hits = top_lines(&searcher, q.as_ref(), collector)
                .map_err(|e| LogError::Index(e.to_string()))?;
            need -= hits.len();
            out.push((part, searcher, hits));
        }
        Ok(out)
    }

    /// One page of lines matching `query`.
    pub fn search(&self, query: &dyn Query, params: &SearchParams) -> Result<SearchPage, LogError> {
        let mut probe = params.clone();
        probe.limit = params.limit.saturating_add(1);
        let found = self.hits(query, &probe, None)?;
        let mut lines = Vec::with_capacity(params.limit);
        let mut more = false;
        'outer: for (part, searcher, hits) in &found {
            for hit in hits {
                if lines.len() == params.limit {
                    more = true;
                    break 'outer;
                }
                lines.push(self.load(part, searcher, hit)?);
            }
        }
        let next_cursor = if more {
            lines.last().map(|l| {
                Cursor {
                    ts_ns: l.ts_value,
                    id: l.id,
                }
                .encode()
            })
        } else {
            None
        };
        Ok(SearchPage { lines, next_cursor })
    }

    /// The lines of one commit (ids `first..=last` of a partition) that
    /// match `query`, in order of arrival.
    pub fn committed_lines(
        &self,
        query: &dyn Query,
        partition_start_ns: i64,
        first_id: u64,
        last_id: u64,
    ) -> Result<Vec<LogLine>, LogError> {
        let params = SearchParams {
            start_ns: i64::MIN,
            end_ns: i64::MAX,
            limit: (last_id - first_id + 1) as usize,
            cursor: None,
            direction: Direction::Arrival,
        };
        let found = self.hits(
            query,
            &params,
            Some((partition_start_ns, first_id, last_id)),
        )?;
        let mut lines = Vec::new();
        for (part, searcher, hits) in &found {
            for hit in hits {
                lines.push(self.load(part, searcher, hit)?);
            }
        }
        Ok(lines)
    }

    fn load(
        &self,
        part: &Partition,
        searcher: &tantivy::Searcher,
        hit: &Hit,
    ) -> Result<LogLine, LogError> {
        let s = self.schema();
        let doc: tantivy::TantivyDocument = searcher
            .doc(hit.addr)
            .map_err(|e| LogError::Index(e.to_string()))?;
        let text = |f| {
            doc.get_first(f)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let labels: BTreeMap<String, String> = part
            .streams
            .read()
            .expect("stream table lock")
            .labels(hit.stream_id)
            .map(|l| (**l).clone())
            .ok_or_else(|| {
                LogError::Corrupt(format!(
                    "{}: line of stream {} that the stream table lacks",
                    part.dir.display(),
                    hit.stream_id
                ))
            })?;
        let label = |name: &str| labels.get(name).cloned();
        Ok(LogLine {
            ts: format_ts(hit.ts),
            ts_ns: hit.ts.to_string(),
            node: label("node"),
            namespace: label("namespace"),
            pod: label("pod"),
            container: label("container"),
            stream: label("stream"),
            level: text(s.level),
            message: text(s.message).unwrap_or_default(),
            labels,
            ts_value: hit.ts,
            id: hit.id,
        })
    }

    /// Pages through `query`'s matches keeping those `keep` accepts, until
    /// `limit` are kept or `scan_limit` candidates were looked at (LogQL
    /// line filters). Returns the kept lines and whether the scan stopped
    /// at its limit.
    pub fn search_filtered(
        &self,
        query: &dyn Query,
        params: &SearchParams,
        keep: &dyn Fn(&LogLine) -> bool,
        scan_limit: usize,
    ) -> Result<(Vec<LogLine>, bool), LogError> {
        let mut out = Vec::with_capacity(params.limit);
        let mut p = params.clone();
        p.limit = params.limit.clamp(100, 5000);
        let mut scanned = 0;
        loop {
            let page = self.search(query, &p)?;
            scanned += page.lines.len();
            for line in page.lines {
                if keep(&line) {
                    out.push(line);
                    if out.len() == params.limit {
                        return Ok((out, false));
                    }
                }
            }
            match page.next_cursor {
                Some(c) if scanned < scan_limit => {
                    p.cursor = Some(Cursor::decode(&c).map_err(LogError::BadQuery)?)
                }
                Some(_) => return Ok((out, true)),
                None => return Ok((out, false)),
            }
        }
    }
}
