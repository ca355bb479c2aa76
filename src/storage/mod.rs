//! The embedded time-series storage engine (see `docs/storage.md`).

pub mod block;
pub mod chunk;
pub mod encode;
pub mod error;
pub mod head;
pub mod index;
pub mod labels;
pub mod matcher;
pub mod options;
pub mod sample;
pub mod wal;
