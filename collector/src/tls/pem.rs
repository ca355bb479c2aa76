//! Certificates and private keys from PEM files.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate (`-----BEGIN CERTIFICATE-----`) in `path`, in file
/// order; an error unless there is at least one. `what` says what the
/// file is for, in error messages (e.g. "the TLS certificate
/// (--tls-cert, cert_file)").
pub fn certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path, what)?;
    let invalid = |reason: String| TlsError::Invalid {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("it is not valid PEM ({e})")))?;
    if certs.is_empty() {
        return Err(invalid(
            "it holds no PEM certificate (a \"-----BEGIN CERTIFICATE-----\" block); give the certificate in PEM form (convert DER with `openssl x509 -inform der -in FILE -out FILE.pem`)".into(),
        ));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in `path`.
pub fn private_key(path: &Path, what: &'static str) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path, what)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Invalid {
        what,
        path: path.to_path_buf(),
        reason: match e {
            rustls::pki_types::pem::Error::NoItemsFound => "it holds no PEM private key (a \"-----BEGIN PRIVATE KEY-----\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\" block); give the unencrypted key that goes with the certificate".into(),
            e => format!("it is not valid PEM ({e})"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = certificates(&missing, "the TLS certificate").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("missing.pem"), "{text}");
        assert!(text.contains("the TLS certificate"), "{text}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let text = certificates(&garbage, "the CA").unwrap_err().to_string();
        assert!(
            text.contains("garbage.pem") && text.contains("no PEM certificate"),
            "{text}"
        );
        let text = private_key(&garbage, "the key").unwrap_err().to_string();
        assert!(
            text.contains("garbage.pem") && text.contains("no PEM private key"),
            "{text}"
        );
    }
}
