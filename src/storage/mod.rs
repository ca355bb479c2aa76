//! The embedded time-series storage engine.
//!
//! Layers, bottom up (each module is one concept):
//!
//! | module | concept |
//! |---|---|
//! | [`encode`] | bit stream and varints |
//! | [`chunk`] | Gorilla/XOR chunk codec |
//! | [`labels`], [`sample`], [`matcher`] | the series model |
//! | [`index`] | inverted index: label pairs → series |
//! | [`head`], [`head_chunks`] | appendable head, write-path rules; its sealed chunks on disk |
//! | [`wal`] | write-ahead log |
//! | [`block`], [`block_index`] | immutable on-disk blocks; their memory-mapped index |
//! | [`compaction`], [`retention`], [`rollup`] | block lifecycle |
//! | [`select`], [`query`] | read path and query building blocks |
//! | [`engine`] | [`Storage`], tying it together |
//! | [`inspect`] | `osprey storage inspect DIR` |
//!
//! The data directory layout and the write-path rules are documented in `docs/storage.md`.

pub mod block;
pub mod block_index;
pub mod chunk;
pub mod codec;
pub mod compaction;
pub mod encode;
pub mod engine;
pub mod error;
pub mod head;
pub mod head_chunks;
pub mod index;
pub mod inspect;
pub mod labels;
pub mod matcher;
pub mod metrics;
pub mod options;
pub mod query;
pub mod retention;
pub mod rollup;
pub mod sample;
pub mod select;
pub mod wal;

pub use engine::{MaintainReport, Storage};
pub use error::{Result, StorageError};
pub use head::AppendReport;
pub use inspect::{InspectReport, inspect};
pub use labels::{Label, Labels, LabelsRef, METRIC_NAME};
pub use matcher::{MatchOp, Matcher};
pub use metrics::MetricsSnapshot;
pub use options::{FsyncPolicy, StorageOptions};
pub use sample::{Sample, SeriesSamples, SeriesSamplesRef};
pub use select::{Series, SeriesSet};
