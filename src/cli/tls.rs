//! The TLS flags of every listener (`--tls-cert`, `--tls-key`,
//! `--tls-client-ca`) and of the agent's pushes (`--server-ca`,
//! `--client-cert`, `--client-key`).

use std::path::PathBuf;

use clap::Args;
use osprey_collector::tls::ListenerTls;

/// HTTPS on a listener; each flag overrides the config file's setting.
#[derive(Debug, Args)]
pub struct ListenerTlsArgs {
    /// PEM certificate chain: serve HTTPS only (needs --tls-key).
    #[arg(long, env = "OSPREY_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "OSPREY_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA: require client certificates signed by it (mutual TLS).
    #[arg(long, env = "OSPREY_TLS_CLIENT_CA", value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
}

impl ListenerTlsArgs {
    /// The flags over the file's `tls` table: `None` for plain HTTP, an
    /// error when a certificate comes without its key or the other way
    /// round.
    pub fn apply(&self, file: Option<ListenerTls>) -> anyhow::Result<Option<ListenerTls>> {
        let (mut cert, mut key, mut client_ca) = match file {
            Some(t) => (Some(t.cert_file), Some(t.key_file), t.client_ca_file),
            None => (None, None, None),
        };
        if let Some(c) = &self.tls_cert {
            cert = Some(c.clone());
        }
        if let Some(k) = &self.tls_key {
            key = Some(k.clone());
        }
        if let Some(ca) = &self.tls_client_ca {
            client_ca = Some(ca.clone());
        }
        match (cert, key) {
            (Some(cert_file), Some(key_file)) => Ok(Some(ListenerTls {
                cert_file,
                key_file,
                client_ca_file: client_ca,
            })),
            (None, None) if client_ca.is_none() => Ok(None),
            (None, None) => anyhow::bail!(
                "--tls-client-ca needs HTTPS: give --tls-cert and --tls-key too (or cert_file and key_file in the tls table)"
            ),
            (Some(_), None) => {
                anyhow::bail!("--tls-cert needs its private key: give --tls-key too")
            }
            (None, Some(_)) => {
                anyhow::bail!("--tls-key needs its certificate: give --tls-cert too")
            }
        }
    }
}
