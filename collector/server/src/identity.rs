//! Who is calling: the role and name in the client certificate, checked per service.

use collector_pki::{PeerIdentity, Role};
use tonic::{Request, Status};

/// The caller's identity from its client certificate; `Unauthenticated` without one.
pub fn peer<T>(request: &Request<T>) -> Result<PeerIdentity, Status> {
    let certs = request
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    collector_pki::identity_of(leaf.as_ref())
        .map_err(|error| Status::unauthenticated(format!("client certificate refused: {error}")))
}

/// The caller, who must hold `role`; `PermissionDenied` otherwise.
pub fn require<T>(request: &Request<T>, role: Role) -> Result<PeerIdentity, Status> {
    let identity = peer(request)?;
    if identity.role == role {
        Ok(identity)
    } else {
        Err(Status::permission_denied(format!(
            "{identity} may not call this service (it needs the {role} role)"
        )))
    }
}
