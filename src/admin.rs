//! The operators' API, under `/__portico/`: off unless the config names a
//! Worker secret holding its bearer token, and then answered before any
//! route is matched.
//!
//! `GET /__portico/limits/keys/{id}` reports where an API key stands on
//! every rate-limit policy that counts per key (or per user, or per route)
//! on any route: the objects are asked without charging anything. Policies
//! that count per IP address are left out: an address is not a key's.
//!
//! `DELETE /__portico/cache/routes/{id}` retires every cached entry of a
//! route in this data centre; `DELETE /__portico/cache/urls?url=URL`
//! removes the entry a plain GET of URL would be answered from (routes
//! whose entries are shared only).
//!
//! It never reveals a key or its hash, and compares the admin token in
//! constant time. Guessing is throttled per isolate: after
//! [`MAX_WRONG_TOKENS`] wrong tokens within a minute, the isolate answers
//! 429 to every admin request, without comparing, until that minute is
//! over ([`AdminThrottle`]).

use std::cell::Cell;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::auth::api_key::{self, KeyRecord};
use crate::auth::credentials::bearer_token;
use crate::body::Body;
use crate::config::Config;
use crate::error::GatewayError;
use crate::phases::cache;
use crate::pipeline::Isolate;
use crate::pipeline::context::RequestCtx;
use crate::pipeline::flow::Flow;
use crate::platform::{Clock, KvNamespace, KvStore, Platform, RateLimitStore, UnixMillis};
use crate::problem::{Problem, ProblemType};
use crate::ratelimit::object::{Check, LimitCall};
use crate::ratelimit::{ScopePart, object_name};

/// The path prefix of the operators' API.
pub const PREFIX: &str = "/__portico/";

/// Wrong admin tokens an isolate takes per window before it stops
/// comparing.
pub const MAX_WRONG_TOKENS: u32 = 10;
/// The throttle's window: it starts with the first wrong token.
const THROTTLE_WINDOW: Duration = Duration::from_secs(60);

/// Wrong admin tokens this isolate has seen in the current window. A
/// brake on guessing, not a lock: each isolate counts its own, so the
/// token must still be long and random.
#[derive(Debug, Default)]
pub struct AdminThrottle {
    /// When the current window started, and the wrong tokens in it.
    window: Cell<Option<(UnixMillis, u32)>>,
}

impl AdminThrottle {
    /// `Some(seconds until the window ends)` while the isolate refuses to
    /// compare tokens.
    fn refusing(&self, now: UnixMillis) -> Option<u64> {
        let (started, wrong) = self.window.get()?;
        let ends = started.plus(THROTTLE_WINDOW);
        (wrong >= MAX_WRONG_TOKENS && now < ends)
            .then(|| ends.millis_since(now).div_ceil(1000).max(1))
    }

    /// Count a wrong token presented at `now`.
    fn wrong_token(&self, now: UnixMillis) {
        let window = match self.window.get() {
            Some((started, wrong)) if now < started.plus(THROTTLE_WINDOW) => {
                (started, wrong.saturating_add(1))
            }
            _ => (now, 1),
        };
        self.window.set(Some(window));
    }
}

/// Whether this request is for the operators' API of `config`.
fn is_admin_request(config: &Config, path: &str) -> bool {
    config.admin_token_secret.is_some() && path.starts_with(PREFIX)
}

/// Phase "operators' API": answers requests under [`PREFIX`] when the API
/// is on, before any route is matched; lets everything else through.
pub async fn answer<P: Platform>(
    isolate: &Isolate,
    platform: &P,
    config: &Config,
    ctx: &RequestCtx<P::Stream>,
) -> Result<Flow<P::Stream>, GatewayError> {
    if !is_admin_request(config, ctx.uri.path()) {
        return Ok(Flow::Continue);
    }
    handle(
        isolate,
        platform,
        config,
        &ctx.method,
        &ctx.uri,
        &ctx.headers,
        &ctx.request_id,
    )
    .await
    .map(Flow::Respond)
}

