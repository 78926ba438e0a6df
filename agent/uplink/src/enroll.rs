//! Enrollment: trade a one-time token for a client certificate. The agent makes a fresh TLS
//! key and a certificate request, sends them with its signing public key, and gets back a
//! certificate from the collector's CA that binds key, host and site.

use std::time::Duration;

use proto_wire::v1;
use proto_wire::v1::enrollment_client::EnrollmentClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use veu_daemon_kit::error_chain;

/// What to enroll with.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// `https://collector.example:7443`.
    pub endpoint: String,
    /// The name the collector's certificate carries.
    pub server_name: String,
    /// PEM of the CA that signs the collector's certificate.
    pub ca_pem: Vec<u8>,
    /// The one-time token from `veuctl enroll-token`.
    pub token: String,
    /// The raw Ed25519 public key attestations are signed with.
    pub signing_public_key: [u8; 32],
    /// The host id the agent asks for.
    pub host_id: String,
}

/// What enrollment gave.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The host id the collector bound the key to.
    pub host_id: String,
    /// The site of the token.
    pub site_id: String,
    /// The site's country.
    pub country: String,
    /// The client certificate, PEM.
    pub certificate_pem: String,
    /// Its private key (the TLS key, not the signing key), PKCS#8 PEM.
    pub key_pem: String,
    /// The collector's CA, PEM.
    pub ca_pem: String,
}

/// Why enrollment failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The TLS key or request could not be made.
    #[error("cannot make the certificate request: {0}")]
    Request(String),
    /// The collector could not be reached.
    #[error("cannot reach the collector at {endpoint}: {message}")]
    Connect {
        /// The URL.
        endpoint: String,
        /// Why.
        message: String,
    },
    /// The collector refused.
    #[error("the collector refused enrollment: {0}")]
    Refused(String),
}

/// Enrolls this agent.
pub async fn enroll(request: &Enrollment) -> Result<Enrolled, EnrollError> {
    let key = rcgen::KeyPair::generate().map_err(|e| EnrollError::Request(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| EnrollError::Request(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, request.host_id.clone());
    let csr = params
        .serialize_request(&key)
        .map_err(|e| EnrollError::Request(e.to_string()))?;

    let connect = |message: String| EnrollError::Connect {
        endpoint: request.endpoint.clone(),
        message,
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&request.ca_pem))
        .domain_name(request.server_name.clone());
    let channel = Channel::from_shared(request.endpoint.clone())
        .map_err(|e| connect(e.to_string()))?
        .tls_config(tls)
        .map_err(|e| connect(e.to_string()))?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| connect(error_chain(&e)))?;
    let response = EnrollmentClient::new(channel)
        .enroll(v1::EnrollRequest {
            token: request.token.trim().to_owned(),
            signing_public_key: request.signing_public_key.to_vec(),
            csr_der: csr.der().to_vec(),
            host: Some(v1::HostFacts {
                hostname: request.host_id.clone(),
                ..v1::HostFacts::default()
            }),
        })
        .await
        .map_err(|status| EnrollError::Refused(status.message().to_owned()))?
        .into_inner();
    let certificate = response
        .certificate_chain_pem
        .first()
        .ok_or_else(|| EnrollError::Refused("no certificate in the answer".into()))?;
    Ok(Enrolled {
        host_id: response.host_id,
        site_id: response.site_id,
        country: response.country,
        certificate_pem: certificate.clone(),
        key_pem: key.serialize_pem(),
        ca_pem: response.ca_certificate_pem,
    })
}

/// What to renew a certificate with: the current, still valid credential.
#[derive(Debug, Clone)]
pub struct Renewal {
    /// `https://collector.example:7443`.
    pub endpoint: String,
    /// The name the collector's certificate carries.
    pub server_name: String,
    /// PEM of the CA that signs the collector's certificate.
    pub ca_pem: Vec<u8>,
    /// The current client certificate, PEM.
    pub certificate_pem: Vec<u8>,
    /// Its TLS key, PEM: the renewed certificate is for the same key.
    pub key_pem: Vec<u8>,
    /// The raw Ed25519 public key attestations are signed with.
    pub signing_public_key: [u8; 32],
}

/// Gets a fresh certificate for the current TLS key from the collector, authenticated by the
/// current certificate; returns it, PEM.
pub async fn renew(request: &Renewal) -> Result<String, EnrollError> {
    let key_pem = std::str::from_utf8(&request.key_pem)
        .map_err(|_| EnrollError::Request("the TLS key is not PEM".into()))?;
    let key = rcgen::KeyPair::from_pem(key_pem).map_err(|e| EnrollError::Request(e.to_string()))?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .and_then(|params| params.serialize_request(&key))
        .map_err(|e| EnrollError::Request(e.to_string()))?;
    let connect = |message: String| EnrollError::Connect {
        endpoint: request.endpoint.clone(),
        message,
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&request.ca_pem))
        .identity(Identity::from_pem(
            &request.certificate_pem,
            &request.key_pem,
        ))
        .domain_name(request.server_name.clone());
    let channel = Channel::from_shared(request.endpoint.clone())
        .map_err(|e| connect(e.to_string()))?
        .tls_config(tls)
        .map_err(|e| connect(e.to_string()))?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| connect(error_chain(&e)))?;
    let response = EnrollmentClient::new(channel)
        .renew(v1::RenewRequest {
            signing_public_key: request.signing_public_key.to_vec(),
            csr_der: csr.der().to_vec(),
        })
        .await
        .map_err(|status| EnrollError::Refused(status.message().to_owned()))?
        .into_inner();
    response
        .certificate_chain_pem
        .into_iter()
        .next()
        .ok_or_else(|| EnrollError::Refused("no certificate in the answer".into()))
}
