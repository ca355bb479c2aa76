//! Shipping samples to a Prometheus remote-write 1.0 receiver.
//!
//! - [`remote_write`]: the wire format (protobuf messages, snappy block);
//! - [`queue`]: the bounded, disk-spilling FIFO of encoded batches;
//! - [`sender`]: the tokio task that delivers the queue, oldest first.

pub mod queue;
pub mod remote_write;
pub mod sender;

pub use remote_write::{Label, Sample, TimeSeries};
pub use sender::{RemoteWriteConfig, ShipError, Shipper, ShipperHandle, ShipperStats};
