//! Phase "cache": answer GET and HEAD requests of a cached route from the
//! data centre's cache, and store the upstream's cacheable responses.
//!
//! It runs after authentication, authorisation and rate limiting, so a
//! hit never skips them and counts against the caller's limits like any
//! request. [`lookup`] (a request phase) answers fresh entries, and stale
//! ones within `stale_while_revalidate` while one background request
//! refreshes them; it answers conditional requests with 304; concurrent
//! misses for one key wait for the first one's response. [`store`] (on the
//! upstream's response, before the response phases) sends the client its
//! response while a copy is stored in the background, shares it with the
//! waiting requests, and serves a stale entry within `stale_if_error`
//! when the origin fails. [`decorate`] adds `Cache-Status` (RFC 9211).
//!
//! A cache that fails (a lookup or a store that throws) is a miss and a
//! log event, never an error for the client.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use http::{HeaderValue, Method, StatusCode, header};

use crate::body::Body;
use crate::cache::CachePolicy;
use crate::cache::coalesce::{Lead, Turn};
use crate::cache::conditional::{not_modified, not_modified_headers};
use crate::cache::entry::{self, Lifetime, Meta, State, Storability};
use crate::cache::hot::{self, Hot};
use crate::cache::key::{KeyInput, cache_key};
use crate::cache::status::{CacheOutcome, Forward};
use crate::config::Config;
use crate::error::GatewayError;
use crate::observe::events::Event;
use crate::phases::{forward, upstream};
use crate::pipeline::Isolate;
use crate::pipeline::context::RequestCtx;
use crate::pipeline::flow::Flow;
use crate::platform::UnixMillis;
use crate::platform::{FetchError, Platform};
use crate::upstream::single;

const CACHE_STATUS: http::HeaderName = http::HeaderName::from_static("cache-status");

/// What the cache knows about one request.
pub struct CacheCtx<S> {
    pub key: String,
    pub policy: Rc<CachePolicy>,
    pub outcome: CacheOutcome,
    /// A stale entry kept in case the origin fails.
    stale: Option<(Meta, http::Response<Body<S>>)>,
    /// Set when this request leads a key other requests wait on.
    lead: Option<Lead>,
}

