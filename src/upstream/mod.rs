//! Upstreams as data: what stands behind a service, how the target of one
//! request is chosen, and how it is called.
//!
//! A service's [`Upstream`] is one origin today. Balanced sets of targets
//! (with health and retries) and aggregates of several services are new
//! variants of it, each with its own module beside [`single`]; the
//! pipeline's upstream phase only ever asks [`Upstream::choose`] for a
//! target (pingora's `upstream_peer`) and [`single::send`] to call it.
//!
//! Nothing here decides policy about the client (auth, limits, CORS), and
//! nothing here tells the client where a service lives: errors name
//! targets only for the log.

use std::fmt;

use http::uri::{Authority, Scheme};

use crate::error::GatewayError;

pub mod geo;
pub mod hash;
pub mod outlier;
pub mod pick;
pub mod retry;
pub mod single;

/// What serves a service's requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// One origin.
    Single(Origin),
}

/// Where a service lives: scheme, authority and an optional base path that
/// is put in front of every upstream path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub scheme: Scheme,
    pub authority: Authority,
    /// Empty, or a path without a trailing `/` (`/v1`).
    pub base_path: String,
}

impl Upstream {
    /// The target for this request. With one origin there is no choice to
    /// make; balanced upstreams choose here (by load, health, hash or
    /// region) and may refuse when no target is healthy.
    pub fn choose(&self) -> Result<&Origin, GatewayError> {
        match self {
            Upstream::Single(origin) => Ok(origin),
        }
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Single(origin) => origin.fmt(f),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}
