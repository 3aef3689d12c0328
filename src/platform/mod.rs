//! The platform seam: everything the gateway needs from its runtime.
//!
//! The core (config, routing, pipeline, phases, upstream) talks to the
//! outside world only through the traits here: the clock and timers, Workers KV,
//! outbound HTTP and body streams, the response cache, background work
//! that outlives a response, the log and metrics sinks, randomness,
//! Worker secrets and the rate-limit objects. Two implementations exist:
//! [`workers`] (wasm32 only) adapts them to the Cloudflare Workers runtime,
//! and [`memory`] keeps everything in memory with a fake clock, for native
//! tests, benchmarks and the CLI's `routes explain`.
//!
//! Nothing outside `platform::workers` may name `worker::*`, and nothing
//! here may hold policy: the seam moves bytes and reads clocks, the core
//! decides. Workers futures are not `Send`, so no trait here asks for it;
//! a platform is a cheap handle (`Clone + 'static`) so that background work
//! can keep it past the response.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

use crate::body::Body;
use crate::observe::events::Event;
use crate::observe::metrics::MetricsPoint;
use crate::ratelimit::object::{LimitCall, LimitReply};

// The head text the Workers adapter moves across the JavaScript boundary;
// tested natively.
#[cfg(any(test, all(target_arch = "wasm32", not(feature = "wasm-bench"))))]
pub mod head;
pub mod memory;
// The handler executor the Workers adapter runs requests on, and the
// table its awaited promises settle into; tested natively.
#[cfg(any(test, all(target_arch = "wasm32", not(feature = "wasm-bench"))))]
pub mod slots;
#[cfg(any(test, all(target_arch = "wasm32", not(feature = "wasm-bench"))))]
pub mod task;
// The Workers adapter; left out of the wasm benchmark build, which runs in
// plain V8 without the Workers runtime.
#[cfg(all(target_arch = "wasm32", not(feature = "wasm-bench")))]
pub mod workers;