/// Look the request up; answer it from the cache when the entry allows.
pub async fn lookup<P: Platform>(
    isolate: &Rc<Isolate>,
    platform: &P,
    config: &Config,
    ctx: &mut RequestCtx<P::Stream>,
) -> Result<Flow<P::Stream>, GatewayError> {
    let Some(routed) = &ctx.route else {
        return Ok(Flow::Continue);
    };
    let route = Rc::clone(&routed.route);
    let Some(policy) = route.cache.as_ref().map(Rc::clone) else {
        return Ok(Flow::Continue);
    };
    if ctx.preflight.is_some() {
        return Ok(Flow::Continue);
    }
    let bypass = if ctx.method != Method::GET && ctx.method != Method::HEAD {
        Some("method")
    } else if ctx.websocket {
        Some("upgrade")
    } else if ctx.headers.contains_key(header::RANGE) {
        Some("range")
    } else {
        None
    };
    let path = routed.path.as_str().to_owned();
    let epoch = route_epoch(isolate, platform, &route.id).await;
    let key = cache_key(
        &policy,
        &KeyInput {
            route_id: &route.id,
            epoch,
            host: ctx.host.as_deref(),
            path: &path,
            query: ctx.uri.query(),
            headers: &ctx.headers,
            identity: route.auth.as_ref().and(ctx.identity.as_ref()),
        },
    );
    let mut cache = CacheCtx {
        key,
        policy,
        outcome: CacheOutcome::forwarded(Forward::UriMiss),
        stale: None,
        lead: None,
    };
    if let Some(reason) = bypass {
        cache.outcome = CacheOutcome::bypass(reason);
        ctx.cache = Some(cache);
        return Ok(Flow::Continue);
    }

    let now = platform.now();
    let hot = isolate.hot_entries.borrow_mut().answer(&cache.key, now);
    if let Hot::Answer(copy, ttl) = hot {
        cache.outcome = CacheOutcome::Hit { ttl };
        return Ok(answer(ctx, cache, copy));
    }
    let found = match platform.cache_match(&cache.key).await {
        Ok(found) => found,
        Err(error) => {
            failed(platform, &route.id, "match", &error.to_string());
            None
        }
    };
    if let Some(mut stored) = found {
        match entry::from_storage(stored.headers_mut(), now) {
            None => cache.outcome = CacheOutcome::forwarded(Forward::Miss),
            Some(meta) => match meta.state(now) {
                State::Fresh { ttl } => {
                    match keep_hot(isolate, platform, &route.id, &cache.key, now, meta, stored)
                        .await
                    {
                        Some(stored) => {
                            cache.outcome = CacheOutcome::Hit { ttl };
                            return Ok(answer(ctx, cache, stored));
                        }
                        None => cache.outcome = CacheOutcome::forwarded(Forward::Miss),
                    }
                }
                State::StaleWhileRevalidate { ttl } => {
                    refresh(isolate, platform, config, ctx, &cache);
                    cache.outcome = CacheOutcome::Hit { ttl };
                    return Ok(answer(ctx, cache, stored));
                }
                State::StaleIfError { ttl } => {
                    cache.outcome = CacheOutcome::Forwarded {
                        why: Forward::Stale,
                        stored: false,
                        ttl: Some(ttl),
                        detail: None,
                    };
                    cache.stale = Some((meta, stored));
                }
                State::Expired => cache.outcome = CacheOutcome::forwarded(Forward::Miss),
            },
        }
    }
    // A fresh entry renewed the isolate's copy above; anything else ends it.
    isolate.hot_entries.borrow_mut().forget(&cache.key);

    if ctx.method == Method::GET {
        // The leader's origin call, then reading its body for the cache.
        let limit = route.timeout.saturating_mul(2);
        match isolate.coalescer.join(&cache.key, platform, limit) {
            Turn::Lead(lead) => cache.lead = Some(lead),
            Turn::Follow(follow) => {
                if let Some(shared) = follow.shared().await
                    && let Ok(response) = shared.downcast::<http::Response<Body<P::Stream>>>()
                {
                    cache.outcome = CacheOutcome::Coalesced;
                    ctx.cache = Some(cache);
                    return Ok(Flow::Respond(*response));
                }
            }
        }
    }
    ctx.cache = Some(cache);
    Ok(Flow::Continue)
}

/// Keep the isolate's own copy of a fresh entry just read from the cache,
/// when its body is small enough ([`hot::MAX_BYTES`], by its stored
/// `Content-Length`): the entry, its body now in memory. A body that fails
/// to read is a cache failure (`None`), and the request goes to the origin.
async fn keep_hot<P: Platform>(
    isolate: &Isolate,
    platform: &P,
    route_id: &str,
    key: &str,
    now: UnixMillis,
    meta: Meta,
    stored: http::Response<Body<P::Stream>>,
) -> Option<http::Response<Body<P::Stream>>> {
    let small = stored
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|length| length <= hot::MAX_BYTES);
    if !small {
        return Some(stored);
    }
    let (parts, body) = stored.into_parts();
    match platform.read_body(body, hot::MAX_BYTES).await {
        Ok(bytes) => {
            isolate.hot_entries.borrow_mut().keep(
                key,
                now,
                meta,
                parts.status,
                &parts.headers,
                bytes.clone(),
            );
            Some(http::Response::from_parts(parts, Body::Full(bytes)))
        }
        Err(error) => {
            failed(platform, route_id, "match", &error.to_string());
            None
        }
    }
}

/// Serve a stored response: 304 when the client's copy is current.
fn answer<S>(
    ctx: &mut RequestCtx<S>,
    cache: CacheCtx<S>,
    stored: http::Response<Body<S>>,
) -> Flow<S> {
    let response = if not_modified(&ctx.headers, stored.headers()) {
        let mut response = http::Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        *response.headers_mut() = not_modified_headers(stored.headers());
        response
    } else {
        stored
    };
    ctx.cache = Some(cache);
    Flow::Respond(response)
}

