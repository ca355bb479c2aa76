//! Shipping samples to a Prometheus remote-write 1.0 receiver.
//!
//! - [`remote_write`]: the wire format (protobuf messages, snappy block);
//! - [`queue`]: the bounded, disk-spilling FIFO of encoded batches;
//! - [`sender`]: the tokio task that delivers the queue, oldest first.
//!
//! The integrator starts one [`Shipper`] with a [`RemoteWriteConfig`],
//! calls [`ShipperHandle::enqueue`] once per collection, exposes
//! [`ShipperHandle::stats`] on `/metrics`, and awaits
//! [`ShipperHandle::shutdown`] on a graceful stop.
//!
//! # Guarantees
//!
//! - **Order.** Batches are delivered oldest first, across memory and
//!   disk, and a batch is removed only once the receiver answered 2xx; a
//!   later batch is never sent before an earlier one is delivered or given
//!   up. Samples of a series therefore reach the receiver in order.
//! - **Receiver outage.** Batches wait: in memory up to `memory_bytes`,
//!   then the oldest move to checksummed files in `spill_dir` up to
//!   `disk_bytes`. Nothing is lost within these bounds.
//! - **Bounds hit.** The *oldest* batches are dropped (without a spill
//!   directory: as soon as memory is full), counted in
//!   [`ShipperStats::dropped_batches`]/[`ShipperStats::dropped_samples`],
//!   with one warning when dropping starts and one when it stops.
//! - **Receiver refusal.** A batch answered with a 4xx other than 429 is
//!   dropped, counted as rejected, and the receiver's answer is logged.
//! - **Graceful stop.** [`ShipperHandle::shutdown`] keeps delivering for
//!   `shutdown_flush_timeout`, then writes the in-memory batches to
//!   `spill_dir`; the next start reloads them and resumes, in order.
//! - **Crash** (kill -9, OOM). Spilled files survive; the in-memory part
//!   (at most `memory_bytes`) is lost. A batch in flight at the crash is
//!   sent again after restart (at-least-once); Prometheus and compatible
//!   receivers ignore an identical sample sent twice.
//! - **Power loss.** Spill files are not fsynced: recent ones may be lost
//!   or truncated. A corrupt or truncated file is skipped with a warning
//!   and counted, never delivered and never a panic.
//! - **Durable enqueue.** [`ShipperHandle::enqueue_durable`] (used by the
//!   server's forwarding) writes the batch straight to `spill_dir` and
//!   fsyncs file and directory before returning, so a caller can
//!   acknowledge its own sender knowing the batch survives kill -9 and
//!   power loss; it fails rather than drop when the file cannot be written.
//!
//! [`Payload`] chooses what the bodies are: remote-write (the default) or
//! Loki push JSON, which changes only the headers and how waiting batches
//! are merged.

pub mod queue;
pub mod remote_write;
pub mod sender;

pub use remote_write::{Label, Sample, TimeSeries};
pub use sender::{
    EnqueueError, Payload, RemoteWriteConfig, ShipError, Shipper, ShipperFeed, ShipperHandle,
    ShipperStats, encode_batch,
};
