//! The request pipeline: the fixed, named phases every request goes
//! through, and the contract between them.
//!
//! Request phases run in order; each may fail (the error becomes a
//! problem+json response, once, here) or answer early with
//! [`Flow::Respond`] (a preflight, an operators' API call, and later a
//! cache hit or an aggregated response). Whatever the response and
//! wherever it came from, the response phases then run on it, so headers a
//! client needs on every answer (request id, trace, rate-limit state,
//! CORS) are added in one place, errors included. Last, the request is
//! logged and counted.
//!
//! | # | phase          | module                        | may answer early? | runs on errors? |
//! |---|----------------|-------------------------------|-------------------|-----------------|
//! | 1 | request id     | [`phases::request_id`]        | no                | (before all)    |
//! | 2 | operators' API | [`crate::admin`]              | yes               | -               |
//! | 3 | match route    | [`phases::route`]             | 400, 404, 405     | -               |
//! | 4 | CORS preflight | [`phases::cors`]              | yes (204)         | -               |
//! | 5 | rate limit before auth | [`phases::rate_limit::before_auth`] | 429, 503 | -           |
//! | 6 | failed-auth check | [`phases::auth_throttle::check`] | 429          | -               |
//! | 7 | authenticate   | [`phases::authenticate`]      | 401, 503          | -               |
//! |   | (its refusals) | [`phases::auth_throttle::charge`] | 401 or 429    | -               |
//! | 8 | authorize      | [`phases::authorize`]         | 403               | -               |
//! | 9 | rate limit     | [`phases::rate_limit`]        | 429, 503          | -               |
//! |10 | cache lookup   | [`phases::cache::lookup`]     | yes (a hit, 304)  | -               |
//! | - | request transform | (transformation)           | 400, 413          | -               |
//! |11 | upstream       | [`phases::upstream`]          | 502, 503, 504     | -               |
//! |12 | cache store    | [`phases::cache::store`]      | stale-if-error    | upstream only   |
//! | - | response transform | (transformation)          | -                 | no              |
//! |13 | rate-limit headers | [`phases::rate_limit::decorate`] | -            | yes             |
//! |14 | CORS headers   | [`phases::cors::decorate`]    | -                 | yes             |
//! |15 | cache status   | [`phases::cache::decorate`]   | -                 | yes             |
//! |16 | finish         | [`phases::respond`]           | -                 | yes             |
//! |17 | log and metrics| [`phases::log`]               | -                 | yes             |
//!
//! Phases never call each other: they communicate through
//! [`RequestCtx`]. Only the pipeline knows their order.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use crate::admin;
use crate::auth::AuthState;
use crate::body::Body;
use crate::cache::coalesce::Coalescer;
use crate::config::ConfigSource;
use crate::error::GatewayError;
use crate::phases::{
    auth_throttle, authenticate, authorize, cache, cors, log, rate_limit, respond, route, upstream,
};
use crate::platform::Platform;
use crate::ratelimit::local::LocalLimits;
use crate::ttl_cache::TtlCache;
use crate::upstream::Balancers;

pub mod context;
pub mod flow;

pub use context::{ClientInfo, Locator, RequestCtx, Routed};
pub use flow::Flow;

/// What one isolate keeps between requests, for the phases to share: the
/// config in use, the authentication caches, what it knows about rate
/// limits, the cache keys it is fetching or refreshing, the operators'
/// API throttle, and what it knows about balanced services' targets.
pub struct Isolate {
    pub config: ConfigSource,
    pub auth: AuthState,
    pub limits: LocalLimits,
    pub coalescer: Rc<Coalescer>,
    /// Keys a background request is refreshing.
    pub cache_refreshing: RefCell<HashSet<String>>,
    /// Routes' purge epochs in this data centre, as last read.
    pub cache_epochs: RefCell<TtlCache<String, u64>>,
    /// Wrong admin tokens seen lately (the operators' API throttle).
    pub admin: admin::AdminThrottle,
    /// Balanced services' targets: load, health, turns, retry budgets.
    pub balancers: Balancers,
}

impl Default for Isolate {
    fn default() -> Self {
        Isolate {
            config: ConfigSource::default(),
            auth: AuthState::default(),
            limits: LocalLimits::default(),
            coalescer: Rc::default(),
            cache_refreshing: RefCell::default(),
            cache_epochs: RefCell::new(TtlCache::new(1_000)),
            admin: admin::AdminThrottle::default(),
            balancers: Balancers::default(),
        }
    }
}

/// Run a request through every phase; the response the client receives.
pub async fn serve<P: Platform>(
    isolate: &Rc<Isolate>,
    platform: &P,
    ctx: &mut RequestCtx<P::Stream>,
) -> http::Response<Body<P::Stream>> {
    let response = match request_phases(isolate, platform, ctx).await {
        Ok(response) => response,
        Err(error) => ctx.fail(error),
    };
    let response = response_phases(ctx, response);
    log::finish(platform, ctx, &response);
    response
}

/// A phase's [`Flow`]: answer now, or fall through to the next phase.
macro_rules! answer_or_continue {
    ($flow:expr) => {
        if let Flow::Respond(response) = $flow {
            return Ok(response);
        }
    };
}

async fn request_phases<P: Platform>(
    isolate: &Rc<Isolate>,
    platform: &P,
    ctx: &mut RequestCtx<P::Stream>,
) -> Result<http::Response<Body<P::Stream>>, GatewayError> {
    let config = ctx.config.clone()?;
    answer_or_continue!(admin::answer(isolate, platform, &config, ctx).await?);
    answer_or_continue!(route::run(&config, ctx)?);
    answer_or_continue!(cors::preflight(ctx));
    answer_or_continue!(rate_limit::before_auth(platform, &isolate.limits, ctx).await?);
    answer_or_continue!(auth_throttle::check(
        platform,
        &isolate.limits,
        &config,
        ctx
    )?);
    match authenticate::run(platform, &isolate.auth, &config, ctx).await {
        Ok(flow) => answer_or_continue!(flow),
        Err(refused) => {
            return Err(
                auth_throttle::charge(platform, &isolate.limits, &config, ctx, refused).await,
            );
        }
    }
    answer_or_continue!(authorize::run(ctx)?);
    answer_or_continue!(rate_limit::run(platform, &isolate.limits, ctx).await?);
    answer_or_continue!(cache::lookup(isolate, platform, &config, ctx).await?);
    // Request transformation slots in here.
    let response = upstream::run(isolate, platform, &config, ctx).await;
    cache::store(platform, ctx, response)
}

/// The phases every response goes through, from the upstream or not.
fn response_phases<S>(
    ctx: &mut RequestCtx<S>,
    mut response: http::Response<Body<S>>,
) -> http::Response<Body<S>> {
    // Response transformation slots in here.
    rate_limit::decorate(ctx, &mut response);
    cors::decorate(ctx, &mut response);
    cache::decorate(ctx, &mut response);
    respond::finish(ctx, response)
}
