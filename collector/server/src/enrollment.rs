//! Enrollment: a one-time token (stored hashed) buys an agent a client certificate from the
//! collector's CA that binds its signing key, host and site. Callers need no certificate yet.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use collector_app::ingest::Collector;
use collector_app::throttle::{Rate, Refusal, Throttle};
use collector_pki::{Ca, Role};
use collector_store::TokenError;
use proto_evidence::KeyId;
use proto_wire::v1;
use proto_wire::v1::enrollment_server::Enrollment;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use crate::audit_trail;

mod renewal;

/// How much unauthenticated enrollment may ask of the collector (`[enrollment]` in its
/// configuration): calls beyond these are refused with `RESOURCE_EXHAUSTED` before any work.
/// Each call takes a token from its peer's bucket and the global one, and an enrollment that
/// succeeds gives it back: the rates bound refused calls (a flood of made-up tokens), not a
/// fleet enrolling with valid ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Enrollment calls per peer address.
    pub per_peer: Rate,
    /// Enrollment calls from everyone together.
    pub global: Rate,
    /// Enrollment calls being worked on at once; more wait, up to `WAITING_PER_WORKER` per
    /// worker, and past that are refused.
    pub concurrency: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_peer: Rate {
                per_second: 1.0,
                burst: 32,
            },
            global: Rate {
                per_second: 20.0,
                burst: 200,
            },
            concurrency: 4,
        }
    }
}

/// Enrollment calls that may wait for a worker, per worker.
pub const WAITING_PER_WORKER: usize = 16;

/// Every reason an enrollment call is refused before any work, the `reason` label of
/// `veu_collector_enrollments_refused_total`.
pub const REFUSALS: [&str; 3] = ["peer_rate", "global_rate", "busy"];

/// The service; without a CA (operator-provided PKI) it refuses enrollments.
#[derive(Debug)]
pub struct EnrollmentService {
    collector: Arc<Collector>,
    ca: Option<Arc<Ca>>,
    throttle: Throttle,
    working: Arc<Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
    max_waiting: usize,
}

impl EnrollmentService {
    /// A service issuing certificates with `ca`, within `limits`.
    pub fn new(collector: Arc<Collector>, ca: Option<Arc<Ca>>, limits: Limits) -> Self {
        for reason in REFUSALS {
            collector.metrics.enrollment_refused_series(reason);
        }
        Self {
            collector,
            ca,
            throttle: Throttle::new(limits.per_peer, limits.global, Instant::now()),
            working: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            max_waiting: limits.concurrency.max(1) * WAITING_PER_WORKER,
        }
    }

    /// Admits a call within the limits, waiting for a worker if need be, or refuses it,
    /// counted but not in the audit trail (a flood would fill it). The permit bounds the calls
    /// at work; the address is the bucket the call's token came from.
    async fn admit<T>(
        &self,
        request: &Request<T>,
    ) -> Result<(tokio::sync::OwnedSemaphorePermit, IpAddr), Status> {
        let refuse = |reason: &'static str| {
            self.collector.metrics.enrollment_refused(reason);
            tracing::debug!(peer = ?request.remote_addr(), reason, "enrollment call refused");
            Status::resource_exhausted(format!(
                "too many enrollment calls ({reason}); try again in a few seconds"
            ))
        };
        // Every connection the collector serves is TCP with a peer address; without one, all
        // such callers share one bucket.
        let ip = request
            .remote_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |peer| peer.ip().to_canonical());
        match self.throttle.allow(ip, Instant::now()) {
            Ok(()) => {}
            Err(Refusal::Peer) => return Err(refuse("peer_rate")),
            Err(Refusal::Global) => return Err(refuse("global_rate")),
        }
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst);
        let permit = if waiting < self.max_waiting {
            Arc::clone(&self.working).acquire_owned().await.ok()
        } else {
            None
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match permit {
            Some(permit) => Ok((permit, ip)),
            None => {
                self.throttle.refund(&ip);
                Err(refuse("busy"))
            }
        }
    }
}

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

impl EnrollmentService {
    /// Where a token enrols: its site, the host (a rebind token's, or one named after the
    /// request's hostname), and whether it re-binds.
    fn target(
        &self,
        token: &collector_store::EnrollToken,
        hostname: &str,
        key: &KeyId,
    ) -> Result<(collector_core::Site, String, bool), Status> {
        let site = self
            .collector
            .rules
            .sites
            .get(&token.site_id)
            .ok_or_else(|| {
                Status::failed_precondition(format!(
                    "site {} is no longer in the registry",
                    token.site_id
                ))
            })?
            .clone();
        // A plain token enrols a host id nobody holds; only an administrator's rebind token
        // names an existing host, whatever the request's hostname says.
        let host = match &token.rebind_host {
            Some(host) => host.clone(),
            None => host_id(hostname, key),
        };
        Ok((site, host, token.rebind_host.is_some()))
    }