fn json_response<S>(status: StatusCode, value: &Value) -> http::Response<Body<S>> {
    let mut response = http::Response::new(Body::Full(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn not_found<S>(request_id: &str, detail: &str) -> http::Response<Body<S>> {
    Problem::new(ProblemType::ROUTE_NOT_FOUND, detail, request_id).into_response()
}

/// Answer an operators' API request.
pub async fn handle<P: Platform>(
    isolate: &Isolate,
    platform: &P,
    config: &Config,
    method: &Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    request_id: &str,
) -> Result<http::Response<Body<P::Stream>>, GatewayError> {
    let Some(secret_name) = &config.admin_token_secret else {
        return Ok(not_found(request_id, "No such endpoint."));
    };
    let expected = platform.secret(secret_name).ok_or_else(|| {
        GatewayError::Internal(format!("the admin token secret {secret_name} is not set"))
    })?;
    let now = platform.now();
    let throttle = &isolate.admin;
    if let Some(retry_after) = throttle.refusing(now) {
        return Err(GatewayError::AdminThrottled { retry_after });
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or("");
    let matches: bool = presented.as_bytes().ct_eq(expected.as_bytes()).into();
    if expected.is_empty() || !matches {
        // Only a presented token is a guess; a request without one (a
        // crawler, a probe) costs the operators nothing.
        if !presented.is_empty() {
            throttle.wrong_token(now);
        }
        return Err(GatewayError::Unauthenticated {
            challenges: vec!["Bearer realm=\"portico-admin\"".to_owned()],
            invalid: !presented.is_empty(),
            reason: "admin token missing or wrong".to_owned(),
        });
    }
    let rest = uri.path().strip_prefix(PREFIX).unwrap_or_default();
    if let Some(what) = rest.strip_prefix("cache/") {
        if method != Method::DELETE {
            return Err(GatewayError::MethodNotAllowed {
                allow: vec![Method::DELETE],
            });
        }
        return purge(isolate, platform, config, what, uri, request_id).await;
    }
    if method != Method::GET {
        return Err(GatewayError::MethodNotAllowed {
            allow: vec![Method::GET],
        });
    }
    match rest.strip_prefix("limits/keys/") {
        Some(id) if !id.is_empty() && !id.contains('/') => {
            key_limits(platform, config, id, request_id).await
        }
        _ => Ok(not_found(request_id, "No such admin endpoint.")),
    }
}

/// `DELETE /__portico/cache/routes/{id}` and `.../cache/urls?url=URL`.
async fn purge<P: Platform>(
    isolate: &Isolate,
    platform: &P,
    config: &Config,
    what: &str,
    uri: &http::Uri,
    request_id: &str,
) -> Result<http::Response<Body<P::Stream>>, GatewayError> {
    let refused =
        |detail: String| Problem::new(ProblemType::BAD_REQUEST, detail, request_id).into_response();
    if let Some(id) = what.strip_prefix("routes/") {
        if !config
            .routes
            .iter()
            .any(|route| route.id == id && route.caches())
        {
            return Ok(not_found(request_id, "No cached route has this id."));
        }
        return match cache::purge_route(isolate, platform, id).await {
            Ok(epoch) => Ok(json_response(
                StatusCode::OK,
                &json!({
                    "route": id,
                    "epoch": epoch,
                    "scope": "this data centre",
                    "effective_within_seconds": cache::EPOCH_TTL.as_secs(),
                }),
            )),
            Err(error) => Err(GatewayError::Internal(format!("cache purge: {error}"))),
        };
    }
    if what != "urls" {
        return Ok(not_found(request_id, "No such admin endpoint."));
    }
    let Some(target) = uri
        .query()
        .and_then(|query| crate::auth::credentials::query_value(query, "url"))
        .and_then(|url| url.parse::<http::Uri>().ok())
        .filter(|url| url.authority().is_some())
    else {
        return Ok(refused(
            "Give the absolute URL to purge as ?url=.".to_owned(),
        ));
    };
    match cache::purge_url(isolate, platform, config, &target).await {
        Ok((route, deleted)) => Ok(json_response(
            StatusCode::OK,
            &json!({
                "url": target.to_string(),
                "route": route,
                "deleted": deleted,
                "scope": "this data centre",
            }),
        )),
        Err(reason) => Ok(refused(reason)),
    }
}

async fn key_limits<P, S>(
    platform: &P,
    config: &Config,
    id: &str,
    request_id: &str,
) -> Result<http::Response<Body<S>>, GatewayError>
where
    P: Clock + KvStore + RateLimitStore,
{
    let text = platform
        .get_text(KvNamespace::Keys, &api_key::kv_key(id))
        .await
        .map_err(|e| GatewayError::AuthUnavailable(e.to_string()))?;
    let Some(record) = text.and_then(|t| serde_json::from_str::<KeyRecord>(&t).ok()) else {
        return Ok(not_found(request_id, "No API key has this id."));
    };
    let identity = record.identity();
    let mut limits = Vec::new();
    for route in &config.routes {
        let Some(rate_limit) = &route.rate_limit else {
            continue;
        };
        if route
            .auth
            .as_ref()
            .is_none_or(|auth| auth.api_key.is_none())
        {
            continue;
        }
        for policy in rate_limit.effective(Some(&identity)).policies {
            if policy.scope.contains(&ScopePart::Ip) {
                continue;
            }
            let object = object_name(&policy, &route.id, Some(&identity), None);
            let call = LimitCall {
                checks: vec![Check {
                    state_key: policy.state_key.to_string(),
                    quota: policy.quota,
                    cost: policy.cost,
                    lease: None,
                }],
                peek: true,
            };
            let replies = platform
                .rate_limit(&object, std::slice::from_ref(&call))
                .await
                .map_err(|e| GatewayError::RateLimitUnavailable(e.to_string()))?;
            let Some(reply) = replies.first() else {
                continue;
            };
            let Some(decision) = reply.decisions.first() else {
                continue;
            };
            let stored = reply.stored.first().copied().unwrap_or(false);
            limits.push(json!({
                "route": route.id,
                "route_index": route.position,
                "policy": &*policy.name,
                "algorithm": policy.quota.algorithm.as_str(),
                "limit": policy.quota.limit,
                "period_ms": policy.quota.period_ms,
                "burst": policy.quota.burst,
                "scope": policy.scope,
                "remaining": decision.remaining,
                "reset_after_ms": decision.reset_after_ms,
                "stored": stored,
            }));
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "key_id": record.id,
            "consumer": record.name,
            "state": if record.usable_at(platform.now().as_secs()) { "active" } else { "revoked or expired" },
            "rate": record.rate,
            "limits": limits,
        }),
    ))
}
