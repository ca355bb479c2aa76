//! Osprey's node agent: finds every cgroup on a node, reads its CPU,
//! memory, block I/O, pids, pressure, network and filesystem figures,
//! exposes them in cAdvisor's Prometheus names and ships them to a
//! remote-write receiver.
//!
//! Layers, from the kernel upwards:
//! - [`layout`]: where the cgroup hierarchies are mounted;
//! - [`stats`]: the sample model every layer passes around;
//! - [`cgroup`]: reading statistics and limits from cgroup files (v1, v2);
//! - [`fixture`]: synthetic cgroup trees for tests and benchmarks.
//! - [`ship`]: delivery of samples by Prometheus remote-write.

pub mod cgroup;
pub mod fixture;
//! - [`discovery`]: finding every cgroup and noticing new and removed ones;
//! - [`metadata`]: naming a cgroup (container name, image, pod) from the node's files;
//! - [`stats`]: the sample model every layer passes around.
pub mod discovery;
pub mod layout;
pub mod metadata;
pub mod ship;
pub mod stats;
pub mod filesystem;
pub mod machine;
pub mod network;
mod readfile;
pub mod expose;
pub mod snapshot;
pub mod config;
pub mod window;
