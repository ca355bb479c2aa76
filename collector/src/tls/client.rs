//! How the agent's pushes (remote-write, logs) verify the server and
//! prove who they are.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};

use super::{TlsError, pem, provider};

const SERVER_CA: &str = "the server CA (--server-ca, tls.server_ca)";
const CLIENT_CERT: &str = "the client certificate (--client-cert, tls.client_cert)";
const CLIENT_KEY: &str = "the client key (--client-key, tls.client_key)";
const PINNED: &str = "the pinned server certificate (tls.pinned_server_cert)";

/// TLS settings of an HTTPS client. All empty (the default): the Mozilla
/// roots built into the binary verify the server and no client
/// certificate is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientTls {
    /// PEM CA certificate(s) the server's certificate must be signed by;
    /// when set, only these are trusted (not the built-in roots).
    pub server_ca: Option<PathBuf>,
    /// PEM certificate chain presented to a server that asks for one
    /// (mutual TLS). Needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Trust exactly the first certificate in this PEM file, whatever
    /// names it carries and whoever signed it (the server must still prove
    /// it holds its key). `osprey up` uses it for its agent, which reaches
    /// its own server on loopback under a name the certificate need not
    /// carry. Wins over `server_ca`.
    pub pinned_server_cert: Option<PathBuf>,
}

impl ClientTls {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Reads the files and builds the rustls client configuration, or
    /// `None` when nothing is set (the HTTP client's defaults apply).
    pub fn rustls_config(&self) -> Result<Option<rustls::ClientConfig>, TlsError> {
        if self.is_empty() {
            return Ok(None);
        }
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(format!("TLS protocol versions: {e}")))?;
        let builder = if let Some(pinned) = &self.pinned_server_cert {
            let cert = pem::certificates(pinned, PINNED)?.swap_remove(0);
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedServerCert {
                    cert,
                    algorithms: provider.signature_verification_algorithms,
                }))
        } else {
            let mut roots = rustls::RootCertStore::empty();
            match &self.server_ca {
                Some(ca_file) => {
                    for cert in pem::certificates(ca_file, SERVER_CA)? {
                        roots.add(cert).map_err(|e| TlsError::Invalid {
                            what: SERVER_CA,
                            path: ca_file.clone(),
                            reason: format!(
                                "a certificate in it is not a usable CA certificate ({e})"
                            ),
                        })?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots)
        };
        let config = match (&self.client_cert, &self.client_key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert_file), Some(key_file)) => {
                let chain = pem::certificates(cert_file, CLIENT_CERT)?;
                let key = pem::private_key(key_file, CLIENT_KEY)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsError::Invalid {
                        what: CLIENT_KEY,
                        path: key_file.clone(),
                        reason: format!(
                            "it does not go with the certificate in {} ({e}); give the key the certificate was issued for",
                            cert_file.display()
                        ),
                    })?
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(TlsError::Config(
                    "a client certificate needs its key: give both --client-cert and --client-key (tls.client_cert, tls.client_key) or neither".into(),
                ));
            }
        };
        Ok(Some(config))
    }
}

/// Builds a reqwest client with `tls` applied; `configure` sets the rest
/// (timeouts). `tls` is what [`ClientTls::rustls_config`] returned.
pub fn async_client(
    tls: Option<rustls::ClientConfig>,
    configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> reqwest::Result<reqwest::Client> {
    let mut builder = configure(reqwest::Client::builder());
    if let Some(tls) = tls {
        builder = builder.use_preconfigured_tls(tls);
    }
    builder.build()
}

/// [`async_client`] for reqwest's blocking client.
pub fn blocking_client(
    tls: Option<rustls::ClientConfig>,
    configure: impl FnOnce(reqwest::blocking::ClientBuilder) -> reqwest::blocking::ClientBuilder,
) -> reqwest::Result<reqwest::blocking::Client> {
    let mut builder = configure(reqwest::blocking::Client::builder());
    if let Some(tls) = tls {
        builder = builder.use_preconfigured_tls(tls);
    }
    builder.build()
}

/// What to do about a request that failed in the TLS handshake, or `None`
/// when `error` is not a TLS failure. Looks through the error's causes
/// (reqwest nests the rustls error in I/O errors).
pub fn failure_hint(error: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    rustls_cause(error).map(hint)
}

fn rustls_cause<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    // An I/O error's `source` skips the error it wraps: look inside.
    if let Some(inner) = error
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        && let Some(tls) = rustls_cause(inner)
    {
        return Some(tls);
    }
    error.source().and_then(rustls_cause)
}

fn hint(error: &rustls::Error) -> &'static str {
    use rustls::AlertDescription as Alert;
    match error {
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => {
            "the server's certificate is not signed by a CA this agent trusts: give the CA that signed it with --server-ca (tls.server_ca)"
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => {
            "the server's certificate does not carry the host name of the URL: use a name (or IP) the certificate lists"
        }
        rustls::Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => "the server's certificate is expired or not yet valid: renew it (or check the clock)",
        rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure) => {
            "the server's certificate is not the pinned one (tls.pinned_server_cert)"
        }
        rustls::Error::InvalidCertificate(_) => {
            "the server's certificate was refused: check it against --server-ca (tls.server_ca)"
        }
        rustls::Error::AlertReceived(
            Alert::CertificateRequired
            | Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::AccessDenied
            | Alert::HandshakeFailure,
        ) => {
            "the server refused this agent's client certificate or wants one: give one signed by the server's client CA with --client-cert and --client-key"
        }
        _ => {
            "the TLS handshake failed: check that the URL's port speaks HTTPS and the TLS settings (tls.server_ca, client_cert, client_key)"
        }
    }
}

/// Trusts exactly one certificate, checking that the server holds its key.
#[derive(Debug)]
struct PinnedServerCert {
    cert: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_hint_finds_the_rustls_error_inside_nested_io_errors() {
        // As hyper-rustls hands it to reqwest: io::Error(io::Error(rustls)).
        let tls = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let nested =
            std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, tls));
        let hint = failure_hint(&nested).expect("a TLS failure");
        assert!(hint.contains("--server-ca"), "{hint}");
        let refused = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        assert!(failure_hint(&refused).unwrap().contains("--client-cert"));
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(failure_hint(&plain), None);
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let half = ClientTls {
            client_cert: Some("agent.crt".into()),
            ..ClientTls::default()
        };
        let e = half.rustls_config().unwrap_err().to_string();
        assert!(e.contains("--client-key"), "{e}");
        assert!(ClientTls::default().rustls_config().unwrap().is_none());
    }
}
