//! Running an aggregate's legs: each as soon as the legs it reads from
//! have answered, at most [`MAX_CONCURRENT_LEGS`] at once, each within its
//! own timeout and what is left of the aggregate's deadline. Every leg's
//! answer is read to the end (within the cap) or cancelled, so none
//! stalls a connection.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::Value;

use super::template::Values;
use super::{Aggregate, Leg, MAX_CONCURRENT_LEGS};
use crate::auth::Identity;
use crate::body::Body;
use crate::cache::CachePolicy;
use crate::cache::entry::{self, Meta, State, Storability};
use crate::cache::key::{KeyInput, cache_key};
use crate::error::GatewayError;
use crate::observe::events::AttemptLog;
use crate::platform::{FetchError, Platform};
use crate::upstream::single::Sent;

/// Why a leg gave no result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LegFailure {
    /// No answer within its time.
    Timeout,
    /// Its service could not be reached.
    Unreachable,
    /// Its service answered with this (non-2xx) status.
    Status(u16),
    /// Its answer was not JSON, or longer than allowed.
    BadAnswer(String),
    /// A value its path needs is missing (named).
    Missing(String),
    /// A leg it reads from failed (named).
    Dependency(String),
}

impl LegFailure {
    /// What a client may be told: no addresses, no internals.
    pub fn detail(&self) -> String {
        match self {
            LegFailure::Timeout => "The service did not answer in time.".to_owned(),
            LegFailure::Unreachable => "The service could not be reached.".to_owned(),
            LegFailure::Status(status) => format!("The service answered {status}."),
            LegFailure::BadAnswer(why) => format!("The service's answer was refused: {why}."),
            LegFailure::Missing(what) => format!("No value for {what}."),
            LegFailure::Dependency(leg) => format!("It needs the answer of '{leg}', which failed."),
        }
    }

    /// The status a client would get if this failure ends the call.
    pub fn status(&self) -> u16 {
        match self {
            LegFailure::Timeout => 504,
            _ => 502,
        }
    }
}

/// Every leg's result, in leg order, and every try made.
pub struct Ran {
    pub results: Vec<(String, Result<Value, LegFailure>)>,
    pub attempts: Vec<AttemptLog>,
}

/// What a request offers the legs.
pub struct Request<'a> {
    pub route_id: &'a str,
    /// The host the client asked for (cached legs' keys live under it).
    pub host: Option<&'a str>,
    pub params: &'a [(&'a str, Option<&'a str>)],
    pub identity: Option<&'a Identity>,
    pub query: Option<&'a str>,
    /// The route's purge epoch: purging the aggregate route retires its
    /// legs' entries.
    pub epoch: u64,
}

