//! Phase "log": one structured access-log event per request (sampled), and
//! one metrics data point (always).
//!
//! The record holds the path without its query string, the route, service
//! and upstream target, the caller's auth method, consumer and key id,
//! what rate limiting, the cache and CORS did, both statuses, the time
//! each phase took and, for errors, the problem type and the
//! operator-facing reason. It never holds headers, credentials or bodies.
//!
//! Successes are logged at the config's `log.sample_rate`; anything from
//! 400 up, and every WebSocket upgrade (status 101), is always logged. Sampling draws on the gateway's own span id,
//! which clients cannot choose, so a client cannot make its requests
//! always (or never) logged.

use crate::auth::AuthMethod;
use crate::body::Body;
use crate::observe::events::{AccessLog, Event, Timings};
use crate::observe::metrics::MetricsPoint;
use crate::pipeline::context::RequestCtx;
use crate::platform::{Clock, LogSink, MetricsSink};

/// Log and count a finished request.
pub fn finish<P, S>(platform: &P, ctx: &RequestCtx<S>, response: &http::Response<Body<S>>)
where
    P: Clock + LogSink + MetricsSink,
{
    let status = response.status().as_u16();
    let logged = should_log(ctx, status);
    let counted = platform.wants_metrics();
    if !logged && !counted {
        return;
    }
    let record = access_log(ctx, status, platform.now());
    if counted {
        platform.record(&MetricsPoint::from_access_log(
            &record,
            ctx.client.colo.as_deref(),
        ));
    }
    if logged {
        platform.log(&Event::Request(record));
    }
}

/// Whether this request's access-log line is written.
fn should_log<S>(ctx: &RequestCtx<S>, status: u16) -> bool {
    // Errors, refusals and WebSocket connections (few, long-lived, and
    // each a session an operator may need to trace) are always logged.
    if status >= 400 || ctx.failure.is_some() || status == 101 {
        return true;
    }
    let rate = match &ctx.config {
        Ok(config) => config.log.sample_rate,
        Err(_) => 1.0,
    };
    if rate >= 1.0 {
        return true;
    }
    // The span id is uniformly random: its first 8 bytes as a fraction.
    let draw = u64::from_be_bytes(ctx.trace.span_id) as f64 / u64::MAX as f64;
    draw < rate
}

/// The access-log record of a finished request.
fn access_log<S>(ctx: &RequestCtx<S>, status: u16, now: crate::platform::UnixMillis) -> AccessLog {
    let route = ctx.route.as_ref().map(|routed| &routed.route);
    let identity = ctx.identity.as_ref();
    AccessLog {
        request_id: ctx.request_id.clone(),
        trace_id: ctx.trace.trace_id_hex(),
        span_id: ctx.trace.span_id_hex(),
        method: ctx.method.as_str().to_owned(),
        host: ctx.host.clone(),
        path: ctx.uri.path().to_owned(),
        route: route.map(|r| r.id.clone()),
        service: route.map(|r| r.service.name.clone()),
        upstream: ctx.upstream.target.clone(),
        attempts: if ctx.upstream.attempts.len() > 1 {
            ctx.upstream.attempts.clone()
        } else {
            Vec::new()
        },
        auth_method: identity.and_then(|i| i.method).map(AuthMethod::as_str),
        consumer: identity.and_then(|i| i.consumer.clone()),
        key_id: identity.and_then(|i| i.key_id.clone()),
        rate_limit: ctx.rate_limit.as_ref().map(|outcome| outcome.decision),
        cache: crate::phases::cache::outcome(ctx).map(|outcome| outcome.log_word()),
        cors: ctx.cors.map(|outcome| outcome.as_str()),
        upgrade: ctx.websocket.then_some("websocket"),
        status,
        upstream_status: ctx.upstream.status,
        timings_ms: Timings {
            total: ctx.elapsed_ms(now),
            ..ctx.timings
        },
        problem: ctx.failure.as_ref().map(|f| f.problem),
        error: ctx.failure.as_ref().map(|f| f.detail.clone()),
    }
}
