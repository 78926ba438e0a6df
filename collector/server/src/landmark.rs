//! The landmark service: round-trip-time landmarks (landmark role) deliver the measurements
//! they signed; `Collector::submit_measurement` checks and admits them (docs/location.md).

use std::sync::Arc;

use collector_app::Collector;
use collector_pki::Role;
use proto_wire::v1;
use proto_wire::v1::landmark_server::Landmark;
use tonic::{Request, Response, Status};

use crate::{audit_trail, identity};

/// The service.
#[derive(Debug, Clone)]
pub struct LandmarkService {
    collector: Arc<Collector>,
}

impl LandmarkService {
    /// A service over `collector`.
    pub fn new(collector: Arc<Collector>) -> Self {
        Self { collector }
    }
}

#[tonic::async_trait]
impl Landmark for LandmarkService {
    async fn submit(
        &self,
        request: Request<v1::SubmitMeasurementRequest>,
    ) -> Result<Response<v1::SubmitMeasurementResponse>, Status> {
        let who = audit_trail::caller(&request);
        let result = async {
            let peer = identity::require(&request, Role::Landmark)?;
            let bytes = request.into_inner().measurement;
            match self.collector.submit_measurement(&peer.name, bytes).await {
                Ok(admitted) => {
                    self.collector.metrics.measurement("accepted");
                    Ok(Response::new(v1::SubmitMeasurementResponse {
                        log_index: admitted.log_index,
                        verdict: admitted.verdict.as_str().to_owned(),
                    }))
                }
                Err(error) => {
                    self.collector.metrics.measurement(error.code());
                    Err(crate::status::submit(error))
                }
            }
        }
        .await;
        audit_trail::answer(
            &who,
            "submit measurement",
            "a round-trip measurement",
            result,
        )
    }
}
