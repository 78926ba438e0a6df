//! The standard gRPC health service (grpc/health/v1), as its specification asks: `""` (the
//! whole server) and every service the collector serves are SERVING while it runs; any other
//! name is NOT_FOUND on `Check`, and SERVICE_UNKNOWN on a `Watch` that stays open.

use std::pin::Pin;

use proto_wire::health::health_check_response::ServingStatus;
use proto_wire::health::health_server::Health;
use proto_wire::health::{HealthCheckRequest, HealthCheckResponse};
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status};

/// The fully qualified names of the services the collector serves (reflection included), as
/// health checks name them.
pub const SERVICES: &[&str] = &[
    "veu.v1.AgentStream",
    "veu.v1.Enrollment",
    "veu.v1.Admin",
    "veu.v1.Audit",
    "veu.v1.Landmark",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Always serving: a collector that cannot serve stops, so no service ever changes status
/// while the process lives.
#[derive(Debug, Default, Clone, Copy)]
pub struct HealthService;

type Watch = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

/// The status of `service`, or `None` for a name the server does not serve.
fn status(service: &str) -> Option<ServingStatus> {
    (service.is_empty() || SERVICES.contains(&service)).then_some(ServingStatus::Serving)
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = &request.get_ref().service;
        match status(service) {
            Some(status) => Ok(Response::new(HealthCheckResponse {
                status: status.into(),
            })),
            None => Err(Status::not_found(format!("unknown service {service:?}"))),
        }
    }

    type WatchStream = Watch;

    /// The current status at once, then nothing until the client goes away: the status never
    /// changes while the collector runs (the specification's "send a new message whenever the
    /// status changes" therefore never sends one).
    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let status = status(&request.get_ref().service).unwrap_or(ServingStatus::ServiceUnknown);
        let first = tokio_stream::iter([Ok(HealthCheckResponse {
            status: status.into(),
        })]);
        Ok(Response::new(Box::pin(
            first.chain(tokio_stream::pending()),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_and_its_services_are_known_and_nothing_else() {
        assert_eq!(status(""), Some(ServingStatus::Serving));
        assert_eq!(status("veu.v1.AgentStream"), Some(ServingStatus::Serving));
        assert_eq!(status("veu.v1.Nope"), None);
        assert_eq!(status("AgentStream"), None);
    }
}