    /// Whether the books would take the enrolment; `spent` says what became of the token.
    fn check(
        &self,
        site: &collector_core::Site,
        host: &str,
        rebind: bool,
        key: KeyId,
        now: i64,
        spent: &str,
    ) -> Result<(), Status> {
        let binding = collector_core::ledger::Binding {
            at_ms: now,
            key,
            host,
            site: &site.id,
            country: site.country,
        };
        self.collector
            .state()
            .ledger
            .check_enrol(&binding, rebind)
            .map_err(|refusal| Status::already_exists(format!("{refusal}; {spent}")))
    }
}

#[tonic::async_trait]
impl Enrollment for EnrollmentService {
    async fn enroll(
        &self,
        request: Request<v1::EnrollRequest>,
    ) -> Result<Response<v1::EnrollResponse>, Status> {
        let (_working, ip) = self.admit(&request).await?;
        let who = audit_trail::caller(&request);
        let asked = request.get_ref();
        let key = proto_seal::PublicKey::from_slice(&asked.signing_public_key)
            .map(|key| key.key_id().to_string())
            .unwrap_or_else(|_| "(not a public key)".to_owned());
        let hostname = asked
            .host
            .as_ref()
            .map(|h| h.hostname.as_str())
            .unwrap_or("");
        let asked_for = format!("key {key}, hostname {hostname:?}");
        let result = self.enrol(request).await;
        let (subject, action) = match &result {
            Ok((answer, rebind)) => (
                format!(
                    "host {}, site {}, key {key}",
                    answer.get_ref().host_id,
                    answer.get_ref().site_id
                ),
                if *rebind {
                    "re-bind host"
                } else {
                    "enrol agent"
                },
            ),
            Err(_) => (asked_for, "enrol agent"),
        };
        let result = result.map(|(answer, _)| answer);
        if result.is_ok() {
            // An enrollment that succeeded costs its peer nothing.
            self.throttle.refund(&ip);
        }
        audit_trail::answer(&who, action, &subject, result)
    }

    async fn renew(
        &self,
        request: Request<v1::RenewRequest>,
    ) -> Result<Response<v1::EnrollResponse>, Status> {
        let who = audit_trail::caller(&request);
        let result = self.renew_certificate(request).await;
        let subject = match &result {
            Ok(answer) => format!(
                "host {}, site {}",
                answer.get_ref().host_id,
                answer.get_ref().site_id
            ),
            Err(_) => "the caller's own certificate".to_owned(),
        };
        audit_trail::answer(&who, "renew certificate", &subject, result)
    }
}

impl EnrollmentService {
    /// Enrols the requesting key; whether it re-bound an existing host beside the answer.
    async fn enrol(
        &self,
        request: Request<v1::EnrollRequest>,
    ) -> Result<(Response<v1::EnrollResponse>, bool), Status> {
        let Some(ca) = self.ca.clone() else {
            return Err(Status::failed_precondition(
                "this collector has no enrollment CA (operator-provided PKI): register agents with the operator's certificates",
            ));
        };
        let request = request.into_inner();
        let public_key = proto_seal::PublicKey::from_slice(&request.signing_public_key)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let key = public_key.key_id();
        let hash = token_hash(&request.token);
        let now = self.collector.now_ms();
        let hostname = request
            .host
            .as_ref()
            .map(|h| h.hostname.clone())
            .unwrap_or_default();
        // An enrolment the books would refuse is refused before its token is spent.
        let peeked =
            crate::status::blocking(&self.collector.store, move |store| store.token(&hash)).await?;
        if let Some(token) = peeked.filter(|t| t.used_at_ms.is_none() && now < t.expires_at_ms) {
            let (site, host, rebind) = self.target(&token, &hostname, &key)?;
            self.check(&site, &host, rebind, key, now, "the token was not spent")?;
        }
        let store = Arc::clone(&self.collector.store);
        let token = tokio::task::spawn_blocking(move || store.use_token(&hash, now))
            .await
            .map_err(crate::status::task)?
            .map_err(|error| match error {
                TokenError::Store(e) => crate::status::store(e),
                other => Status::permission_denied(format!("enrollment token refused: {other}")),
            })?;
        let (site, host, rebind) = self.target(&token, &hostname, &key)?;
        self.check(&site, &host, rebind, key, now, "this token is now spent")?;
        let certificate = ca
            .sign_csr(
                &request.csr_der,
                Role::Agent,
                &host,
                std::time::SystemTime::now(),
            )
            .map_err(|e| Status::invalid_argument(format!("certificate request refused: {e}")))?;
        let record = collector_app::ingest::agent_record(&public_key, &host, &site, now)
            .map_err(|e| Status::invalid_argument(format!("host id {host:?}: {e}")))?;
        let collector = Arc::clone(&self.collector);
        tokio::task::spawn_blocking(move || collector.enrol(&record, rebind))
            .await
            .map_err(crate::status::task)?
            .map_err(crate::status::admin)?;
        let answer = Response::new(v1::EnrollResponse {
            host_id: host,
            site_id: site.id,
            country: site.country.to_string(),
            certificate_chain_pem: vec![certificate],
            ca_certificate_pem: ca.ca_pem().to_owned(),
        });
        Ok((answer, rebind))
    }
}
