//! Checking routes' `rate_limit` sections.

use std::time::Duration;

use super::duration::parse_duration;
use super::error::Issues;
use super::wire::{
    AlgorithmName, FailedAttemptsDocument, LeaseDocument, OnFailure, PolicyDocument,
    RateLimitDocument,
};
use crate::ratelimit::{
    Algorithm, DEFAULT_IPV6_PREFIX, FailurePolicy, HeaderFamilies, Lease, MAX_LIMIT,
    MAX_PERIOD_SECONDS, Policy, Quota, RouteRateLimit, ScopePart, max_limit,
};

const MAX_PERIOD: Duration = Duration::from_secs(MAX_PERIOD_SECONDS);

fn is_policy_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn check_policy(
    document: &PolicyDocument,
    at: &str,
    authenticated: bool,
    issues: &mut Issues,
) -> Option<Policy> {
    let before = issues.len();
    if !is_policy_name(&document.name) {
        issues.push(
            format!("{at}.name"),
            "must be 1 to 32 of a-z, 0-9, '-' or '_'",
        );
    }
    let algorithm = match document.algorithm.unwrap_or(AlgorithmName::TokenBucket) {
        AlgorithmName::TokenBucket => Algorithm::TokenBucket,
        AlgorithmName::Gcra => Algorithm::Gcra,
        AlgorithmName::FixedWindow => Algorithm::FixedWindow,
        AlgorithmName::SlidingLog => Algorithm::SlidingLog,
    };
    let max_limit = max_limit(algorithm);
    if !(1..=max_limit).contains(&document.limit) {
        issues.push(
            format!("{at}.limit"),
            format!(
                "must be between 1 and {max_limit} for {}",
                algorithm.as_str()
            ),
        );
    }
    let period = match parse_duration(&document.period) {
        Ok(period) if !period.is_zero() && period <= MAX_PERIOD => period,
        Ok(_) => {
            issues.push(format!("{at}.period"), "must be between 1ms and 31d");
            Duration::from_secs(1)
        }
        Err(reason) => {
            issues.push(format!("{at}.period"), reason);
            Duration::from_secs(1)
        }
    };
    let buckets = matches!(algorithm, Algorithm::TokenBucket | Algorithm::Gcra);
    let burst = check_burst(document, buckets, at, issues);
    let cost = document.cost.unwrap_or(1);
    let capacity = if buckets { burst } else { document.limit };
    if cost == 0 || cost > capacity {
        issues.push(
            format!("{at}.cost"),
            format!(
                "must be between 1 and the capacity ({capacity}); a larger cost could never pass"
            ),
        );
    }
    check_scope(&document.scope, authenticated, at, issues);
    let lease = document
        .lease
        .as_ref()
        .map(|lease| check_lease(lease, capacity, at, issues));
    let ipv6_prefix = check_ipv6_prefix(document, at, issues);
    if issues.len() != before {
        return None;
    }
    let mut policy = Policy::new(
        &document.name,
        Quota {
            algorithm,
            limit: document.limit,
            period_ms: u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
            burst,
        },
        document.scope.clone(),
        cost,
        lease,
    );
    policy.ipv6_prefix = ipv6_prefix;
    Some(policy)
}

/// `burst`: a bucket's capacity (the limit when not given).
fn check_burst(document: &PolicyDocument, buckets: bool, at: &str, issues: &mut Issues) -> u64 {
    match document.burst {
        None => document.limit,
        Some(_) if !buckets => {
            issues.push(
                format!("{at}.burst"),
                "applies to token_bucket and gcra only",
            );
            document.limit
        }
        Some(burst) if (1..=MAX_LIMIT).contains(&burst) => burst,
        Some(_) => {
            issues.push(
                format!("{at}.burst"),
                format!("must be between 1 and {MAX_LIMIT}"),
            );
            document.limit
        }
    }
}

/// `scope`: at least one part, none twice, and per-caller parts only
/// where the route says who the caller is.
fn check_scope(scope: &[ScopePart], authenticated: bool, at: &str, issues: &mut Issues) {
    if scope.is_empty() {
        issues.push(
            format!("{at}.scope"),
            "name at least one of key, user, ip, route",
        );
    }
    for (index, part) in scope.iter().enumerate() {
        if scope.iter().take(index).any(|earlier| earlier == part) {
            issues.push(format!("{at}.scope[{index}]"), "is listed twice");
        }
        if matches!(part, ScopePart::Key | ScopePart::User) && !authenticated {
            issues.push(
                format!("{at}.scope[{index}]"),
                "counts per caller, but the route has no 'auth' policy to say who the caller is",
            );
        }
    }
}

/// `lease`: units an isolate may take ahead, within the capacity, and for
/// how long.
fn check_lease(lease: &LeaseDocument, capacity: u64, at: &str, issues: &mut Issues) -> Lease {
    if !(2..=100_000).contains(&lease.size) || lease.size > capacity {
        issues.push(
            format!("{at}.lease.size"),
            format!("must be between 2 and the capacity ({capacity}), at most 100000"),
        );
    }
    let ttl = match lease.ttl.as_deref().map(parse_duration) {
        None => Duration::from_secs(1),
        Some(Ok(ttl)) if ttl >= Duration::from_millis(10) && ttl <= Duration::from_secs(60) => ttl,
        Some(Ok(_)) => {
            issues.push(format!("{at}.lease.ttl"), "must be between 10ms and 60s");
            Duration::from_secs(1)
        }
        Some(Err(reason)) => {
            issues.push(format!("{at}.lease.ttl"), reason);
            Duration::from_secs(1)
        }
    };
    Lease {
        size: lease.size,
        ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(1000),
    }
}