/// Refresh a stale entry in the background, once per key per isolate.
fn refresh<P: Platform>(
    isolate: &Rc<Isolate>,
    platform: &P,
    config: &Config,
    ctx: &mut RequestCtx<P::Stream>,
    cache: &CacheCtx<P::Stream>,
) {
    let Some(routed) = &ctx.route else {
        return;
    };
    let route = Rc::clone(&routed.route);
    if !isolate
        .cache_refreshing
        .borrow_mut()
        .insert(cache.key.clone())
    {
        return;
    }
    let request = upstream::background_origin(isolate, platform, config, ctx, &route)
        .and_then(|origin| forward::build(platform, config, ctx, &origin));
    let request = match request {
        Ok(mut request) => {
            *request.method_mut() = Method::GET;
            request
        }
        Err(error) => {
            isolate.cache_refreshing.borrow_mut().remove(&cache.key);
            failed(platform, &route.id, "refresh", &error.to_string());
            return;
        }
    };
    let (isolate, platform_handle) = (Rc::clone(isolate), platform.clone());
    let (key, policy) = (cache.key.clone(), Rc::clone(&cache.policy));
    platform.wait_until(async move {
        let platform = platform_handle;
        let sent = single::send(&platform, request, route.timeout).await;
        match sent.response {
            Ok(response) => {
                let status = response.status().as_u16();
                if let Storability::Store(lifetime) =
                    entry::storability(&policy, status, response.headers())
                {
                    let to = Destination {
                        route_id: &route.id,
                        key: &key,
                        policy: &policy,
                    };
                    put(&platform, &isolate, &to, lifetime, response, None).await;
                }
            }
            Err(error) => failed(&platform, &route.id, "refresh", &error.to_string()),
        }
        isolate.cache_refreshing.borrow_mut().remove(&key);
    });
}

/// Where a response is stored: its route, its entry's key and the
/// route's policy.
struct Destination<'a> {
    route_id: &'a str,
    key: &'a str,
    policy: &'a CachePolicy,
}

/// Read a response to the end (within the policy's cap) and store it,
/// sharing it with the requests that wait for it. A small one is also
/// kept as the isolate's own copy before the (slower) store, so that a
/// miss arriving while the store is under way is answered from memory
/// instead of going to the origin again.
async fn put<P: Platform>(
    platform: &P,
    isolate: &Isolate,
    to: &Destination<'_>,
    lifetime: Lifetime,
    response: http::Response<Body<P::Stream>>,
    lead: Option<Lead>,
) {
    let Destination {
        route_id,
        key,
        policy,
    } = *to;
    let stored_at = platform.now();
    let (mut parts, body) = response.into_parts();
    let bytes = match platform.read_body(body, policy.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(error) => {
            // The client had it; not stored, and the waiters (the lead
            // dropped) go to the origin themselves.
            let reason = match error {
                FetchError::TooLarge(_) => "too-large",
                _ => "body-failed",
            };
            platform.log(&Event::CacheNotStored {
                route: route_id.to_owned(),
                reason,
            });
            return;
        }
    };
    if let Some(lead) = lead {
        // A copy of what is stored, for each waiter to answer with: head
        // and bytes only, nothing that belongs to this request.
        lead.share(|| {
            let mut copy = http::Response::new(Body::<P::Stream>::Full(bytes.clone()));
            *copy.status_mut() = parts.status;
            *copy.version_mut() = parts.version;
            *copy.headers_mut() = parts.headers.clone();
            Some(Box::new(copy))
        });
    }
    let meta = Meta::new(stored_at, lifetime, &parts.headers);
    entry::for_storage(&meta, &mut parts.headers);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    // The copy is what a lookup would give back (`keep` takes only small,
    // fresh ones).
    let mut kept = parts.headers.clone();
    let now = platform.now();
    if let Some(meta) = entry::from_storage(&mut kept, now) {
        isolate
            .hot_entries
            .borrow_mut()
            .keep(key, now, meta, parts.status, &kept, bytes.clone());
    }
    let stored = http::Response::from_parts(parts, Body::Full(bytes));
    if let Err(error) = platform.cache_put(key, stored).await {
        // Not stored: the copy goes too, as it would with a failed lookup.
        isolate.hot_entries.borrow_mut().forget(key);
        failed(platform, route_id, "put", &error.to_string());
    }
}

