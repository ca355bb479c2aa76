//! Osprey's node agent: finds every cgroup on a node, reads its CPU,
//! memory, block I/O, pids, pressure, network and filesystem figures,
//! exposes them in cAdvisor's Prometheus names and ships them to a
//! remote-write receiver.
//!
//! Layers, from the kernel upwards:
//! - [`layout`]: where the cgroup hierarchies are mounted;
//! - [`discovery`]: finding every cgroup and noticing new and removed ones;
//! - [`metadata`]: naming a cgroup (container name, image, pod) from the node's files;
//! - [`cgroup`]: reading statistics and limits from cgroup files (v1, v2);
//! - [`network`], [`filesystem`], [`machine`]: network counters per
//!   namespace, disk usage, machine facts;
//! - [`stats`]: the sample model every layer passes around;
//! - [`collect`]: one collection cycle over every cgroup, producing a
//!   [`snapshot::Snapshot`]; [`window`]: recent history;
//! - [`expose`]: cAdvisor's metric names; [`http`]: the agent's API;
//! - [`ship`]: delivery of samples by Prometheus remote-write;
//! - [`serve`]: the HTTP(S) serve loop every listener uses; [`tls`]: its
//!   certificates and the pushes' server verification;
//! - [`agent`]: the wiring; [`config`]: its settings;
//! - [`fixture`]: synthetic cgroup trees for tests and benchmarks.

pub mod agent;
pub mod cgroup;
pub mod collect;
pub mod config;
pub mod discovery;
pub mod expose;
pub mod filesystem;
pub mod fixture;
pub mod http;
pub mod kube_state;
pub mod layout;
pub mod limit_watch;
pub mod load;
pub mod logs;
pub mod machine;
pub mod metadata;
pub mod network;
mod prefetch;
mod readfile;
pub mod self_metrics;
pub mod serve;
pub mod ship;
pub mod snapshot;
pub mod stats;
pub mod tls;
pub mod window;
