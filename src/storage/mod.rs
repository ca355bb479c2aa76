//! The embedded time-series storage engine (see `docs/storage.md`).

pub mod chunk;
pub mod encode;
pub mod error;
pub mod labels;
pub mod sample;
