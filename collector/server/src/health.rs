//! The standard gRPC health service: SERVING while the collector runs.

use std::pin::Pin;

use proto_wire::health::health_check_response::ServingStatus;
use proto_wire::health::health_server::Health;
use proto_wire::health::{HealthCheckRequest, HealthCheckResponse};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Always serving: a collector that cannot serve stops.
#[derive(Debug, Default, Clone, Copy)]
pub struct HealthService;

type Watch = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving.into(),
        }))
    }

    type WatchStream = Watch;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let once = tokio_stream::iter([Ok(HealthCheckResponse {
            status: ServingStatus::Serving.into(),
        })]);
        Ok(Response::new(Box::pin(once)))
    }
}
