//! The audit service (auditor or admin role, read-only): past distributions replayed from the
//! stored history, hosts, one host's attestations, signed tree heads, inclusion and consistency
//! proofs, evidence export and the signed monthly report.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use collector_app::ingest::Collector;
use collector_app::log::LogKeeper;
use collector_pki::Role;
use collector_store::{AttestationStore, KeyId, StoredTreeHead};
use proto_accounting::Distribution;
use proto_wire::v1;
use proto_wire::v1::audit_server::Audit;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::{audit_trail, identity};

/// Attestations one host-history call returns at most.
const HISTORY_LIMIT: usize = 100_000;

/// The service.
#[derive(Debug, Clone)]
pub struct AuditService {
    collector: Arc<Collector>,
    log: Arc<LogKeeper>,
}

type ItemStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

impl AuditService {
    /// A service over `collector` and its log.
    pub fn new(collector: Arc<Collector>, log: Arc<LogKeeper>) -> Self {
        Self { collector, log }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Collector, &LogKeeper) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let collector = Arc::clone(&self.collector);
        let log = Arc::clone(&self.log);
        tokio::task::spawn_blocking(move || work(&collector, &log))
            .await
            .map_err(crate::status::task)?
    }
}

/// Only auditors and admins read the audit service.
fn reader<T>(request: &Request<T>) -> Result<(), Status> {
    let identity = identity::peer(request)?;
    match identity.role {
        Role::Auditor | Role::Admin => Ok(()),
        _ => Err(Status::permission_denied(format!(
            "{identity} may not call the audit service (it needs the auditor or admin role)"
        ))),
    }
}

use crate::status::{log as log_status, store as store_status};

/// A stored head as the wire carries it.
pub(crate) fn head_to_wire(
    head: &StoredTreeHead,
    log: &LogKeeper,
) -> Result<v1::SignedTreeHead, Status> {
    let envelope = proto_seal::decode_envelope(&head.envelope)
        .map_err(|e| Status::data_loss(format!("stored tree head {}: {e}", head.tree_size)))?;
    Ok(v1::SignedTreeHead {
        tree_size: head.tree_size,
        root_hash: head.root.to_vec(),
        timestamp_unix_ms: head.timestamp_ms,
        signature: Some(proto_seal::envelope_to_wire(&envelope)),
        log_public_key: log.public_key().as_bytes().to_vec(),
    })
}

/// The distributions at `as_of` as the wire carries them, each with the policy's evaluation.
fn distribution_at(
    collector: &Collector,
    store: &dyn AttestationStore,
    as_of: i64,
) -> Result<v1::DistributionResponse, Status> {
    let at = collector_app::distribution::at(collector, store, as_of)
        .map_err(crate::status::distribution)?;
    let rules = &collector.rules;
    let empty = collector_core::LocationSums::default();
    let sums = at.located.as_ref().unwrap_or(&empty);
    Ok(v1::DistributionResponse {
        as_of_unix_ms: at.as_of_ms,
        policy_id: rules.policy.id.clone(),
        policy_digest: rules.policy.digest().to_string(),
        policy_toml: rules.policy_toml.clone(),
        last_known: Some(crate::admin::view(
            &at.last_known,
            collector,
            &at.stale,
            &at.hardware_last_known,
            &sums.verified,
            at.located.as_ref(),
        )),
        verified: Some(crate::admin::view(
            &at.verified,
            collector,
            &Distribution::new(),
            &at.hardware_verified,
            &sums.verified_fresh,
            None,
        )),
        stale_hosts: at
            .stale_hosts
            .into_iter()
            .map(|host| v1::HostState {
                host_id: host.host_id,
                site_id: host.site_id,
                country: host.country,
                last_attested_unix_ms: host.last_attested_ms,
                tpp: host.tpp,
                devices: host.devices,
                stale: true,
                ..v1::HostState::default()
            })
            .collect(),
        hosts: u32::try_from(at.hosts).unwrap_or(u32::MAX),
        freshness_window_ms: at.freshness_ms,
    })
}

