//! The audit service's calls, answered in plain types.

use proto_evidence::Envelope;
use proto_seal::InvalidEnvelope;
use proto_wire::v1;
use proto_wire::v1::audit_client::AuditClient;
use tonic::transport::Channel;

use crate::{ClientError, DistributionAt};

/// A host as the collector holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// Its id.
    pub host_id: String,
    /// Its site.
    pub site_id: String,
    /// Its site's country.
    pub country: String,
    /// The key it attests with.
    pub key_id: Vec<u8>,
    /// The sequence number of its last attestation (0: none yet).
    pub last_sequence: u64,
    /// When it last attested, Unix ms; `None`: never.
    pub last_attested_unix_ms: Option<i64>,
    /// TPP it counts.
    pub tpp: u64,
    /// Devices it counts.
    pub devices: u32,
    /// Not attested within the freshness window.
    pub stale: bool,
    /// Its key is revoked.
    pub revoked: bool,
    /// When it was decommissioned, Unix ms; `None` while in service.
    pub decommissioned_unix_ms: Option<i64>,
    /// Its location verdict now; `None` for a host not in service.
    pub location: Option<String>,
    /// What the verdict rests on; `None` when the collector says nothing.
    pub location_detail: Option<String>,
}

impl From<v1::HostState> for HostEntry {
    fn from(host: v1::HostState) -> Self {
        let nonzero = |ms: i64| (ms != 0).then_some(ms);
        let nonempty = |text: String| (!text.is_empty()).then_some(text);
        Self {
            host_id: host.host_id,
            site_id: host.site_id,
            country: host.country,
            key_id: host.key_id,
            last_sequence: host.last_sequence,
            last_attested_unix_ms: nonzero(host.last_attested_unix_ms),
            tpp: host.tpp,
            devices: host.devices,
            stale: host.stale,
            revoked: host.revoked,
            decommissioned_unix_ms: nonzero(host.decommissioned_unix_ms),
            location: nonempty(host.location),
            location_detail: nonempty(host.location_detail),
        }
    }
}

/// A monthly report as the collector signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReport {
    /// report.json, exactly as signed.
    pub report_json: Vec<u8>,
    /// Ed25519 over the report context and `report_json`, by the log key.
    pub signature: Vec<u8>,
    /// The signing key's id, as sent.
    pub key_id: Vec<u8>,
}

/// A signed tree head of the collector's log as sent: nothing checked yet, so that an auditor
/// can say what is wrong with each part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHead {
    /// Leaves, as the unsigned copy says.
    pub tree_size: u64,
    /// The root, as the unsigned copy says (32 bytes when well formed).
    pub root_hash: Vec<u8>,
    /// When it was signed, Unix ms, as the unsigned copy says.
    pub timestamp_unix_ms: i64,
    /// The signed envelope: `None` when the head carries none, an error when it is malformed.
    pub signature: Option<Result<Envelope, InvalidEnvelope>>,
    /// The log's raw Ed25519 public key as the collector presents it.
    pub log_public_key: Vec<u8>,
}

impl From<v1::SignedTreeHead> for LogHead {
    fn from(head: v1::SignedTreeHead) -> Self {
        Self {
            tree_size: head.tree_size,
            root_hash: head.root_hash,
            timestamp_unix_ms: head.timestamp_unix_ms,
            signature: head.signature.map(proto_seal::envelope_from_wire),
            log_public_key: head.log_public_key,
        }
    }
}

/// A leaf's inclusion proof as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The leaf the proof is for.
    pub log_index: u64,
    /// The tree it is in.
    pub tree_size: u64,
    /// Sibling hashes from the leaf up (32 bytes each when well formed).
    pub audit_path: Vec<Vec<u8>>,
    /// The leaf's exact entry bytes (`proto_evidence::LogEntry`).
    pub entry: Vec<u8>,
    /// For an attestation, the stored envelope bytes the leaf commits to.
    pub envelope: Vec<u8>,
}

