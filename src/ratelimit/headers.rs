//! Rate-limit response headers.
//!
//! - `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`
//!   (seconds until the quota is whole again), for the most restrictive
//!   policy: the one with the least remaining.
//! - `RateLimit-Policy` and `RateLimit` as structured-field lists, one item
//!   per policy (draft-ietf-httpapi-ratelimit-headers-09):
//!   `RateLimit-Policy: "burst";q=10;w=1, "daily";q=10000;w=86400` and
//!   `RateLimit: "burst";r=7;t=1, "daily";r=9992;t=41213`.
//! - `Retry-After` (seconds, at least 1) on a 429.

use std::fmt::Write;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{HeaderFamilies, PolicyResult};

const X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

fn seconds(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// Put the headers for a request's policy results on a response.
pub fn write(results: &[PolicyResult], families: HeaderFamilies, headers: &mut HeaderMap) {
    if results.is_empty() {
        return;
    }
    if families.legacy
        && let Some(tightest) = results
            .iter()
            .min_by_key(|r| (r.decision.allowed, r.decision.remaining))
    {
        headers.insert(X_LIMIT, HeaderValue::from(tightest.decision.limit));
        headers.insert(X_REMAINING, HeaderValue::from(tightest.decision.remaining));
        headers.insert(
            X_RESET,
            HeaderValue::from(seconds(tightest.decision.reset_after_ms)),
        );
    }
    if families.ietf {
        let mut policy = String::with_capacity(32 * results.len());
        let mut state = String::with_capacity(32 * results.len());
        for (index, r) in results.iter().enumerate() {
            let separator = if index == 0 { "" } else { ", " };
            // Names are [a-z0-9_-] (checked at load): safe inside quotes.
            let _ = write!(
                policy,
                "{separator}\"{}\";q={};w={}",
                r.name,
                r.quota.limit,
                seconds(r.quota.period_ms)
            );
            let _ = write!(
                state,
                "{separator}\"{}\";r={};t={}",
                r.name,
                r.decision.remaining,
                seconds(r.decision.reset_after_ms)
            );
        }
        for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, state)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
}

/// `Retry-After` for a denied request: when the denying policies would
/// all admit it again (their reset if the cost can never pass).
pub fn retry_after_seconds(results: &[PolicyResult]) -> u64 {
    results
        .iter()
        .filter(|r| !r.decision.allowed)
        .map(|r| {
            seconds(
                r.decision
                    .retry_after_ms
                    .unwrap_or(r.decision.reset_after_ms.max(r.quota.period_ms)),
            )
        })
        .max()
        .unwrap_or(1)
        .max(1)
}
