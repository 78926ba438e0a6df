//! Certificate renewal: an agent whose certificate is still valid gets a fresh one for the
//! same TLS key and host, authenticated by that certificate; no token, no change to the books
//! (`Collector::renew_certificate`).

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
        let renewed = self
            .collector
            .renew_certificate(
                &ca,
                &caller.name,
                &presented,
                &request.signing_public_key,
                &request.csr_der,
            )
            .await
            .map_err(crate::status::renewal)?;
        Ok(Response::new(v1::EnrollResponse {
            host_id: renewed.host_id,
            site_id: renewed.site_id,
            country: renewed.country,
            certificate_chain_pem: vec![renewed.certificate_pem],
            ca_certificate_pem: renewed.ca_pem,
        }))
    }
}
