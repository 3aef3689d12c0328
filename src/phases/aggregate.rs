//! Phase "upstream", for a route whose service is an aggregate: run the
//! legs ([`crate::upstream::aggregate::run`]) and answer with the merged
//! document.
//!
//! The answer is 200 with `Portico-Aggregate: complete`, or `partial;
//! failed=a,b` when optional legs failed (their slots then hold a problem
//! object). A required leg that failed ends the call: 502 problem+json
//! listing the failed legs (504 when they all timed out). A merged
//! document over the aggregate's cap is a 502 too.

use std::rc::Rc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::body::Body;
use crate::config::Config;
use crate::error::GatewayError;
use crate::phases::{cache, upstream};
use crate::pipeline::Isolate;
use crate::pipeline::context::RequestCtx;
use crate::platform::Platform;
use crate::problem::{LegProblem, ProblemType};
use crate::upstream::aggregate::Aggregate;
use crate::upstream::aggregate::merge::merge;
use crate::upstream::aggregate::run::{self, LegFailure};

const PORTICO_AGGREGATE: HeaderName = HeaderName::from_static("portico-aggregate");

/// Run the aggregate and build the client's answer.
pub async fn run<P: Platform>(
    isolate: &Rc<Isolate>,
    platform: &P,
    config: &Config,
    ctx: &mut RequestCtx<P::Stream>,
    aggregate: &Rc<Aggregate>,
) -> Result<http::Response<Body<P::Stream>>, GatewayError> {
    let Some(routed) = ctx.route.clone() else {
        return Err(GatewayError::Internal(
            "no route to aggregate for".to_owned(),
        ));
    };
    let params = routed.route.spec.path.captures(&routed.path);
    let epoch = if aggregate.caches_legs() {
        cache::route_epoch(isolate, platform, &routed.route.id).await
    } else {
        0
    };
    let started = platform.now();
    let ran = {
        let ctx = &*ctx;
        let request = run::Request {
            route_id: &routed.route.id,
            host: ctx.host.as_deref(),
            params: &params,
            identity: ctx.identity.as_ref(),
            query: ctx.uri.query(),
            epoch,
        };
        run::run(platform, aggregate, &request, |leg, path, timeout| {
            upstream::send_leg(isolate, platform, config, ctx, leg, path, timeout)
        })
        .await
    };
    ctx.timings.upstream = Some(platform.now().millis_since(started));
    ctx.upstream.attempts = ran.attempts;

    let mut slots = Vec::with_capacity(ran.results.len());
    let mut failed_optional = Vec::new();
    let mut failed_required = Vec::new();
    for ((name, result), leg) in ran.results.into_iter().zip(&aggregate.legs) {
        match result {
            Ok(value) => slots.push((name, value)),
            Err(failure) if leg.required => failed_required.push((name, failure)),
            Err(failure) => {
                slots.push((name.clone(), slot_problem(&name, &failure)));
                failed_optional.push(name);
            }
        }
    }
    if !failed_required.is_empty() {
        let timeout = failed_required
            .iter()
            .all(|(_, failure)| *failure == LegFailure::Timeout);
        return Err(GatewayError::AggregateFailed {
            legs: failed_required
                .into_iter()
                .map(|(leg, failure)| LegProblem {
                    leg,
                    status: failure.status(),
                    detail: failure.detail(),
                })
                .collect(),
            timeout,
        });
    }
    let document = serde_json::to_vec(&merge(aggregate.merge, slots))
        .map_err(|e| GatewayError::Internal(format!("merging the legs: {e}")))?;
    if document.len() > aggregate.max_response_bytes {
        return Err(GatewayError::UpstreamUnreachable(format!(
            "the merged document is over {} bytes",
            aggregate.max_response_bytes
        )));
    }
    let completeness = if failed_optional.is_empty() {
        "complete".to_owned()
    } else {
        format!("partial; failed={}", failed_optional.join(","))
    };
    let mut response = http::Response::new(Body::Full(Bytes::from(document)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&completeness) {
        headers.insert(PORTICO_AGGREGATE, value);
    }
    ctx.upstream.status = Some(200);
    Ok(response)
}

/// What an optional leg's slot holds when the leg failed.
fn slot_problem(leg: &str, failure: &LegFailure) -> Value {
    let kind = ProblemType::AGGREGATE_LEG_FAILED;
    json!({
        "type": kind.uri(),
        "title": kind.title,
        "status": failure.status(),
        "detail": failure.detail(),
        "leg": leg,
    })
}
