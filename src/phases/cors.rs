//! Phase "CORS": answer preflights before authentication, rate limiting
//! and the method check (browsers send them without credentials), and put
//! CORS headers on every response of a route with a policy, errors
//! included, so a browser app can read a 401 or 429 problem.
//!
//! Responses that matched no route (404, 405, 400) follow the config-wide
//! policy. A preflight the policy passes through goes to the upstream like
//! a public request (no authentication or limits: it carries no
//! credentials) and its response is left as the upstream made it.

use http::{HeaderValue, StatusCode, header};

use crate::body::Body;
use crate::cors;
use crate::pipeline::context::{CorsOutcome, RequestCtx};
use crate::pipeline::flow::Flow;

/// Answer a preflight the route's policy covers.
pub fn preflight<S>(ctx: &mut RequestCtx<S>) -> Flow<S> {
    let (Some(preflight), Some(routed)) = (&ctx.preflight, &ctx.route) else {
        return Flow::Continue;
    };
    let Some(cors) = &routed.route.cors else {
        return Flow::Continue;
    };
    if cors.policy.pass_through_preflight {
        ctx.cors = Some(CorsOutcome::PreflightPassed);
        return Flow::Continue;
    }
    let (headers, verdict) = cors.answer(preflight);
    ctx.cors = Some(match verdict {
        Ok(()) => CorsOutcome::PreflightGranted,
        Err(why) => CorsOutcome::PreflightRefused(why),
    });
    let mut response = http::Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    *response.headers_mut() = headers;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Flow::Respond(response)
}

/// CORS headers for the response to an actual request.
pub fn decorate<S>(ctx: &mut RequestCtx<S>, response: &mut http::Response<Body<S>>) {
    if ctx.preflight.is_some() {
        // Answered above with its own headers, or passed through as is.
        return;
    }
    let policy = match (&ctx.route, &ctx.config) {
        (Some(routed), _) => routed.route.cors.as_ref().map(|cors| &*cors.policy),
        (None, Ok(config)) => config.cors.as_deref(),
        (None, Err(_)) => None,
    };
    let Some(policy) = policy else {
        return;
    };
    let origin = ctx.headers.get(header::ORIGIN);
    ctx.cors = match cors::decorate(policy, origin, response.headers_mut()) {
        Some(Ok(())) => Some(CorsOutcome::Allowed),
        Some(Err(_)) => Some(CorsOutcome::Refused),
        None => None,
    };
}
