//! The gateway: one request in, one response out, through the phases in
//! their fixed order (see [`crate::phases`]).
//!
//! [`Gateway`] holds what an isolate keeps between requests: the current
//! configuration, the authentication caches and what it knows about rate
//! limits. [`Gateway::handle`] never
//! fails and never panics: every error becomes a problem+json response
//! here, and nowhere else, and every request is logged once.

use std::net::IpAddr;

use http::request::Parts;

use crate::admin;
use crate::auth::AuthState;
use crate::body::Body;
use crate::config::{Config, ConfigSource, Settings};
use crate::error::GatewayError;
use crate::phases::forward::{ClientInfo, IdentityHeaders};
use crate::phases::log::RequestLog;
use crate::phases::rate_limit::{self, RateLimitHeaders};
use crate::phases::{authenticate, authorize, forward, request_id, respond, route, upstream};
use crate::platform::Platform;
use crate::ratelimit::local::LocalLimits;

/// A request as the runtime hands it over.
#[derive(Debug)]
pub struct Inbound<S> {
    pub request: http::Request<Body<S>>,
    /// The connecting client's address, if the runtime knows it.
    pub client_ip: Option<IpAddr>,
}

/// The gateway's per-isolate state.
#[derive(Default)]
pub struct Gateway {
    config: ConfigSource,
    auth: AuthState,
    limits: LocalLimits,
}

impl Gateway {
    pub fn new() -> Self {
        Self::default()
    }

    /// The isolate's authentication caches (for diagnostics and tests).
    pub fn auth_state(&self) -> &AuthState {
        &self.auth
    }

    /// Serve one request.
    pub async fn handle<P: Platform>(
        &self,
        platform: &P,
        inbound: Inbound<P::Stream>,
    ) -> http::Response<Body<P::Stream>> {
        let started = platform.now();
        let (parts, body) = inbound.request.into_parts();
        let config = self.config.current(platform).await;
        let default_settings;
        let settings: &Settings = match &config {
            Ok(config) => &config.settings,
            Err(_) => {
                default_settings = Settings::default();
                &default_settings
            }
        };
        let request_id = request_id::assign(&parts.headers, &settings.request_id_header, platform);
        let mut log = RequestLog::start(
            started,
            &request_id,
            &parts.method,
            route::request_host(&parts.uri, &parts.headers),
            parts.uri.path(),
        );

        let mut limit_headers = RateLimitHeaders::new();
        let outcome = match &config {
            Err(reason) => Err(GatewayError::NotConfigured(reason.clone())),
            Ok(config) => {
                let request = Proxied {
                    parts: &parts,
                    client_ip: inbound.client_ip,
                    request_id: &request_id,
                };
                self.proxy(
                    platform,
                    config,
                    request,
                    body,
                    &mut log,
                    &mut limit_headers,
                )
                .await
            }
        };

        let mut response = outcome.unwrap_or_else(|error| {
            log.failed(&error);
            error.into_response(&request_id)
        });
        // Every response on a rate-limited route says where the caller stands.
        for (name, value) in limit_headers {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        let response = respond::finish(
            response,
            &parts.method,
            &settings.request_id_header,
            &request_id,
        );
        log.finish(response.status().as_u16(), platform.now(), platform);
        response
    }

    /// The phases from "match route" to "upstream". Rate-limit headers for
    /// the response, whatever it turns out to be, go to `limit_headers`.
    async fn proxy<P: Platform>(
        &self,
        platform: &P,
        config: &std::rc::Rc<Config>,
        request: Proxied<'_>,
        body: Body<P::Stream>,
        log: &mut RequestLog,
        limit_headers: &mut RateLimitHeaders,
    ) -> Result<http::Response<Body<P::Stream>>, GatewayError> {
        let parts = request.parts;
        if admin::is_admin_request(config, parts.uri.path()) {
            log.routed("__portico", "admin");
            return admin::handle(
                platform,
                config,
                &parts.method,
                parts.uri.path(),
                &parts.headers,
                request.request_id,
            )
            .await;
        }
        let routed = route::match_route(config, &parts.method, &parts.uri, &parts.headers)?;
        log.routed(&routed.route.id, &routed.service.name);

        let policy = routed.route.auth.as_ref();
        let identity = match policy {
            Some(policy) => {
                self.auth.use_config(config);
                let identity = authenticate::authenticate(
                    platform,
                    &self.auth,
                    &config.auth,
                    policy,
                    &parts.headers,
                    parts.uri.query(),
                )
                .await?;
                log.identity(&identity);
                authorize::authorize(policy, &identity)?;
                Some(identity)
            }
            None => None,
        };
        if let Some(limits) = &routed.route.rate_limit {
            *limit_headers = rate_limit::check(
                platform,
                &self.limits,
                limits,
                &routed.route.id,
                identity.as_ref(),
                request.client_ip,
            )
            .await?;
        }
        let signing_secret = match &config.auth.signing_secret {
            Some(name) => Some(platform.secret(name).ok_or_else(|| {
                GatewayError::Internal(format!("the signing secret {name} is not set"))
            })?),
            None => None,
        };

        let client = ClientInfo::from_request(&parts.uri, &parts.headers, request.client_ip);
        let query = forward::upstream_query(parts.uri.query(), policy);
        let uri = forward::upstream_uri(&routed, query.as_deref())?;
        let mut headers = forward::upstream_headers(
            &parts.headers,
            &client,
            &config.settings,
            request.request_id,
        );
        forward::set_identity_headers(
            &mut headers,
            &parts.method,
            &uri,
            &IdentityHeaders {
                names: &config.auth.identity_headers,
                policy,
                identity: identity.as_ref(),
                signing: signing_secret
                    .as_deref()
                    .map(|secret| (secret.as_bytes(), platform.now().as_secs())),
            },
        );
        let mut outbound = http::Request::new(body);
        *outbound.method_mut() = parts.method.clone();
        *outbound.uri_mut() = uri;
        *outbound.headers_mut() = headers;
        let response = upstream::send(platform, outbound, routed.route.timeout).await?;
        log.upstream_status(response.status().as_u16());
        Ok(respond::from_upstream(response))
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
        let request_id = platform.new_request_id();
        let method = http::Method::from_bytes(method.as_bytes()).unwrap_or_default();
        let mut log = RequestLog::start(platform.now(), &request_id, &method, None, "");
        log.failed(&error);
        let header = Settings::default().request_id_header;
        let response = respond::finish(
            error.into_response(&request_id),
            &method,
            &header,
            &request_id,
        );
        log.finish(response.status().as_u16(), platform.now(), platform);
        response
    }
}

/// The parts of a request the proxy phases read.
struct Proxied<'a> {
    parts: &'a Parts,
    client_ip: Option<IpAddr>,
    request_id: &'a str,
}
