//! The admin service's calls, answered in plain types.

use proto_wire::v1;
use proto_wire::v1::admin_client::AdminClient;
use tonic::transport::Channel;

use crate::{ClientError, CollectorStatus};

/// An enrolled signing key, as the collector lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolledKey {
    /// The key's id (SHA-256 of the public key), as sent.
    pub key_id: Vec<u8>,
    /// The host it signs for.
    pub host_id: String,
    /// The host's site.
    pub site_id: String,
    /// When it was enrolled, Unix ms.
    pub enrolled_unix_ms: i64,
    /// When it was revoked, Unix ms; `None` while active.
    pub revoked_unix_ms: Option<i64>,
}

impl From<v1::EnrolledKey> for EnrolledKey {
    fn from(key: v1::EnrolledKey) -> Self {
        Self {
            key_id: key.key_id,
            host_id: key.host_id,
            site_id: key.site_id,
            enrolled_unix_ms: key.enrolled_unix_ms,
            revoked_unix_ms: (key.revoked_unix_ms != 0).then_some(key.revoked_unix_ms),
        }
    }
}

/// The collector's admin service (an admin's certificate).
#[derive(Debug, Clone)]
pub struct Admin {
    client: AdminClient<Channel>,
}

impl Admin {
    /// The admin service over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: AdminClient::new(channel),
        }
    }

    /// A one-time enrollment token for a host at `site`, valid `valid_for_seconds`; with
    /// `rebind_host`, one that moves or re-keys that existing host.
    pub async fn enroll_token(
        &mut self,
        site: &str,
        valid_for_seconds: u32,
        rebind_host: Option<&str>,
    ) -> Result<String, ClientError> {
        Ok(self
            .client
            .create_enroll_token(v1::CreateEnrollTokenRequest {
                site_id: site.to_owned(),
                valid_for_seconds,
                rebind_host: rebind_host.unwrap_or_default().to_owned(),
            })
            .await?
            .into_inner()
            .token)
    }

    /// Every enrolled key, revoked ones included.
    pub async fn agents(&mut self) -> Result<Vec<EnrolledKey>, ClientError> {
        Ok(self
            .client
            .list_agents(v1::ListAgentsRequest {})
            .await?
            .into_inner()
            .agents
            .into_iter()
            .map(EnrolledKey::from)
            .collect())
    }

    /// Binds `signing_public_key` (raw Ed25519) to `host` at `site` (re-binding an existing
    /// host when `rebind`); answers the key's id.
    pub async fn register_agent(
        &mut self,
        signing_public_key: Vec<u8>,
        host: &str,
        site: &str,
        rebind: bool,
    ) -> Result<Vec<u8>, ClientError> {
        Ok(self
            .client
            .register_agent(v1::RegisterAgentRequest {
                signing_public_key,
                host_id: host.to_owned(),
                site_id: site.to_owned(),
                rebind,
            })
            .await?
            .into_inner()
            .key_id)
    }

    /// Revokes the key `key_id`; `false` when no active key has that id.
    pub async fn revoke_agent(&mut self, key_id: Vec<u8>) -> Result<bool, ClientError> {
        Ok(self
            .client
            .revoke_agent(v1::RevokeAgentRequest { key_id })
            .await?
            .into_inner()
            .revoked)
    }

    /// Takes `host` out of the distribution; `false` when there is no such host.
    pub async fn decommission(&mut self, host: &str) -> Result<bool, ClientError> {
        Ok(self
            .client
            .decommission(v1::DecommissionRequest {
                host_id: host.to_owned(),
            })
            .await?
            .into_inner()
            .decommissioned)
    }

    /// The collector's live books, conflicts and the latest `recent_rejections` refusals.
    pub async fn status(&mut self, recent_rejections: u32) -> Result<CollectorStatus, ClientError> {
        Ok(self
            .client
            .status(v1::StatusRequest { recent_rejections })
            .await?
            .into_inner()
            .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_revocation_time_means_active() {
        let wire = v1::EnrolledKey {
            key_id: vec![1; 32],
            host_id: "gpu-01".into(),
            site_id: "us-east".into(),
            enrolled_unix_ms: 5,
            revoked_unix_ms: 0,
            ..v1::EnrolledKey::default()
        };
        assert_eq!(EnrolledKey::from(wire.clone()).revoked_unix_ms, None);
        let revoked = v1::EnrolledKey {
            revoked_unix_ms: 9,
            ..wire
        };
        assert_eq!(EnrolledKey::from(revoked).revoked_unix_ms, Some(9));
    }
}