fn stored_to_wire(
    a: &collector_store::AcceptedAttestation,
) -> Result<v1::StoredAttestation, Status> {
    let envelope = proto_seal::decode_envelope(&a.envelope).map_err(|e| {
        Status::data_loss(format!(
            "stored attestation {} of host {}: {e}",
            a.sequence, a.host_id
        ))
    })?;
    Ok(v1::StoredAttestation {
        log_index: a.log_index.unwrap_or(0),
        envelope: Some(proto_seal::envelope_to_wire(&envelope)),
        received_unix_ms: a.received_at_ms,
        counted_tpp: a.tpp,
        counted_devices: a.devices,
    })
}

/// The handlers; the trait methods below record each call in the audit trail.
impl AuditService {
    async fn read_distribution(
        &self,
        request: Request<v1::DistributionRequest>,
    ) -> Result<Response<v1::DistributionResponse>, Status> {
        reader(&request)?;
        let requested = request.get_ref().as_of_unix_ms;
        self.blocking(move |collector, _| {
            let as_of = if requested == 0 {
                collector.now_ms()
            } else {
                requested
            };
            distribution_at(collector, collector.store.as_ref(), as_of)
        })
        .await
        .map(Response::new)
    }

    async fn read_list_hosts(
        &self,
        request: Request<v1::ListHostsRequest>,
    ) -> Result<Response<v1::ListHostsResponse>, Status> {
        reader(&request)?;
        self.blocking(|collector, _| {
            let store = collector.store.as_ref();
            let revoked: BTreeMap<KeyId, bool> = store
                .agents()
                .map_err(store_status)?
                .into_iter()
                .map(|a| (a.key_id, a.revoked_at_ms.is_some()))
                .collect();
            let now = collector.now_ms();
            let located: BTreeMap<String, proto_location::Location> = {
                collector
                    .state()
                    .located_hosts(&collector.rules.sites, now)
                    .into_iter()
                    .map(|h| (h.host, h.location))
                    .collect()
            };
            let hosts = store
                .host_states()
                .map_err(store_status)?
                .into_iter()
                .map(|h| v1::HostState {
                    location: located
                        .get(&h.host_id.0)
                        .map(|l| l.verdict.as_str().to_owned())
                        .unwrap_or_default(),
                    location_detail: located
                        .get(&h.host_id.0)
                        .map(proto_location::Location::explain)
                        .unwrap_or_default(),
                    // A host that has not attested since its enrolment or re-binding is
                    // awaiting evidence (it counts nothing), not stale.
                    stale: h.decommissioned_at_ms.is_none()
                        && h.last_sequence > 0
                        && now.saturating_sub(h.last_received_at_ms) > collector.freshness_ms(),
                    revoked: revoked.get(&h.key_id).copied().unwrap_or(false),
                    host_id: h.host_id.0,
                    site_id: h.site_id.0,
                    country: h.country,
                    key_id: h.key_id.0.as_bytes().to_vec(),
                    last_sequence: h.last_sequence,
                    last_attested_unix_ms: h.last_received_at_ms,
                    tpp: h.tpp,
                    devices: h.devices,
                    decommissioned_unix_ms: h.decommissioned_at_ms.unwrap_or(0),
                })
                .collect();
            Ok(v1::ListHostsResponse { hosts })
        })
        .await
        .map(Response::new)
    }

