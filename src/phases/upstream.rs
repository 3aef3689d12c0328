//! Phase "upstream": choose the target for the route's service, shape the
//! request it receives ([`super::forward`]) and call it
//! ([`crate::upstream`]).
//!
//! An aggregate route's legs are run by [`aggregate`] instead. A service
//! with one origin is called once (with the always-safe retry,
//! [`single`]). A balanced service's request goes through
//! [`attempts::send`]: each try to a target [`Upstream::choose`] picks,
//! retried as the route's policy allows, with the caller's hash key and
//! location worked out here, and only when the service needs them (the
//! location is costly to read on Workers). A request body is kept for
//! another try only when one could be made.
//!
//! An interim `1xx` response is never passed off as the answer (502), nor
//! a `101` to a request that asked for no upgrade; a `101` to a WebSocket
//! upgrade is the answer, and the platform hands the socket through.
//!
//! Redirects come back to the client, never followed. Any response the
//! service gives, 5xx included, is the service's answer and passes
//! through, less its hop-by-hop headers; only the absence of a response
//! becomes a gateway error: 504 on timeout, 502 when the service cannot be
//! reached, 503 when no target of a balanced service is healthy. None
//! reveals the service's address to the client, and neither does a
//! redirect: an absolute `Location` on the service's own origin is
//! rewritten to the gateway's, as nginx's `proxy_redirect default` does
//! ([`client_location`]). Which target answered goes to the log only.

use std::net::IpAddr;
use std::rc::Rc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::{Authority, Scheme, Uri};

use crate::body::Body;
use crate::config::{Config, Route};
use crate::error::GatewayError;
use crate::http::{strip_hop_by_hop, upgrade};
use crate::observe::events::Event;
use crate::phases::{aggregate, forward};
use crate::pipeline::Isolate;
use crate::pipeline::context::{ClientInfo, RequestCtx, Routed};
use crate::platform::{Bodies, LogSink, Platform};
use crate::upstream::aggregate::Leg;
use crate::upstream::attempts::{self, Plan};
use crate::upstream::balanced::{Balanced, ChoiceInput, HashOn};
use crate::upstream::hash::hash_bytes;
use crate::upstream::outlier::HealthChange;
use crate::upstream::retry::{self, RetryPolicy};
use crate::upstream::single::Sent;
use crate::upstream::state::HealthRead;
use crate::upstream::{Origin, Upstream, health, single};

/// Send the request upstream; the upstream's response.
pub async fn run<P: Platform>(
    isolate: &Rc<Isolate>,
    platform: &P,
    config: &Config,
    ctx: &mut RequestCtx<P::Stream>,
) -> Result<http::Response<Body<P::Stream>>, GatewayError> {
    let route = match &ctx.route {
        Some(routed) => Rc::clone(&routed.route),
        None => return Err(GatewayError::Internal("no route to send to".to_owned())),
    };
    let started = platform.now();
    let (response, origin) = match &route.service.upstream {
        Upstream::Single(origin) => {
            let request = forward::build(platform, config, ctx, origin)?;
            // The retry's request, if due, is built the same way again.
            let remake = || forward::build(platform, config, ctx, origin).ok();
            let sent = single::send_or_remake(platform, request, route.timeout, remake).await;
            ctx.upstream.attempts = sent.attempts;
            (sent.response, Some(origin))
        }
        Upstream::Balanced(balanced) => {
            send_balanced(isolate, platform, config, ctx, &route, balanced).await
        }
        Upstream::Aggregate(aggregate) => {
            return aggregate::run(isolate, platform, config, ctx, aggregate).await;
        }
    };
    ctx.timings.upstream = Some(platform.now().millis_since(started));
    ctx.upstream.target = origin.map(|origin| origin.authority.as_str().to_owned());
    let mut response = response?;
    ctx.upstream.status = Some(response.status().as_u16());
    if upgrade::is_unexpected_interim(response.status(), ctx.websocket) {
        return Err(GatewayError::UpstreamInvalidResponse(format!(
            "the service answered {} where a final response was due",
            response.status()
        )));
    }
    strip_hop_by_hop(response.headers_mut());
    if let (Some(routed), Some(origin)) = (&ctx.route, origin) {
        rewrite_location(response.headers_mut(), origin, routed, &ctx.client);
    }
    Ok(response)
}

type Answer<'u, S> = (
    Result<http::Response<Body<S>>, GatewayError>,
    Option<&'u Origin>,
);

