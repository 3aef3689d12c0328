//! Phase "match route": find the route for the request's method, host and
//! path, and through it the service.
//!
//! Fails with the client error that ends the request: 400 for a path that
//! cannot be normalised, 404 when no route matches, 405 (with the accepted
//! methods) when routes match the path but not the method.
//!
//! A CORS preflight is matched by the method it asks about, not by
//! `OPTIONS`, so a GET-only route still answers its preflight: if that
//! route (or, when the method is not accepted, the route at that path) has
//! a CORS policy, the request is marked as a preflight for the CORS phase.
//! Otherwise it is an ordinary `OPTIONS` request.

use std::rc::Rc;

use http::{HeaderMap, Method, Uri};

use crate::config::{Config, Route};
use crate::cors;
use crate::error::GatewayError;
use crate::pipeline::context::{RequestCtx, Routed};
use crate::pipeline::flow::Flow;
use crate::routing::{Lookup, RequestPath, normalize_request_host};

/// Match the request; never answers early, only fails.
pub fn run<S>(config: &Config, ctx: &mut RequestCtx<S>) -> Result<Flow<S>, GatewayError> {
    let path = RequestPath::parse(ctx.uri.path())?;
    let host = ctx.host.as_deref();
    if let Some(preflight) = cors::preflight(&ctx.method, &ctx.headers)
        && let Some(route) = preflight_route(config, host, &path, &preflight.method)
    {
        refuse_escaped_separators(&route, &path)?;
        ctx.preflight = Some(preflight);
        ctx.route = Some(Routed { route, path });
        return Ok(Flow::Continue);
    }
    let route = lookup(config, &ctx.method, host, &path)?;
    refuse_escaped_separators(&route, &path)?;
    ctx.route = Some(Routed { route, path });
    Ok(Flow::Continue)
}

/// An encoded `/` or `\` is one segment to the gateway but two to a
/// service that decodes first (some proxies, IIS, some frameworks): a
/// request could escape the route's prefix or rewrite there. Refused
/// unless the route keeps them.
fn refuse_escaped_separators(route: &Route, path: &RequestPath) -> Result<(), GatewayError> {
    if !route.keep_escaped_slashes && path.has_escaped_separator() {
        return Err(GatewayError::BadPath(
            crate::routing::PathError::EscapedSeparator,
        ));
    }
    Ok(())
}

/// Match `method uri` against `config` (for tools such as
/// `portico routes explain`, which have no request context).
pub fn find(
    config: &Config,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Routed, GatewayError> {
    let path = RequestPath::parse(uri.path())?;
    let host = match uri.authority() {
        Some(authority) => normalize_request_host(authority.as_str()),
        None => headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .and_then(normalize_request_host),
    };
    let route = lookup(config, method, host.as_deref(), &path)?;
    refuse_escaped_separators(&route, &path)?;
    Ok(Routed { route, path })
}

fn lookup(
    config: &Config,
    method: &Method,
    host: Option<&str>,
    path: &RequestPath,
) -> Result<Rc<Route>, GatewayError> {
    match config.table.find(method, host, path) {
        Lookup::Found(route) => Ok(Rc::clone(route)),
        Lookup::MethodNotAllowed { allow } => Err(GatewayError::MethodNotAllowed { allow }),
        Lookup::NotFound => Err(GatewayError::RouteNotFound),
    }
}

/// The route whose CORS policy governs a preflight asking for `method`.
fn preflight_route(
    config: &Config,
    host: Option<&str>,
    path: &RequestPath,
    method: &Method,
) -> Option<Rc<Route>> {
    let route = match config.table.find(method, host, path) {
        Lookup::Found(route) => route,
        // The path is routed, but not for that method: the policy of the
        // route there still answers (and will not grant the method).
        Lookup::MethodNotAllowed { allow } => match config.table.find(allow.first()?, host, path) {
            Lookup::Found(route) => route,
            _ => return None,
        },
        Lookup::NotFound => return None,
    };
    route.cors.is_some().then(|| Rc::clone(route))
}
