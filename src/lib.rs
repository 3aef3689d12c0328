//! Portico: an edge API gateway for Cloudflare Workers and workerd.
//!
//! How the code is laid out:
//!
//! - [`gateway`]: one request in, one response out; runs the phases.
//! - [`phases`]: the named request phases, in order (match route, forward,
//!   upstream, respond, log; auth, rate limiting and the rest slot in).
//! - [`routing`]: the route table and its one pure `find`.
//! - [`config`]: the JSON document in KV, checked once at load, and the
//!   per-isolate cache that never swaps in a bad one.
//! - [`error`] and [`problem`]: one error type, mapped once to RFC 9457
//!   problem+json.
//! - [`platform`]: the seam to the runtime (clock, KV, outbound fetch, log
//!   sink, ids) with a Workers adapter and an in-memory one for tests.
//! - [`auth`] and [`ratelimit`]: credentials and identities; exact limits
//!   with Durable Objects as single writers.
//! - [`admin`]: the operators' API under `/__portico/` (off by default).
//! - [`cli`] (native only): the `portico` command for operators.
//!
//! The core never names `worker::*`; only `platform::workers` does.
//!
//! A panic in wasm takes down every request in flight in the isolate, so
//! outside tests nothing here may unwrap, expect or panic.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)
)]

pub mod admin;
pub mod auth;
pub mod bench;
pub mod body;
#[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
pub mod cli;
pub mod config;
pub mod error;
pub mod events;
pub mod gateway;
pub mod phases;
pub mod platform;
pub mod problem;
pub mod ratelimit;
pub mod routing;
pub mod ttl_cache;

pub use body::Body;
pub use gateway::{Gateway, Inbound};
