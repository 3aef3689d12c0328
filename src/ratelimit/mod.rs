//! Rate limiting: exact and global, with one Durable Object as the single
//! writer for each limit key.
//!
//! - [`algorithm`]: the pure arithmetic (token bucket, GCRA, fixed window,
//!   sliding log) over stored state, a clock reading and a quota.
//! - [`object`]: what the object does with it, atomically for every
//!   policy that shares its key.
//! - [`headers`]: `X-RateLimit-*`, the IETF `RateLimit-Policy`/`RateLimit`
//!   fields and `Retry-After`.
//! - [`local`]: what an isolate remembers: keys it knows are over their
//!   limit until their reset, and objects that just failed.
//!
//! Limit keys are hashed into object names, so no API key, user or IP
//! address ever appears in an object name or a log line.

use std::borrow::Cow;
use std::net::IpAddr;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::{Identity, RatePlan};

pub mod algorithm;
pub mod headers;
pub mod local;
pub mod object;

pub use algorithm::{Algorithm, Decision, Quota};

/// What a limit counts per.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopePart {
    /// The credential: API key id, else token subject, else consumer.
    Key,
    /// The user: token subject, else consumer.
    User,
    /// The client address.
    Ip,
    /// The route.
    Route,
}

/// One limit a route applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub name: Rc<str>,
    pub quota: Quota,
    pub scope: Vec<ScopePart>,
    /// Units each request costs.
    pub cost: u64,
    /// Lease batches of units to isolates instead of asking the object on
    /// every request (see [`local`]).
    pub lease: Option<Lease>,
    /// Where an object keeps this policy's state: its name and quota, so
    /// a changed quota starts from a fresh state. Built once.
    pub state_key: Rc<str>,
}

impl Policy {
    pub fn new(
        name: &str,
        quota: Quota,
        scope: Vec<ScopePart>,
        cost: u64,
        lease: Option<Lease>,
    ) -> Policy {
        Policy {
            state_key: state_key(name, &quota),
            name: Rc::from(name),
            quota,
            scope,
            cost,
            lease,
        }
    }

    /// This policy with a caller's own rate plan in place of its quota, if
    /// the plan is one the config itself could hold for this algorithm.
    /// Plans come from KV records, not the checked config: a limit or
    /// period of zero would admit everything, and a sliding log over its
    /// cap would outgrow the object's storage and then fail open.
    pub fn with_plan(&self, rate: RatePlan) -> Result<Policy, PlanError> {
        let algorithm = self.quota.algorithm;
        let max_limit = max_limit(algorithm);
        if !(1..=max_limit).contains(&rate.limit) {
            return Err(PlanError::Limit {
                limit: rate.limit,
                max: max_limit,
                algorithm: algorithm.as_str(),
            });
        }
        if !(1..=MAX_PERIOD_SECONDS).contains(&rate.period_seconds) {
            return Err(PlanError::Period(rate.period_seconds));
        }
        let quota = Quota {
            limit: rate.limit,
            period_ms: rate.period_seconds.saturating_mul(1000),
            burst: rate.limit,
            ..self.quota
        };
        Ok(Policy {
            state_key: state_key(&self.name, &quota),
            quota,
            cost: self.cost.min(rate.limit),
            ..self.clone()
        })
    }
}

/// The largest `limit` a policy may have.
pub const MAX_LIMIT: u64 = 1_000_000_000;
/// The sliding log keeps one entry per admitted unit, so its limit is
/// what one object's storage can hold.
pub const MAX_SLIDING_LOG_LIMIT: u64 = 10_000;
/// The longest period a policy may have: 31 days.
pub const MAX_PERIOD_SECONDS: u64 = 31 * 86_400;

/// The largest `limit` a policy with `algorithm` may have.
pub fn max_limit(algorithm: Algorithm) -> u64 {
    match algorithm {
        Algorithm::SlidingLog => MAX_SLIDING_LOG_LIMIT,
        _ => MAX_LIMIT,
    }
}

/// Why a caller's own rate plan was not used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the plan's limit {limit} is outside 1 to {max} for {algorithm}")]
    Limit {
        limit: u64,
        max: u64,
        algorithm: &'static str,
    },
    #[error("the plan's period_seconds {0} is outside 1 to {MAX_PERIOD_SECONDS}")]
    Period(u64),
}