/// Call a balanced service: as many tries as the route's retry policy and
/// this request allow.
async fn send_balanced<'u, P: Platform>(
    isolate: &Rc<Isolate>,
    platform: &P,
    config: &Config,
    ctx: &mut RequestCtx<P::Stream>,
    route: &'u Route,
    balanced: &'u Balanced,
) -> Answer<'u, P::Stream> {
    if balanced.active.is_some() {
        read_health(isolate, platform, config).await;
    }
    let policy = route.retry.as_deref().unwrap_or(&retry::FLOOR);
    let replay = match keep_for_retry(platform, ctx, policy).await {
        Ok(replay) => replay,
        Err(error) => return (Err(error), None),
    };
    let key = balanced.hash_on().and_then(|on| hash_key(on, ctx));
    let location = if balanced.wants_location() {
        ctx.client_location().cloned()
    } else {
        None
    };
    let plan = Plan {
        balancers: &isolate.balancers,
        config,
        policy,
        repeatable: replay.is_some(),
        deadline: route.timeout,
        key,
        location: location.as_ref(),
    };
    let mut tries_made = 0u32;
    let tries = attempts::send(platform, &route.service.upstream, plan, |origin| {
        if tries_made > 0
            && let Some(replay) = &replay
        {
            ctx.body = replay.body();
            ctx.extensions = replay.extensions.clone();
        }
        tries_made += 1;
        forward::build(platform, config, ctx, origin)
    })
    .await;
    for (target, change) in &tries.changes {
        log_change(platform, &balanced.service, target, *change);
    }
    ctx.upstream.attempts = tries.attempts;
    (tries.response, tries.origin)
}

/// What another try needs of the request: its body (if it has one) and
/// the platform's extensions. `None`: the request is tried once.
struct Replay {
    body: Option<Bytes>,
    extensions: http::Extensions,
}

impl Replay {
    fn body<S>(&self) -> Body<S> {
        match &self.body {
            Some(bytes) => Body::Full(bytes.clone()),
            None => Body::Empty,
        }
    }
}

/// Keep what another try would need, if one could be made: the method is
/// one the policy repeats, and a body (other than on GET and HEAD, which
/// go without) declares a length within the policy's cap. Only then is the
/// body read.
async fn keep_for_retry<P: Bodies>(
    platform: &P,
    ctx: &mut RequestCtx<P::Stream>,
    policy: &RetryPolicy,
) -> Result<Option<Replay>, GatewayError> {
    if policy.attempts < 2 || !policy.allows(&ctx.method) {
        return Ok(None);
    }
    let bodiless = ctx.method == http::Method::GET || ctx.method == http::Method::HEAD;
    if bodiless || ctx.body.is_empty() {
        return Ok(Some(Replay {
            body: None,
            extensions: ctx.extensions.clone(),
        }));
    }
    let declared = ctx
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let Some(length) = declared.filter(|length| *length <= policy.max_body_bytes as u64) else {
        return Ok(None);
    };
    let body = std::mem::take(&mut ctx.body);
    let cap = usize::try_from(length).unwrap_or(usize::MAX);
    let bytes = platform.read_body(body, cap).await.map_err(|error| {
        GatewayError::MalformedRequest(format!("the request body could not be read: {error}"))
    })?;
    ctx.body = Body::Full(bytes.clone());
    Ok(Some(Replay {
        body: Some(bytes),
        extensions: ctx.extensions.clone(),
    }))
}

/// The hashed key of a `consistent_hash` service, if the request has one.
fn hash_key<S>(on: &HashOn, ctx: &RequestCtx<S>) -> Option<u64> {
    match on {
        HashOn::Consumer => {
            let identity = ctx.identity.as_ref()?;
            let name = identity.consumer.as_ref().or(identity.subject.as_ref())?;
            Some(hash_bytes(name.as_bytes()))
        }
        HashOn::Ip => match ctx.client.ip? {
            IpAddr::V4(ip) => Some(hash_bytes(&ip.octets())),
            IpAddr::V6(ip) => Some(hash_bytes(&ip.octets())),
        },
        HashOn::Header(name) => ctx
            .headers
            .get(name)
            .map(|value| hash_bytes(value.as_bytes())),
        HashOn::Param(name) => {
            let routed = ctx.route.as_ref()?;
            routed
                .route
                .spec
                .path
                .captures(&routed.path)
                .into_iter()
                .find(|(param, _)| param == name)
                .and_then(|(_, value)| value)
                .map(|value| hash_bytes(value.as_bytes()))
        }
    }
}

