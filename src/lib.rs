//! Portico: an edge API gateway for Cloudflare Workers and workerd.
//!
//! How the code is laid out:
//!
//! - [`gateway`]: one isolate's state, and the entry point for a request.
//! - [`pipeline`]: the fixed order of the request and response phases, the
//!   per-request context they share, and the flow value that lets a phase
//!   answer early.
//! - [`phases`]: one module per phase (match route, CORS, authenticate,
//!   authorize, rate limit, upstream, respond, log).
//! - [`upstream`]: what stands behind a service, how a target is chosen and
//!   called.
//! - [`routing`]: the route table and its one pure `find`.
//! - [`config`]: the JSON document in KV, checked once at load with every
//!   reference resolved, and the per-isolate cache that never swaps in a
//!   bad one.
//! - [`auth`], [`ratelimit`], [`cors`]: the policies the phases apply.
//! - [`transform`]: header and query templates, JSON reshaping, and the
//!   XML <-> JSON mapping that request and response transforms apply.
//! - [`observe`]: access log events, W3C trace context, metrics points.
//! - [`http`]: small shared HTTP facts (hop-by-hop headers,
//!   `Cache-Control`).
//! - [`error`] and [`problem`]: one error type, mapped once to RFC 9457
//!   problem+json.
//! - [`platform`]: the seam to the runtime (clock, KV, fetch and bodies,
//!   response cache, background work, log and metrics sinks, randomness,
//!   secrets, rate-limit objects) with a Workers adapter and an in-memory
//!   one for tests, the executor each request's future runs on in a
//!   Worker (`platform::task`), and the head text a Worker's messages
//!   cross the JavaScript boundary as (`platform::head`).
//! - [`admin`]: the operators' API under `/__portico/` (off by default).
//! - [`cli`] (native only): the `portico` command for operators.
//!
//! The core never names `worker::*`; only `platform::workers` does.
//!
//! A panic in wasm takes down every request in flight in the isolate, so
//! outside tests nothing here may unwrap, expect, panic or index out of
//! bounds: the lints below make the compiler find the next one.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::indexing_slicing
    )
)]

pub mod admin;
pub mod auth;
pub mod bench;
pub mod body;
pub mod cache;
// The operators' command line runs on their machine, not on the request
// path; a panic there ends one command, never a request.
#[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
#[allow(clippy::indexing_slicing)]
pub mod cli;
pub mod config;
pub mod cors;
pub mod error;
pub mod gateway;
pub mod http;
pub mod observe;
pub mod phases;
pub mod pipeline;
pub mod platform;
pub mod problem;
pub mod ratelimit;
pub mod routing;
pub mod transform;
pub mod ttl_cache;
pub mod upstream;

pub use body::Body;
pub use gateway::{Gateway, Inbound};