/// What to do with the upstream's answer on a cached route: store it and
/// share it with waiting requests, or answer with a stale entry when the
/// origin failed and the policy allows.
pub fn store<P: Platform>(
    isolate: &Rc<Isolate>,
    platform: &P,
    ctx: &mut RequestCtx<P::Stream>,
    result: Result<http::Response<Body<P::Stream>>, GatewayError>,
) -> Result<http::Response<Body<P::Stream>>, GatewayError> {
    let route_id = ctx
        .route
        .as_ref()
        .map(|routed| routed.route.id.clone())
        .unwrap_or_default();
    let Some(cache) = ctx.cache.as_mut() else {
        return result;
    };
    let lead = cache.lead.take();
    let origin_failed = match &result {
        Ok(response) => response.status().is_server_error(),
        Err(error) => matches!(
            error,
            GatewayError::UpstreamTimeout(_) | GatewayError::UpstreamUnreachable(_)
        ),
    };
    if origin_failed && let Some((_, stale)) = cache.stale.take() {
        if let CacheOutcome::Forwarded { ttl: Some(ttl), .. } = cache.outcome {
            cache.outcome = CacheOutcome::StaleIfError { ttl };
        }
        return Ok(stale);
    }
    let response = result?;
    if ctx.method != Method::GET
        || matches!(
            cache.outcome,
            CacheOutcome::Forwarded {
                why: Forward::Bypass,
                ..
            }
        )
    {
        return Ok(response);
    }
    let lifetime = match entry::storability(
        &cache.policy,
        response.status().as_u16(),
        response.headers(),
    ) {
        Storability::Store(lifetime) => lifetime,
        Storability::Skip(reason) => {
            if let CacheOutcome::Forwarded { detail, .. } = &mut cache.outcome {
                *detail = Some(reason);
            }
            // Not shareable either: the waiters go to the origin themselves.
            return Ok(response);
        }
    };
    let (parts, body) = response.into_parts();
    let (client, for_cache) = match platform.tee_body(body) {
        Ok(pair) => pair,
        Err(error) => {
            failed(platform, &route_id, "tee", &error.to_string());
            return Err(GatewayError::Internal(format!(
                "splitting the body to store it: {error}"
            )));
        }
    };
    let stored = copy_of(&parts, for_cache);
    let (isolate, platform_handle, key, policy) = (
        Rc::clone(isolate),
        platform.clone(),
        cache.key.clone(),
        Rc::clone(&cache.policy),
    );
    platform.wait_until(async move {
        let to = Destination {
            route_id: &route_id,
            key: &key,
            policy: &policy,
        };
        put(&platform_handle, &isolate, &to, lifetime, stored, lead).await;
    });
    // `stored` is a promise: made when the body's declared length is
    // within the cap (an over-cap one was passed through above). Without
    // a length, the copy is stored only if it ends within the cap, which
    // is known after the client has its headers: `detail=storing`, and a
    // `cache_not_stored` event when it was not.
    let known_length = parts.headers.contains_key(header::CONTENT_LENGTH);
    if let CacheOutcome::Forwarded {
        stored,
        ttl,
        detail,
        ..
    } = &mut cache.outcome
    {
        *stored = known_length;
        if !known_length {
            *detail = Some("storing");
        }
        *ttl = Some(i64::try_from(lifetime.fresh.as_secs()).unwrap_or(i64::MAX));
    }
    Ok(http::Response::from_parts(parts, client))
}

/// A response with the same head as `parts` and `body`.
fn copy_of<S>(parts: &http::response::Parts, body: Body<S>) -> http::Response<Body<S>> {
    let mut copy = http::Response::new(body);
    *copy.status_mut() = parts.status;
    *copy.version_mut() = parts.version;
    *copy.headers_mut() = parts.headers.clone();
    *copy.extensions_mut() = parts.extensions.clone();
    copy
}

