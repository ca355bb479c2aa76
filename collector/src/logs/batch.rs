//! A batch of entries grouped by stream, encoded once into a push body.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::labels::StreamLabels;
use super::push::{self, PushFormat};

/// One stream's entries: (ns since the epoch, line).
type StreamEntries = (Arc<StreamLabels>, Vec<(i64, String)>);

/// Entries of several streams, in the order they were read within each
/// stream.
#[derive(Debug, Default)]
pub struct Batch {
    streams: Vec<StreamEntries>,
    index: HashMap<String, usize>,
    last: Option<(Arc<StreamLabels>, usize)>,
    bytes: usize,
    lines: usize,
    opened: Option<Instant>,
}

impl Batch {
    /// Adds one entry to `labels`' stream.
    pub fn push(&mut self, labels: &Arc<StreamLabels>, ts_ns: i64, line: String) {
        let i = match &self.last {
            Some((l, i)) if Arc::ptr_eq(l, labels) => *i,
            _ => {
                let i = match self.index.get(labels.rendered()) {
                    Some(&i) => i,
                    None => {
                        self.streams.push((labels.clone(), Vec::new()));
                        self.index
                            .insert(labels.rendered().to_owned(), self.streams.len() - 1);
                        self.streams.len() - 1
                    }
                };
                self.last = Some((labels.clone(), i));
                i
            }
        };
        self.bytes += line.len() + 32;
        self.lines += 1;
        self.opened.get_or_insert_with(Instant::now);
        self.streams[i].1.push((ts_ns, line));
    }

    /// Approximate size: line bytes plus a per-entry overhead.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries held.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// When the first entry was added.
    pub fn opened(&self) -> Option<Instant> {
        self.opened
    }

    /// The streams and their entries.
    pub fn streams(&self) -> impl Iterator<Item = (&StreamLabels, &[(i64, String)])> {
        self.streams.iter().map(|(l, e)| (&**l, e.as_slice()))
    }

    /// The push body in `format`.
    pub fn encode(&self, format: PushFormat) -> Vec<u8> {
        match format {
            PushFormat::Json => push::encode_json(self),
            PushFormat::Protobuf => push::encode_protobuf(self),
        }
    }

    /// Empties the batch for reuse.
    pub fn clear(&mut self) {
        self.streams.clear();
        self.index.clear();
        self.last = None;
        self.bytes = 0;
        self.lines = 0;
        self.opened = None;
    }
}