    async fn read_host_history(
        &self,
        request: Request<v1::HostHistoryRequest>,
    ) -> Result<Response<ItemStream<v1::StoredAttestation>>, Status> {
        reader(&request)?;
        let request = request.into_inner();
        let to = if request.to_unix_ms == 0 {
            i64::MAX
        } else {
            request.to_unix_ms
        };
        let found = self
            .blocking(move |collector, _| {
                let rows = collector
                    .store
                    .host_history(&request.host_id, request.from_unix_ms, to, HISTORY_LIMIT)
                    .map_err(store_status)?;
                if rows.is_empty() {
                    return Err(Status::not_found(format!(
                        "host {:?} has no attestation in that range",
                        request.host_id
                    )));
                }
                rows.iter()
                    .map(stored_to_wire)
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(Response::new(Box::pin(tokio_stream::iter(
            found.into_iter().map(Ok),
        ))))
    }

    async fn read_tree_head(
        &self,
        request: Request<v1::TreeHeadRequest>,
    ) -> Result<Response<v1::SignedTreeHead>, Status> {
        reader(&request)?;
        let request = request.into_inner();
        self.blocking(move |_, log| {
            let head = if request.sign_now {
                log.sign()
            } else {
                log.head((request.tree_size != 0).then_some(request.tree_size))
            }
            .map_err(log_status)?;
            head_to_wire(&head, log)
        })
        .await
        .map(Response::new)
    }

    async fn read_inclusion_proof(
        &self,
        request: Request<v1::InclusionProofRequest>,
    ) -> Result<Response<v1::InclusionProofResponse>, Status> {
        reader(&request)?;
        let request = request.into_inner();
        self.blocking(move |collector, log| {
            let size = match request.tree_size {
                0 => log.head(None).map_err(log_status)?.tree_size,
                size => size,
            };
            if request.log_index >= size {
                return Err(Status::out_of_range(format!(
                    "leaf {} is not in a tree of {size} leaves",
                    request.log_index
                )));
            }
            let path = log.inclusion(request.log_index, size).map_err(log_status)?;
            let record = collector
                .store
                .log_records(request.log_index, 1)
                .map_err(store_status)?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    Status::data_loss(format!("leaf {} is missing", request.log_index))
                })?;
            Ok(v1::InclusionProofResponse {
                log_index: request.log_index,
                tree_size: size,
                audit_path: path.iter().map(|h| h.to_vec()).collect(),
                entry: record.entry,
                envelope: record.envelope.unwrap_or_default(),
            })
        })
        .await
        .map(Response::new)
    }

    async fn read_consistency_proof(
        &self,
        request: Request<v1::ConsistencyProofRequest>,
    ) -> Result<Response<v1::ConsistencyProofResponse>, Status> {
        reader(&request)?;
        let request = request.into_inner();
        self.blocking(move |_, log| {
            let second = match request.second_tree_size {
                0 => log.head(None).map_err(log_status)?.tree_size,
                size => size,
            };
            if request.first_tree_size > second {
                return Err(Status::invalid_argument(format!(
                    "the first size {} is larger than the second {second}",
                    request.first_tree_size
                )));
            }
            let proof = log
                .consistency(request.first_tree_size, second)
                .map_err(log_status)?;
            Ok(v1::ConsistencyProofResponse {
                first_tree_size: request.first_tree_size,
                second_tree_size: second,
                proof: proof.iter().map(|h| h.to_vec()).collect(),
            })
        })
        .await
        .map(Response::new)
    }