/// `ipv6_prefix`: how many leading bits of an IPv6 address count as one
/// client (for `ip` scopes only).
fn check_ipv6_prefix(document: &PolicyDocument, at: &str, issues: &mut Issues) -> u8 {
    match document.ipv6_prefix {
        None => DEFAULT_IPV6_PREFIX,
        Some(_) if !document.scope.contains(&ScopePart::Ip) => {
            issues.push(
                format!("{at}.ipv6_prefix"),
                "applies to policies that count per 'ip' only",
            );
            DEFAULT_IPV6_PREFIX
        }
        Some(bits) if (1..=128).contains(&bits) => bits,
        Some(bits) => {
            issues.push(
                format!("{at}.ipv6_prefix"),
                format!("must be a prefix length from 1 to 128, got {bits}"),
            );
            DEFAULT_IPV6_PREFIX
        }
    }
}

pub(crate) fn check_rate_limit(
    document: &RateLimitDocument,
    at: &str,
    authenticated: bool,
    issues: &mut Issues,
) -> Option<RouteRateLimit> {
    let before = issues.len();
    let at = format!("{at}.rate_limit");
    if document
        .plan
        .as_ref()
        .is_some_and(|plan| plan.before_auth.is_some())
    {
        issues.push(
            format!("{at}.plan.before_auth"),
            "a plan depends on who the caller is, so it cannot count before authentication; \
             put an ip- or route-scoped policy in 'policies' instead",
        );
    }
    let plan = document
        .plan
        .as_ref()
        .and_then(|plan| check_policy(plan, &format!("{at}.plan"), authenticated, issues));
    let mut policies = Vec::new();
    let mut before_auth = Vec::new();
    for (index, document) in document.policies.iter().flatten().enumerate() {
        let at = format!("{at}.policies[{index}]");
        let early = document.before_auth == Some(true);
        if early
            && let Some(part) = document
                .scope
                .iter()
                .find(|part| matches!(part, ScopePart::Key | ScopePart::User))
        {
            issues.push(
                format!("{at}.before_auth"),
                format!(
                    "counts per '{}', which is not known before authentication; \
                     only 'ip' and 'route' scopes can count before it",
                    part.as_str()
                ),
            );
            continue;
        }
        if let Some(policy) = check_policy(document, &at, authenticated || early, issues) {
            if early {
                before_auth.push(policy);
            } else {
                policies.push(policy);
            }
        }
    }
    if document.plan.is_none() && document.policies.as_ref().is_none_or(Vec::is_empty) {
        issues.push(
            at.clone(),
            "give a 'plan' or at least one policy in 'policies'",
        );
    }
    let mut names: Vec<&str> = plan
        .iter()
        .chain(&policies)
        .chain(&before_auth)
        .map(|p| &*p.name)
        .collect();
    names.sort_unstable();
    if names.windows(2).any(|pair| pair.first() == pair.last()) {
        issues.push(at.clone(), "policy names must be unique within a route");
    }
    let headers = document.headers.as_ref();
    let families = HeaderFamilies {
        legacy: headers.and_then(|h| h.legacy).unwrap_or(true),
        ietf: headers.and_then(|h| h.ietf).unwrap_or(true),
    };
    if issues.len() != before {
        return None;
    }
    Some(RouteRateLimit {
        plan,
        policies,
        before_auth,
        on_failure: match document.on_failure.unwrap_or(OnFailure::Open) {
            OnFailure::Open => FailurePolicy::Open,
            OnFailure::Closed => FailurePolicy::Closed,
        },
        headers: families,
    })
}

/// The name the failed-attempts budget goes by in its object: one no
/// route policy can have, so it never shares a route policy's state.
pub const FAILED_ATTEMPTS_POLICY: &str = "#failed-auth";
const FAILED_ATTEMPTS_LIMIT: u64 = 30;
const FAILED_ATTEMPTS_PERIOD: &str = "1m";

/// The gateway-wide budget of failed authentication attempts per client
/// address (`auth.failed_attempts`): on by default, 30 a minute as a
/// token bucket; `None` when turned off.
pub(crate) fn check_failed_attempts(
    document: Option<&FailedAttemptsDocument>,
    issues: &mut Issues,
) -> Option<Policy> {
    let default = FailedAttemptsDocument::default();
    let document = document.unwrap_or(&default);
    if document.enabled == Some(false) {
        return None;
    }
    let as_policy = PolicyDocument {
        name: "failed-auth".to_owned(),
        algorithm: Some(AlgorithmName::TokenBucket),
        limit: document.limit.unwrap_or(FAILED_ATTEMPTS_LIMIT),
        period: document
            .period
            .clone()
            .unwrap_or_else(|| FAILED_ATTEMPTS_PERIOD.to_owned()),
        burst: None,
        scope: vec![ScopePart::Ip],
        cost: None,
        lease: None,
        ipv6_prefix: document.ipv6_prefix,
        before_auth: None,
    };
    let checked = check_policy(&as_policy, "auth.failed_attempts", false, issues)?;
    let mut policy = Policy::new(
        FAILED_ATTEMPTS_POLICY,
        checked.quota,
        checked.scope,
        1,
        None,
    );
    policy.ipv6_prefix = checked.ipv6_prefix;
    Some(policy)
}
