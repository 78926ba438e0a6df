//! Enrollment: a one-time token (stored hashed) buys an agent a client certificate from the
//! collector's CA that binds its signing key, host and site. Callers need no certificate yet.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use collector_app::enrollment::TokenEnrolment;
use collector_app::ingest::Collector;
use collector_app::throttle::{Rate, Refusal, Throttle};
use collector_pki::Ca;
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
        let request = request.into_inner();
        let hostname = request
            .host
            .as_ref()
            .map(|h| h.hostname.clone())
            .unwrap_or_default();
        let enrolled = self
            .collector
            .enrol_with_token(
                self.ca.as_deref(),
                TokenEnrolment {
                    signing_public_key: &request.signing_public_key,
                    token: &request.token,
                    hostname: &hostname,
                    csr_der: &request.csr_der,
                },
            )
            .await
            .map_err(crate::status::enrolment)?;
        let answer = Response::new(v1::EnrollResponse {
            host_id: enrolled.host_id,
            site_id: enrolled.site.id,
            country: enrolled.site.country.to_string(),
            certificate_chain_pem: vec![enrolled.certificate_pem],
            ca_certificate_pem: enrolled.ca_pem,
        });
        Ok((answer, enrolled.rebind))
    }
}
