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

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::Identity;

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
    pub name: String,
    pub quota: Quota,
    pub scope: Vec<ScopePart>,
    /// Units each request costs.
    pub cost: u64,
    /// Lease batches of units to isolates instead of asking the object on
    /// every request (see [`local`]).
    pub lease: Option<Lease>,
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
    /// plan, if any) and the others.
    pub fn effective(&self, identity: Option<&Identity>) -> Vec<Policy> {
        let mut policies = Vec::with_capacity(self.policies.len() + 1);
        if let Some(plan) = &self.plan {
            let mut plan = plan.clone();
            if let Some(rate) = identity.and_then(|i| i.rate) {
                plan.quota.limit = rate.limit;
                plan.quota.period_ms = rate.period_seconds.saturating_mul(1000);
                plan.quota.burst = rate.limit;
                plan.cost = plan.cost.min(rate.limit);
            }
            policies.push(plan);
        }
        policies.extend(self.policies.iter().cloned());
        policies
    }
}

/// The name of the object that holds `policy`'s state for this request:
/// a hash of its scope values.
pub fn object_name(
    policy: &Policy,
    route_id: &str,
    identity: Option<&Identity>,
    client_ip: Option<IpAddr>,
) -> String {
    let mut key = String::from("portico-ratelimit-v1");
    for part in &policy.scope {
        key.push('\n');
        match part {
            ScopePart::Route => {
                key.push_str("route=");
                key.push_str(route_id);
            }
            ScopePart::Key => {
                key.push_str("key=");
                key.push_str(
                    &identity
                        .and_then(|i| {
                            i.key_id
                                .clone()
                                .or_else(|| i.subject.clone())
                                .or_else(|| i.consumer.clone())
                        })
                        .unwrap_or_default(),
                );
            }
            ScopePart::User => {
                key.push_str("user=");
                key.push_str(
                    &identity
                        .and_then(|i| i.subject.clone().or_else(|| i.consumer.clone()))
                        .unwrap_or_default(),
                );
            }
            ScopePart::Ip => {
                key.push_str("ip=");
                key.push_str(&client_ip.map(|ip| ip.to_string()).unwrap_or_default());
            }
        }
    }
    base16ct::lower::encode_string(&Sha256::digest(key.as_bytes()))
}

/// Where an object keeps a policy's state: its name and quota, so a
/// changed quota starts from a fresh state.
pub fn state_key(policy: &Policy) -> String {
    let q = &policy.quota;
    format!(
        "{}:{}:{}:{}:{}",
        policy.name,
        q.algorithm.as_str(),
        q.limit,
        q.period_ms,
        q.burst
    )
}

/// A policy's result for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyResult {
    pub name: String,
    pub quota: Quota,
    pub decision: Decision,
}