/// Wall-clock time in milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// Time elapsed since `earlier`, or zero if the clock went backwards.
    pub fn since(self, earlier: UnixMillis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// Milliseconds elapsed since `earlier`, or zero if the clock went
    /// backwards.
    pub fn millis_since(self, earlier: UnixMillis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// This instant moved `by` into the future (saturating).
    pub fn plus(self, by: Duration) -> UnixMillis {
        UnixMillis(
            self.0
                .saturating_add(u64::try_from(by.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// Whole seconds since the Unix epoch.
    pub fn as_secs(self) -> u64 {
        self.0 / 1000
    }
}

/// The runtime's clock. On Workers it only advances across I/O, which is
/// fine for everything the gateway times.
pub trait Clock {
    fn now(&self) -> UnixMillis;
}

/// Waiting without blocking the isolate (a retry's backoff). On Workers a
/// timer; in memory the fake clock moves on at once.
#[allow(async_fn_in_trait)] // wasm futures are !Send; callers never need Send.
pub trait Timer {
    async fn sleep(&self, duration: Duration);
}

/// The Workers KV namespaces the gateway reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvNamespace {
    /// Route table and settings (binding `CONFIG`).
    Config,
    /// Hashed API keys and their metadata (binding `KEYS`).
    Keys,
}

impl KvNamespace {
    /// The binding name declared in `wrangler.toml`.
    pub fn binding(self) -> &'static str {
        match self {
            KvNamespace::Config => "CONFIG",
            KvNamespace::Keys => "KEYS",
        }
    }
}

/// A failure of the platform itself (a binding missing, a KV read failing).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlatformError(pub String);

/// Workers KV. The request path only reads; the one writer is the
/// scheduled health check, which stores its results next to the config.
#[allow(async_fn_in_trait)] // wasm futures are !Send; callers never need Send.
pub trait KvStore {
    /// The value under `key` as text, or `None` if the key does not exist.
    async fn get_text(
        &self,
        namespace: KvNamespace,
        key: &str,
    ) -> Result<Option<String>, PlatformError>;

    /// Store `value` under `key`, replacing what was there.
    async fn put_text(
        &self,
        namespace: KvNamespace,
        key: &str,
        value: &str,
    ) -> Result<(), PlatformError>;
}

/// How an outbound request should be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchOptions {
    /// Time allowed until the upstream's response headers arrive.
    pub timeout: Duration,
}

/// Why an outbound request produced no response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No response headers within [`FetchOptions::timeout`].
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The connection failed or the runtime refused the request. The text is
    /// for logs only: it may name internal addresses.
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// A body the gateway reads itself was longer than allowed.
    #[error("body longer than {0} bytes")]
    TooLarge(usize),
    /// The client's streamed request body passed the route's limit
    /// ([`RequestBodyLimit`]) on its way upstream; the upstream request was
    /// abandoned.
    #[error("request body longer than {0} bytes")]
    RequestBodyTooLarge(u64),
}

/// An outbound request's body may carry at most this many bytes. The core
/// puts it in the request's extensions when the body's length is not
/// declared (a chunked upload): the platform counts the bytes as they
/// stream and abandons the request, with
/// [`FetchError::RequestBodyTooLarge`], once they pass it. A declared
/// length is checked by the core before anything is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestBodyLimit(pub u64);

/// Two bodies with the same bytes (see [`Bodies::tee_body`]).
pub type BodyPair<S> = (Body<S>, Body<S>);

/// Message bodies owned by the runtime: streamed through untouched by
/// default, read into bytes (with a cap) or split in two only where a
/// feature needs it (retries, caching, transformation, the gateway's own
/// calls).
#[allow(async_fn_in_trait)] // wasm futures are !Send; callers never need Send.
pub trait Bodies {
    /// The platform's native body stream.
    type Stream: 'static;

    /// Read a body to the end. Fails, without buffering the rest, once it
    /// is longer than `limit` bytes.
    async fn read_body(&self, body: Body<Self::Stream>, limit: usize) -> Result<Bytes, FetchError>;

    /// Two bodies that each yield every byte of `body`, for sending one to
    /// the client while reading or storing the other. The runtime buffers
    /// what the slower reader has not taken yet.
    fn tee_body(&self, body: Body<Self::Stream>) -> Result<BodyPair<Self::Stream>, PlatformError>;
}

/// Outbound HTTP. Redirects are never followed: a 3xx goes back to the
/// client as it came. A WebSocket upgrade request (`Upgrade: websocket`)
/// is sent as one; its `101` response carries the socket in the
/// platform's extensions, and sending that response to the client hands
/// the socket through.
#[allow(async_fn_in_trait)] // wasm futures are !Send; callers never need Send.
pub trait HttpClient: Bodies {
    async fn fetch(
        &self,
        request: http::Request<Body<Self::Stream>>,
        options: FetchOptions,
    ) -> Result<http::Response<Body<Self::Stream>>, FetchError>;
}

/// A response cache local to the data centre (the Cache API on Workers),
/// keyed by an absolute URL the gateway builds. It stores what it is given
/// and honours the response's own `Cache-Control` for how long; all policy
/// (what may be stored, under which key, for whom) is the core's.
#[allow(async_fn_in_trait)] // wasm futures are !Send; callers never need Send.
pub trait ResponseCache: Bodies {
    /// The stored response for `key`, if any.
    async fn cache_match(
        &self,
        key: &str,
    ) -> Result<Option<http::Response<Body<Self::Stream>>>, PlatformError>;

    /// Store `response` under `key`, replacing what was there.
    async fn cache_put(
        &self,
        key: &str,
        response: http::Response<Body<Self::Stream>>,
    ) -> Result<(), PlatformError>;

    /// Remove the entry for `key`; whether there was one.
    async fn cache_delete(&self, key: &str) -> Result<bool, PlatformError>;
}

/// Work that goes on after the response has been sent (`ctx.waitUntil` on
/// Workers): storing a cache entry, refreshing a stale one. The future owns
/// everything it uses, so per-isolate state it needs must be shared
/// (`Rc`) rather than borrowed from the request.
pub trait Background {
    fn wait_until(&self, work: impl Future<Output = ()> + 'static);
}

/// One request waking another that waits for it (a coalesced cache miss,
/// a coalesced rate-limit call).
///
/// On Workers a request's code must run in its own request context. One
/// woken directly by another request's code (a Rust waker, or a promise of
/// its own that the other request resolves) carries on, and makes its I/O,
/// inside that other request, where the I/O fails; one that waits on
/// nothing of its own is cancelled by the runtime as hung. So the waking
/// request only leaves word, and the waiter finds it by itself, on timers
/// of its own, which also bound the wait.
pub trait Wakeups {
    /// A wake-up for the calling request, and what it waits on: `true`
    /// once the wake-up is given, `false` when `limit` passes first.
    fn wakeup(&self, limit: Duration) -> (Wakeup, Waiting);
}

/// What a [`Wakeups::wakeup`] waiter waits on.
pub type Waiting = Pin<Box<dyn Future<Output = bool>>>;

/// Given (once) by the request that another waits for.
pub struct Wakeup(Box<dyn FnOnce()>);

impl Wakeup {
    pub fn new(wake: impl FnOnce() + 'static) -> Wakeup {
        Wakeup(Box::new(wake))
    }

    pub fn wake(self) {
        (self.0)();
    }
}

impl fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Wakeup")
    }
}