    async fn read_export_evidence(
        &self,
        request: Request<v1::ExportEvidenceRequest>,
    ) -> Result<Response<ItemStream<v1::EvidenceItem>>, Status> {
        reader(&request)?;
        let request = request.into_inner();
        if request.from_unix_ms >= request.to_unix_ms {
            return Err(Status::invalid_argument(format!(
                "the range is empty: from {} is not before to {}",
                request.from_unix_ms, request.to_unix_ms
            )));
        }
        let (sender, receiver) = mpsc::channel(64);
        let collector = Arc::clone(&self.collector);
        let log = Arc::clone(&self.log);
        tokio::task::spawn_blocking(move || {
            if let Err(status) = crate::export::run(&collector, &log, &request, &sender) {
                let _ = sender.blocking_send(Err(status));
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn read_report(
        &self,
        request: Request<v1::ReportRequest>,
    ) -> Result<Response<v1::ReportResponse>, Status> {
        reader(&request)?;
        let month = request.into_inner().month;
        self.blocking(move |collector, log| crate::report::signed(collector, log, &month))
            .await
            .map(Response::new)
    }
}

#[tonic::async_trait]
impl Audit for AuditService {
    async fn distribution(
        &self,
        request: Request<v1::DistributionRequest>,
    ) -> Result<Response<v1::DistributionResponse>, Status> {
        let who = audit_trail::caller(&request);
        let subject = match request.get_ref().as_of_unix_ms {
            0 => "now".to_owned(),
            at => format!("as of {at} (Unix ms)"),
        };
        let result = self.read_distribution(request).await;
        audit_trail::answer(&who, "distribution", &subject, result)
    }

    async fn list_hosts(
        &self,
        request: Request<v1::ListHostsRequest>,
    ) -> Result<Response<v1::ListHostsResponse>, Status> {
        let who = audit_trail::caller(&request);
        let result = self.read_list_hosts(request).await;
        audit_trail::answer(&who, "list hosts", "every host", result)
    }

    type HostHistoryStream = ItemStream<v1::StoredAttestation>;

    async fn host_history(
        &self,
        request: Request<v1::HostHistoryRequest>,
    ) -> Result<Response<Self::HostHistoryStream>, Status> {
        let who = audit_trail::caller(&request);
        let asked = request.get_ref();
        let subject = format!(
            "host {} from {} to {} (Unix ms)",
            asked.host_id, asked.from_unix_ms, asked.to_unix_ms
        );
        let result = self.read_host_history(request).await;
        audit_trail::answer(&who, "host history", &subject, result)
    }

    async fn tree_head(
        &self,
        request: Request<v1::TreeHeadRequest>,
    ) -> Result<Response<v1::SignedTreeHead>, Status> {
        let who = audit_trail::caller(&request);
        let subject = match (request.get_ref().sign_now, request.get_ref().tree_size) {
            (true, _) => "a head signed now".to_owned(),
            (false, 0) => "the latest head".to_owned(),
            (false, size) => format!("the head of size {size}"),
        };
        let result = self.read_tree_head(request).await;
        audit_trail::answer(&who, "tree head", &subject, result)
    }

    async fn inclusion_proof(
        &self,
        request: Request<v1::InclusionProofRequest>,
    ) -> Result<Response<v1::InclusionProofResponse>, Status> {
        let who = audit_trail::caller(&request);
        let subject = format!(
            "leaf {} in the tree of size {}",
            request.get_ref().log_index,
            request.get_ref().tree_size
        );
        let result = self.read_inclusion_proof(request).await;
        audit_trail::answer(&who, "inclusion proof", &subject, result)
    }

    async fn consistency_proof(
        &self,
        request: Request<v1::ConsistencyProofRequest>,
    ) -> Result<Response<v1::ConsistencyProofResponse>, Status> {
        let who = audit_trail::caller(&request);
        let subject = format!(
            "sizes {} to {}",
            request.get_ref().first_tree_size,
            request.get_ref().second_tree_size
        );
        let result = self.read_consistency_proof(request).await;
        audit_trail::answer(&who, "consistency proof", &subject, result)
    }

    type ExportEvidenceStream = ItemStream<v1::EvidenceItem>;

    /// Recorded when the export starts; a failure while streaming reaches the client only.
    async fn export_evidence(
        &self,
        request: Request<v1::ExportEvidenceRequest>,
    ) -> Result<Response<Self::ExportEvidenceStream>, Status> {
        let who = audit_trail::caller(&request);
        let subject = format!(
            "evidence from {} to {} (Unix ms)",
            request.get_ref().from_unix_ms,
            request.get_ref().to_unix_ms
        );
        let result = self.read_export_evidence(request).await;
        audit_trail::answer(&who, "export evidence", &subject, result)
    }

    async fn report(
        &self,
        request: Request<v1::ReportRequest>,
    ) -> Result<Response<v1::ReportResponse>, Status> {
        let who = audit_trail::caller(&request);
        let subject = format!("month {}", request.get_ref().month);
        let result = self.read_report(request).await;
        audit_trail::answer(&who, "report", &subject, result)
    }
}
