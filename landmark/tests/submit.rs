//! The submitter against an in-process `veu.v1.Landmark` service: a transient failure is
//! retried with the same bytes until accepted, a definitive refusal drops the statement and
//! the next one goes on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto_evidence::SignedMeasurement;
use proto_wire::v1;
use proto_wire::v1::landmark_server::{Landmark, LandmarkServer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Endpoint, Server};
use tonic::{Code, Request, Response, Status};
use veu_landmark::submit::{self, Backoff};

/// Answers call after call from a script, recording what each call carried.
#[derive(Clone, Default)]
struct Scripted {
    script: Arc<Mutex<Vec<Result<u64, Code>>>>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
}

#[tonic::async_trait]
impl Landmark for Scripted {
    async fn submit(
        &self,
        request: Request<v1::SubmitMeasurementRequest>,
    ) -> Result<Response<v1::SubmitMeasurementResponse>, Status> {
        self.received
            .lock()
            .unwrap()
            .push(request.into_inner().measurement);
        let next = self.script.lock().unwrap().remove(0);
        match next {
            Ok(log_index) => Ok(Response::new(v1::SubmitMeasurementResponse {
                log_index,
                verdict: "verified".into(),
            })),
            Err(code) => Err(Status::new(code, "scripted")),
        }
    }
}

fn statement(byte: u8) -> SignedMeasurement {
    SignedMeasurement {
        statement: vec![byte; 10],
        signature: [byte; 64],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_refusals_dropped() {
    let service = Scripted::default();
    *service.script.lock().unwrap() = vec![
        Err(Code::Unavailable),
        Err(Code::Unavailable),
        Ok(7),
        Err(Code::InvalidArgument),
        Ok(8),
    ];
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(
        Server::builder()
            .add_service(LandmarkServer::new(service.clone()))
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                stop.clone().cancelled_owned(),
            ),
    );

    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let (queue, receiver) = mpsc::channel(8);
    for byte in [1, 2, 3] {
        queue.send(statement(byte)).await.unwrap();
    }
    drop(queue);
    let backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(40),
    };
    tokio::time::timeout(
        Duration::from_secs(10),
        submit::run(channel, receiver, backoff, CancellationToken::new()),
    )
    .await
    .expect("the submitter ends when its queue closes");
    let encoded = |byte| statement(byte).encode().unwrap();
    assert_eq!(
        *service.received.lock().unwrap(),
        [encoded(1), encoded(1), encoded(1), encoded(2), encoded(3)]
    );
    assert!(service.script.lock().unwrap().is_empty());
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_does_not_hold_up_shutdown() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let (queue, receiver) = mpsc::channel(8);
    queue.send(statement(1)).await.unwrap();
    queue.send(statement(2)).await.unwrap();
    let shutdown = CancellationToken::new();
    let submitter = tokio::spawn(submit::run(
        channel,
        receiver,
        Backoff {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(30),
        },
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), submitter)
        .await
        .expect("stops at once, mid-backoff")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_queued_at_shutdown_get_one_more_attempt() {
    let service = Scripted::default();
    *service.script.lock().unwrap() = vec![Ok(1), Ok(2)];
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(
        Server::builder()
            .add_service(LandmarkServer::new(service.clone()))
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                stop.clone().cancelled_owned(),
            ),
    );
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let (queue, receiver) = mpsc::channel(8);
    queue.send(statement(1)).await.unwrap();
    queue.send(statement(2)).await.unwrap();
    let shutdown = CancellationToken::new();
    shutdown.cancel();
    tokio::time::timeout(
        Duration::from_secs(10),
        submit::run(channel, receiver, submit::BACKOFF, shutdown),
    )
    .await
    .unwrap();
    let encoded = |byte| statement(byte).encode().unwrap();
    assert_eq!(*service.received.lock().unwrap(), [encoded(1), encoded(2)]);
    stop.cancel();
}