/// A consistency proof between two tree sizes as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The older tree's size.
    pub first_tree_size: u64,
    /// The newer tree's size.
    pub second_tree_size: u64,
    /// The proof's hashes (32 bytes each when well formed).
    pub proof: Vec<Vec<u8>>,
}

impl From<v1::ConsistencyProofResponse> for ConsistencyProof {
    fn from(proof: v1::ConsistencyProofResponse) -> Self {
        Self {
            first_tree_size: proof.first_tree_size,
            second_tree_size: proof.second_tree_size,
            proof: proof.proof,
        }
    }
}

/// What an evidence export sends, in order: a summary, then heads, proofs, leaves and files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceItem {
    /// Sent first: what follows, for progress.
    Summary(ExportSummary),
    /// A signed tree head.
    TreeHead(LogHead),
    /// A consistency proof between two of the heads.
    Consistency(ConsistencyProof),
    /// A leaf with its inclusion proof in the head of `tree_size` leaves.
    Leaf(InclusionProof),
    /// A file the collector applies (policy, catalogue, sites, landmarks, checkpoint).
    File {
        /// Its name.
        name: String,
        /// Its bytes.
        content: Vec<u8>,
    },
}

/// What an evidence export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSummary {
    /// The head the range starts at.
    pub start_tree_size: u64,
    /// The head the range ends at.
    pub end_tree_size: u64,
    /// Leaves to come.
    pub leaves: u64,
}

impl EvidenceItem {
    fn from_wire(item: v1::EvidenceItem) -> Option<Self> {
        use v1::evidence_item::Item;
        Some(match item.item? {
            Item::Summary(summary) => Self::Summary(ExportSummary {
                start_tree_size: summary.start_tree_size,
                end_tree_size: summary.end_tree_size,
                leaves: summary.leaves,
            }),
            Item::TreeHead(head) => Self::TreeHead(head.into()),
            Item::Consistency(proof) => Self::Consistency(proof.into()),
            Item::Leaf(leaf) => Self::Leaf(InclusionProof {
                log_index: leaf.log_index,
                tree_size: leaf.tree_size,
                audit_path: leaf.audit_path,
                entry: leaf.entry,
                envelope: leaf.envelope,
            }),
            Item::File(file) => Self::File {
                name: file.name,
                content: file.content,
            },
        })
    }
}

/// An evidence export as it streams in.
#[derive(Debug)]
pub struct EvidenceStream {
    inner: tonic::Streaming<v1::EvidenceItem>,
}