/// Send an aggregate leg's request (for `path`, within `timeout`) as a
/// route's request to the leg's service goes: to one origin with the
/// always-safe retry, or, for a balanced service, to the targets its
/// health allows, retried as the service's policy says (legs carry no
/// body, so every try can be made), each outcome judged for the
/// target's health.
pub async fn send_leg<P: Platform>(
    isolate: &Rc<Isolate>,
    platform: &P,
    config: &Config,
    ctx: &RequestCtx<P::Stream>,
    leg: &Leg,
    path: String,
    timeout: std::time::Duration,
) -> Sent<P::Stream> {
    let upstream = &leg.service.upstream;
    let Upstream::Balanced(balanced) = upstream else {
        let request = first_choice(isolate, platform, config, upstream, None).and_then(|origin| {
            let request = forward::leg_request(platform, config, ctx, leg, &origin, &path)?;
            Ok((request, origin))
        });
        return match request {
            Ok((request, origin)) => {
                // The retry's request, if due, is built the same way again.
                let remake =
                    || forward::leg_request(platform, config, ctx, leg, &origin, &path).ok();
                single::send_or_remake(platform, request, timeout, remake).await
            }
            Err(error) => Sent {
                response: Err(error),
                attempts: Vec::new(),
            },
        };
    };
    if balanced.active.is_some() {
        read_health(isolate, platform, config).await;
    }
    let policy = balanced.retry.as_deref().unwrap_or(&retry::FLOOR);
    let plan = Plan {
        balancers: &isolate.balancers,
        config,
        policy,
        repeatable: policy.allows(&leg.method),
        deadline: timeout,
        key: None,
        location: None,
    };
    let tries = attempts::send(platform, upstream, plan, |origin| {
        forward::leg_request(platform, config, ctx, leg, origin, &path)
    })
    .await;
    for (target, change) in &tries.changes {
        log_change(platform, &balanced.service, target, *change);
    }
    Sent {
        response: tries.response,
        attempts: tries.attempts,
    }
}

/// Keep the scheduled health check's results fresh: read them before the
/// first choice in this isolate, then in the background each time the
/// config would be checked.
async fn read_health<P: Platform>(isolate: &Rc<Isolate>, platform: &P, config: &Config) {
    let now = platform.now();
    match isolate.balancers.health_read(now, config.settings.refresh) {
        HealthRead::NotDue => {}
        HealthRead::First => {
            isolate.balancers.health_reading(now);
            let document = health::read(platform).await;
            let changes = isolate.balancers.health_read_done(document, platform.now());
            for (service, target, change) in &changes {
                log_change(platform, service, target, *change);
            }
        }
        HealthRead::Refresh => {
            isolate.balancers.health_reading(now);
            let (isolate, background) = (Rc::clone(isolate), platform.clone());
            platform.wait_until(async move {
                let document = health::read(&background).await;
                let changes = isolate
                    .balancers
                    .health_read_done(document, background.now());
                for (service, target, change) in &changes {
                    log_change(&background, service, target, *change);
                }
            });
        }
    }
}

fn log_change(platform: &impl LogSink, service: &str, target: &str, change: HealthChange) {
    let event = match change {
        HealthChange::Ejected { for_ms, ejections } => Event::TargetEjected {
            service: service.to_owned(),
            target: target.to_owned(),
            for_ms,
            ejections,
        },
        HealthChange::Restored => Event::TargetRestored {
            service: service.to_owned(),
            target: target.to_owned(),
            by: "trial",
        },
        HealthChange::RestoredByCheck => Event::TargetRestored {
            service: service.to_owned(),
            target: target.to_owned(),
            by: "check",
        },
    };
    platform.log(&event);
}

/// The origin a background request for this route (a cache refresh) goes
/// to: chosen like any request's first try, but neither counted in flight
/// nor judged for health.
pub fn background_origin<P: Platform>(
    isolate: &Isolate,
    platform: &P,
    config: &Config,
    ctx: &RequestCtx<P::Stream>,
    route: &Route,
) -> Result<Origin, GatewayError> {
    let key = match &route.service.upstream {
        Upstream::Balanced(balanced) => balanced.hash_on().and_then(|on| hash_key(on, ctx)),
        Upstream::Single(_) | Upstream::Aggregate(_) => None,
    };
    first_choice(isolate, platform, config, &route.service.upstream, key)
}

/// The origin one call to `upstream` outside a request's own tries goes to
/// (a cache refresh, an aggregate's leg): chosen like a first try (`key`
/// for a consistent-hash service), neither counted in flight nor judged
/// for health.
pub fn first_choice<P: Platform>(
    isolate: &Isolate,
    platform: &P,
    config: &Config,
    upstream: &Upstream,
    key: Option<u64>,
) -> Result<Origin, GatewayError> {
    let input = ChoiceInput {
        balancers: &isolate.balancers,
        config,
        random: platform,
        now: platform.now(),
        key,
        location: None,
        avoid: None,
    };
    upstream
        .choose(&input)
        .map(|chosen| chosen.origin.clone())
        .map_err(|refused| GatewayError::NoHealthyUpstream {
            retry_after: refused.retry_after,
        })
}

/// Point a `Location` at the service's origin at the gateway instead.
fn rewrite_location(
    headers: &mut http::HeaderMap,
    origin: &Origin,
    routed: &Routed,
    client: &ClientInfo,
) {
    let Some(rewritten) = headers
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|location| client_location(location, origin, routed, client))
        .and_then(|location| HeaderValue::from_str(&location).ok())
    else {
        return;
    };
    headers.insert(header::LOCATION, rewritten);
}

