//! TLS with rustls (ring provider, no OpenSSL) for every listener and for
//! the agent's pushes.
//!
//! - [`pem`] reads certificates and keys from PEM files, with errors that
//!   name the file and say what to do;
//! - [`server`] turns a [`ListenerTls`] (`cert_file`, `key_file`, optional
//!   `client_ca_file` for mutual TLS) into a rustls server configuration;
//! - [`client`] turns a [`ClientTls`] (`server_ca`, `client_cert`,
//!   `client_key`) into a rustls client configuration for reqwest, and
//!   [`client::failure_hint`] turns a failed handshake into advice.

pub mod client;
pub mod pem;
pub mod server;

use std::path::PathBuf;
use std::sync::Arc;

pub use client::ClientTls;
pub use server::ListenerTls;

/// Why a TLS configuration cannot be used. Every message names the file
/// and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error(
        "cannot read {what} {path}: {source}; point the setting at an existing PEM file this process may read"
    )]
    Read {
        /// What the file is for, with the flag and setting that name it.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// A file was read but does not hold what it should.
    #[error("{what} {path} is not usable: {reason}")]
    Invalid {
        /// What the file is for, with the flag and setting that name it.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The settings do not fit together.
    #[error("{0}")]
    Config(String),
}

/// The one crypto provider Osprey uses: ring. Chosen explicitly rather than
/// by the process default, which would panic if another crate enabled a
/// second provider.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
