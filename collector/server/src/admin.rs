//! The admin service: live status, enrollment tokens, agents, decommissioning (admin role).

use std::sync::Arc;

use collector_app::ingest::{AdminError, Collector};
use collector_pki::Role;
use collector_store::EnrollToken;
use proto_accounting::{Distribution, Tier, Verdict, evaluate_located};
use proto_evidence::{HostId, KeyId, Sha256, SiteId};
use proto_wire::v1;
use proto_wire::v1::admin_server::Admin;
use tonic::{Request, Response, Status};
use veu_daemon_kit::hex;

use crate::{audit_trail, identity};

/// Default validity of an enrollment token.
const DEFAULT_TOKEN_SECONDS: u32 = 24 * 3600;

/// The service.
#[derive(Debug, Clone)]
pub struct AdminService {
    collector: Arc<Collector>,
}

impl AdminService {
    /// A service over `collector`.
    pub fn new(collector: Arc<Collector>) -> Self {
        Self { collector }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(
            &dyn collector_store::AttestationStore,
        ) -> Result<T, collector_store::StoreError>
        + Send
        + 'static,
    ) -> Result<T, Status> {
        crate::status::blocking(&self.collector.store, work).await
    }
}

/// A distribution as the wire shows it: the evaluation, each country's stale part, its
/// hardware-attested part and its location-verified part (`located`, which counts toward the
/// Tier-1 and home minimums when the policy requires it); `location` adds the hosts' verdicts
/// (the last-known view).
pub(crate) fn view(
    distribution: &Distribution,
    collector: &Collector,
    stale: &Distribution,
    hardware: &Distribution,
    located: &Distribution,
    location: Option<&collector_core::LocationSums>,
) -> v1::DistributionView {
    let policy = &collector.rules.policy;
    let evaluation = evaluate_located(policy, distribution, located);
    let verdict = evaluation.verdict();
    v1::DistributionView {
        compliant: verdict == Verdict::Compliant,
        verdict: verdict.as_str().to_owned(),
        total_tpp: evaluation.total_tpp,
        countries: evaluation
            .countries
            .iter()
            .map(|line| v1::CountryCompute {
                country: line.country.to_string(),
                tier: u32::from(match line.tier {
                    Tier::One => 1u8,
                    Tier::Two => 2,
                    Tier::Three => 3,
                }),
                tpp: line.tpp,
                stale_tpp: stale.of(line.country),
                headroom_tpp: line.headroom.unwrap_or(0),
                hardware_tpp: hardware.of(line.country),
                location_verified_tpp: located.of(line.country),
            })
            .collect(),
        violations: evaluation
            .violations
            .iter()
            .map(|v| v1::Violation {
                rule: v.rule.as_str().to_owned(),
                country: v.country.map(|c| c.to_string()).unwrap_or_default(),
            })
            .collect(),
        new_tier2_country_headroom_tpp: evaluation.new_tier2_country_headroom,
        hardware_tpp: hardware.total(),
        location_verified_tpp: located.total(),
        location_verified_hosts: location.map_or(0, |l| {
            let hosts = l
                .hosts
                .get(&proto_location::Verdict::Verified)
                .copied()
                .unwrap_or(0);
            u32::try_from(hosts).unwrap_or(u32::MAX)
        }),
        location_inconsistent: location.map_or_else(Vec::new, |l| l.inconsistent.clone()),
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(
        &self,
        request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        let who = audit_trail::caller(&request);
        let result = self.live_status(request).await;
        audit_trail::answer(&who, "status", "the live distribution", result)
    }

    async fn create_enroll_token(
        &self,
        request: Request<v1::CreateEnrollTokenRequest>,
    ) -> Result<Response<v1::CreateEnrollTokenResponse>, Status> {
        let who = audit_trail::caller(&request);
        let subject = match request.get_ref().rebind_host.as_str() {
            "" => format!("site {}", request.get_ref().site_id),
            host => format!("site {}, re-binding host {host}", request.get_ref().site_id),
        };
        let result = self.enroll_token(request).await;
        audit_trail::answer(&who, "create enrollment token", &subject, result)
    }

    async fn list_agents(
        &self,
        request: Request<v1::ListAgentsRequest>,
    ) -> Result<Response<v1::ListAgentsResponse>, Status> {
        let who = audit_trail::caller(&request);
        let result = self.agents(request).await;
        audit_trail::answer(&who, "list agents", "every enrolled key", result)
    }

    async fn revoke_agent(
        &self,
        request: Request<v1::RevokeAgentRequest>,
    ) -> Result<Response<v1::RevokeAgentResponse>, Status> {
        let who = audit_trail::caller(&request);
        let subject = format!("key {}", hex(&request.get_ref().key_id));
        let result = self.revoke(request).await;
        let outcome = match &result {
            Ok((_, Some(refusal))) => audit_trail::Outcome::Refused(refusal.clone()),
            Ok((_, None)) => audit_trail::Outcome::Ok,
            Err(status) => audit_trail::Outcome::of_status(status),
        };
        audit_trail::record(&who, "revoke agent", &subject, &outcome);
        result.map(|(answer, _)| answer)
    }

    async fn register_agent(
        &self,
        request: Request<v1::RegisterAgentRequest>,
    ) -> Result<Response<v1::RegisterAgentResponse>, Status> {
        let who = audit_trail::caller(&request);
        let asked = request.get_ref();
        let subject = format!(
            "host {}, site {}, key {}{}",
            asked.host_id,
            asked.site_id,
            proto_seal::PublicKey::from_slice(&asked.signing_public_key)
                .map(|key| key.key_id().to_string())
                .unwrap_or_else(|_| "(not a public key)".to_owned()),
            if asked.rebind { ", re-binding" } else { "" }
        );
        let result = self.register(request).await;
        audit_trail::answer(&who, "register agent", &subject, result)
    }

    async fn decommission(
        &self,
        request: Request<v1::DecommissionRequest>,
    ) -> Result<Response<v1::DecommissionResponse>, Status> {
        let who = audit_trail::caller(&request);
        let subject = format!("host {}", request.get_ref().host_id);
        let result = self.decommission_host(request).await;
        let outcome = match &result {
            Ok((_, Some(refusal))) => audit_trail::Outcome::Refused(refusal.clone()),
            Ok((_, None)) => audit_trail::Outcome::Ok,
            Err(status) => audit_trail::Outcome::of_status(status),
        };
        audit_trail::record(&who, "decommission", &subject, &outcome);
        result.map(|(answer, _)| answer)
    }
}

/// The handlers; the trait methods above record each call in the audit trail.
impl AdminService {
    async fn live_status(
        &self,
        request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        identity::require(&request, Role::Admin)?;
        let recent = request.get_ref().recent_rejections.min(100) as usize;
        let now = self.collector.now_ms();
        let (last_known, verified, stale_hosts, hosts, agents) = {
            let mut state = self.collector.state();
            state.ledger.sweep(now);
            let located = state.location_sums(&self.collector.rules.sites, now);
            let live = state.ledger.live();
            let mut stale = Distribution::new();
            for (_, entry) in live.stale_hosts() {
                let _ = stale.add(entry.country, entry.tpp);
            }
            let last_known = view(
                live.last_known(),
                &self.collector,
                &stale,
                live.hardware_last_known(),
                &located.verified,
                Some(&located),
            );
            let verified = view(
                live.fresh(),
                &self.collector,
                &Distribution::new(),
                live.hardware_fresh(),
                &located.verified_fresh,
                None,
            );
            let stale_hosts = live
                .stale_hosts()
                .into_iter()
                .map(|(host, entry)| v1::HostState {
                    host_id: host.to_owned(),
                    country: entry.country.to_string(),
                    tpp: entry.tpp,
                    last_attested_unix_ms: entry.last_received_ms,
                    stale: true,
                    ..v1::HostState::default()
                })
                .collect();
            (
                last_known,
                verified,
                stale_hosts,
                live.len(),
                state.agents.len(),
            )
        };
        let (rejections, counts, events) = self
            .blocking(move |store| {
                Ok((
                    store.rejections(recent)?,
                    store.rejection_counts()?,
                    store.events(0, 1000)?,
                ))
            })
            .await?;
        let rules = &self.collector.rules;
        Ok(Response::new(v1::StatusResponse {
            now_unix_ms: now,
            policy_id: rules.policy.id.clone(),
            policy_digest: rules.policy.digest().to_string(),
            catalogue_digest: rules.catalogue.digest().to_string(),
            policy_toml: rules.policy_toml.clone(),
            last_known: Some(last_known),
            verified: Some(verified),
            stale_hosts,
            conflicts: events
                .into_iter()
                .filter(|e| e.kind == "gpu_conflict")
                .map(|e| v1::StatusEvent {
                    at_unix_ms: e.at_ms,
                    kind: e.kind,
                    host_id: e.host_id.map(|host| host.0).unwrap_or_default(),
                    detail: e.detail,
                })
                .collect(),
            recent_rejections: rejections
                .into_iter()
                .map(|r| v1::RejectionRecord {
                    at_unix_ms: r.at_ms,
                    reason: r.reason,
                    host_id: r.host_id.map(|host| host.0).unwrap_or_default(),
                    sequence: r.sequence.unwrap_or(0),
                    peer: r.peer,
                    detail: r.detail,
                })
                .collect(),
            rejection_counts: with_pending(counts, self.collector.pending_refusals())
                .into_iter()
                .map(|(reason, count)| v1::ReasonCount { reason, count })
                .collect(),
            hosts: u32::try_from(hosts).unwrap_or(u32::MAX),
            agents: u32::try_from(agents).unwrap_or(u32::MAX),
            freshness_window_ms: self.collector.freshness_ms(),
        }))
    }

    async fn enroll_token(
        &self,
        request: Request<v1::CreateEnrollTokenRequest>,
    ) -> Result<Response<v1::CreateEnrollTokenResponse>, Status> {
        identity::require(&request, Role::Admin)?;
        let request = request.into_inner();
        if self.collector.rules.sites.get(&request.site_id).is_none() {
            return Err(Status::invalid_argument(format!(
                "site {:?} is not in the site registry",
                request.site_id
            )));
        }
        let seconds = if request.valid_for_seconds == 0 {
            DEFAULT_TOKEN_SECONDS
        } else {
            request.valid_for_seconds
        };
        let mut secret = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
            .map_err(|_| Status::internal("the system random generator failed"))?;
        let token = collector_app::enrollment::token_text(&secret);
        let now = self.collector.now_ms();
        let rebind_host = (!request.rebind_host.is_empty()).then_some(request.rebind_host);
        if let Some(host) = &rebind_host
            && self.collector.state().ledger.host(host).is_none()
        {
            return Err(Status::not_found(format!(
                "host {host:?} is not enrolled, so there is nothing to re-bind"
            )));
        }
        let record = EnrollToken {
            token_hash: collector_app::enrollment::token_hash(&token),
            site_id: SiteId(request.site_id),
            created_at_ms: now,
            expires_at_ms: now + i64::from(seconds) * 1000,
            used_at_ms: None,
            rebind_host: rebind_host.clone().map(HostId),
        };
        let expires = record.expires_at_ms;
        self.blocking(move |store| store.put_token(&record)).await?;
        Ok(Response::new(v1::CreateEnrollTokenResponse {
            token,
            expires_at_unix_ms: expires,
        }))
    }

    async fn agents(
        &self,
        request: Request<v1::ListAgentsRequest>,
    ) -> Result<Response<v1::ListAgentsResponse>, Status> {
        identity::require(&request, Role::Admin)?;
        let agents = self.blocking(|store| store.agents()).await?;
        Ok(Response::new(v1::ListAgentsResponse {
            agents: agents
                .into_iter()
                .map(|a| v1::EnrolledKey {
                    key_id: a.key_id.0.as_bytes().to_vec(),
                    public_key: a.public_key.to_vec(),
                    host_id: a.host_id.0,
                    site_id: a.site_id.0,
                    enrolled_unix_ms: a.enrolled_at_ms,
                    revoked_unix_ms: a.revoked_at_ms.unwrap_or(0),
                    country: a.country,
                })
                .collect(),
        }))
    }

    /// Revokes a key; the refusal, when the books refused, beside the answer.
    async fn revoke(
        &self,
        request: Request<v1::RevokeAgentRequest>,
    ) -> Result<(Response<v1::RevokeAgentResponse>, Option<String>), Status> {
        identity::require(&request, Role::Admin)?;
        let raw: [u8; 32] = request
            .get_ref()
            .key_id
            .as_slice()
            .try_into()
            .map_err(|_| Status::invalid_argument("key_id must be 32 bytes"))?;
        let now = self.collector.now_ms();
        let key = KeyId(Sha256::from_bytes(raw));
        let collector = Arc::clone(&self.collector);
        let refusal = match tokio::task::spawn_blocking(move || collector.revoke(&key, now))
            .await
            .map_err(crate::status::task)?
        {
            Ok(()) => None,
            Err(AdminError::Refused(refusal)) => Some(refusal.to_string()),
            Err(error) => return Err(crate::status::admin(error)),
        };
        let revoked = refusal.is_none();
        Ok((Response::new(v1::RevokeAgentResponse { revoked }), refusal))
    }

    async fn register(
        &self,
        request: Request<v1::RegisterAgentRequest>,
    ) -> Result<Response<v1::RegisterAgentResponse>, Status> {
        identity::require(&request, Role::Admin)?;
        let request = request.into_inner();
        let public_key = proto_seal::PublicKey::from_slice(&request.signing_public_key)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let Some(site) = self.collector.rules.sites.get(&request.site_id) else {
            return Err(Status::invalid_argument(format!(
                "site {:?} is not in the site registry",
                request.site_id
            )));
        };
        let key = public_key.key_id();
        let record = collector_app::ingest::agent_record(
            &public_key,
            &request.host_id,
            site,
            self.collector.now_ms(),
        )
        .map_err(|e| Status::invalid_argument(format!("host id {:?}: {e}", request.host_id)))?;
        let collector = Arc::clone(&self.collector);
        let rebind = request.rebind;
        tokio::task::spawn_blocking(move || collector.enrol(&record, rebind))
            .await
            .map_err(crate::status::task)?
            .map_err(crate::status::admin)?;
        Ok(Response::new(v1::RegisterAgentResponse {
            key_id: key.0.as_bytes().to_vec(),
        }))
    }

    /// Decommissions a host; the refusal, when the books refused, beside the answer.
    async fn decommission_host(
        &self,
        request: Request<v1::DecommissionRequest>,
    ) -> Result<(Response<v1::DecommissionResponse>, Option<String>), Status> {
        identity::require(&request, Role::Admin)?;
        let host = request.into_inner().host_id;
        let now = self.collector.now_ms();
        let collector = Arc::clone(&self.collector);
        let refusal = match tokio::task::spawn_blocking(move || collector.decommission(&host, now))
            .await
            .map_err(crate::status::task)?
        {
            Ok(()) => None,
            Err(AdminError::Refused(refusal)) => Some(refusal.to_string()),
            Err(error) => return Err(crate::status::admin(error)),
        };
        let decommissioned = refusal.is_none();
        Ok((
            Response::new(v1::DecommissionResponse { decommissioned }),
            refusal,
        ))
    }
}

/// Stored counts by reason with the repeats not stored yet added, sorted by reason.
fn with_pending(stored: Vec<(String, u64)>, pending: Vec<(String, u64)>) -> Vec<(String, u64)> {
    let mut counts: std::collections::BTreeMap<String, u64> = stored.into_iter().collect();
    for (reason, count) in pending {
        *counts.entry(reason).or_default() += count;
    }
    counts.into_iter().collect()
}
