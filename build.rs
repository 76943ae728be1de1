//! Compiles `proto/` with protox (no `protoc` binary needed), with Herald's own codec
//! for the services, and writes the encoded descriptor set beside the generated code,
//! for server reflection.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/herald/v1/herald.proto";
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile([proto], ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("herald_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    // Requests that are not valid protobuf answer INVALID_ARGUMENT (see src/grpc/codec.rs).
    tonic_prost_build::configure()
        .codec_path("crate::grpc::codec::HeraldCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
