//! The codec of the generated services: prost's, but a message that is not valid
//! protobuf is `INVALID_ARGUMENT` saying what could not be decoded, where prost's codec
//! answers `INTERNAL`, which tells a client the fault is the server's. `build.rs` names
//! this codec for the generated code, so every RPC of `herald.v1` decodes through it.
//!
//! The generated clients (the CLI's, the benchmark's) share it: for them an answer that
//! cannot be decoded also reads `INVALID_ARGUMENT`, with the same message.

use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Prost's codec with [`MessageDecoder`] in place of prost's decoder.
#[derive(Debug, Clone)]
pub struct HeraldCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for HeraldCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for HeraldCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = MessageDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        MessageDecoder(self.0.decoder())
    }
}

/// Prost's decoder, whose only failure (bytes that are not the message) becomes
/// `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub struct MessageDecoder<U>(ProstDecoder<U>);

impl<U: prost::Message + Default> Decoder for MessageDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0
            .decode(buf)
            .map_err(|e| Status::invalid_argument(format!("malformed protobuf: {}", e.message())))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
