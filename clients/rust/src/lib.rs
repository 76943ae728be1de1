//! A client for Herald, the webhook delivery service: publish events, manage endpoints
//! and watch deliveries over gRPC, and verify the webhooks Herald sends.
//!
//! # Layout
//!
//! - [`verify`]: receiver-side Standard Webhooks signature check; pure, no gRPC. It is the
//!   whole crate with `default-features = false`.
//! - [`Client`] (`client`): the connection (address, TLS, API key, default tenant,
//!   deadlines, keepalive) and the calls: publish, endpoints, messages, attempts.
//! - [`Event`] (`publish`): one event to publish, JSON or raw bytes, with its options.
//! - [`Watch`] (`watch`): the status stream, resumed from its last cursor after every
//!   disconnect, never yielding an event twice.
//! - [`Error`] (`error`): a failed call with its `google.rpc` details decoded.
//! - [`pb`]: the messages and stub generated from `proto/herald/v1/herald.proto` (by
//!   `buf generate`; do not edit).
//!
//! # Verifying a webhook (no gRPC involved)
//!
//! ```
//! use herald_client::verify::{verify, DEFAULT_TOLERANCE};
//!
//! # let (secret, headers, body) = ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", http::HeaderMap::new(), b"{}");
//! match verify(secret, &headers, body, DEFAULT_TOLERANCE) {
//!     Ok(()) => { /* handle the event */ }
//!     Err(e) => eprintln!("refused: {e}"), // answer 400 (or 401) and do not process it
//! }
//! ```
//!
//! Publishing is on [`Client`] (the `grpc` feature, on by default).

pub mod verify;

#[cfg(feature = "grpc")]
mod client;
#[cfg(feature = "grpc")]
mod error;
#[cfg(feature = "grpc")]
mod publish;
#[cfg(feature = "grpc")]
mod watch;

/// Messages and the client stub generated from the proto.
#[cfg(feature = "grpc")]
#[allow(clippy::all, missing_docs, rustdoc::all)]
pub mod pb {
    include!("gen/herald/v1/herald.v1.rs");
}

#[cfg(feature = "grpc")]
pub use client::{Client, ClientBuilder, Credential, Stub};
#[cfg(feature = "grpc")]
pub use error::{Error, StatusError};
#[cfg(feature = "grpc")]
pub use publish::Event;
#[cfg(feature = "grpc")]
pub use tonic::Code;
#[cfg(feature = "grpc")]
pub use tonic_types::{ErrorDetails, ErrorInfo, FieldViolation};
pub use verify::{VerifyError, verify};
#[cfg(feature = "grpc")]
pub use watch::Watch;