/// How a policy leases units to isolates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Units taken from the object at once, at most.
    pub size: u64,
    /// How long an isolate may spend them; what is left then is lost.
    pub ttl_ms: u64,
}

/// What happens when the rate-limit store cannot answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Let the request through (and log it).
    Open,
    /// Refuse it with 503.
    Closed,
}

/// Which header families a route sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderFamilies {
    /// `X-RateLimit-Limit`, `-Remaining`, `-Reset`.
    pub legacy: bool,
    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
    pub ietf: bool,
}

/// A route's rate limiting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRateLimit {
    /// The default plan; an API key's own rate plan replaces its limit and
    /// period.
    pub plan: Option<Policy>,
    /// Always applied, on top of the plan.
    pub policies: Vec<Policy>,
    pub on_failure: FailurePolicy,
    pub headers: HeaderFamilies,
}

impl RouteRateLimit {
    /// The policies for a caller: the plan (with the caller's own rate
    /// plan, if any and valid) and the others. Only a caller's own plan is
    /// built here; everything else is the config's. A caller's plan that
    /// is not valid is refused, never a free pass: the route's plan
    /// applies, and the refusal comes back for the log.
    pub fn effective(&self, identity: Option<&Identity>) -> Effective<'_> {
        let mut policies = Vec::with_capacity(self.policies.len() + 1);
        let mut refused_plan = None;
        if let Some(plan) = &self.plan {
            policies.push(
                match identity
                    .and_then(|i| i.rate)
                    .map(|rate| plan.with_plan(rate))
                {
                    Some(Ok(own)) => Cow::Owned(own),
                    Some(Err(refusal)) => {
                        refused_plan = Some(refusal);
                        Cow::Borrowed(plan)
                    }
                    None => Cow::Borrowed(plan),
                },
            );
        }
        policies.extend(self.policies.iter().map(Cow::Borrowed));
        Effective {
            policies,
            refused_plan,
        }
    }
}

/// The policies that apply to one caller.
#[derive(Debug)]
pub struct Effective<'a> {
    pub policies: Vec<Cow<'a, Policy>>,
    /// Why the caller's own rate plan was not used, if it was not.
    pub refused_plan: Option<PlanError>,
}

/// The name of the object that holds `policy`'s state for this request:
/// a hash of its scope values, so no key, user or address appears in it.
pub fn object_name(
    policy: &Policy,
    route_id: &str,
    identity: Option<&Identity>,
    client_ip: Option<IpAddr>,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"portico-ratelimit-v1");
    for part in &policy.scope {
        hasher.update(b"\n");
        match part {
            ScopePart::Route => {
                hasher.update(b"route=");
                hasher.update(route_id.as_bytes());
            }
            ScopePart::Key => {
                hasher.update(b"key=");
                let value = identity.and_then(|i| {
                    i.key_id
                        .as_deref()
                        .or(i.subject.as_deref())
                        .or(i.consumer.as_deref())
                });
                hasher.update(value.unwrap_or("").as_bytes());
            }
            ScopePart::User => {
                hasher.update(b"user=");
                let value = identity.and_then(|i| i.subject.as_deref().or(i.consumer.as_deref()));
                hasher.update(value.unwrap_or("").as_bytes());
            }
            ScopePart::Ip => {
                hasher.update(b"ip=");
                if let Some(ip) = client_ip {
                    hasher.update(ip.to_string().as_bytes());
                }
            }
        }
    }
    base16ct::lower::encode_string(&hasher.finalize())
}

fn state_key(name: &str, q: &Quota) -> Rc<str> {
    Rc::from(format!(
        "{}:{}:{}:{}:{}",
        name,
        q.algorithm.as_str(),
        q.limit,
        q.period_ms,
        q.burst
    ))
}

/// Where an isolate and an object know one policy's state for one caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LimitKey {
    /// The object (see [`object_name`]).
    pub object: String,
    /// The state inside it (see [`Policy::state_key`]).
    pub state: Rc<str>,
}

/// A policy's result for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyResult {
    pub name: Rc<str>,
    pub quota: Quota,
    pub decision: Decision,
}
