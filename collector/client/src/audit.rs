//! The audit service's calls, answered in plain types.

use proto_wire::v1;
use proto_wire::v1::audit_client::AuditClient;
use tonic::transport::Channel;

use crate::ClientError;

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

    /// The generated client, for the calls not wrapped here.
    pub fn generated(&mut self) -> &mut AuditClient<Channel> {
        &mut self.client
    }
}
