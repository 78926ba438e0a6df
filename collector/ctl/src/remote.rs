//! Connecting to a collector as an admin or auditor: mutual TLS with the caller's certificate.

use std::path::PathBuf;

use anyhow::anyhow;
use collector_client::{Audit, Channel, ClientError, ClientTls, Connection, Credential, read_pem};

use crate::Failure;

/// Where the collector is and who is asking.
#[derive(Debug, Clone, clap::Args)]
pub struct CollectorArgs {
    /// The collector's gRPC endpoint.
    #[arg(
        long,
        value_name = "URL",
        env = "VEU_COLLECTOR",
        default_value = "https://127.0.0.1:7443"
    )]
    pub collector: String,
    /// The name the collector's certificate carries (default: the URL's host).
    #[arg(long, value_name = "NAME", env = "VEU_SERVER_NAME")]
    pub server_name: Option<String>,
    /// Directory of a development PKI (`veu-collector pki init`): uses its ca.pem and the
    /// certificate and key of the command's role (admin.pem and admin.key for admin commands,
    /// auditor.pem and auditor.key for `audit` and `log` unless --role admin).
    #[arg(long, value_name = "DIR", env = "VEU_PKI_DIR")]
    pub pki_dir: Option<PathBuf>,
    /// CA that signs the collector's certificate (overrides the PKI directory's).
    #[arg(long, value_name = "FILE", env = "VEU_CA")]
    pub ca: Option<PathBuf>,
    /// Client certificate (overrides the PKI directory's).
    #[arg(long, value_name = "FILE", env = "VEU_CERT")]
    pub cert: Option<PathBuf>,
    /// Client key (overrides the PKI directory's).
    #[arg(long, value_name = "FILE", env = "VEU_KEY")]
    pub key: Option<PathBuf>,
}

impl CollectorArgs {
    /// A connected channel, identified as `role` ("admin" or "auditor") from the PKI directory.
    pub async fn connect(&self, role: &str) -> Result<Channel, Failure> {
        let pick = |explicit: &Option<PathBuf>, file: &str| -> Result<PathBuf, Failure> {
            explicit
                .clone()
                .or_else(|| self.pki_dir.as_ref().map(|dir| dir.join(file)))
                .ok_or_else(|| {
                    Failure::bad_input(anyhow!(
                        "give --pki-dir, or --ca, --cert and --key, to reach the collector"
                    ))
                })
        };
        let read = |path: PathBuf| read_pem(&path).map_err(Failure::bad_input);
        let ca = read(pick(&self.ca, "ca.pem")?)?;
        let cert = read(pick(&self.cert, &format!("{role}.pem"))?)?;
        let key = read(pick(&self.key, &format!("{role}.key"))?)?;
        let server_name = self
            .server_name
            .clone()
            .or_else(|| proto_config::url_host(&self.collector))
            .unwrap_or_default();
        let tls =
            ClientTls::new(ca, server_name.clone()).with_identity(Credential::from_pem(cert, key));
        Connection::new(self.collector.clone(), tls)
            .connect()
            .await
            .map_err(|error| match error {
                ClientError::Endpoint { endpoint, reason } => {
                    Failure::bad_input(anyhow!("invalid --collector {endpoint}: {reason}"))
                }
                ClientError::Tls { cause, .. } | ClientError::Connect { cause, .. } => Failure {
                    status: 1,
                    error: anyhow!(
                        "cannot reach the collector at {}: {cause}{}",
                        self.collector,
                        name_hint(&cause, &server_name)
                    ),
                },
                other => other.into(),
            })
    }
}

/// Who asks the audit service: `--role`, with the collector's address and credentials.
#[derive(Debug, Clone, clap::Args)]
pub struct ReaderArgs {
    #[command(flatten)]
    pub collector: CollectorArgs,
    /// Which of the PKI directory's certificates to present. The audit service answers
    /// auditors and admins alike.
    #[arg(long, value_enum, default_value_t = Reader::Auditor)]
    pub role: Reader,
}

/// A role that may read the audit service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Reader {
    /// auditor.pem and auditor.key: read-only, the least privilege.
    Auditor,
    /// admin.pem and admin.key.
    Admin,
}

impl ReaderArgs {
    /// A connected audit client.
    pub async fn audit(&self) -> Result<Audit, Failure> {
        let role = match self.role {
            Reader::Auditor => "auditor",
            Reader::Admin => "admin",
        };
        Ok(Audit::new(self.collector.connect(role).await?))
    }
}

/// A call that failed, or a client that could not be set up: the client's words, status 1.
impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Failure {
            status: 1,
            error: error.into(),
        }
    }
}

/// Runs an async command on a small runtime.
pub fn block_on<T>(future: impl Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure {
            status: 1,
            error: e.into(),
        })?
        .block_on(future)
}

/// What to do when the collector's certificate does not carry the name this connection checks
/// (the URL's host unless --server-name): connecting by IP address to a collector certified
/// for its DNS name, say.
fn name_hint(cause: &str, server_name: &str) -> String {
    if cause.contains("not valid for name") || cause.contains("NotValidForName") {
        format!(
            "\nthe collector's certificate does not carry the name {server_name:?}: give \
             --server-name NAME (or VEU_SERVER_NAME) with a name it carries, such as one \
             `veu-collector pki init --server-name` was given"
        )
    } else {
        String::new()
    }
}
