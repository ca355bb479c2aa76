//! A listener's TLS settings and the rustls server configuration built
//! from them.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{TlsError, pem, provider};

const CERT: &str = "the TLS certificate chain (--tls-cert, tls.cert_file)";
const KEY: &str = "the TLS private key (--tls-key, tls.key_file)";
const CLIENT_CA: &str = "the client CA (--tls-client-ca, tls.client_ca_file)";

/// TLS on a listener (`[server.tls]`; the agent's `cert_file`/`key_file`/
/// `client_ca_file` in `[agent.tls]`). With it the port speaks HTTPS only:
/// a plain HTTP request gets a failed handshake and no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// PEM certificate chain, the listener's own certificate first.
    pub cert_file: PathBuf,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificate(s). When set, every client must present a
    /// certificate signed by one of them (mutual TLS); connections without
    /// one, or with one from another CA, fail in the handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
}

impl ListenerTls {
    /// Reads the files and builds the rustls configuration (HTTP/1.1 over
    /// TLS 1.2 or 1.3). Call it at start: every error names the file at
    /// fault and what to do.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let chain = pem::certificates(&self.cert_file, CERT)?;
        let key = pem::private_key(&self.key_file, KEY)?;
        let provider = provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(format!("TLS protocol versions: {e}")))?;
        let builder = match &self.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(ca_file) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in pem::certificates(ca_file, CLIENT_CA)? {
                    roots.add(cert).map_err(|e| TlsError::Invalid {
                        what: CLIENT_CA,
                        path: ca_file.clone(),
                        reason: format!("a certificate in it is not a usable CA certificate ({e})"),
                    })?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    roots.into(),
                    provider,
                )
                .build()
                .map_err(|e| TlsError::Invalid {
                    what: CLIENT_CA,
                    path: ca_file.clone(),
                    reason: e.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| TlsError::Invalid {
            what: KEY,
            path: self.key_file.clone(),
            reason: format!(
                "it does not go with the certificate in {} ({e}); give the key the certificate was issued for",
                self.cert_file.display()
            ),
        })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
