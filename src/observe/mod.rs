//! Observability: what the gateway tells operators about each request.
//!
//! - [`events`]: the structured log vocabulary, one JSON object per line,
//!   including the access log record of every request.
//! - [`trace`]: W3C Trace Context: the trace a request belongs to, kept
//!   from the client or started here, and passed on to the upstream.
//! - [`metrics`]: one Analytics Engine data point per request.
//!
//! Nothing here may carry secrets: no credentials, query strings or
//! bodies. Which requests are logged is decided in the log phase
//! ([`crate::phases::log`]).

pub mod events;
pub mod metrics;
pub mod trace;

pub use events::{AccessLog, Event, Level};
