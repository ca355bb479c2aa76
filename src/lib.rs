//! Osprey's server: the storage engine, ingestion and the APIs.
//!
//! - [`storage`]: the embedded time-series store;
//! - [`server`]: the HTTP server, authentication and ingestion;
//! - [`heapster`]: the Heapster-compatible API.

pub mod heapster;
pub mod promql;
pub mod server;
pub mod storage;
