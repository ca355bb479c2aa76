//! Osprey's node agent: finds every cgroup on a node, reads its CPU,
//! memory, block I/O, pids, pressure, network and filesystem figures,
//! exposes them in cAdvisor's Prometheus names and ships them to a
//! remote-write receiver.
//!
//! Layers, from the kernel upwards:
//! - [`layout`]: where the cgroup hierarchies are mounted;
//! - [`discovery`]: finding every cgroup and noticing new and removed ones;
//! - [`metadata`]: naming a cgroup (container name, image, pod) from the node's files;
//! - [`stats`]: the sample model every layer passes around.

pub mod discovery;
pub mod layout;
pub mod metadata;
pub mod stats;