/// A request of a cached route answered before the lookup (401, 403,
/// 429, ...): the cache did not handle it.
const REFUSED: CacheOutcome = CacheOutcome::Forwarded {
    why: Forward::Bypass,
    stored: false,
    ttl: None,
    detail: Some("refused"),
};

/// What the cache did for a request of a cached route; `None` elsewhere
/// (and for CORS preflights, which are not the route's responses).
pub fn outcome<S>(ctx: &RequestCtx<S>) -> Option<&CacheOutcome> {
    if let Some(cache) = &ctx.cache {
        return Some(&cache.outcome);
    }
    let routed = ctx.route.as_ref()?;
    (routed.route.cache.is_some() && ctx.preflight.is_none()).then_some(&REFUSED)
}

/// `Cache-Status` on every response of a cached route.
pub fn decorate<S>(ctx: &RequestCtx<S>, response: &mut http::Response<Body<S>>) {
    if let Some(outcome) = outcome(ctx) {
        response
            .headers_mut()
            .insert(CACHE_STATUS, outcome.header());
    }
}

/// How long an isolate trusts the epoch it read for a route: the bound on
/// how long a data-centre purge takes to reach every isolate there.
pub const EPOCH_TTL: Duration = Duration::from_secs(5);

/// Where a route's purge epoch lives in the data centre's cache.
fn epoch_key(route_id: &str) -> String {
    format!("https://cache.portico.internal/epoch/{route_id}")
}

/// A route's purge epoch as an isolate last read it.
#[derive(Debug)]
pub struct RouteEpoch {
    value: u64,
    /// Until when it is used without reading it again.
    fresh_until: UnixMillis,
    /// Whether a request is reading it again.
    renewing: Cell<bool>,
}

impl RouteEpoch {
    fn new(value: u64, now: UnixMillis) -> Rc<RouteEpoch> {
        Rc::new(RouteEpoch {
            value,
            fresh_until: now.plus(EPOCH_TTL),
            renewing: Cell::new(false),
        })
    }
}

/// Remember `epoch` for `route_id`: used as it is for [`EPOCH_TTL`], then
/// for as long again by the other requests while one reads it anew.
fn remember_epoch(isolate: &Isolate, route_id: &str, epoch: Rc<RouteEpoch>) {
    let expires = epoch.fresh_until.plus(EPOCH_TTL);
    isolate
        .cache_epochs
        .borrow_mut()
        .insert(route_id.to_owned(), epoch, expires);
}

/// The route's purge epoch in this data centre (0 until the first purge).
/// Once the isolate's copy is [`EPOCH_TTL`] old, one request reads it
/// again while the others go on with the copy, so a busy route does not
/// send every request in flight to the cache at once.
pub async fn route_epoch<P: Platform>(isolate: &Isolate, platform: &P, route_id: &str) -> u64 {
    let now = platform.now();
    let known = isolate
        .cache_epochs
        .borrow_mut()
        .get(&route_id.to_owned(), now);
    if let Some(known) = known
        && (now < known.fresh_until || known.renewing.replace(true))
    {
        return known.value;
    }
    let epoch = match platform.cache_match(&epoch_key(route_id)).await {
        Ok(Some(stored)) => platform
            .read_body(stored.into_body(), 32)
            .await
            .ok()
            .and_then(|bytes| std::str::from_utf8(&bytes).ok()?.trim().parse().ok())
            .unwrap_or(0),
        Ok(None) => 0,
        Err(error) => {
            failed(platform, route_id, "epoch", &error.to_string());
            0
        }
    };
    remember_epoch(isolate, route_id, RouteEpoch::new(epoch, now));
    epoch
}

