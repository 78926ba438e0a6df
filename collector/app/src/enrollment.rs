//! Enrolment with a one-time token (stored hashed): the token buys an agent a client
//! certificate from the collector's CA that binds its signing key, host and site. An
//! enrolment the books would refuse is refused before its token is spent.

use std::sync::Arc;

use collector_core::{EnrolRefusal, Site};
use collector_pki::{Ca, Role};
use collector_store::{EnrollToken, StoreError, TokenError};
use proto_evidence::KeyId;

use crate::ingest::{AdminError, Collector, agent_record};

/// The printable token: 64 hex digits of a 32-byte secret.
pub fn token_text(secret: &[u8; 32]) -> String {
    veu_daemon_kit::hex(secret)
}

/// What the store keeps of a token: its SHA-256.
pub fn token_hash(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.trim().as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

/// A host id from the enrolling host's name: the characters identifiers allow.
fn host_id(hostname: &str, key: &KeyId) -> String {
    let cleaned: String = hostname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(128)
        .collect();
    if cleaned.is_empty() {
        format!("host-{}", &key.to_string()[..16])
    } else {
        cleaned
    }
}

/// An enrolment as an agent asks for it.
#[derive(Debug, Clone, Copy)]
pub struct TokenEnrolment<'a> {
    /// The agent's Ed25519 signing key, raw.
    pub signing_public_key: &'a [u8],
    /// The one-time token, as printed.
    pub token: &'a str,
    /// The host's name, from which a plain token's host id is made.
    pub hostname: &'a str,
    /// The certificate request, DER.
    pub csr_der: &'a [u8],
}

/// An enrolment done.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The host the key is bound to.
    pub host_id: String,
    /// Its site.
    pub site: Site,
    /// The agent's client certificate, PEM.
    pub certificate_pem: String,
    /// The CA's certificate, PEM.
    pub ca_pem: String,
    /// Whether the enrolment re-bound an existing host (an administrator's rebind token).
    pub rebind: bool,
}

