//! Compiles `proto/veu/v1/*.proto` with protox (a pure-Rust protobuf compiler), so no
//! system `protoc` is needed, and generates prost messages and tonic services from it, and the encoded file descriptor set
//! that server reflection serves.

use std::path::PathBuf;

/// The contract's files, relative to the `proto/` include directory.
const PROTOS: &[&str] = &[
    "veu/v1/evidence.proto",
    "veu/v1/agent.proto",
    "veu/v1/enrollment.proto",
    "veu/v1/audit.proto",
    "veu/v1/admin.proto",
    "veu/v1/landmark.proto",
    "grpc/health/v1/health.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let include = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", include.join(proto).display());
    }
    let descriptors = protox::compile(PROTOS, [&include])?;
    // The encoded descriptors, for the collector's server reflection (grpcurl and friends).
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("descriptors.bin");
    std::fs::write(out, prost::Message::encode_to_vec(&descriptors))?;
    tonic_prost_build::configure()
        .build_transport(false)
        // Smaller per-call buffers than tonic's default: `src/codec.rs` says why.
        .codec_path("crate::codec::ProtoCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
