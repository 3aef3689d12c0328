//! The gateway: what one isolate keeps between requests, and the entry
//! point that runs a request through the pipeline ([`crate::pipeline`]).
//!
//! [`Gateway::handle`] never fails and never panics: every error becomes a
//! problem+json response in the pipeline, and every request is logged once.
//! A [`Gateway`] is a cheap handle: clones share one isolate state, so
//! background work that outlives a response can hold on to it.

use std::net::IpAddr;
use std::rc::Rc;

use crate::auth::AuthState;
use crate::body::Body;
use crate::error::GatewayError;
use crate::phases::{log, respond};
use crate::pipeline::{self, Isolate, RequestCtx};
use crate::platform::Platform;

/// A request as the runtime hands it over.
pub struct Inbound<S> {
    pub request: http::Request<Body<S>>,
    /// The connecting client's address, if the runtime knows it.
    pub client_ip: Option<IpAddr>,
    /// The data centre serving it, if the runtime says (and it was asked).
    pub colo: Option<String>,
    /// Reads the runtime's geo data for the request. Reading it can cost
    /// the runtime work, so the gateway calls it only when the config in
    /// use has templates that need it.
    pub geo: Option<Box<dyn FnOnce() -> Geo>>,
}

/// Where the runtime says a request came in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Geo {
    pub colo: Option<String>,
    pub country: Option<String>,
    pub continent: Option<String>,
}

impl<S> Inbound<S> {
    pub fn new(request: http::Request<Body<S>>, client_ip: Option<IpAddr>) -> Inbound<S> {
        Inbound {
            request,
            client_ip,
            colo: None,
            geo: None,
        }
    }

    /// The request, with a reader of the runtime's geo data.
    pub fn with_geo(mut self, read: impl FnOnce() -> Geo + 'static) -> Inbound<S> {
        self.geo = Some(Box::new(read));
        self
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Inbound<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("request", &self.request)
            .field("client_ip", &self.client_ip)
            .field("colo", &self.colo)
            .field("geo", &self.geo.as_ref().map(|_| "(reader)"))
            .finish()
    }
}

/// The gateway of one isolate.
#[derive(Clone, Default)]
pub struct Gateway {
    isolate: Rc<Isolate>,
}

impl Gateway {
    pub fn new() -> Self {
        Self::default()
    }

    /// The isolate's authentication caches (for diagnostics and tests).
    pub fn auth_state(&self) -> &AuthState {
        &self.isolate.auth
    }

    /// Serve one request.
    pub async fn handle<P: Platform>(
        &self,
        platform: &P,
        inbound: Inbound<P::Stream>,
    ) -> http::Response<Body<P::Stream>> {
        let started = platform.now();
        let config = self.isolate.config.current(platform).await;
        let mut ctx = RequestCtx::new(
            inbound.request,
            inbound.client_ip,
            config,
            started,
            platform,
        );
        ctx.client.colo = inbound.colo;
        let wants_geo = ctx.config.as_ref().is_ok_and(|config| config.needs_geo);
        if wants_geo && let Some(read) = inbound.geo {
            let geo = read();
            ctx.client.colo = ctx.client.colo.take().or(geo.colo);
            ctx.client.country = geo.country;
            ctx.client.continent = geo.continent;
        }
        pipeline::serve(&self.isolate, platform, &mut ctx).await
    }

    /// Answer a request the runtime could not turn into an [`Inbound`]
    /// (for example a URL the core cannot represent): a problem response,
    /// logged like any other request.
    pub fn refuse<P: Platform>(
        &self,
        platform: &P,
        method: &str,
        error: GatewayError,
    ) -> http::Response<Body<P::Stream>> {
        let mut request = http::Request::new(Body::Empty);
        *request.method_mut() = http::Method::from_bytes(method.as_bytes()).unwrap_or_default();
        // No config is consulted for a request that could not be read: the
        // default settings (request id header, log everything) apply.
        let mut ctx = RequestCtx::new(
            request,
            None,
            Err(crate::config::source::Unconfigured::Unreadable),
            platform.now(),
            platform,
        );
        let response = ctx.fail(error);
        let response = respond::finish(&ctx, response);
        log::finish(platform, &ctx, &response);
        response
    }
}
