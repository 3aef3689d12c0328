//! Phase "failed-auth throttle", on both sides of "authenticate": every
//! client network has a budget of failed authentication attempts
//! (`auth.failed_attempts`, 30 a minute by default), counted exactly and
//! globally by its Durable Object.
//!
//! - [`check`], before authenticate: a network this isolate knows to be
//!   out of attempts gets 429 at once, its credentials unchecked, so a
//!   flood of made-up keys or tokens costs no KV read, no signature check
//!   and no introspection call.
//! - [`charge`], when authenticate refused a credential that was presented
//!   and wrong: the failure is charged to the network's object; the one
//!   that goes over the budget gets 429 instead of 401, and the isolate
//!   remembers the refusal until the retry time.
//!
//! Missing credentials cost nothing to check and are not charged. Another
//! isolate learns of a refusal on its own next failure from that network,
//! so past the budget each isolate checks at most one credential per retry
//! period. When the client's address is unknown (no `client_ip_header`)
//! nothing is counted: one shared budget would let any client lock out
//! every other. When the object cannot answer, the failure goes
//! uncounted and the request keeps its 401: the throttle never refuses a
//! request it could not count.

use std::net::IpAddr;

use crate::config::Config;
use crate::error::GatewayError;
use crate::observe::events::Event;
use crate::pipeline::context::RequestCtx;
use crate::pipeline::flow::Flow;
use crate::platform::{Clock, LogSink, RateLimitStore};
use crate::ratelimit::local::LocalLimits;
use crate::ratelimit::object::{Check, LimitCall};
use crate::ratelimit::{Policy, network, object_name};

/// The budget that applies to this request, with the client's network:
/// authenticated routes only, never a passed-through preflight.
fn applies<'c, S>(config: &'c Config, ctx: &RequestCtx<S>) -> Option<(&'c Policy, IpAddr)> {
    let policy = config.failed_auth.as_ref()?;
    let routed = ctx.route.as_ref()?;
    routed.route.auth.as_ref()?;
    if ctx.preflight.is_some() {
        return None;
    }
    let ip = ctx.client.ip?;
    Some((policy, network(ip, policy.ipv6_prefix)))
}

/// Refuse at once a network this isolate knows is out of attempts.
pub fn check<P: Clock, S>(
    platform: &P,
    local: &LocalLimits,
    config: &Config,
    ctx: &RequestCtx<S>,
) -> Result<Flow<S>, GatewayError> {
    let Some((_, network)) = applies(config, ctx) else {
        return Ok(Flow::Continue);
    };
    match local.failed_auth_blocked(network, platform.now()) {
        Some(wait) => Err(GatewayError::AuthThrottled {
            retry_after: wait.as_millis().div_ceil(1000).try_into().unwrap_or(1),
        }),
        None => Ok(Flow::Continue),
    }
}

/// Count a refused credential against its network's budget; the error
/// the client gets (429 once the budget is used up, else `error` itself).
pub async fn charge<P, S>(
    platform: &P,
    local: &LocalLimits,
    config: &Config,
    ctx: &RequestCtx<S>,
    error: GatewayError,
) -> GatewayError
where
    P: Clock + LogSink + RateLimitStore,
{
    if !matches!(error, GatewayError::Unauthenticated { invalid: true, .. }) {
        return error;
    }
    let Some((policy, network)) = applies(config, ctx) else {
        return error;
    };
    let now = platform.now();
    let object = object_name(policy, "", None, Some(network));
    let call = LimitCall {
        checks: vec![Check {
            state_key: policy.state_key.to_string(),
            quota: policy.quota,
            cost: policy.cost,
            lease: None,
        }],
        peek: false,
    };
    let route = ctx
        .route
        .as_ref()
        .map(|routed| routed.route.id.clone())
        .unwrap_or_default();
    let decision = match platform
        .rate_limit(&object, std::slice::from_ref(&call))
        .await
    {
        Ok(replies) => replies
            .first()
            .and_then(|reply| reply.decisions.first())
            .copied(),
        Err(failure) => {
            platform.log(&Event::RateLimitUnavailable {
                route,
                error: format!("failed-auth budget: {failure}"),
                failed_open: true,
            });
            return error;
        }
    };
    let Some(decision) = decision.filter(|decision| !decision.allowed) else {
        return error;
    };
    let wait_ms = decision
        .retry_after_ms
        .unwrap_or(decision.reset_after_ms)
        .max(1);
    let retry_after = wait_ms.div_ceil(1000);
    local.block_failed_auth(network, now.plus(std::time::Duration::from_millis(wait_ms)));
    platform.log(&Event::FailedAuthBlocked {
        route,
        network: network.to_string(),
        retry_after_s: retry_after,
    });
    GatewayError::AuthThrottled { retry_after }
}
