//! Phase "rate limit": every policy on the route must admit the request.
//!
//! Policies sharing a limit key are decided by one object in one round
//! trip; policies with different keys go to their objects concurrently.
//! A key this isolate already knows is over its limit is refused without
//! any call until its retry time. When the store cannot answer, the
//! route's failure policy decides: open (admit and log) or closed (503);
//! either way that object is then left alone for a short back-off.
//!
//! Returns the rate-limit headers for the response, or a 429 carrying them
//! and `Retry-After`.

use std::net::IpAddr;

use futures::future::join_all;

use crate::auth::Identity;
use crate::error::GatewayError;
use crate::events::Event;
use crate::platform::{Clock, LogSink, RateLimitStore};
use crate::ratelimit::headers::{headers, retry_after_seconds};
use crate::ratelimit::local::LocalLimits;
use crate::ratelimit::object::{Check, LimitCall};
use crate::ratelimit::{FailurePolicy, PolicyResult, RouteRateLimit, object_name, state_key};

/// Headers to add to the response.
pub type RateLimitHeaders = Vec<(&'static str, String)>;

/// Apply the route's rate limits to this request.
pub async fn check<P>(
    platform: &P,
    local: &LocalLimits,
    limits: &RouteRateLimit,
    route_id: &str,
    identity: Option<&Identity>,
    client_ip: Option<IpAddr>,
) -> Result<RateLimitHeaders, GatewayError>
where
    P: Clock + LogSink + RateLimitStore,
{
    let now = platform.now();
    let policies = limits.effective(identity);
    if policies.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<(String, String)> = policies
        .iter()
        .map(|policy| {
            (
                object_name(policy, route_id, identity, client_ip),
                state_key(policy),
            )
        })
        .collect();

    // Refusals this isolate already holds answer without a call.
    let known: Vec<PolicyResult> = policies
        .iter()
        .zip(&keys)
        .filter_map(|(policy, (object, state))| {
            local
                .denied(object, state, now)
                .map(|decision| PolicyResult {
                    name: policy.name.clone(),
                    quota: policy.quota,
                    decision,
                })
        })
        .collect();
    if !known.is_empty() {
        return Err(refusal(&known, limits));
    }

    // Leased units on hand answer without a call, when they cover every policy.
    if policies.iter().all(|p| p.lease.is_some()) {
        let wanted: Vec<(&(String, String), u64)> = keys
            .iter()
            .zip(&policies)
            .map(|(key, p)| (key, p.cost))
            .collect();
        if local.leases_cover(&wanted, now) {
            let results: Vec<PolicyResult> = policies
                .iter()
                .zip(&keys)
                .filter_map(|(policy, key)| {
                    Some(PolicyResult {
                        name: policy.name.clone(),
                        quota: policy.quota,
                        decision: local.spend_lease(key, policy.cost)?,
                    })
                })
                .collect();
            if results.len() == policies.len() {
                return Ok(headers(&results, limits.headers));
            }
        }
    }

    if let Some((object, _)) = keys.iter().find(|(object, _)| local.is_broken(object, now)) {
        let reason = format!(
            "rate-limit object {} failed moments ago",
            &object[..8.min(object.len())]
        );
        return failed(platform, limits, route_id, &reason);
    }

    // One call per object, with every policy that object holds.
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (index, (object, _)) in keys.iter().enumerate() {
        match groups.iter_mut().find(|(name, _)| name == object) {
            Some((_, members)) => members.push(index),
            None => groups.push((object.clone(), vec![index])),
        }
    }
    let calls: Vec<LimitCall> = groups
        .iter()
        .map(|(_, members)| LimitCall {
            checks: members
                .iter()
                .filter_map(|&i| {
                    let policy = policies.get(i)?;
                    Some(Check {
                        state_key: keys.get(i)?.1.clone(),
                        quota: policy.quota,
                        cost: policy.cost,
                        lease: policy.lease.map(|lease| lease.size),
                    })
                })
                .collect(),
            peek: false,
        })
        .collect();
    let replies = join_all(
        groups
            .iter()
            .zip(&calls)
            .map(|((object, _), call)| platform.rate_limit(object, call)),
    )
    .await;

    let mut decisions = vec![None; policies.len()];
    for ((object, members), reply) in groups.iter().zip(replies) {
        let reply = match reply {
            Ok(reply) if reply.decisions.len() == members.len() => reply,
            Ok(_) => {
                local.trip(object, now);
                return failed(
                    platform,
                    limits,
                    route_id,
                    "the rate-limit object answered out of step",
                );
            }
            Err(error) => {
                local.trip(object, now);
                return failed(platform, limits, route_id, &error.to_string());
            }
        };
        for (position, (&index, mut decision)) in members.iter().zip(reply.decisions).enumerate() {
            // Units granted beyond this request's cost become a lease.
            if let (Some(policy), Some(&granted), Some(key)) = (
                policies.get(index),
                reply.granted.get(position),
                keys.get(index),
            ) && let Some(lease) = policy.lease
            {
                let extra = granted.saturating_sub(policy.cost);
                local.store_lease(
                    key.clone(),
                    extra,
                    decision,
                    now,
                    std::time::Duration::from_millis(lease.ttl_ms),
                );
                decision.remaining = decision.remaining.saturating_add(extra);
            }
            if let Some(slot) = decisions.get_mut(index) {
                *slot = Some(decision);
            }
        }
    }
    let results: Vec<PolicyResult> = policies
        .iter()
        .zip(decisions)
        .filter_map(|(policy, decision)| {
            Some(PolicyResult {
                name: policy.name.clone(),
                quota: policy.quota,
                decision: decision?,
            })
        })
        .collect();

    if results.iter().all(|r| r.decision.allowed) {
        return Ok(headers(&results, limits.headers));
    }
    local.remember(&keys, &results, now);
    Err(refusal(&results, limits))
}

fn refusal(results: &[PolicyResult], limits: &RouteRateLimit) -> GatewayError {
    GatewayError::RateLimited {
        retry_after: retry_after_seconds(results),
        headers: headers(results, limits.headers),
    }
}

fn failed<P: LogSink>(
    platform: &P,
    limits: &RouteRateLimit,
    route_id: &str,
    reason: &str,
) -> Result<RateLimitHeaders, GatewayError> {
    let open = limits.on_failure == FailurePolicy::Open;
    platform.log(&Event::RateLimitUnavailable {
        route: route_id.to_owned(),
        error: reason.to_owned(),
        failed_open: open,
    });
    if open {
        Ok(Vec::new())
    } else {
        Err(GatewayError::RateLimitUnavailable(reason.to_owned()))
    }
}
