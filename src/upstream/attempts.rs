//! Calling a balanced upstream: the tries of one request, each to a
//! target chosen for it, under the retry policy.
//!
//! Every try goes through [`Upstream::choose`], never to the target the
//! previous try went to when another may take it. A try's outcome goes to
//! that target's passive health. Another try is made only when the policy
//! retries that outcome, the request may be repeated, tries are left, the
//! route's timeout has time left after the backoff, and the service's
//! retry budget allows. The last try's outcome is the answer: a response
//! (a retried 503 included, when retries run out) passes through; no
//! response becomes 502 or 504.

use std::rc::Rc;
use std::time::Duration;

use super::balanced::{ChoiceInput, Chosen};
use super::geo::Location;
use super::outlier::HealthChange;
use super::retry::{RetryPolicy, TryOutcome};
use super::{Origin, Upstream};
use crate::body::Body;
use crate::config::Config;
use crate::error::GatewayError;
use crate::observe::events::AttemptLog;
use crate::platform::{Clock, FetchError, FetchOptions, HttpClient, Randomness, Timer};

use super::state::Balancers;

/// How to call: the policy, and what this request allows.
pub struct Plan<'a> {
    pub balancers: &'a Balancers,
    pub config: &'a Config,
    pub policy: &'a RetryPolicy,
    /// Whether this request may be sent more than once (its method, and
    /// its body kept for another try).
    pub repeatable: bool,
    /// The route's timeout: every try and every wait within it.
    pub deadline: Duration,
    pub key: Option<u64>,
    pub location: Option<&'a Location>,
}

/// What the tries came to.
pub struct Tries<'u, S> {
    pub response: Result<http::Response<Body<S>>, GatewayError>,
    pub attempts: Vec<AttemptLog>,
    /// The target of the last try.
    pub origin: Option<&'u Origin>,
    /// Targets ejected or brought back by these tries: (target, change).
    pub changes: Vec<(Rc<str>, HealthChange)>,
}

/// Send the request, retrying as `plan` allows. `build` makes the request
/// for a target; it is called once per try.
pub async fn send<'u, P, B>(
    platform: &P,
    upstream: &'u Upstream,
    plan: Plan<'_>,
    mut build: B,
) -> Tries<'u, P::Stream>
where
    P: Clock + Timer + HttpClient + Randomness,
    B: FnMut(&Origin) -> Result<http::Request<Body<P::Stream>>, GatewayError>,
{
    let started = platform.now();
    let deadline_at = started.plus(plan.deadline);
    let service = match upstream {
        Upstream::Balanced(balanced) => Some(plan.balancers.service(plan.config, balanced)),
        Upstream::Single(_) | Upstream::Aggregate(_) => None,
    };
    if let Some(service) = &service {
        service.record_request(started);
    }
    let mut tries = Tries {
        response: Err(GatewayError::Internal("no try was made".to_owned())),
        attempts: Vec::with_capacity(1),
        origin: None,
        changes: Vec::new(),
    };
    let mut avoid = None;
    let mut made: u32 = 0;
    loop {
        let now = platform.now();
        let input = ChoiceInput {
            balancers: plan.balancers,
            config: plan.config,
            random: platform,
            now,
            key: plan.key,
            location: plan.location,
            avoid,
        };
        let Chosen { origin, lease } = match upstream.choose(&input) {
            Ok(chosen) => chosen,
            // After a try, its answer stands.
            Err(refused) => {
                if made == 0 {
                    tries.response = Err(GatewayError::NoHealthyUpstream {
                        retry_after: refused.retry_after,
                    });
                }
                return tries;
            }
        };
        let request = match build(origin) {
            Ok(request) => request,
            Err(error) => {
                tries.response = Err(error);
                return tries;
            }
        };
        let left = deadline_at.since(now);
        let timeout = plan.policy.per_try_timeout.map_or(left, |t| t.min(left));
        made += 1;
        let result = platform.fetch(request, FetchOptions { timeout }).await;
        let ended = platform.now();
        let outcome = TryOutcome::of(&result);
        tries
            .attempts
            .push(attempt(origin, &result, ended.since(now)));
        tries.origin = Some(origin);
        let index = lease.as_ref().map(|lease| lease.index());
        if let Some(lease) = lease {
            let label = lease.target().map(|target| Rc::clone(&target.label));
            if let (Some(change), Some(label)) =
                (lease.finish(outcome.is_target_failure(), ended), label)
            {
                tries.changes.push((label, change));
            }
        }
        // Kept as the answer in case no other try can be made.
        tries.response = answer(result, timeout);
        let again = plan.repeatable
            && made < plan.policy.attempts
            && plan.policy.retries_on(outcome)
            && may_wait(platform, &plan, deadline_at, made, service.as_deref()).await;
        if !again {
            return tries;
        }
        avoid = index;
    }
}

/// Whether another try fits: time left after the backoff (which is waited
/// here), and a retry left in the budget.
async fn may_wait<P>(
    platform: &P,
    plan: &Plan<'_>,
    deadline_at: crate::platform::UnixMillis,
    made: u32,
    service: Option<&super::state::ServiceState>,
) -> bool
where
    P: Clock + Timer + Randomness,
{
    let now = platform.now();
    let left = deadline_at.since(now);
    if left.is_zero() {
        return false;
    }
    let delay = plan
        .policy
        .backoff
        .delay(made, plan.balancers.draw(platform));
    if delay >= left {
        return false;
    }
    if let (Some(budget), Some(service)) = (&plan.policy.budget, service)
        && !service.budget.borrow_mut().try_spend(now, budget)
    {
        return false;
    }
    if !delay.is_zero() {
        platform.sleep(delay).await;
    }
    true
}

/// The answer of the last try.
fn answer<S>(
    result: Result<http::Response<Body<S>>, FetchError>,
    timeout: Duration,
) -> Result<http::Response<Body<S>>, GatewayError> {
    result.map_err(|error| match error {
        FetchError::Timeout(_) => GatewayError::UpstreamTimeout(timeout),
        FetchError::Unreachable(reason) => GatewayError::UpstreamUnreachable(reason),
        FetchError::TooLarge(limit) => {
            GatewayError::UpstreamUnreachable(format!("response over {limit} bytes"))
        }
        FetchError::RequestBodyTooLarge(limit) => {
            GatewayError::RequestBodyTooLarge(usize::try_from(limit).unwrap_or(usize::MAX))
        }
    })
}

fn attempt<S>(
    origin: &Origin,
    result: &Result<http::Response<Body<S>>, FetchError>,
    took: Duration,
) -> AttemptLog {
    let (status, error) = match result {
        Ok(response) => (Some(response.status().as_u16()), None),
        Err(error) => (None, Some(error.to_string())),
    };
    AttemptLog {
        target: origin.authority.as_str().to_owned(),
        status,
        error,
        ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
    }
}