/// The `Location` the client should get for the service's `location`, or
/// `None` when it is not an absolute URL on the service's origin (scheme,
/// host and port). The origin becomes the one the client asked for (the
/// path alone if that is unknown); a path under the service's base path
/// loses it and, on a route that strips a prefix, gets that prefix back
/// as this request wrote it. Query and fragment stay.
pub fn client_location(
    location: &str,
    origin: &Origin,
    routed: &Routed,
    client: &ClientInfo,
) -> Option<String> {
    let (target, fragment) = match location.split_once('#') {
        Some((target, fragment)) => (target, Some(fragment)),
        None => (location, None),
    };
    let uri: Uri = target.parse().ok()?;
    if !same_origin(uri.scheme()?, uri.authority()?, origin) {
        return None;
    }
    let path = match uri.path() {
        "" => "/",
        path => path,
    };
    let base = origin.base_path.as_str();
    let under_base = if base.is_empty() {
        Some(path)
    } else if path == base {
        Some("/")
    } else {
        path.strip_prefix(base).filter(|rest| rest.starts_with('/'))
    };
    let path = match under_base {
        Some(rest) => routed.client_path(rest),
        None => path.to_owned(),
    };
    let mut rewritten = String::with_capacity(location.len() + 32);
    if let (Some(scheme), Some(host)) = (&client.scheme, &client.host) {
        rewritten.push_str(scheme);
        rewritten.push_str("://");
        rewritten.push_str(host);
    }
    rewritten.push_str(&path);
    if let Some(query) = uri.query() {
        rewritten.push('?');
        rewritten.push_str(query);
    }
    if let Some(fragment) = fragment {
        rewritten.push('#');
        rewritten.push_str(fragment);
    }
    Some(rewritten)
}

/// Whether `scheme` and `authority` name `origin`: the same scheme, host
/// (without case) and port (a default port written or not).
fn same_origin(scheme: &Scheme, authority: &Authority, origin: &Origin) -> bool {
    let port = |scheme: &Scheme, authority: &Authority| {
        authority.port_u16().or_else(|| match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        })
    };
    scheme == &origin.scheme
        && authority
            .host()
            .eq_ignore_ascii_case(origin.authority.host())
        && port(scheme, authority) == port(&origin.scheme, &origin.authority)
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::config::Config;
    use crate::routing::RequestPath;

    fn routed(path: &str) -> (Routed, Origin) {
        let config = Config::from_json(
            r#"{ "version": 1, "services": { "s": { "url": "http://svc.internal/v1" } },
                 "routes": [ { "id": "r", "path": "/api/*", "service": "s", "strip_prefix": "/api" } ] }"#,
        )
        .unwrap();
        let route = Rc::clone(&config.routes[0]);
        let Some(origin) = route.service.upstream.origins().next().cloned() else {
            unreachable!("a service has an origin")
        };
        let routed = Routed {
            route,
            path: RequestPath::parse(path).unwrap(),
        };
        (routed, origin)
    }

    fn client(scheme: Option<&str>, host: Option<&str>) -> ClientInfo {
        ClientInfo {
            scheme: scheme.map(str::to_owned),
            host: host.map(str::to_owned),
            ..ClientInfo::default()
        }
    }

    #[test]
    fn default_ports_written_or_not_are_the_same_origin() {
        let (routed, origin) = routed("/api/a");
        let gateway = client(Some("https"), Some("gw.example"));
        for location in [
            "http://svc.internal/v1/b#frag",
            "http://SVC.internal:80/v1/b#frag",
        ] {
            assert_eq!(
                client_location(location, &origin, &routed, &gateway).as_deref(),
                Some("https://gw.example/api/b#frag"),
                "{location}"
            );
        }
        assert_eq!(
            client_location("http://svc.internal:8080/v1/b", &origin, &routed, &gateway),
            None
        );
    }

    #[test]
    fn without_the_clients_host_the_location_is_a_path() {
        let (routed, origin) = routed("/api/a");
        assert_eq!(
            client_location(
                "http://svc.internal/v1/b?x=1",
                &origin,
                &routed,
                &client(None, None)
            )
            .as_deref(),
            Some("/api/b?x=1")
        );
    }

    #[test]
    fn a_base_path_matches_whole_segments_only() {
        let (routed, origin) = routed("/api/a");
        let gateway = client(Some("https"), Some("gw.example"));
        assert_eq!(
            client_location("http://svc.internal/v10/b", &origin, &routed, &gateway).as_deref(),
            Some("https://gw.example/v10/b")
        );
        assert_eq!(
            client_location("http://svc.internal/v1", &origin, &routed, &gateway).as_deref(),
            Some("https://gw.example/api/")
        );
    }
}