/// Run every leg of `aggregate`. `send` sends a leg's request for its
/// rendered path and query within the time given, through the upstream
/// machinery of its service (target choice, retries, health).
pub async fn run<'a, P, S, F>(
    platform: &P,
    aggregate: &'a Aggregate,
    request: &Request<'_>,
    send: S,
) -> Ran
where
    P: Platform,
    S: Fn(&'a Leg, String, Duration) -> F,
    F: Future<Output = Sent<P::Stream>>,
{
    let started = platform.now();
    let deadline = started.plus(aggregate.deadline);
    let count = aggregate.legs.len();
    let mut results: Vec<Option<Result<Value, LegFailure>>> = vec![None; count];
    let mut launched = vec![false; count];
    let mut attempts = Vec::new();
    let mut running = FuturesUnordered::new();
    loop {
        // Launch what can go; a leg failed for want of its inputs may free
        // others to fail the same way, hence the passes.
        let mut progress = true;
        while progress {
            progress = false;
            for (index, leg) in aggregate.legs.iter().enumerate() {
                if launched.get(index).copied().unwrap_or(true)
                    || running.len() >= MAX_CONCURRENT_LEGS
                {
                    continue;
                }
                // The answers of the legs it reads from, once all have one.
                let mut answers: Vec<(&str, Value)> = Vec::with_capacity(leg.depends_on.len());
                let mut waiting = false;
                let mut failed_dependency = None;
                for &dep in &leg.depends_on {
                    let name = aggregate.legs.get(dep).map_or("?", |d| d.name.as_str());
                    match results.get(dep) {
                        Some(Some(Ok(answer))) => answers.push((name, answer.clone())),
                        Some(Some(Err(_))) => failed_dependency = Some(name.to_owned()),
                        _ => waiting = true,
                    }
                }
                if waiting {
                    continue;
                }
                if let Some(slot) = launched.get_mut(index) {
                    *slot = true;
                }
                if let Some(failed) = failed_dependency {
                    if let Some(slot) = results.get_mut(index) {
                        *slot = Some(Err(LegFailure::Dependency(failed)));
                    }
                    progress = true;
                    continue;
                }
                let answers: Vec<(&str, &Value)> =
                    answers.iter().map(|(name, value)| (*name, value)).collect();
                let values = Values {
                    params: request.params,
                    identity: request.identity,
                    query: request.query,
                    legs: &answers,
                };
                let path = leg.path.render(&values);
                let left = platform.now();
                let timeout = leg.timeout.min(if deadline > left {
                    deadline.since(left)
                } else {
                    Duration::ZERO
                });
                let cache_key = match (&leg.cache, &path) {
                    (Some(policy), Ok(path)) => Some(leg_cache_key(policy, request, leg, path)),
                    _ => None,
                };
                let sending = path
                    .map_err(LegFailure::Missing)
                    .map(|path| send(leg, path, timeout));
                running.push(call(
                    platform, aggregate, leg, index, sending, timeout, cache_key,
                ));
            }
        }
        let Some((index, result, tries)) = running.next().await else {
            break;
        };
        attempts.extend(tries);
        if let Some(slot) = results.get_mut(index) {
            *slot = Some(result);
        }
    }
    Ran {
        results: aggregate
            .legs
            .iter()
            .zip(results)
            .map(|(leg, result)| {
                (
                    leg.name.clone(),
                    result.unwrap_or(Err(LegFailure::Dependency(leg.name.clone()))),
                )
            })
            .collect(),
        attempts,
    }
}

/// A cached leg's key: its rendered path and query under the route and
/// leg name, the caller unless the policy is shared.
fn leg_cache_key(policy: &CachePolicy, request: &Request<'_>, leg: &Leg, path: &str) -> String {
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    cache_key(
        policy,
        &KeyInput {
            route_id: &format!("{}.{}", request.route_id, leg.name),
            epoch: request.epoch,
            host: request.host,
            path,
            query,
            headers: &http::HeaderMap::new(),
            identity: request.identity,
        },
    )
}

/// A fresh cached answer for `key`, shaped; `None` on a miss (or a cache
/// that fails: a leg never fails for its cache).
async fn cached<P: Platform>(
    platform: &P,
    aggregate: &Aggregate,
    leg: &Leg,
    key: &str,
) -> Option<Value> {
    let mut stored = platform.cache_match(key).await.ok()??;
    let meta = entry::from_storage(stored.headers_mut(), platform.now())?;
    if !matches!(meta.state(platform.now()), State::Fresh { .. }) {
        return None;
    }
    let bytes = platform
        .read_body(stored.into_body(), aggregate.max_leg_bytes)
        .await
        .ok()?;
    let value = serde_json::from_slice::<Value>(&bytes).ok()?;
    leg.shape.apply(value).ok()
}

/// One leg: answer from its cache if fresh, else send, read the answer
/// within the cap, parse and shape it (and store it when cacheable).
async fn call<P: Platform, F>(
    platform: &P,
    aggregate: &Aggregate,
    leg: &Leg,
    index: usize,
    sending: Result<F, LegFailure>,
    timeout: Duration,
    cache_key: Option<String>,
) -> (usize, Result<Value, LegFailure>, Vec<AttemptLog>)
where
    F: Future<Output = Sent<P::Stream>>,
{
    if let Some(key) = &cache_key
        && let Some(value) = cached(platform, aggregate, leg, key).await
    {
        return (index, Ok(value), Vec::new());
    }
    let sent_at = platform.now();
    let sending = match sending {
        Ok(sending) if !timeout.is_zero() => sending,
        Ok(_) => return (index, Err(LegFailure::Timeout), Vec::new()),
        Err(failure) => return (index, Err(failure), Vec::new()),
    };
    let sent = sending.await;
    let response = match sent.response {
        Ok(response) => response,
        Err(GatewayError::UpstreamTimeout(_)) => {
            return (index, Err(LegFailure::Timeout), sent.attempts);
        }
        Err(_) => return (index, Err(LegFailure::Unreachable), sent.attempts),
    };
    let status = response.status();
    let (parts, body) = response.into_parts();
    // The leg's time covers its whole answer: an origin that sends its
    // headers and then stalls must not hold the aggregate past its time.
    let left = timeout.saturating_sub(platform.now().since(sent_at));
    let body = read_within(platform, body, aggregate.max_leg_bytes, left).await;
    if let (Some(key), Some(policy), Ok(bytes)) = (cache_key, &leg.cache, &body)
        && status.is_success()
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
        && let Storability::Store(lifetime) =
            entry::storability(policy, status.as_u16(), &parts.headers)
    {
        let mut headers = parts.headers.clone();
        let meta = Meta::new(platform.now(), lifetime, &headers);
        entry::for_storage(&meta, &mut headers);
        let mut stored = http::Response::new(Body::Full(bytes.clone()));
        *stored.status_mut() = status;
        *stored.headers_mut() = headers;
        let store = platform.clone();
        platform.wait_until(async move {
            // A store that fails costs a later call, nothing more.
            let _ = store.cache_put(&key, stored).await;
        });
    }
    let result = if !status.is_success() {
        Err(LegFailure::Status(status.as_u16()))
    } else {
        match body {
            Err(FetchError::Timeout(_)) => Err(LegFailure::Timeout),
            Err(FetchError::TooLarge(limit)) => {
                Err(LegFailure::BadAnswer(format!("longer than {limit} bytes")))
            }
            Err(_) => Err(LegFailure::Unreachable),
            Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
                .map_err(|_| LegFailure::BadAnswer("not JSON".to_owned()))
                .and_then(|value| leg.shape.apply(value).map_err(LegFailure::BadAnswer)),
        }
    };
    (index, result, sent.attempts)
}

/// Read a leg's answer within `left`; past it the read is dropped, which
/// cancels the stream.
async fn read_within<P: Platform>(
    platform: &P,
    body: Body<P::Stream>,
    limit: usize,
    left: Duration,
) -> Result<bytes::Bytes, FetchError> {
    let read = std::pin::pin!(platform.read_body(body, limit));
    let timer = std::pin::pin!(platform.sleep(left));
    match futures::future::select(read, timer).await {
        futures::future::Either::Left((read, _)) => read,
        futures::future::Either::Right(((), _)) => Err(FetchError::Timeout(left)),
    }
}