/// Where structured log events go (the Workers console, or a list in tests).
pub trait LogSink {
    fn log(&self, event: &Event);
}

/// Where per-request metrics go (a Workers Analytics Engine dataset; a
/// no-op when the binding is absent, as in local development).
pub trait MetricsSink {
    /// Whether points go anywhere (so none is built for nothing).
    fn wants_metrics(&self) -> bool;
    fn record(&self, point: &MetricsPoint);
}

/// Randomness: request ids and trace ids.
pub trait Randomness {
    /// A fresh, unique request id.
    fn new_request_id(&self) -> String;
    /// Fill `bytes` with random bytes (not for keys: for ids).
    fn fill_random(&self, bytes: &mut [u8]);
}

/// Worker secrets (and plain variables) by name: signing keys, client
/// secrets. Never stored in KV.
pub trait Secrets {
    fn secret(&self, name: &str) -> Option<String>;
}

/// The rate-limit objects (Durable Objects on Workers), one per limit key.
#[allow(async_fn_in_trait)] // wasm futures are !Send; callers never need Send.
pub trait RateLimitStore {
    /// Run `calls`, one after the other, in the object named `object`
    /// (created on first use), in one round trip: one reply per call, in
    /// order.
    async fn rate_limit(
        &self,
        object: &str,
        calls: &[LimitCall],
    ) -> Result<Vec<LimitReply>, PlatformError>;
}

/// A public key as the runtime's own crypto takes it: a JWK (JSON text)
/// and an id that names the key material, for the runtime to keep the
/// imported key under. Built once, when the config's keys are loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicJwk {
    /// Hex SHA-256 of the key material.
    pub id: String,
    /// `{"kty":"RSA","n":..,"e":..}`, `{"kty":"EC","crv":"P-256",..}` or
    /// `{"kty":"OKP","crv":"Ed25519","x":..}`.
    pub jwk: String,
}

/// Signature checks done by the runtime's native crypto (WebCrypto's
/// `crypto.subtle.verify` on Workers), for the asymmetric JWT algorithms.
/// Parsing and claims stay in the core; so does the decision to trust a
/// key.
#[allow(async_fn_in_trait)] // wasm futures are !Send; callers never need Send.
pub trait SignatureChecks {
    /// Whether `signature` is `key`'s signature over `signed` under `alg`
    /// (a JWS name: RS256, PS384, ES256, EdDSA, ...). `None` when the
    /// platform has no check of its own for it, or its check could not
    /// run: the core's pure-Rust check then decides.
    async fn check_signature(
        &self,
        alg: &str,
        key: &PublicJwk,
        signed: &[u8],
        signature: &[u8],
    ) -> Option<bool>;
}

/// Everything the gateway needs from its runtime, as one cheap handle.
pub trait Platform:
    Clock
    + Timer
    + KvStore
    + HttpClient
    + ResponseCache
    + Background
    + LogSink
    + MetricsSink
    + Randomness
    + Secrets
    + RateLimitStore
    + Wakeups
    + SignatureChecks
    + Clone
    + 'static
{
}

impl<T> Platform for T where
    T: Clock
        + Timer
        + KvStore
        + HttpClient
        + ResponseCache
        + Background
        + LogSink
        + MetricsSink
        + Randomness
        + Secrets
        + RateLimitStore
        + Wakeups
        + SignatureChecks
        + Clone
        + 'static
{
}

impl fmt::Display for UnixMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
