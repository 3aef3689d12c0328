//! Phase "forward": shape the request the upstream service receives.
//!
//! - URL: the service's origin and base path, the route's path transform,
//!   and the client's query string exactly as sent.
//! - Client headers whose names contain `_` are removed: many servers read
//!   `_` as `-`, so they could pass for headers the gateway owns.
//! - The headers of `settings.strip_request_headers` are removed: by
//!   default method overrides (`X-HTTP-Method-Override`, ...), original-URL
//!   headers (`X-Original-URL`, `X-Rewrite-URL`) and client-address claims
//!   (`True-Client-IP`, ...), each of which would let a client undo a
//!   decision the gateway made.
//! - Hop-by-hop headers (RFC 9110 section 7.6.1), and any header the
//!   `Connection` header names, are removed; so is `Host`, which the
//!   runtime sets from the upstream URL.
//! - `X-Forwarded-For`, `-Proto` and `-Host` describe the real client. The
//!   gateway is the edge, so by default client-sent copies of these (and
//!   `Forwarded`, `X-Real-IP`, any other `X-Forwarded-*`) are dropped, not
//!   believed; with `trust_forwarded_headers` they are kept and extended.
//! - The request id header carries the id chosen for this request, and
//!   `traceparent` the trace with the gateway's span as the parent;
//!   `tracestate` passes untouched.
//! - Client-sent copies of the identity headers are always dropped; the
//!   verified identity, and its signature when a signing secret is set,
//!   are written (see [`crate::auth::identity`]). Unless the route says
//!   otherwise, the credential itself (API key header or query parameter,
//!   `Authorization`) does not go upstream.
//!
//! - The route's request header and query rules ([`super::transform`])
//!   apply after all of the above and before the identity headers, so
//!   they reach background cache refreshes too and cannot forge what
//!   the gateway asserts.
//!
//! - `Expect` never goes upstream: the runtime has answered the client's
//!   `100-continue` already, and a service's interim `100` would come back
//!   as if it were the response.
//! - A WebSocket upgrade the route takes ([`super::upgrade`]) goes on as
//!   one (`Upgrade: websocket`, with the client's `Sec-WebSocket-*`
//!   headers), less a credential offered as a subprotocol.
//!
//! The body is never read here. `GET` and `HEAD` requests go upstream
//! without one, and without `Content-Length` (`Transfer-Encoding` is
//! hop-by-hop): the runtime cannot send a body with them, and a length
//! without its body would leave the origin waiting.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Uri};

use crate::auth::identity::IdentityHeaderNames;
use crate::auth::{Identity, RouteAuth, credentials, identity};
use crate::body::Body;
use crate::config::{Config, Settings};
use crate::error::GatewayError;
use crate::http::{connection_listed, is_hop_by_hop, upgrade};
use crate::observe::trace::TRACEPARENT;
use crate::phases::transform;
use crate::pipeline::context::{ClientInfo, RequestCtx, Routed};
use crate::platform::{Clock, RequestBodyLimit, Secrets};
use crate::upstream::Origin;
use crate::upstream::aggregate::Leg;

