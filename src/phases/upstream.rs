//! Phase "upstream": choose the target for the route's service, shape the
//! request it receives ([`super::forward`]) and call it
//! ([`crate::upstream`]).
//!
//! Redirects come back to the client, never followed. Any response the
//! service gives, 5xx included, is the service's answer and passes
//! through, less its hop-by-hop headers; only the absence of a response
//! becomes a gateway error: 504 on timeout, 502 when the service cannot be
//! reached. Neither reveals the service's address to the client, and
//! neither does a redirect: an absolute `Location` on the service's own
//! origin is rewritten to the gateway's, as nginx's `proxy_redirect
//! default` does ([`client_location`]).

use http::header::{self, HeaderValue};
use http::uri::{Authority, Scheme, Uri};

use crate::body::Body;
use crate::config::Config;
use crate::error::GatewayError;
use crate::http::strip_hop_by_hop;
use crate::phases::{aggregate, forward};
use crate::pipeline::context::{ClientInfo, RequestCtx, Routed};
use crate::platform::Platform;
use crate::upstream::{Origin, Upstream, single};

/// Send the request upstream; the upstream's response.
pub async fn run<P: Platform>(
    platform: &P,
    config: &Config,
    ctx: &mut RequestCtx<P::Stream>,
) -> Result<http::Response<Body<P::Stream>>, GatewayError> {
    let route = match &ctx.route {
        Some(routed) => std::rc::Rc::clone(&routed.route),
        None => return Err(GatewayError::Internal("no route to send to".to_owned())),
    };
    if let Upstream::Aggregate(aggregate) = &route.service.upstream {
        return aggregate::run(platform, config, ctx, aggregate).await;
    }
    let origin = route.service.upstream.choose()?;
    let request = forward::build(platform, config, ctx, origin)?;
    let started = platform.now();
    let sent = single::send(platform, request, route.timeout).await;
    ctx.timings.upstream = Some(platform.now().millis_since(started));
    ctx.upstream.target = Some(origin.authority.as_str().to_owned());
    ctx.upstream.attempts = sent.attempts;
    let mut response = sent.response?;
    ctx.upstream.status = Some(response.status().as_u16());
    strip_hop_by_hop(response.headers_mut());
    if let Some(routed) = &ctx.route {
        rewrite_location(response.headers_mut(), origin, routed, &ctx.client);
    }
    Ok(response)
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
        let origin = route.service.upstream.choose().unwrap().clone();
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