/// Why an enrolment was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrolmentError {
    /// The collector has no enrollment CA.
    #[error(
        "this collector has no enrollment CA (operator-provided PKI): register agents with the operator's certificates"
    )]
    NoCa,
    /// Not an Ed25519 public key.
    #[error("{0}")]
    Key(#[from] proto_seal::KeyError),
    /// The token's site has left the registry.
    #[error("site {0} is no longer in the registry")]
    SiteGone(String),
    /// The books refuse the enrolment; `spent` says what became of the token.
    #[error("{refusal}; {spent}")]
    Refused {
        /// The books' refusal.
        refusal: EnrolRefusal,
        /// What became of the token.
        spent: &'static str,
    },
    /// The token is unknown, expired or used.
    #[error("enrollment token refused: {0}")]
    Token(TokenError),
    /// The certificate request is refused.
    #[error("certificate request refused: {0}")]
    Certificate(collector_pki::PkiError),
    /// The host id is not one a certificate may carry.
    #[error("host id {host:?}: {error}")]
    HostId {
        /// The host id.
        host: String,
        /// Why.
        error: collector_pki::IdentityError,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A blocking task did not finish.
    #[error("a blocking task did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The books refused or the store failed while enrolling.
    #[error(transparent)]
    Admin(#[from] AdminError),
}

impl Collector {
    /// Enrols `request`'s key with its token and `ca`: the token is checked without being
    /// spent, then spent, the enrolment checked again against the books, the certificate
    /// request signed, and the key enrolled.
    pub async fn enrol_with_token(
        self: &Arc<Self>,
        ca: Option<&Ca>,
        request: TokenEnrolment<'_>,
    ) -> Result<Enrolled, EnrolmentError> {
        let Some(ca) = ca else {
            return Err(EnrolmentError::NoCa);
        };
        let public_key = proto_seal::PublicKey::from_slice(request.signing_public_key)?;
        let key = public_key.key_id();
        let hash = token_hash(request.token);
        let now = self.now_ms();
        // An enrolment the books would refuse is refused before its token is spent.
        let store = Arc::clone(&self.store);
        let peeked = tokio::task::spawn_blocking(move || store.token(&hash)).await??;
        if let Some(token) = peeked.filter(|t| t.used_at_ms.is_none() && now < t.expires_at_ms) {
            let (site, host, rebind) = self.target(&token, request.hostname, &key)?;
            self.check(&site, &host, rebind, key, now, "the token was not spent")?;
        }
        let store = Arc::clone(&self.store);
        let token = tokio::task::spawn_blocking(move || store.use_token(&hash, now))
            .await?
            .map_err(|error| match error {
                TokenError::Store(e) => EnrolmentError::Store(e),
                other => EnrolmentError::Token(other),
            })?;
        let (site, host, rebind) = self.target(&token, request.hostname, &key)?;
        self.check(&site, &host, rebind, key, now, "this token is now spent")?;
        let certificate = ca
            .sign_csr(
                request.csr_der,
                Role::Agent,
                &host,
                std::time::SystemTime::now(),
            )
            .map_err(EnrolmentError::Certificate)?;
        let record = agent_record(&public_key, &host, &site, now).map_err(|error| {
            EnrolmentError::HostId {
                host: host.clone(),
                error,
            }
        })?;
        let collector = Arc::clone(self);
        tokio::task::spawn_blocking(move || collector.enrol(&record, rebind)).await??;
        Ok(Enrolled {
            host_id: host,
            site,
            certificate_pem: certificate,
            ca_pem: ca.ca_pem().to_owned(),
            rebind,
        })
    }

    /// Where a token enrols: its site, the host (a rebind token's, or one named after the
    /// request's hostname), and whether it re-binds.
    fn target(
        &self,
        token: &EnrollToken,
        hostname: &str,
        key: &KeyId,
    ) -> Result<(Site, String, bool), EnrolmentError> {
        let site = self
            .rules
            .sites
            .get(&token.site_id.0)
            .ok_or_else(|| EnrolmentError::SiteGone(token.site_id.0.clone()))?
            .clone();
        // A plain token enrols a host id nobody holds; only an administrator's rebind token
        // names an existing host, whatever the request's hostname says.
        let host = match &token.rebind_host {
            Some(host) => host.0.clone(),
            None => host_id(hostname, key),
        };
        Ok((site, host, token.rebind_host.is_some()))
    }

    /// Whether the books would take the enrolment; `spent` says what became of the token.
    fn check(
        &self,
        site: &Site,
        host: &str,
        rebind: bool,
        key: KeyId,
        now: i64,
        spent: &'static str,
    ) -> Result<(), EnrolmentError> {
        let binding = collector_core::ledger::Binding {
            at_ms: now,
            key,
            host,
            site: &site.id,
            country: site.country,
        };
        self.state()
            .ledger
            .check_enrol(&binding, rebind)
            .map_err(|refusal| EnrolmentError::Refused { refusal, spent })
    }
}

/// A certificate renewed.
#[derive(Debug, Clone)]
pub struct Renewed {
    /// The host the key is bound to.
    pub host_id: String,
    /// Its site.
    pub site_id: String,
    /// Its country; empty when the books no longer hold the key.
    pub country: String,
    /// The agent's new client certificate, PEM.
    pub certificate_pem: String,
    /// The CA's certificate, PEM.
    pub ca_pem: String,
}

/// Why a renewal was refused.
#[derive(Debug, thiserror::Error)]
pub enum RenewalError {
    /// Not an Ed25519 public key.
    #[error("{0}")]
    Key(#[from] proto_seal::KeyError),
    /// The key, the host or the certificate presented do not match.
    #[error("renewal refused: {0}")]
    Refused(&'static str),
    /// The certificate request is refused.
    #[error("certificate request refused: {0}")]
    Certificate(collector_pki::PkiError),
}

impl Collector {
    /// Renews the certificate of agent `host`, who presented `presented` (DER): the signing
    /// key must be enrolled for that host and not revoked, and the request must be for the key
    /// of the certificate presented. No token, no change to the books.
    pub async fn renew_certificate(
        &self,
        ca: &Ca,
        host: &str,
        presented: &[u8],
        signing_public_key: &[u8],
        csr_der: &[u8],
    ) -> Result<Renewed, RenewalError> {
        let public_key = proto_seal::PublicKey::from_slice(signing_public_key)?;
        let key = public_key.key_id();
        let refused = |why: &'static str| {
            tracing::warn!(caller = %format!("urn:veu:agent:{host}"), key = %key, why, "certificate renewal refused");
            RenewalError::Refused(why)
        };
        let agent = self
            .agent(&key)
            .await
            .ok_or_else(|| refused("the signing key is not enrolled"))?;
        let revoked = self
            .state()
            .ledger
            .key(&key)
            .is_none_or(|record| record.revoked_at_ms.is_some());
        if revoked {
            return Err(refused("the signing key is revoked"));
        }
        if agent.binding.host_id != host
            || agent.binding.identity != format!("urn:veu:agent:{host}")
        {
            return Err(refused(
                "the certificate presented names another host than the signing key's",
            ));
        }
        if !collector_pki::same_key(csr_der, presented) {
            return Err(refused(
                "the request is not for the key of the certificate presented",
            ));
        }
        let certificate = ca
            .sign_csr(csr_der, Role::Agent, host, std::time::SystemTime::now())
            .map_err(RenewalError::Certificate)?;
        let country = self
            .state()
            .ledger
            .key(&key)
            .map(|record| record.country.to_string())
            .unwrap_or_default();
        tracing::info!(host, key = %key, "agent certificate renewed");
        Ok(Renewed {
            host_id: agent.binding.host_id,
            site_id: agent.binding.site_id,
            country,
            certificate_pem: certificate,
            ca_pem: ca.ca_pem().to_owned(),
        })
    }
}
