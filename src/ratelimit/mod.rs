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

    /// This policy with a caller's own rate plan in place of its quota.
    fn with_plan(&self, rate: RatePlan) -> Policy {
        let quota = Quota {
            limit: rate.limit,
            period_ms: rate.period_seconds.saturating_mul(1000),
            burst: rate.limit,
            ..self.quota
        };
        Policy {
            state_key: state_key(&self.name, &quota),
            quota,
            cost: self.cost.min(rate.limit),
            ..self.clone()
        }
    }
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
    /// plan, if any) and the others. Only a caller's own plan is built
    /// here; everything else is the config's.
    pub fn effective(&self, identity: Option<&Identity>) -> Vec<Cow<'_, Policy>> {
        let mut policies = Vec::with_capacity(self.policies.len() + 1);
        if let Some(plan) = &self.plan {
            policies.push(match identity.and_then(|i| i.rate) {
                Some(rate) => Cow::Owned(plan.with_plan(rate)),
                None => Cow::Borrowed(plan),
            });
        }
        policies.extend(self.policies.iter().map(Cow::Borrowed));
        policies
    }
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
