//! Osprey's server: storage engine, ingestion and APIs.

#![warn(missing_docs)]

pub mod storage;