/// The request the upstream receives for this request, sent to `origin`.
/// Takes the request body (and the platform's extensions, which let it
/// build the upstream request from the client's) out of the context.
pub fn build<P, S>(
    platform: &P,
    config: &Config,
    ctx: &mut RequestCtx<S>,
    origin: &Origin,
) -> Result<http::Request<Body<S>>, GatewayError>
where
    P: Clock + Secrets,
{
    let routed = ctx
        .route
        .as_ref()
        .ok_or_else(|| GatewayError::Internal("forwarding an unrouted request".to_owned()))?;
    let policy = routed.route.auth.as_ref();
    let signing_secret = match &config.auth.signing_secret {
        Some(name) => Some(platform.secret(name).ok_or_else(|| {
            GatewayError::Internal(format!("the signing secret {name} is not set"))
        })?),
        None => None,
    };
    let query = upstream_query(ctx.uri.query(), policy);
    let query = transform::upstream_query(ctx, query);
    let uri = upstream_uri(routed, origin, query.as_deref())?;
    let cached = routed.route.cache.is_some();
    let mut headers = upstream_headers(
        &ctx.headers,
        &ctx.client,
        &config.settings,
        ctx.request_id_value.as_ref(),
        cached,
    );
    transform::upstream_headers(ctx, &mut headers);
    if ctx.websocket {
        upgrade::set_websocket_upgrade(&mut headers);
        let credentials_forwarded = policy.is_some_and(|policy| policy.forward_credentials);
        if !credentials_forwarded {
            upgrade::strip_protocol_credentials(&mut headers);
        }
    }
    headers.insert(TRACEPARENT, ctx.traceparent.clone());
    set_identity_headers(
        &mut headers,
        &ctx.method,
        &uri,
        &IdentityHeaders {
            names: &config.auth.identity_headers,
            policy,
            identity: ctx.identity.as_ref(),
            signing: signing_secret
                .as_deref()
                .map(|secret| (secret.as_bytes(), platform.now().as_secs())),
        },
    );
    let body = std::mem::take(&mut ctx.body);
    let body = if sends_no_body(&ctx.method) {
        headers.remove(header::CONTENT_LENGTH);
        Body::Empty
    } else {
        body
    };
    let mut outbound = http::Request::new(body);
    *outbound.method_mut() = ctx.method.clone();
    *outbound.uri_mut() = uri;
    *outbound.headers_mut() = headers;
    *outbound.extensions_mut() = std::mem::take(&mut ctx.extensions);
    if let Some(limit) = ctx.streamed_body_limit
        && !outbound.body().is_empty()
    {
        outbound.extensions_mut().insert(RequestBodyLimit(limit));
    }
    Ok(outbound)
}

/// Whether requests with this method go upstream without a body: `GET`
/// and `HEAD`, which Fetch (and so the Workers runtime) cannot send with
/// one, and to which RFC 9110 gives content no meaning. The body and its
/// framing go together, so no origin waits for bytes that never come.
fn sends_no_body(method: &http::Method) -> bool {
    *method == http::Method::GET || *method == http::Method::HEAD
}

