//! Calling one target: send the request, wait for the response headers
//! within the route's timeout, and make the one retry that is always safe.
//!
//! The safe retry: a request that cannot change anything at the origin
//! (GET, HEAD or OPTIONS, with no body) and that failed without any
//! response (the connection was refused or lost, typically a pooled
//! keep-alive connection the origin had just closed) is sent once more,
//! within what is left of the timeout. A timeout is never retried: the
//! origin may still be working on the first request. Any response the
//! origin gives, 5xx included, is its answer and passes through.
//!
//! General retry policies (which statuses, how many, backoff, budgets)
//! belong to balanced upstreams; this is the floor every upstream gets.

use std::time::Duration;

use http::Method;

use crate::body::Body;
use crate::error::GatewayError;
use crate::observe::events::AttemptLog;
use crate::platform::{Clock, FetchError, FetchOptions, HttpClient};

/// An upstream response and every try it took.
pub struct Sent<S> {
    pub response: Result<http::Response<Body<S>>, GatewayError>,
    pub attempts: Vec<AttemptLog>,
}

/// Send `request` to its target within `timeout`, keeping a copy of its
/// head in case the retry is due.
pub async fn send<P>(
    platform: &P,
    request: http::Request<Body<P::Stream>>,
    timeout: Duration,
) -> Sent<P::Stream>
where
    P: Clock + HttpClient,
{
    let copy = retryable(&request).then(|| {
        let mut copy = http::Request::new(Body::Empty);
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.headers_mut() = request.headers().clone();
        copy
    });
    send_or_remake(platform, request, timeout, move || copy).await
}

/// Send `request` to its target within `timeout`; `remake` builds the
/// same request again, and is called only when the retry is due (so the
/// request that succeeds, nearly every one, is never copied).
pub async fn send_or_remake<P>(
    platform: &P,
    request: http::Request<Body<P::Stream>>,
    timeout: Duration,
    remake: impl FnOnce() -> Option<http::Request<Body<P::Stream>>>,
) -> Sent<P::Stream>
where
    P: Clock + HttpClient,
{
    let target = request
        .uri()
        .authority()
        .map_or_else(String::new, |a| a.as_str().to_owned());
    let started = platform.now();
    let may_retry = retryable(&request);

    let mut attempts = Vec::with_capacity(1);
    let first = platform.fetch(request, FetchOptions { timeout }).await;
    let elapsed = platform.now().since(started);
    attempts.push(attempt(&target, &first, elapsed));
    let again = match &first {
        Err(FetchError::Unreachable(_)) if may_retry && elapsed < timeout => remake(),
        _ => None,
    };
    let result = match (first, again) {
        (Err(FetchError::Unreachable(_)), Some(again)) => {
            let second_started = platform.now();
            let second = platform
                .fetch(
                    again,
                    FetchOptions {
                        timeout: timeout - elapsed,
                    },
                )
                .await;
            attempts.push(attempt(
                &target,
                &second,
                platform.now().since(second_started),
            ));
            second
        }
        (first, _) => first,
    };
    Sent {
        response: result.map_err(|error| match error {
            FetchError::Timeout(_) => GatewayError::UpstreamTimeout(timeout),
            FetchError::Unreachable(reason) => GatewayError::UpstreamUnreachable(reason),
            FetchError::TooLarge(limit) => {
                GatewayError::UpstreamUnreachable(format!("response over {limit} bytes"))
            }
            FetchError::RequestBodyTooLarge(limit) => {
                GatewayError::RequestBodyTooLarge(usize::try_from(limit).unwrap_or(usize::MAX))
            }
        }),
        attempts,
    }
}

/// Whether a request may be sent twice without the origin noticing.
fn retryable<S>(request: &http::Request<Body<S>>) -> bool {
    matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) && request.body().is_empty()
}

fn attempt<S>(
    target: &str,
    result: &Result<http::Response<Body<S>>, FetchError>,
    took: Duration,
) -> AttemptLog {
    let (status, error) = match result {
        Ok(response) => (Some(response.status().as_u16()), None),
        Err(error) => (None, Some(error.to_string())),
    };
    AttemptLog {
        target: target.to_owned(),
        status,
        error,
        ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
    }
}
