//! The collector follows the ecosystem's gRPC conventions, checked with real clients over
//! mutual TLS: the health service as its specification reads, and server reflection listing
//! every service (what `grpcurl list` asks).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use collector_pki::Role;
use collector_testkit::Harness;
use proto_wire::health::HealthCheckRequest;
use proto_wire::health::health_check_response::ServingStatus;
use proto_wire::health::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1alpha;

#[tokio::test]
async fn health_answers_serving_for_the_server_and_its_services_and_not_found_otherwise() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let mut health = HealthClient::new(h.channel_as(Role::Admin, "ops").await);
    for service in [
        "",
        "veu.v1.AgentStream",
        "veu.v1.Audit",
        "grpc.health.v1.Health",
    ] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "veu.v1.Nothing".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    // Watch: the status at once, SERVICE_UNKNOWN for an unknown name, and the stream stays
    // open (no end of stream after the first message).
    for (service, expected) in [
        ("", ServingStatus::Serving),
        ("veu.v1.Nothing", ServingStatus::ServiceUnknown),
    ] {
        let mut watch = health
            .watch(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(watch.message().await.unwrap().unwrap().status(), expected);
        let more = tokio::time::timeout(std::time::Duration::from_millis(300), watch.message());
        assert!(more.await.is_err(), "the watch stream ended early");
    }
    h.stop.cancel();
}

#[tokio::test]
async fn reflection_lists_every_service_and_describes_them_without_a_client_certificate() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let mut reflection = ServerReflectionClient::new(h.anonymous_channel().await);
    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([list]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(listed)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("not a list of services");
    };
    let mut names: Vec<String> = listed.service.into_iter().map(|s| s.name).collect();
    names.sort();
    // Each version of reflection lists itself, not the other.
    let mut expected: Vec<String> = collector_server::health::SERVICES
        .iter()
        .filter(|s| !s.contains("v1alpha"))
        .map(|s| (*s).to_owned())
        .collect();
    expected.sort();
    assert_eq!(names, expected);

    // `grpcurl describe veu.v1.Audit` asks for the file that defines the symbol.
    let describe = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "veu.v1.Audit".to_owned(),
        )),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([describe]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("no file descriptor for veu.v1.Audit");
    };
    assert!(!files.file_descriptor_proto.is_empty());

    // Older clients speak v1alpha.
    let mut alpha =
        v1alpha::server_reflection_client::ServerReflectionClient::new(h.anonymous_channel().await);
    let list = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut answers = alpha
        .server_reflection_info(tokio_stream::iter([list]))
        .await
        .unwrap()
        .into_inner();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(listed)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("not a list of services");
    };
    assert!(
        listed
            .service
            .iter()
            .any(|s| s.name == "veu.v1.AgentStream")
    );
    h.stop.cancel();
}
