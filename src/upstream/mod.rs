//! Upstreams as data: what stands behind a service, how the target of one
//! request is chosen, and how it is called.
//!
//! A service's [`Upstream`] is one origin, or an [`aggregate`] of several
//! services (an aggregate route's own service). Balanced sets of targets
//! (with health and retries) are another variant, with its own module
//! beside [`single`]; the pipeline's upstream phase asks
//! [`Upstream::choose`] for a target (pingora's `upstream_peer`) and
//! [`single::send`] to call it, or runs the aggregate's legs.
//!
//! Nothing here decides policy about the client (auth, limits, CORS), and
//! nothing here tells the client where a service lives: errors name
//! targets only for the log.

use std::fmt;

use http::uri::{Authority, Scheme};

use crate::error::GatewayError;

pub mod aggregate;
pub mod single;

/// What serves a service's requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// One origin.
    Single(Origin),
    /// Several services' answers merged (an aggregate route's own service).
    Aggregate(std::rc::Rc<aggregate::Aggregate>),
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
            Upstream::Aggregate(_) => Err(GatewayError::Internal(
                "an aggregate has no single target; its legs choose theirs".to_owned(),
            )),
        }
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Single(origin) => origin.fmt(f),
            Upstream::Aggregate(aggregate) => {
                let legs: Vec<&str> = aggregate.legs.iter().map(|leg| leg.name.as_str()).collect();
                write!(f, "aggregate of {}", legs.join(", "))
            }
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}
