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

use super::{HeaderFamilies, PolicyResult};

fn seconds(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// The headers for a request's policy results.
pub fn headers(results: &[PolicyResult], families: HeaderFamilies) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if results.is_empty() {
        return out;
    }
    if families.legacy
        && let Some(tightest) = results
            .iter()
            .min_by_key(|r| (r.decision.allowed, r.decision.remaining))
    {
        out.push(("x-ratelimit-limit", tightest.decision.limit.to_string()));
        out.push((
            "x-ratelimit-remaining",
            tightest.decision.remaining.to_string(),
        ));
        out.push((
            "x-ratelimit-reset",
            seconds(tightest.decision.reset_after_ms).to_string(),
        ));
    }
    if families.ietf {
        let policy = results
            .iter()
            .map(|r| {
                format!(
                    "\"{}\";q={};w={}",
                    r.name,
                    r.quota.limit,
                    seconds(r.quota.period_ms)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let state = results
            .iter()
            .map(|r| {
                format!(
                    "\"{}\";r={};t={}",
                    r.name,
                    r.decision.remaining,
                    seconds(r.decision.reset_after_ms)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        out.push(("ratelimit-policy", policy));
        out.push(("ratelimit", state));
    }
    out
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
