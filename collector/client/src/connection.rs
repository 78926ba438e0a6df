//! TLS material and channels.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::ClientError;

/// How long a connection may take to come up, unless the caller says otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS client certificate and its key, PEM.
#[derive(Clone, PartialEq, Eq)]
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

impl Credential {
    /// A certificate and key from PEM text.
    pub fn from_pem(cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        Self {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
        }
    }

    /// A certificate and key from their files.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, ClientError> {
        Ok(Self {
            cert_pem: read_pem(cert)?,
            key_pem: read_pem(key)?,
        })
    }

    /// `dir/<name>.pem` and `dir/<name>.key`, as `veu-collector pki init` writes them.
    pub fn from_pki_dir(pki_dir: &Path, name: &str) -> Result<Self, ClientError> {
        Self::from_files(
            &pki_dir.join(format!("{name}.pem")),
            &pki_dir.join(format!("{name}.key")),
        )
    }
}

/// How a client recognises the collector and, optionally, who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// PEM of the CA that signs the collector's certificate.
    pub ca_pem: Vec<u8>,
    /// The name (DNS or IP) the collector's certificate must carry; also the SNI sent.
    pub server_name: String,
    /// The client certificate to present; `None` for a host that has none yet (enrollment).
    pub identity: Option<Credential>,
}

impl ClientTls {
    /// Recognise the collector by `ca_pem` and `server_name`; present no certificate.
    pub fn new(ca_pem: impl Into<Vec<u8>>, server_name: impl Into<String>) -> Self {
        Self {
            ca_pem: ca_pem.into(),
            server_name: server_name.into(),
            identity: None,
        }
    }

    /// The same, presenting `credential`.
    #[must_use]
    pub fn with_identity(mut self, credential: Credential) -> Self {
        self.identity = Some(credential);
        self
    }

    fn config(&self) -> ClientTlsConfig {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name(self.server_name.clone());
        if let Some(credential) = &self.identity {
            tls = tls.identity(Identity::from_pem(
                &credential.cert_pem,
                &credential.key_pem,
            ));
        }
        tls
    }
}

/// A collector's address and the TLS to reach it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `https://127.0.0.1:7443`.
    pub endpoint: String,
    /// Recognising the collector, and who asks.
    pub tls: ClientTls,
    /// How long the connection may take to come up; `None`: as long as the system allows.
    pub connect_timeout: Option<Duration>,
}

impl Connection {
    /// `endpoint` over `tls`, with [`CONNECT_TIMEOUT`].
    pub fn new(endpoint: impl Into<String>, tls: ClientTls) -> Self {
        Self {
            endpoint: endpoint.into(),
            tls,
            connect_timeout: Some(CONNECT_TIMEOUT),
        }
    }

    /// The same with `timeout` (`None`: no timeout of its own).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A connected channel.
    pub async fn connect(&self) -> Result<Channel, ClientError> {
        let mut endpoint = Channel::from_shared(self.endpoint.clone())
            .map_err(|error| ClientError::Endpoint {
                endpoint: self.endpoint.clone(),
                reason: error.to_string(),
            })?
            .tls_config(self.tls.config())
            .map_err(|error| ClientError::Tls {
                endpoint: self.endpoint.clone(),
                cause: veu_daemon_kit::error_chain(&error),
            })?;
        if let Some(timeout) = self.connect_timeout {
            endpoint = endpoint.connect_timeout(timeout);
        }
        endpoint
            .connect()
            .await
            .map_err(|error| ClientError::Connect {
                endpoint: self.endpoint.clone(),
                cause: veu_daemon_kit::error_chain(&error),
            })
    }
}

/// A PEM file's bytes.
pub fn read_pem(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|error| ClientError::Read {
        path: path.to_path_buf(),
        error,
    })
}