/// Retire every entry of a route in this data centre: a new epoch, which
/// every key of the route includes. Isolates here see it within
/// [`EPOCH_TTL`]. Returns the new epoch.
pub async fn purge_route<P: Platform>(
    isolate: &Isolate,
    platform: &P,
    route_id: &str,
) -> Result<u64, String> {
    let current = route_epoch(isolate, platform, route_id).await;
    let epoch = platform.now().0.max(current.saturating_add(1));
    let mut stored = http::Response::new(Body::Full(bytes::Bytes::from(epoch.to_string())));
    stored.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000"),
    );
    platform
        .cache_put(&epoch_key(route_id), stored)
        .await
        .map_err(|e| e.to_string())?;
    remember_epoch(isolate, route_id, RouteEpoch::new(epoch, platform.now()));
    Ok(epoch)
}

/// Remove the entry a plain GET of `uri` (no credentials, no vary
/// headers) would be answered from, in this data centre. Routes whose
/// entries are kept per caller have no such entry: purge the route.
pub async fn purge_url<P: Platform>(
    isolate: &Isolate,
    platform: &P,
    config: &Config,
    uri: &http::Uri,
) -> Result<(String, bool), String> {
    let routed = crate::phases::route::find(config, &Method::GET, uri, &http::HeaderMap::new())
        .map_err(|e| format!("no route serves GET {uri}: {e}"))?;
    let route = &routed.route;
    let policy = route
        .cache
        .as_ref()
        .ok_or_else(|| format!("route '{}' does not cache", route.id))?;
    if route.auth.is_some() && !policy.shared {
        return Err(format!(
            "route '{}' keeps entries per caller; purge the route instead",
            route.id
        ));
    }
    let epoch = route_epoch(isolate, platform, &route.id).await;
    let host = uri
        .authority()
        .and_then(|a| crate::routing::normalize_request_host(a.as_str()));
    let key = cache_key(
        policy,
        &KeyInput {
            route_id: &route.id,
            epoch,
            host: host.as_deref(),
            path: routed.path.as_str(),
            query: uri.query(),
            headers: &http::HeaderMap::new(),
            identity: None,
        },
    );
    isolate.hot_entries.borrow_mut().forget(&key);
    let deleted = platform
        .cache_delete(&key)
        .await
        .map_err(|e| e.to_string())?;
    Ok((route.id.clone(), deleted))
}

fn failed<P: Platform>(platform: &P, route: &str, operation: &'static str, error: &str) {
    platform.log(&Event::CacheFailed {
        route: route.to_owned(),
        operation,
        error: error.to_owned(),
    });
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;

    use super::*;
    use crate::platform::Clock;
    use crate::platform::memory::MemoryPlatform;

    #[test]
    fn while_one_request_reads_the_epoch_again_the_others_use_the_copy() {
        let (isolate, platform) = (Isolate::default(), MemoryPlatform::new());
        remember_epoch(&isolate, "r", RouteEpoch::new(7, platform.now()));
        platform.advance(EPOCH_TTL);
        let known = isolate
            .cache_epochs
            .borrow_mut()
            .get(&"r".to_owned(), platform.now());
        // Another request is reading it (its lookup still in flight).
        known.unwrap().renewing.set(true);
        platform.fail_cache(Some("a lookup now would fail"));
        assert_eq!(block_on(route_epoch(&isolate, &platform, "r")), 7);
        platform.advance(EPOCH_TTL);
        assert_eq!(
            block_on(route_epoch(&isolate, &platform, "r")),
            0,
            "past the grace a request looks it up itself (failing: 0)"
        );
    }

    #[test]
    fn the_first_request_after_the_epoch_time_reads_a_purge_made_elsewhere() {
        let (isolate, platform) = (Isolate::default(), MemoryPlatform::new());
        assert_eq!(block_on(route_epoch(&isolate, &platform, "r")), 0);
        let elsewhere = Isolate::default();
        let purged = block_on(purge_route(&elsewhere, &platform, "r")).unwrap();
        assert_eq!(
            block_on(route_epoch(&isolate, &platform, "r")),
            0,
            "trusted a while"
        );
        platform.advance(EPOCH_TTL);
        assert_eq!(block_on(route_epoch(&isolate, &platform, "r")), purged);
    }
}
