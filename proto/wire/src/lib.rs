//! The `veu.v1` protobuf contract: messages and gRPC services shared by agent, collector and
//! `veuctl`. Generated types stop at the transport crates, which convert them into domain
//! types with `TryFrom` in a `wire` module; nothing else names them.

pub mod codec;

/// Messages and services of package `veu.v1`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unused_qualifications,
    clippy::all,
    clippy::pedantic
)]
pub mod v1 {
    tonic::include_proto!("veu.v1");
}

/// The standard gRPC health checking protocol.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unused_qualifications,
    clippy::all,
    clippy::pedantic
)]
pub mod health {
    tonic::include_proto!("grpc.health.v1");
}

/// The encoded `FileDescriptorSet` of every file above (health included), for server
/// reflection: what `grpcurl list` and `describe` read.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

/// Largest envelope payload any party accepts, in bytes. An 8-GPU attestation is about
/// 2 KiB; 256 KiB leaves room for hosts with many devices and long fault messages.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Largest gRPC message any party decodes, in bytes.
pub const MAX_MESSAGE_BYTES: usize = MAX_PAYLOAD_BYTES + 4 * 1024;
