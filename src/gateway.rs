//! The gateway: one request in, one response out, through the phases in
//! their fixed order (see [`crate::phases`]).
//!
//! [`Gateway`] holds what an isolate keeps between requests (today, the
//! current configuration). [`Gateway::handle`] never fails and never
//! panics: every error becomes a problem+json response here, and nowhere
//! else, and every request is logged once.

use std::net::IpAddr;

use crate::body::Body;
use crate::config::{ConfigSource, Settings};
use crate::error::GatewayError;
use crate::phases::forward::ClientInfo;
use crate::phases::log::RequestLog;
use crate::phases::{forward, request_id, respond, route, upstream};
use crate::platform::Platform;

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
}

impl Gateway {
    pub fn new() -> Self {
        Self::default()
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

        let outcome = match &config {
            Err(reason) => Err(GatewayError::NotConfigured(reason.clone())),
            Ok(config) => {
                async {
                    let routed =
                        route::match_route(config, &parts.method, &parts.uri, &parts.headers)?;
                    log.routed(&routed.route.id, &routed.service.name);
                    let client =
                        ClientInfo::from_request(&parts.uri, &parts.headers, inbound.client_ip);
                    let mut request = http::Request::new(body);
                    *request.method_mut() = parts.method.clone();
                    *request.uri_mut() = forward::upstream_uri(&routed, parts.uri.query())?;
                    *request.headers_mut() =
                        forward::upstream_headers(&parts.headers, &client, settings, &request_id);
                    let response = upstream::send(platform, request, routed.route.timeout).await?;
                    log.upstream_status(response.status().as_u16());
                    Ok(respond::from_upstream(response))
                }
                .await
            }
        };

        let response = outcome.unwrap_or_else(|error| {
            log.failed(&error);
            error.into_response(&request_id)
        });
        let response = respond::finish(
            response,
            &parts.method,
            &settings.request_id_header,
            &request_id,
        );
        log.finish(response.status().as_u16(), platform.now(), platform);
        response
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
