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
//! | 5 | upgrade        | [`phases::upgrade`]           | 400, 403          | -               |
//! | 6 | body limit     | [`phases::body_limit`]        | 413               | -               |
//! | 7 | rate limit before auth | [`phases::rate_limit::before_auth`] | 429, 503 | -           |
//! | 8 | failed-auth check | [`phases::auth_throttle::check`] | 429          | -               |
//! | 9 | authenticate   | [`phases::authenticate`]      | 401, 503          | -               |
//! |   | (its refusals) | [`phases::auth_throttle::charge`] | 401 or 429    | -               |
//! |10 | authorize      | [`phases::authorize`]         | 403               | -               |
//! |11 | rate limit     | [`phases::rate_limit`]        | 429, 503          | -               |
//! |12 | cache lookup   | [`phases::cache::lookup`]     | yes (a hit, 304)  | -               |
//! |13 | request transform | [`phases::transform::request`] | 400, 413, 415 | -             |
//! |14 | upstream       | [`phases::upstream`]          | 502, 503, 504     | -               |
//! |15 | cache store    | [`phases::cache::store`]      | stale-if-error    | upstream only   |
//! |16 | response transform | [`phases::transform::response`] | 502       | no: origin's responses only (cache hits included) |
//! |17 | rate-limit headers | [`phases::rate_limit::decorate`] | -            | yes             |
//! |18 | CORS headers   | [`phases::cors::decorate`]    | -                 | yes             |
//! |19 | cache status   | [`phases::cache::decorate`]   | -                 | yes             |
//! |20 | finish         | [`phases::respond`]           | -                 | yes             |
//! |21 | log and metrics| [`phases::log`]               | -                 | yes             |
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
use crate::cache::hot::HotEntries;
use crate::config::ConfigSource;
use crate::error::GatewayError;
use crate::phases::{
    auth_throttle, authenticate, authorize, body_limit, cache, cors, log, rate_limit, respond,
    route, transform, upgrade, upstream,
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
    pub cache_epochs: RefCell<TtlCache<String, Rc<cache::RouteEpoch>>>,
    /// Copies of small cache entries this isolate just served.
    pub hot_entries: RefCell<HotEntries>,
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
            hot_entries: RefCell::default(),
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
    let answer = match request_phases(isolate, platform, ctx).await {
        Ok(response) if from_origin(ctx) => Answer::Origin(response),
        Ok(response) => Answer::Gateway(response),
        Err(error) => Answer::Gateway(ctx.fail(error)),
    };
    let response = response_phases(platform, ctx, answer).await;
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
    answer_or_continue!(upgrade::check(ctx)?);
    answer_or_continue!(body_limit::check(ctx)?);
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
    answer_or_continue!(transform::request(platform, ctx).await?);
    let response = upstream::run(isolate, platform, &config, ctx).await;
    cache::store(isolate, platform, ctx, response)
}

/// A response, and whether it carries the origin's content (then the
/// route's response transforms apply) or the gateway's own.
enum Answer<S> {
    Origin(http::Response<Body<S>>),
    Gateway(http::Response<Body<S>>),
}

/// Whether the request phases answered with the origin's response: the
/// upstream's, or one the cache kept of it (a hit, a stale entry, a
/// concurrent request's).
fn from_origin<S>(ctx: &RequestCtx<S>) -> bool {
    use crate::cache::status::CacheOutcome;
    ctx.upstream.status.is_some()
        || ctx.cache.as_ref().is_some_and(|cache| {
            matches!(
                cache.outcome,
                CacheOutcome::Hit { .. }
                    | CacheOutcome::StaleIfError { .. }
                    | CacheOutcome::Coalesced
            )
        })
}

/// The phases every response goes through, from the upstream or not;
/// the response transform only on the origin's.
async fn response_phases<P: Platform>(
    platform: &P,
    ctx: &mut RequestCtx<P::Stream>,
    answer: Answer<P::Stream>,
) -> http::Response<Body<P::Stream>> {
    let mut response = match answer {
        Answer::Origin(response) => match transform::response(platform, ctx, response).await {
            Ok(response) => response,
            Err(error) => ctx.fail(error),
        },
        Answer::Gateway(response) => response,
    };
    rate_limit::decorate(ctx, &mut response);
    cors::decorate(ctx, &mut response);
    cache::decorate(ctx, &mut response);
    respond::finish(ctx, response)
}