/// The request an aggregate's leg sends: the leg's method and rendered
/// path and query on its service's target, no body, only the client
/// headers the leg passes on, and the same forwarding, request id, trace
/// and identity headers (signed) as any request the route forwards.
pub fn leg_request<P, S>(
    platform: &P,
    config: &Config,
    ctx: &RequestCtx<S>,
    leg: &Leg,
    origin: &Origin,
    path_and_query: &str,
) -> Result<http::Request<Body<S>>, GatewayError>
where
    P: Clock + Secrets,
{
    let policy = ctx
        .route
        .as_ref()
        .and_then(|routed| routed.route.auth.as_ref());
    let signing_secret = match &config.auth.signing_secret {
        Some(name) => Some(platform.secret(name).ok_or_else(|| {
            GatewayError::Internal(format!("the signing secret {name} is not set"))
        })?),
        None => None,
    };
    let path = PathAndQuery::try_from(format!("{}{path_and_query}", origin.base_path))
        .map_err(|e| GatewayError::Internal(format!("leg path: {e}")))?;
    let uri = Uri::builder()
        .scheme(origin.scheme.clone())
        .authority(origin.authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| GatewayError::Internal(format!("leg URL: {e}")))?;
    let mut headers = HeaderMap::new();
    // Forwarding claims are never the client's to make.
    for name in leg
        .pass_headers
        .iter()
        .filter(|name| !is_forwarding_claim(name))
    {
        for value in ctx.headers.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    set_forwarding_headers(&mut headers, &ctx.client, Vec::new(), false);
    if let Some(value) = &ctx.request_id_value {
        headers.insert(&config.settings.request_id_header, value.clone());
    }
    headers.insert(TRACEPARENT, ctx.traceparent.clone());
    set_identity_headers(
        &mut headers,
        &leg.method,
        &uri,
        &IdentityHeaders {
            names: &config.auth.identity_headers,
            policy,
            identity: ctx.identity.as_ref(),
            signing: signing_secret
                .as_deref()
                .map(|secret| (secret.as_bytes(), platform.now().as_secs())),
        },
    );
    let mut request = http::Request::new(Body::Empty);
    *request.method_mut() = leg.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Set the `X-Forwarded-*` headers for the upstream: `X-Forwarded-For`
/// (the chain the client sent, when trusted, then the client's address),
/// `-Proto` and `-Host`.
fn set_forwarding_headers(
    headers: &mut HeaderMap,
    client: &ClientInfo,
    chain: Vec<String>,
    trust_client: bool,
) {
    let mut forwarded_for = chain.join(", ");
    if let Some(ip) = client.ip {
        if !forwarded_for.is_empty() {
            forwarded_for.push_str(", ");
        }
        push_ip(&mut forwarded_for, ip);
    }
    if !forwarded_for.is_empty()
        && let Ok(value) = HeaderValue::try_from(forwarded_for)
    {
        headers.insert(&X_FORWARDED_FOR, value);
    }
    set_unless_kept(
        headers,
        X_FORWARDED_PROTO,
        client.scheme.as_deref(),
        trust_client,
    );
    set_unless_kept(
        headers,
        X_FORWARDED_HOST,
        client.host.as_deref(),
        trust_client,
    );
}

/// Write `ip` as its `Display` does; an IPv4 address (nearly every
/// client) without the formatting machinery.
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (index, octet) in v4.octets().into_iter().enumerate() {
                if index > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

fn set_unless_kept(headers: &mut HeaderMap, name: HeaderName, value: Option<&str>, keep: bool) {
    if keep && headers.contains_key(&name) {
        return;
    }
    let value = match value {
        // The usual schemes need no copy.
        Some("https") => Some(HeaderValue::from_static("https")),
        Some("http") => Some(HeaderValue::from_static("http")),
        other => other.and_then(|v| HeaderValue::from_str(v).ok()),
    };
    match value {
        Some(value) => {
            headers.insert(name, value);
        }
        None => {
            headers.remove(name);
        }
    }
}

/// The upstream URL for a routed request sent to `origin`.
pub fn upstream_uri(
    routed: &Routed,
    origin: &Origin,
    query: Option<&str>,
) -> Result<Uri, GatewayError> {
    let upstream_path = routed.upstream_path();
    let mut path = String::with_capacity(
        origin.base_path.len() + upstream_path.len() + query.map_or(0, |q| q.len() + 1),
    );
    path.push_str(&origin.base_path);
    path.push_str(&upstream_path);
    if let Some(query) = query {
        path.push('?');
        path.push_str(query);
    }
    let path_and_query = PathAndQuery::try_from(path)
        .map_err(|e| GatewayError::Internal(format!("upstream path: {e}")))?;
    Uri::builder()
        .scheme(origin.scheme.clone())
        .authority(origin.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| GatewayError::Internal(format!("upstream URL: {e}")))
}

/// The headers the upstream receives, from the client's.
///
/// On a cached route the response may be stored for other clients, so no
/// request header outside the cache key may shape it: client-sent
/// forwarding headers are never trusted there, headers that override the
/// method or URL are dropped, and so are conditionals (the gateway wants
/// the full response to store, and answers a client's conditional itself).
pub fn upstream_headers(
    client_headers: &HeaderMap,
    client: &ClientInfo,
    settings: &Settings,
    request_id: Option<&HeaderValue>,
    cached: bool,
) -> HeaderMap {
    let trust_client = settings.trust_forwarded_headers && !cached;
    let listed = connection_listed(client_headers);
    // One pass that copies what may go on, rather than a copy and a
    // removal (a hash of the name) per rule.
    let mut headers = HeaderMap::with_capacity(client_headers.len() + 4);
    let mut previous_for = Vec::new();
    for (name, value) in client_headers {
        if is_dropped(name, settings, trust_client, cached, &listed) {
            continue;
        }
        if name == X_FORWARDED_FOR {
            // Reached only when trusted (else a dropped claim): the chain
            // is extended below.
            if let Ok(value) = value.to_str()
                && !value.trim().is_empty()
            {
                previous_for.push(value.trim().to_owned());
            }
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    set_forwarding_headers(&mut headers, client, previous_for, trust_client);
    if let Some(value) = request_id {
        headers.insert(&settings.request_id_header, value.clone());
    }
    headers
}

/// `X-Forwarded-*`, `Forwarded` and `X-Real-IP`: what a client says about
/// where the request came from.
fn is_forwarding_claim(name: &HeaderName) -> bool {
    name.as_str().starts_with("x-forwarded-") || name == header::FORWARDED || name == X_REAL_IP
}

/// Whether a client's header stays behind (see the module's rules):
/// names with `_` (CGI, WSGI, Rack and PHP servers read `X_Portico_Roles`
/// as `X-Portico-Roles`, so any such header could stand in for one the
/// gateway owns or strips; like nginx, the gateway drops them all rather
/// than keep a list of every collision), the configured strip list,
/// hop-by-hop headers and those `Connection` lists, `Host` and `Expect`;
/// forwarding claims unless trusted; and on a cached route the inputs no
/// cache key holds.
fn is_dropped(
    name: &HeaderName,
    settings: &Settings,
    trust_client: bool,
    cached: bool,
    connection_listed: &[HeaderName],
) -> bool {
    let text = name.as_str();
    text.contains('_')
        || settings.strip_request_headers.contains(name)
        || is_hop_by_hop(name)
        || connection_listed.contains(name)
        || name == header::HOST
        || name == header::EXPECT
        || (!trust_client && is_forwarding_claim(name))
        || (cached && UNKEYED_INPUTS.contains(&text))
}

/// Request headers that change what an origin answers without being part
/// of a cache key: method and URL overrides, host claims, conditionals.
const UNKEYED_INPUTS: [&str; 12] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
    "x-host",
    "x-forwarded-server",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "if-range",
];

/// The query string the upstream receives: the client's, less an API key
/// passed in it (unless the route forwards credentials).
fn upstream_query(query: Option<&str>, policy: Option<&RouteAuth>) -> Option<String> {
    let query = query?;
    match policy {
        Some(policy) if !policy.forward_credentials => {
            match policy.api_key.as_ref().and_then(|s| s.query.as_deref()) {
                Some(name) => {
                    Some(credentials::remove_query_param(query, name)).filter(|q| !q.is_empty())
                }
                None => Some(query.to_owned()),
            }
        }
        _ => Some(query.to_owned()),
    }
}

/// What the upstream learns about the caller.
struct IdentityHeaders<'a> {
    names: &'a IdentityHeaderNames,
    policy: Option<&'a RouteAuth>,
    identity: Option<&'a Identity>,
    /// The signing secret and the time to sign with (Unix seconds).
    signing: Option<(&'a [u8], u64)>,
}

/// Replace any identity headers with the verified ones, drop the
/// credential unless forwarded, and sign.
fn set_identity_headers(
    headers: &mut HeaderMap,
    method: &http::Method,
    upstream: &Uri,
    context: &IdentityHeaders<'_>,
) {
    identity::strip_client_copies(headers, context.names.prefix());
    if let Some(policy) = context.policy
        && !policy.forward_credentials
    {
        if let Some(source) = &policy.api_key {
            headers.remove(&source.header);
        }
        headers.remove(header::AUTHORIZATION);
    }
    let values = identity::values(context.identity);
    identity::set_headers(headers, context.names, &values);
    if let Some((secret, timestamp)) = context.signing {
        let path_and_query = upstream.path_and_query().map_or("/", |p| p.as_str());
        identity::sign(
            headers,
            context.names,
            secret,
            timestamp,
            method.as_str(),
            path_and_query,
            &values,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        let addresses = [
            "0.0.0.0",
            "1.2.3.4",
            "9.10.99.100",
            "127.0.0.1",
            "203.0.113.255",
            "255.255.255.255",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:192.0.2.1",
        ];
        for text in addresses {
            let ip: IpAddr = text.parse().unwrap();
            let mut written = String::new();
            push_ip(&mut written, ip);
            assert_eq!(written, ip.to_string(), "{text}");
        }
        for octet in 0..=255u8 {
            let ip = IpAddr::from([octet, 255 - octet, octet / 3, 7]);
            let mut written = String::new();
            push_ip(&mut written, ip);
            assert_eq!(written, ip.to_string());
        }
    }
}
