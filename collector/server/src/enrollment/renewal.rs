//! Certificate renewal: an agent whose certificate is still valid gets a fresh one for the
//! same TLS key and host, authenticated by that certificate; no token, no change to the books.

use collector_pki::Role;
use proto_wire::v1;
use tonic::{Request, Response, Status};

use super::EnrollmentService;
use crate::identity;

impl EnrollmentService {
    /// `Renew`: the caller's certificate names an agent host; the signing key must be
    /// enrolled for that host and not revoked, and the request must be for the key of the
    /// certificate presented.
    pub(super) async fn renew_certificate(
        &self,
        request: Request<v1::RenewRequest>,
    ) -> Result<Response<v1::EnrollResponse>, Status> {
        let Some(ca) = self.ca.clone() else {
            return Err(Status::failed_precondition(
                "this collector has no enrollment CA (operator-provided PKI): renew certificates with the operator's PKI",
            ));
        };
        let caller = identity::require(&request, Role::Agent)?;
        let presented = request
            .peer_certs()
            .and_then(|certs| certs.first().map(|c| c.as_ref().to_vec()))
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let request = request.into_inner();
        let public_key = proto_seal::PublicKey::from_slice(&request.signing_public_key)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let key = public_key.key_id();
        let refused = |why: &str| {
            tracing::warn!(caller = %caller, key = %key, why, "certificate renewal refused");
            Status::permission_denied(format!("renewal refused: {why}"))
        };
        let agent = self
            .collector
            .agent(&key)
            .await
            .ok_or_else(|| refused("the signing key is not enrolled"))?;
        let revoked = self
            .collector
            .state()
            .ledger
            .key(&key)
            .is_none_or(|record| record.revoked_at_ms.is_some());
        if revoked {
            return Err(refused("the signing key is revoked"));
        }
        if agent.binding.host_id != caller.name
            || agent.binding.identity != format!("urn:veu:agent:{}", caller.name)
        {
            return Err(refused(
                "the certificate presented names another host than the signing key's",
            ));
        }
        if !collector_pki::same_key(&request.csr_der, &presented) {
            return Err(refused(
                "the request is not for the key of the certificate presented",
            ));
        }
        let certificate = ca
            .sign_csr(
                &request.csr_der,
                Role::Agent,
                &caller.name,
                std::time::SystemTime::now(),
            )
            .map_err(|e| Status::invalid_argument(format!("certificate request refused: {e}")))?;
        let country = self
            .collector
            .state()
            .ledger
            .key(&key)
            .map(|record| record.country.to_string())
            .unwrap_or_default();
        tracing::info!(host = caller.name, key = %key, "agent certificate renewed");
        Ok(Response::new(v1::EnrollResponse {
            host_id: agent.binding.host_id,
            site_id: agent.binding.site_id,
            country,
            certificate_chain_pem: vec![certificate],
            ca_certificate_pem: ca.ca_pem().to_owned(),
        }))
    }
}
