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
//! - [`coalesce`]: one call in flight per object per isolate; requests
//!   arriving meanwhile go together in the next call, decided in order.
//!
//! Limit keys are hashed into object names, so no API key, user or IP
//! address ever appears in an object name or a log line; their values are
//! tagged by source and encoded unambiguously ([`object_name`]).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr};
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::{Identity, RatePlan};

pub mod algorithm;
pub mod coalesce;
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

impl ScopePart {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopePart::Key => "key",
            ScopePart::User => "user",
            ScopePart::Ip => "ip",
            ScopePart::Route => "route",
        }
    }
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
    /// With an `ip` scope: IPv6 clients count per network of this many
    /// leading bits.
    pub ipv6_prefix: u8,
}

/// IPv6 clients count per /64 unless a policy says otherwise: one
/// subscriber's or one host's usual allocation, which it can rotate
/// through freely.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

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
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
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
    /// Applied before authentication, so they count requests whose
    /// credentials are never checked (scopes `ip` and `route` only).
    pub before_auth: Vec<Policy>,
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
///
/// Every value goes in tagged with where it came from (an API key id is
/// not a token subject; a subject from one issuer is not one from
/// another) and length-prefixed, so no value can imitate another source
/// or another scope list, whatever characters it holds. IPv6 addresses
/// count per network of the policy's prefix length: a client rotating
/// through its /64 is still one client. Changing this encoding renames
/// every object (existing counts start fresh), hence the version.
pub fn object_name(
    policy: &Policy,
    route_id: &str,
    identity: Option<&Identity>,
    client_ip: Option<IpAddr>,
) -> String {
    let mut name = NameHasher(Sha256::new());
    name.0.update(b"portico-ratelimit-v2");
    for part in &policy.scope {
        match part {
            ScopePart::Route => {
                name.field(b"route");
                name.field(route_id.as_bytes());
            }
            ScopePart::Key => {
                name.field(b"key");
                name.caller(identity, true);
            }
            ScopePart::User => {
                name.field(b"user");
                name.caller(identity, false);
            }
            ScopePart::Ip => {
                name.field(b"ip");
                match client_ip.map(|ip| network(ip, policy.ipv6_prefix)) {
                    Some(IpAddr::V4(v4)) => {
                        name.field(b"v4");
                        name.field(&v4.octets());
                    }
                    Some(IpAddr::V6(v6)) => {
                        name.field(b"v6");
                        name.field(&[policy.ipv6_prefix]);
                        name.field(&v6.octets());
                    }
                    None => name.field(b"unknown"),
                }
            }
        }
    }
    base16ct::lower::encode_string(&name.0.finalize())
}

/// Feeds the object-name hash one unambiguous field at a time.
struct NameHasher(Sha256);

impl NameHasher {
    /// A field: its length, then its bytes.
    fn field(&mut self, bytes: &[u8]) {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.0.update(len.to_be_bytes());
        self.0.update(bytes);
    }

    /// Who is calling, tagged by source: an API key by its id (`by_key`),
    /// else a token's subject or, failing that, its consumer, each with
    /// the method and issuer that vouched for it.
    fn caller(&mut self, identity: Option<&Identity>, by_key: bool) {
        let Some(identity) = identity else {
            self.field(b"anonymous");
            return;
        };
        if by_key && let Some(id) = &identity.key_id {
            self.field(b"api_key");
            self.field(id.as_bytes());
            return;
        }
        self.field(identity.method.map_or("", |m| m.as_str()).as_bytes());
        self.field(identity.issuer.as_deref().unwrap_or("").as_bytes());
        match (&identity.subject, &identity.consumer) {
            (Some(subject), _) => {
                self.field(b"sub");
                self.field(subject.as_bytes());
            }
            (None, Some(consumer)) => {
                self.field(b"consumer");
                self.field(consumer.as_bytes());
            }
            (None, None) => self.field(b"nobody"),
        }
    }
}

/// The part of `ip` a limit counts per: an IPv4 address whole (IPv4-mapped
/// IPv6 addresses included), an IPv6 address as its network of
/// `ipv6_prefix` bits.
pub fn network(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let host_bits = 128u32.saturating_sub(u32::from(ipv6_prefix));
            let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(scope: Vec<ScopePart>) -> Policy {
        let quota = Quota {
            algorithm: Algorithm::TokenBucket,
            limit: 5,
            period_ms: 1000,
            burst: 5,
        };
        Policy::new("p", quota, scope, 1, None)
    }

    fn user(subject: &str) -> Identity {
        Identity {
            method: Some(crate::auth::AuthMethod::Jwt),
            issuer: Some("https://issuer.test".to_owned()),
            subject: Some(subject.to_owned()),
            ..Identity::default()
        }
    }

    #[test]
    fn a_value_holding_the_delimiter_cannot_imitate_another_scope_list() {
        let alone = object_name(
            &policy(vec![ScopePart::User]),
            "orders",
            Some(&user("u\nroute=orders")),
            None,
        );
        let with_route = object_name(
            &policy(vec![ScopePart::User, ScopePart::Route]),
            "orders",
            Some(&user("u")),
            None,
        );
        assert_ne!(alone, with_route);
    }
}
