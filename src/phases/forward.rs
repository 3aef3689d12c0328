//! Phase "forward": shape the request the upstream service receives.
//!
//! - URL: the service's origin and base path, the route's path transform,
//!   and the client's query string exactly as sent.
//! - Hop-by-hop headers (RFC 9110 section 7.6.1), and any header the
//!   `Connection` header names, are removed; so is `Host`, which the
//!   runtime sets from the upstream URL.
//! - `X-Forwarded-For`, `-Proto` and `-Host` describe the real client. The
//!   gateway is the edge, so by default client-sent copies of these (and
//!   `Forwarded`, `X-Real-IP`, any other `X-Forwarded-*`) are dropped, not
//!   believed; with `trust_forwarded_headers` they are kept and extended.
//! - The request id header carries the id chosen for this request.
//! - Client-sent copies of the identity headers are always dropped; the
//!   verified identity, and its signature when a signing secret is set,
//!   are written (see [`crate::auth::identity`]). Unless the route says
//!   otherwise, the credential itself (API key header or query parameter,
//!   `Authorization`) does not go upstream.
//!
//! The body is never read here.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Uri};

use crate::auth::identity::IdentityHeaderNames;
use crate::auth::{Identity, RouteAuth, credentials, identity};
use crate::config::Settings;
use crate::error::GatewayError;
use crate::phases::route::Routed;

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Whether `name` is a hop-by-hop header that no proxy may forward.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Remove hop-by-hop headers and every header `Connection` lists.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// What the gateway knows about the client connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The connecting address, as the runtime reports it.
    pub ip: Option<IpAddr>,
    /// `http` or `https`, as the client connected.
    pub scheme: Option<String>,
    /// The authority the client asked for, port included.
    pub host: Option<String>,
}

impl ClientInfo {
    /// Scheme and host from the request URL (or `Host` header).
    pub fn from_request(uri: &Uri, headers: &HeaderMap, ip: Option<IpAddr>) -> ClientInfo {
        let host = uri.authority().map(|a| a.as_str().to_owned()).or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        ClientInfo {
            ip,
            scheme: uri.scheme_str().map(str::to_owned),
            host,
        }
    }
}

/// Set the `X-Forwarded-*` headers for the upstream.
pub fn set_forwarding_headers(headers: &mut HeaderMap, client: &ClientInfo, trust_client: bool) {
    let previous_for: Vec<String> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    if !trust_client {
        let spoofable: Vec<HeaderName> = headers
            .keys()
            .filter(|name| name.as_str().starts_with("x-forwarded-"))
            .cloned()
            .collect();
        for name in spoofable {
            headers.remove(name);
        }
        headers.remove(header::FORWARDED);
        headers.remove(X_REAL_IP);
    }

    let mut chain = if trust_client {
        previous_for
    } else {
        Vec::new()
    };
    if let Some(ip) = client.ip {
        chain.push(ip.to_string());
    }
    headers.remove(&X_FORWARDED_FOR);
    if !chain.is_empty()
        && let Ok(value) = HeaderValue::from_str(&chain.join(", "))
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

fn set_unless_kept(headers: &mut HeaderMap, name: HeaderName, value: Option<&str>, keep: bool) {
    if keep && headers.contains_key(&name) {
        return;
    }
    match value.and_then(|v| HeaderValue::from_str(v).ok()) {
        Some(value) => {
            headers.insert(name, value);
        }
        None => {
            headers.remove(name);
        }
    }
}

/// The upstream URL for a routed request.
pub fn upstream_uri(routed: &Routed<'_>, query: Option<&str>) -> Result<Uri, GatewayError> {
    let origin = &routed.service.origin;
    let mut path = String::with_capacity(origin.base_path.len() + routed.path.as_str().len() + 1);
    path.push_str(&origin.base_path);
    path.push_str(&routed.upstream_path());
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
pub fn upstream_headers(
    client_headers: &HeaderMap,
    client: &ClientInfo,
    settings: &Settings,
    request_id: &str,
) -> HeaderMap {
    let mut headers = client_headers.clone();
    strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    set_forwarding_headers(&mut headers, client, settings.trust_forwarded_headers);
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(&settings.request_id_header, value);
    }
    headers
}

/// The query string the upstream receives: the client's, less an API key
/// passed in it (unless the route forwards credentials).
pub fn upstream_query(query: Option<&str>, policy: Option<&RouteAuth>) -> Option<String> {
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
pub struct IdentityHeaders<'a> {
    pub names: &'a IdentityHeaderNames,
    pub policy: Option<&'a RouteAuth>,
    pub identity: Option<&'a Identity>,
    /// The signing secret and the time to sign with (Unix seconds).
    pub signing: Option<(&'a [u8], u64)>,
}

/// Replace any identity headers with the verified ones, drop the
/// credential unless forwarded, and sign.
pub fn set_identity_headers(
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
