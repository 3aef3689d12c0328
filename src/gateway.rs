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
use crate::pipeline::{self, Isolate, Locator, RequestCtx};
use crate::platform::Platform;
use crate::upstream::geo::Location;

/// A request as the runtime hands it over.
pub struct Inbound<S> {
    pub request: http::Request<Body<S>>,
    /// The connecting client's address, if the runtime knows it.
    pub client_ip: Option<IpAddr>,
    /// The data centre serving it, if the runtime says (and it was asked).
    pub colo: Option<String>,
    /// Where the caller is, read only if a balanced service prefers
    /// nearby targets or the config's templates use it.
    pub locator: Option<Locator>,
}

impl<S> Inbound<S> {
    pub fn new(request: http::Request<Body<S>>, client_ip: Option<IpAddr>) -> Inbound<S> {
        Inbound {
            request,
            client_ip,
            colo: None,
            locator: None,
        }
    }

    /// The same request, from a caller at `location`.
    pub fn located(mut self, location: Location) -> Inbound<S> {
        self.locator = Some(Locator::known(location));
        self
    }

    /// The same request, with a reader of where the caller is (called at
    /// most once, and only if something needs it).
    pub fn located_by(mut self, read: impl FnOnce() -> Location + 'static) -> Inbound<S> {
        self.locator = Some(Locator::new(read));
        self
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
        ctx.locator = inbound.locator;
        if ctx.config.as_ref().is_ok_and(|config| config.needs_geo)
            && let Some(location) = ctx.client_location().cloned()
        {
            ctx.client.colo = ctx.client.colo.take().or(location.colo);
            ctx.client.country = location.country;
            ctx.client.continent = location.continent;
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
