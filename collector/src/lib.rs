//! Osprey's node agent: finds every cgroup on a node, reads its CPU,
//! memory, block I/O, pids, pressure, network and filesystem figures,
//! exposes them in cAdvisor's Prometheus names and ships them to a
//! remote-write receiver.
//!
//! Layers, from the kernel upwards:
//! - [`layout`]: where the cgroup hierarchies are mounted;
//! - [`stats`]: the sample model every layer passes around;
//! - [`ship`]: delivery of samples by Prometheus remote-write.

pub mod layout;
pub mod ship;
pub mod stats;
