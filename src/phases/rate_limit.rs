//! Phase "rate limit": every policy on the route must admit the request.
//! It runs in two passes: [`before_auth`] (policies marked `before_auth`,
//! counted per address or route before any credential is checked) and
//! [`run`] (the plan and the other policies, once the caller is known).
//!
//! Policies sharing a limit key are decided by one object in one round
//! trip; policies with different keys go to their objects concurrently.
//! A key this isolate already knows is over its limit is refused without
//! any call until its retry time, and leased units on hand admit without
//! one. When the store cannot answer, the route's failure policy decides:
//! open (admit and log) or closed (503); either way that object is then
//! left alone for a short back-off.
//!
//! A caller's own rate plan (from its API key record) replaces the route
//! plan's quota only when it is one the config could hold; otherwise the
//! route's plan applies and a `rate_plan_refused` event is logged.
//!
//! The decision goes into the context; [`decorate`] puts the rate-limit
//! headers on whatever response the request gets (a 429 with
//! `Retry-After`, an upstream 5xx, a 504 alike).

use std::borrow::Cow;

use futures::future::join_all;

use crate::body::Body;
use crate::error::GatewayError;
use crate::observe::events::Event;
use crate::pipeline::context::{LimitOutcome, RequestCtx};
use crate::pipeline::flow::Flow;
use crate::platform::{Clock, LogSink, RateLimitStore, UnixMillis, Wakeups};
use crate::ratelimit::headers::{retry_after_seconds, write};
use crate::ratelimit::local::LocalLimits;
use crate::ratelimit::object::{Check, LimitCall};
use crate::ratelimit::{Decision, FailurePolicy, LimitKey, Policy, PolicyResult, object_name};

/// A policy as it applies to this request, with where its state lives.
struct Keyed<'a> {
    policy: Cow<'a, Policy>,
    key: LimitKey,
}

impl Keyed<'_> {
    fn result(&self, decision: Decision) -> PolicyResult {
        PolicyResult {
            name: self.policy.name.clone(),
            quota: self.policy.quota,
            decision,
        }
    }
}

