//! Running an aggregate's legs: each as soon as the legs it reads from
//! have answered, at most [`MAX_CONCURRENT_LEGS`] at once, each within its
//! own timeout and what is left of the aggregate's deadline. Every leg's
//! answer is read to the end (within the cap) or cancelled, so none
//! stalls a connection.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::Value;

use super::template::Values;
use super::{Aggregate, Leg, MAX_CONCURRENT_LEGS};
use crate::auth::Identity;
use crate::body::Body;
use crate::error::GatewayError;
use crate::observe::events::AttemptLog;
use crate::platform::{Clock, FetchError, HttpClient};
use crate::upstream::single;

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
    pub params: &'a [(&'a str, Option<&'a str>)],
    pub identity: Option<&'a Identity>,
    pub query: Option<&'a str>,
}

/// Run every leg of `aggregate`. `build` makes a leg's upstream request
/// from its rendered path and query.
pub async fn run<P, B>(platform: &P, aggregate: &Aggregate, request: &Request<'_>, build: B) -> Ran
where
    P: Clock + HttpClient,
    B: Fn(&Leg, &str) -> Result<http::Request<Body<P::Stream>>, GatewayError>,
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
                let prepared = path
                    .map_err(LegFailure::Missing)
                    .and_then(|path| build(leg, &path).map_err(|_| LegFailure::Unreachable));
                running.push(call(platform, aggregate, leg, index, prepared, timeout));
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

/// One leg: send, read the answer within the cap, parse and shape it.
async fn call<P: Clock + HttpClient>(
    platform: &P,
    aggregate: &Aggregate,
    leg: &Leg,
    index: usize,
    prepared: Result<http::Request<Body<P::Stream>>, LegFailure>,
    timeout: Duration,
) -> (usize, Result<Value, LegFailure>, Vec<AttemptLog>) {
    let request = match prepared {
        Ok(request) if !timeout.is_zero() => request,
        Ok(_) => return (index, Err(LegFailure::Timeout), Vec::new()),
        Err(failure) => return (index, Err(failure), Vec::new()),
    };
    let sent = single::send(platform, request, timeout).await;
    let response = match sent.response {
        Ok(response) => response,
        Err(GatewayError::UpstreamTimeout(_)) => {
            return (index, Err(LegFailure::Timeout), sent.attempts);
        }
        Err(_) => return (index, Err(LegFailure::Unreachable), sent.attempts),
    };
    let status = response.status();
    let body = platform
        .read_body(response.into_body(), aggregate.max_leg_bytes)
        .await;
    let result = if !status.is_success() {
        Err(LegFailure::Status(status.as_u16()))
    } else {
        match body {
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