impl EvidenceStream {
    /// The next item; `None` at the end. Items of a kind this client does not know are skipped.
    pub async fn next(&mut self) -> Result<Option<EvidenceItem>, ClientError> {
        while let Some(item) = self.inner.message().await? {
            if let Some(item) = EvidenceItem::from_wire(item) {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }
}

/// One attestation of a host as the collector stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttestation {
    /// Its leaf in the log.
    pub log_index: u64,
    /// The signed envelope: `None` when the collector sent none, an error when it is malformed.
    pub envelope: Option<Result<Envelope, InvalidEnvelope>>,
    /// When the collector received it, Unix ms.
    pub received_unix_ms: i64,
    /// TPP the collector's ledger counted of it.
    pub counted_tpp: u64,
    /// Devices the ledger counted of it.
    pub counted_devices: u32,
}

impl From<v1::StoredAttestation> for StoredAttestation {
    fn from(stored: v1::StoredAttestation) -> Self {
        Self {
            log_index: stored.log_index,
            envelope: stored.envelope.map(proto_seal::envelope_from_wire),
            received_unix_ms: stored.received_unix_ms,
            counted_tpp: stored.counted_tpp,
            counted_devices: stored.counted_devices,
        }
    }
}

/// The collector's audit service (an auditor's or an admin's certificate).
#[derive(Debug, Clone)]
pub struct Audit {
    client: AuditClient<Channel>,
}

impl Audit {
    /// The audit service over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: AuditClient::new(channel),
        }
    }

    /// Every host the collector knows, decommissioned ones included.
    pub async fn hosts(&mut self) -> Result<Vec<HostEntry>, ClientError> {
        Ok(self
            .client
            .list_hosts(v1::ListHostsRequest {})
            .await?
            .into_inner()
            .hosts
            .into_iter()
            .map(HostEntry::from)
            .collect())
    }

    /// Every attestation `host` sent with a receipt time in `[from, to)` (an open end without
    /// a bound), oldest first.
    pub async fn host_history(
        &mut self,
        host: &str,
        from_unix_ms: Option<i64>,
        to_unix_ms: Option<i64>,
    ) -> Result<Vec<StoredAttestation>, ClientError> {
        // On the wire 0 means "no bound".
        let mut stream = self
            .client
            .host_history(v1::HostHistoryRequest {
                host_id: host.to_owned(),
                from_unix_ms: from_unix_ms.unwrap_or(0),
                to_unix_ms: to_unix_ms.unwrap_or(0),
            })
            .await?
            .into_inner();
        let mut stored = Vec::new();
        while let Some(item) = stream.message().await? {
            stored.push(item.into());
        }
        Ok(stored)
    }

    /// The log's signed head of `tree_size` leaves (0: the latest); with `sign_now`, a head
    /// signed for this request.
    pub async fn log_head(
        &mut self,
        tree_size: u64,
        sign_now: bool,
    ) -> Result<LogHead, ClientError> {
        Ok(self
            .client
            .tree_head(v1::TreeHeadRequest {
                tree_size,
                sign_now,
            })
            .await?
            .into_inner()
            .into())
    }

    /// The proof that leaf `log_index` is in the tree of `tree_size` leaves.
    pub async fn inclusion_proof(
        &mut self,
        log_index: u64,
        tree_size: u64,
    ) -> Result<InclusionProof, ClientError> {
        let proof = self
            .client
            .inclusion_proof(v1::InclusionProofRequest {
                log_index,
                tree_size,
            })
            .await?
            .into_inner();
        Ok(InclusionProof {
            log_index: proof.log_index,
            tree_size: proof.tree_size,
            audit_path: proof.audit_path,
            entry: proof.entry,
            envelope: proof.envelope,
        })
    }

    /// The proof that the tree of `first` leaves is a prefix of the tree of `second`.
    pub async fn consistency_proof(
        &mut self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, ClientError> {
        Ok(self
            .client
            .consistency_proof(v1::ConsistencyProofRequest {
                first_tree_size: first,
                second_tree_size: second,
            })
            .await?
            .into_inner()
            .into())
    }

    /// The evidence of receipt times in `[from_unix_ms, to_unix_ms)`, as it streams in.
    pub async fn export_evidence(
        &mut self,
        from_unix_ms: i64,
        to_unix_ms: i64,
    ) -> Result<EvidenceStream, ClientError> {
        let inner = self
            .client
            .export_evidence(v1::ExportEvidenceRequest {
                from_unix_ms,
                to_unix_ms,
            })
            .await?
            .into_inner();
        Ok(EvidenceStream { inner })
    }

    /// The signed report of `month` (`YYYY-MM`).
    pub async fn report(&mut self, month: &str) -> Result<SignedReport, ClientError> {
        let answer = self
            .client
            .report(v1::ReportRequest {
                month: month.to_owned(),
            })
            .await?
            .into_inner();
        Ok(SignedReport {
            report_json: answer.report_json,
            signature: answer.signature,
            key_id: answer.key_id,
        })
    }

    /// The books as of `as_of_unix_ms` (`None`: now), replayed from the log.
    pub async fn distribution(
        &mut self,
        as_of_unix_ms: Option<i64>,
    ) -> Result<DistributionAt, ClientError> {
        Ok(self
            .client
            .distribution(v1::DistributionRequest {
                // On the wire 0 means now.
                as_of_unix_ms: as_of_unix_ms.unwrap_or(0),
            })
            .await?
            .into_inner()
            .into())
    }
}
