//! Upstreams as data: what stands behind a service, how the target of one
//! request is chosen, and how it is called.
//!
//! A service's [`Upstream`] is one origin ([`single`]: one call with the
//! always-safe retry), a balanced set of targets ([`balanced`]: the
//! choice, [`attempts`]: the tries, with [`retry`] policies and budgets,
//! [`outlier`] passive health and [`health`] scheduled checks, [`pick`]
//! algorithms, [`hash`] rings and [`geo`] places), or an [`aggregate`] of
//! several services (an aggregate route's own service, whose legs each
//! choose their own target). A target is chosen in one place only,
//! [`Upstream::choose`] (pingora's `upstream_peer`); what an isolate knows
//! about targets between requests lives in [`state::Balancers`].
//!
//! Nothing here decides policy about the client (auth, limits, CORS), and
//! nothing here tells the client where a service lives: errors name
//! targets only for the log.

use std::fmt;
use std::rc::Rc;

use http::uri::{Authority, Scheme};

pub mod aggregate;
pub mod attempts;
pub mod balanced;
pub mod geo;
pub mod hash;
pub mod health;
pub mod outlier;
pub mod pick;
pub mod retry;
pub mod single;
pub mod state;

pub use balanced::{Balanced, ChoiceInput, Chosen, NoHealthyTarget};
pub use state::Balancers;

/// What serves a service's requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// One origin, nothing to choose or keep: the cheap case.
    Single(Origin),
    /// Several targets, or one with retries or health checks.
    Balanced(Rc<Balanced>),
    /// Several services' answers merged (an aggregate route's own service).
    Aggregate(Rc<aggregate::Aggregate>),
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
    /// Every origin that may serve requests, in config order (none for an
    /// aggregate: its legs' services have theirs).
    pub fn origins(&self) -> impl Iterator<Item = &Origin> {
        let (single, balanced) = match self {
            Upstream::Single(origin) => (Some(origin), None),
            Upstream::Balanced(balanced) => (None, Some(&balanced.targets)),
            Upstream::Aggregate(_) => (None, None),
        };
        single
            .into_iter()
            .chain(balanced.into_iter().flatten().map(|target| &target.origin))
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
            Upstream::Balanced(balanced) => {
                for (index, target) in balanced.targets.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{} (weight {})", target.origin, target.weight)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}
