//! Message bodies as the core sees them.
//!
//! The core rarely needs to read a body: it routes on the method, URL and
//! headers, then hands the body to the upstream untouched. A body is
//! therefore either bytes the gateway made itself (problem+json, for
//! instance) or an opaque stream owned by the platform, passed through so
//! large uploads and downloads stream straight through. Only a feature
//! that must see the bytes (a retry that may resend them, a cache store, a
//! transformation, the gateway's own calls) reads one, through the
//! platform's [`Bodies`](crate::platform::Bodies), always with a size cap.

use bytes::Bytes;

/// A request or response body. `S` is the platform's native stream type
/// (a JavaScript `ReadableStream` on Workers, plain bytes in memory).
#[derive(Debug, Default)]
pub enum Body<S> {
    /// No body at all.
    #[default]
    Empty,
    /// A body produced by the gateway itself.
    Full(Bytes),
    /// A body owned by the platform, passed through without reading it.
    Stream(S),
}

impl<S> Body<S> {
    /// A body made from bytes the gateway produced.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Body::Full(bytes.into())
    }

    /// Whether the body is known to carry no bytes.
    pub fn is_empty(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(bytes) => bytes.is_empty(),
            Body::Stream(_) => false,
        }
    }
}
