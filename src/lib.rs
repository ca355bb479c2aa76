//! Osprey's server: the storage engine, ingestion and the APIs.
//!
//! - [`storage`]: the embedded time-series store;
//! - [`server`]: the HTTP server, authentication and ingestion;
//! - [`heapster`]: the Heapster-compatible API;
//! - [`promql`]: PromQL and the Prometheus-compatible query API;
//! - [`logs`]: log indexing (tantivy), search, tail and the Loki API.

#![warn(missing_docs)]

pub mod heapster;
pub mod logs;
pub mod promql;
pub mod server;
pub mod storage;