/// What the policies decided together.
enum Verdict {
    Admitted(Vec<PolicyResult>, &'static str),
    Refused(Vec<PolicyResult>, &'static str),
    /// The store could not answer (the reason, for the log).
    Unavailable(String),
}

/// Which of a route's policies a pass applies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// `before_auth` policies, before the credentials are checked.
    BeforeAuth,
    /// The plan and the other policies, once the caller is known.
    AfterAuth,
}

/// Apply the route's `before_auth` policies (ip- and route-scoped): they
/// count requests whose credentials are never checked, so floods of bad
/// credentials are limited before they cost a lookup.
pub async fn before_auth<P, S>(
    platform: &P,
    local: &LocalLimits,
    ctx: &mut RequestCtx<S>,
) -> Result<Flow<S>, GatewayError>
where
    P: Clock + LogSink + RateLimitStore + Wakeups,
{
    apply(platform, local, ctx, Stage::BeforeAuth).await
}

/// Apply the route's rate limits (its plan and other policies) to this
/// request, once the caller is known.
pub async fn run<P, S>(
    platform: &P,
    local: &LocalLimits,
    ctx: &mut RequestCtx<S>,
) -> Result<Flow<S>, GatewayError>
where
    P: Clock + LogSink + RateLimitStore + Wakeups,
{
    apply(platform, local, ctx, Stage::AfterAuth).await
}

async fn apply<P, S>(
    platform: &P,
    local: &LocalLimits,
    ctx: &mut RequestCtx<S>,
    stage: Stage,
) -> Result<Flow<S>, GatewayError>
where
    P: Clock + LogSink + RateLimitStore + Wakeups,
{
    let Some(routed) = &ctx.route else {
        return Ok(Flow::Continue);
    };
    let route = std::rc::Rc::clone(&routed.route);
    let Some(limits) = &route.rate_limit else {
        return Ok(Flow::Continue);
    };
    if ctx.preflight.is_some() {
        return Ok(Flow::Continue);
    }
    if stage == Stage::BeforeAuth && limits.before_auth.is_empty() {
        return Ok(Flow::Continue);
    }
    let started = platform.now();
    let policies = match stage {
        Stage::BeforeAuth => limits.before_auth.iter().map(Cow::Borrowed).collect(),
        Stage::AfterAuth => {
            let effective = limits.effective(ctx.identity.as_ref());
            if let Some(refusal) = &effective.refused_plan {
                platform.log(&Event::RatePlanRefused {
                    route: route.id.clone(),
                    key_id: ctx.identity.as_ref().and_then(|i| i.key_id.clone()),
                    reason: refusal.to_string(),
                });
            }
            effective.policies
        }
    };
    let keyed: Vec<Keyed<'_>> = policies
        .into_iter()
        .map(|policy| Keyed {
            key: LimitKey {
                object: object_name(&policy, &route.id, ctx.identity.as_ref(), ctx.client.ip),
                state: policy.state_key.clone(),
            },
            policy,
        })
        .collect();
    let verdict = decide(platform, local, &keyed, started).await;
    let took = platform.now().millis_since(started);
    ctx.timings.rate_limit = Some(ctx.timings.rate_limit.unwrap_or(0).saturating_add(took));
    // Results of an earlier pass come first, so the headers describe
    // every policy the request went through.
    let earlier = ctx.rate_limit.take().map(|o| o.results).unwrap_or_default();
    let outcome = |results: Vec<PolicyResult>, decision| LimitOutcome {
        results: earlier.into_iter().chain(results).collect(),
        families: limits.headers,
        decision,
    };
    match verdict {
        Verdict::Admitted(results, how) => {
            ctx.rate_limit = Some(outcome(results, how));
            Ok(Flow::Continue)
        }
        Verdict::Refused(results, how) => {
            let retry_after = retry_after_seconds(&results);
            ctx.rate_limit = Some(outcome(results, how));
            Err(GatewayError::RateLimited { retry_after })
        }
        Verdict::Unavailable(reason) => {
            let open = limits.on_failure == FailurePolicy::Open;
            platform.log(&Event::RateLimitUnavailable {
                route: route.id.clone(),
                error: reason.clone(),
                failed_open: open,
            });
            let decision = if open { "failed_open" } else { "failed_closed" };
            ctx.rate_limit = Some(outcome(Vec::new(), decision));
            if open {
                Ok(Flow::Continue)
            } else {
                Err(GatewayError::RateLimitUnavailable(reason))
            }
        }
    }
}

/// The rate-limit headers, on every response of a limited route.
pub fn decorate<S>(ctx: &RequestCtx<S>, response: &mut http::Response<Body<S>>) {
    if let Some(outcome) = &ctx.rate_limit {
        write(&outcome.results, outcome.families, response.headers_mut());
    }
}

async fn decide<P>(
    platform: &P,
    local: &LocalLimits,
    keyed: &[Keyed<'_>],
    now: UnixMillis,
) -> Verdict
where
    P: Clock + RateLimitStore + Wakeups,
{
    if keyed.is_empty() {
        return Verdict::Admitted(Vec::new(), "allowed");
    }
    if let Some(results) = known_refusals(local, keyed, now) {
        return Verdict::Refused(results, "known_refusal");
    }
    if let Some(results) = spend_leases(local, keyed, now) {
        return Verdict::Admitted(results, "leased");
    }
    if let Some(broken) = keyed.iter().find(|k| local.is_broken(&k.key.object, now)) {
        return Verdict::Unavailable(format!(
            "rate-limit object {} failed moments ago",
            broken.key.object.get(..8).unwrap_or(&broken.key.object)
        ));
    }
    match ask_objects(platform, local, keyed, now).await {
        Err(reason) => Verdict::Unavailable(reason),
        Ok(results) if results.iter().all(|r| r.decision.allowed) => {
            Verdict::Admitted(results, "allowed")
        }
        Ok(results) => {
            local.remember(keyed.iter().map(|k| &k.key), &results, now);
            Verdict::Refused(results, "refused")
        }
    }
}

/// Refusals this isolate already holds answer without a call.
fn known_refusals(
    local: &LocalLimits,
    keyed: &[Keyed<'_>],
    now: UnixMillis,
) -> Option<Vec<PolicyResult>> {
    let known: Vec<PolicyResult> = keyed
        .iter()
        .filter_map(|k| local.denied(&k.key, now).map(|d| k.result(d)))
        .collect();
    (!known.is_empty()).then_some(known)
}

/// Leased units on hand answer without a call, when they cover every
/// policy.
fn spend_leases(
    local: &LocalLimits,
    keyed: &[Keyed<'_>],
    now: UnixMillis,
) -> Option<Vec<PolicyResult>> {
    if !keyed.iter().all(|k| k.policy.lease.is_some())
        || !local.leases_cover(keyed.iter().map(|k| (&k.key, k.policy.cost)), now)
    {
        return None;
    }
    keyed
        .iter()
        .map(|k| Some(k.result(local.spend_lease(&k.key, k.policy.cost)?)))
        .collect()
}

/// One call per object, with every policy that object holds; all objects
/// at once. Units granted beyond a request's cost become a lease.
async fn ask_objects<P: Clock + RateLimitStore + Wakeups>(
    platform: &P,
    local: &LocalLimits,
    keyed: &[Keyed<'_>],
    now: UnixMillis,
) -> Result<Vec<PolicyResult>, String> {
    let mut groups: Vec<(&str, Vec<&Keyed<'_>>)> = Vec::new();
    for k in keyed {
        match groups
            .iter_mut()
            .find(|(object, _)| *object == k.key.object)
        {
            Some((_, members)) => members.push(k),
            None => groups.push((&k.key.object, vec![k])),
        }
    }
    let calls: Vec<LimitCall> = groups
        .iter()
        .map(|(_, members)| LimitCall {
            checks: members
                .iter()
                .map(|k| Check {
                    state_key: k.key.state.to_string(),
                    quota: k.policy.quota,
                    cost: k.policy.cost,
                    lease: k.policy.lease.map(|lease| lease.size),
                })
                .collect(),
            peek: false,
        })
        .collect();
    let replies = join_all(
        groups
            .iter()
            .zip(calls)
            .map(|((object, _), call)| local.in_flight.call(platform, object, call)),
    )
    .await;

    let mut results = Vec::with_capacity(keyed.len());
    for ((object, members), reply) in groups.iter().zip(replies) {
        let reply = match reply {
            Ok(reply) if reply.decisions.len() == members.len() => reply,
            Ok(_) => {
                local.trip(object, now);
                return Err("the rate-limit object answered out of step".to_owned());
            }
            Err(error) => {
                local.trip(object, now);
                return Err(error.to_string());
            }
        };
        for (position, (k, mut decision)) in members.iter().zip(reply.decisions).enumerate() {
            if let (Some(lease), Some(&granted)) = (k.policy.lease, reply.granted.get(position)) {
                let extra = granted.saturating_sub(k.policy.cost);
                local.store_lease(
                    k.key.clone(),
                    extra,
                    decision,
                    now,
                    std::time::Duration::from_millis(lease.ttl_ms),
                );
                decision.remaining = decision.remaining.saturating_add(extra);
            }
            results.push((*k, decision));
        }
    }
    // Back in the order of the route's policies.
    Ok(keyed
        .iter()
        .filter_map(|k| {
            results
                .iter()
                .find(|(member, _)| std::ptr::eq(*member, k))
                .map(|(member, decision)| member.result(*decision))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::{Algorithm, Quota, ScopePart};

    fn keyed(policy: &Policy, object: &str) -> Keyed<'static> {
        Keyed {
            key: LimitKey {
                object: object.to_owned(),
                state: policy.state_key.clone(),
            },
            policy: Cow::Owned(policy.clone()),
        }
    }

    #[test]
    fn results_keep_the_order_of_the_policies_across_objects() {
        let quota = Quota {
            algorithm: Algorithm::TokenBucket,
            limit: 5,
            period_ms: 1000,
            burst: 5,
        };
        let a = Policy::new("a", quota, vec![ScopePart::Ip], 1, None);
        let b = Policy::new("b", quota, vec![ScopePart::Route], 1, None);
        let c = Policy::new("c", quota, vec![ScopePart::Ip], 1, None);
        let keyed = [keyed(&a, "one"), keyed(&b, "two"), keyed(&c, "one")];
        let platform = crate::platform::memory::MemoryPlatform::new();
        let local = LocalLimits::default();
        let results =
            futures::executor::block_on(ask_objects(&platform, &local, &keyed, platform.now()))
                .unwrap();
        let names: Vec<&str> = results.iter().map(|r| &*r.name).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(platform.limiter_calls(), 2);
    }
}
