//! Channels to the collector over TLS with its name pinned: the admin's (admin client
//! certificate), the enrollment one (no client certificate yet) and one per simulated agent
//! (its enrolled certificate), each its own connection as on a real fleet.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// How long a connection may take to come up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the collector is and how to recognise it.
#[derive(Debug, Clone)]
pub struct Target {
    /// `https://127.0.0.1:7443`.
    pub endpoint: String,
    /// The name (DNS or IP) the collector's certificate carries.
    pub server_name: String,
    /// PEM of the CA that signs the collector's certificate.
    pub ca_pem: Vec<u8>,
}

/// A TLS client certificate and its key, PEM.
#[derive(Clone)]
pub struct Credential {
    /// Certificate chain.
    pub cert_pem: Vec<u8>,
    /// Private key.
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("cert_pem", &String::from_utf8_lossy(&self.cert_pem))
            .field("key_pem", &"[elided]")
            .finish()
    }
}

/// A channel that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A PEM file is missing or unreadable.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The URL or the TLS material was refused.
    #[error("invalid collector endpoint {endpoint}: {message}")]
    Endpoint {
        /// The URL.
        endpoint: String,
        /// Why.
        message: String,
    },
    /// No connection.
    #[error("cannot connect to {endpoint}: {message}")]
    Connect {
        /// The URL.
        endpoint: String,
        /// Why, with its sources.
        message: String,
    },
}

impl Target {
    /// The target whose CA is `pki_dir/ca.pem`, as `veu-collector pki init` writes it.
    pub fn from_pki_dir(
        endpoint: &str,
        server_name: &str,
        pki_dir: &Path,
    ) -> Result<Self, TransportError> {
        Ok(Self {
            endpoint: endpoint.to_owned(),
            server_name: server_name.to_owned(),
            ca_pem: read(&pki_dir.join("ca.pem"))?,
        })
    }

    /// Connects, presenting `identity` when given.
    pub async fn connect(&self, identity: Option<&Credential>) -> Result<Channel, TransportError> {
        self.endpoint_with(identity)?
            .connect()
            .await
            .map_err(|error| TransportError::Connect {
                endpoint: self.endpoint.clone(),
                message: chain(&error),
            })
    }

    fn endpoint_with(&self, identity: Option<&Credential>) -> Result<Endpoint, TransportError> {
        let invalid = |message: String| TransportError::Endpoint {
            endpoint: self.endpoint.clone(),
            message,
        };
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name(self.server_name.clone());
        if let Some(credential) = identity {
            tls = tls.identity(Identity::from_pem(
                &credential.cert_pem,
                &credential.key_pem,
            ));
        }
        Channel::from_shared(self.endpoint.clone())
            .map_err(|error| invalid(error.to_string()))?
            .tls_config(tls)
            .map_err(|error| invalid(chain(&error)))
            .map(|endpoint| endpoint.connect_timeout(CONNECT_TIMEOUT))
    }
}

impl Credential {
    /// `dir/<name>.pem` and `dir/<name>.key`, as `veu-collector pki init` writes them.
    pub fn from_pki_dir(pki_dir: &Path, name: &str) -> Result<Self, TransportError> {
        Ok(Self {
            cert_pem: read(&pki_dir.join(format!("{name}.pem")))?,
            key_pem: read(&pki_dir.join(format!("{name}.key")))?,
        })
    }
}

pub use proto_config::url_host as host_of;

fn read(path: &Path) -> Result<Vec<u8>, TransportError> {
    std::fs::read(path).map_err(|error| TransportError::Read {
        path: path.display().to_string(),
        error,
    })
}

/// An error with its sources, `a: b: c`.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let next = inner.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_server_name_is_the_urls_host() {
        for (url, host) in [
            ("https://127.0.0.1:7443", Some("127.0.0.1")),
            (
                "https://collector.example.com:7443/",
                Some("collector.example.com"),
            ),
            (
                "https://collector.example.com",
                Some("collector.example.com"),
            ),
            ("https://[::1]:7443", Some("::1")),
            ("https://:7443", None),
        ] {
            assert_eq!(host_of(url).as_deref(), host, "{url}");
        }
    }
}
