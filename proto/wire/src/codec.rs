//! The codec every generated client and server uses: prost's, with smaller buffers.
//!
//! tonic allocates its encode and decode buffers eagerly, one of each per call, 8 KiB each by
//! default; a collector holds one stream per connected agent for hours, so those 16 KiB were
//! a quarter of what an idle agent cost it. The messages of a stream are small (an 8-GPU
//! attestation is about 2 KiB, an ack or a challenge under 100 bytes), and a buffer still
//! grows, by `BUFFER_BYTES` at a time, to hold a larger message (up to `MAX_MESSAGE_BYTES`).

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Initial size and growth step of each call's encode and decode buffer.
pub const BUFFER_BYTES: usize = 1024;

/// Encoded bytes a response stream gathers before it yields to the transport (tonic's default).
const YIELD_THRESHOLD: usize = 32 * 1024;

/// prost encoding with `BUFFER_BYTES` buffers; the generated code names it (`build.rs`).
#[derive(Debug, Clone, Copy)]
pub struct ProtoCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for ProtoCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

fn buffers() -> BufferSettings {
    BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD)
}

impl<T, U> Codec for ProtoCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(buffers())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(buffers())
    }
}
