//! Phase "match route": find the route for the request's method, host and
//! path, and the service behind it.
//!
//! Returns the match, or the client error that ends the request: 400 for a
//! path that cannot be normalised, 404 when no route matches, 405 (with the
//! accepted methods) when routes match the path but not the method.

use http::{HeaderMap, Method, Uri, header};

use crate::config::{Config, Route, Service};
use crate::error::GatewayError;
use crate::routing::{Lookup, RequestPath, RouteSpec, normalize_request_host};

/// A request matched to a route.
#[derive(Debug)]
pub struct Routed<'c> {
    pub index: usize,
    pub route: &'c Route,
    pub spec: &'c RouteSpec,
    pub service: &'c Service,
    /// The normalised request path.
    pub path: RequestPath,
}

impl Routed<'_> {
    /// The path the upstream will see (before the service's base path).
    pub fn upstream_path(&self) -> String {
        self.route.transform.apply(&self.spec.path, &self.path)
    }
}

/// The host the client asked for: the URL's authority, else the Host header.
pub fn request_host(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    match uri.authority() {
        Some(authority) => normalize_request_host(authority.as_str()),
        None => headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .and_then(normalize_request_host),
    }
}

/// Match a request against the config.
pub fn match_route<'c>(
    config: &'c Config,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Routed<'c>, GatewayError> {
    let path = RequestPath::parse(uri.path())?;
    let host = request_host(uri, headers);
    match config.table.find(method, host.as_deref(), &path) {
        Lookup::Found(index) => {
            let route = &config.routes[index];
            Ok(Routed {
                index,
                route,
                spec: config.spec(index),
                service: &config.services[route.service],
                path,
            })
        }
        Lookup::MethodNotAllowed { allow } => Err(GatewayError::MethodNotAllowed { allow }),
        Lookup::NotFound => Err(GatewayError::RouteNotFound),
    }
}
