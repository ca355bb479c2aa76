//! Turning snapshots into metric families with cAdvisor's names, types,
//! units and labels, and encoding them for Prometheus scrapes
//! ([`text`]) and remote-write ([`crate::ship`]).
//!
//! A Prometheus set up for cAdvisor must work unchanged, so names and label
//! names follow `cadvisor.md` §7.2. Two deliberate differences fix
//! cAdvisor's best-known defects: the label set is fixed (`id`, `name`,
//! `image`, `namespace`, `pod`, `container`, plus only the runtime labels
//! the operator lists as `container_label_*`) instead of the union of every
//! container's labels, and samples carry no explicit timestamps (which made
//! series go stale in Prometheus).
//!
//! Two `# TYPE` lines differ from cAdvisor so that `promtool check metrics`
//! finds no problem while every name stays the same (PromQL ignores types):
//! `container_memory_failcnt` is a `gauge` (a counter must end in
//! `_total`) and `container_fs_inodes_total` is a `counter` (a name ending
//! in `_total` must be one).

pub mod container;
pub mod families;
pub mod gzip;
pub mod text;

pub use families::{Family, MetricKind, Sample, snapshot_families, visit_samples};
