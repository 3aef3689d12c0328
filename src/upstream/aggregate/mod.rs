//! Aggregates: one client call answered by several services, fetched in
//! parallel near them, merged into one JSON document.
//!
//! An aggregate is an upstream kind, like one origin: a route whose
//! service is an aggregate runs its legs instead of proxying. Each leg
//! calls a service (through the same upstream machinery as a route) with a
//! method and a path template over the route's parameters, the caller's
//! identity, the query and, for chained legs, other legs' responses; keeps
//! what its shape says of the JSON answer; and fills its slot in the
//! merged document.
//!
//! - [`template`]: leg paths, parsed at load, rendered per request with
//!   every value percent-encoded for where it goes.
//! - [`shape`]: what a leg keeps of its answer (take, allow, deny, rename).
//! - [`run`]: the legs in dependency order, as many at once as the
//!   runtime allows, each bounded by its timeout and the overall deadline.
//! - [`merge`]: named slots, a deep merge, or an array.
//!
//! A leg that fails leaves a problem object in its slot (optional legs) or
//! fails the call (required legs); what clients see never names a
//! service's address.

use std::rc::Rc;
use std::time::Duration;

use http::{HeaderName, Method};

use crate::config::Service;

pub mod merge;
pub mod run;
pub mod shape;
pub mod template;

pub use shape::Shape;
pub use template::Template;

/// At most this many legs per aggregate.
pub const MAX_LEGS: usize = 20;
/// Legs in flight at once: the runtime's limit on simultaneous outgoing
/// connections per request. More wait for a free place.
pub const MAX_CONCURRENT_LEGS: usize = 6;

/// How leg results become one document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeMode {
    /// `{ "leg": result, ... }` (the default).
    Named,
    /// Every leg's object merged into one, in leg order (later keys win).
    Deep,
    /// `[result, ...]` in leg order.
    Array,
}

/// A checked aggregate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aggregate {
    /// In the order the config lists them (the order of the merge).
    pub legs: Vec<Leg>,
    pub merge: MergeMode,
    /// Bounds the whole call, every leg and wait included.
    pub deadline: Duration,
    /// A leg's answer longer than this fails the leg.
    pub max_leg_bytes: usize,
    /// A merged document longer than this fails the call.
    pub max_response_bytes: usize,
}

impl Aggregate {
    /// Whether any leg's answers are cached.
    pub fn caches_legs(&self) -> bool {
        self.legs.iter().any(|leg| leg.cache.is_some())
    }
}

/// One call an aggregate makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leg {
    pub name: String,
    pub service: Rc<Service>,
    pub method: Method,
    /// The path and query it asks for (after the service's base path).
    pub path: Template,
    /// Client request headers passed on to it.
    pub pass_headers: Vec<HeaderName>,
    pub timeout: Duration,
    /// A required leg that fails fails the call; an optional one leaves a
    /// problem in its slot.
    pub required: bool,
    pub shape: Shape,
    /// Its answers are cached (by its rendered path and query, and the
    /// caller unless shared): a fresh entry costs no call.
    pub cache: Option<Rc<crate::cache::CachePolicy>>,
    /// The legs whose answers its path uses (positions in `legs`).
    pub depends_on: Vec<usize>,
}
