//! Osprey's dashboard: the web front-end embedded in the binary
//! and server-side chart rendering ([`render`]) for e-mails
//! and image links.

#![warn(missing_docs)]

pub mod render;
pub mod units;
