//! Osprey's dashboard: the dashboard model ([`model`]), the web front-end
//! embedded in the binary ([`assets`]) and server-side chart rendering
//! ([`render`]) for e-mails and image links.

#![warn(missing_docs)]

pub mod assets;
pub mod model;
pub mod render;
pub mod units;
