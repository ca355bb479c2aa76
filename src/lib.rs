//! Osprey's server: storage engine, ingestion and APIs.

pub mod storage;
