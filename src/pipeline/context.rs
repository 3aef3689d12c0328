//! The per-request context: what arrived, and what each phase learned
//! about it. Phases read and fill it; the response phases and the log read
//! it at the end, so whatever a phase decides is visible to all that come
//! after it without being passed around.
//!
//! It holds no platform handles and does no I/O.

use std::fmt;
use std::net::IpAddr;
use std::rc::Rc;

use http::{HeaderMap, HeaderValue, Method, Uri, header};

use crate::auth::Identity;
use crate::body::Body;
use crate::config::source::Unconfigured;
use crate::config::{Config, Route, Settings};
use crate::cors::{Preflight, Refusal};
use crate::error::GatewayError;
use crate::observe::events::{AttemptLog, Timings};
use crate::observe::trace::TraceContext;
use crate::phases::cache::CacheCtx;
use crate::phases::request_id;
use crate::platform::{Randomness, UnixMillis};
use crate::ratelimit::{HeaderFamilies, PolicyResult};
use crate::routing::{PathTransform, RequestPath, normalize_request_host};
use crate::upstream::geo::Location;

/// What the gateway knows about the client connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The connecting address, as the runtime reports it.
    pub ip: Option<IpAddr>,
    /// `http` or `https`, as the client connected.
    pub scheme: Option<String>,
    /// The authority the client asked for, port included.
    pub host: Option<String>,
    /// The data centre serving the request, when the runtime says (read
    /// only where something needs it: it is costly on Workers).
    pub colo: Option<String>,
    /// The client's country (ISO 3166-1 alpha-2) and continent, as the
    /// runtime's geo data says; read only when a config's templates use
    /// them.
    pub country: Option<String>,
    pub continent: Option<String>,
}

impl ClientInfo {
    /// Scheme and host from the request URL (or `Host` header).
    fn from_request(uri: &Uri, headers: &HeaderMap, ip: Option<IpAddr>) -> ClientInfo {
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
            colo: None,
            country: None,
            continent: None,
        }
    }
}

/// Reads where the caller is, only when something needs it: on Workers
/// that is the request's `cf` object, which the runtime builds on demand
/// at a cost most requests need not pay.
pub struct Locator(Box<dyn FnOnce() -> Location>);

impl Locator {
    pub fn new(read: impl FnOnce() -> Location + 'static) -> Locator {
        Locator(Box::new(read))
    }

    /// A location already known (tests, or a runtime that gives it freely).
    pub fn known(location: Location) -> Locator {
        Locator::new(move || location)
    }

    fn read(self) -> Location {
        (self.0)()
    }
}

impl fmt::Debug for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Locator")
    }
}

/// A request matched to a route.
#[derive(Clone, Debug)]
pub struct Routed {
    pub route: Rc<Route>,
    /// The normalised request path.
    pub path: RequestPath,
}

impl Routed {
    /// The path the upstream will see (before the service's base path).
    pub fn upstream_path(&self) -> String {
        self.route
            .transform
            .apply(&self.route.spec.path, &self.path)
    }

    /// The path a client would ask for to reach `upstream_path` (after the
    /// service's base path) through this route: the stripped prefix, as
    /// this request wrote it, put back. A rewrite cannot be reversed, so
    /// its paths stay as they are.
    pub fn client_path(&self, upstream_path: &str) -> String {
        match &self.route.transform {
            PathTransform::StripPrefix { segments } => {
                format!("{}{upstream_path}", self.path.prefix_before(*segments))
            }
            PathTransform::Keep | PathTransform::Template(_) => upstream_path.to_owned(),
        }
    }
}

/// What rate limiting decided, for the response headers and the log.
#[derive(Clone, Debug)]
pub struct LimitOutcome {
    pub results: Vec<PolicyResult>,
    pub families: HeaderFamilies,
    /// `allowed`, `leased`, `refused`, `known_refusal`, `failed_open`,
    /// `failed_closed`.
    pub decision: &'static str,
}

/// What CORS did with the request (for the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorsOutcome {
    /// A preflight the gateway answered and granted.
    PreflightGranted,
    /// A preflight the gateway answered without granting it.
    PreflightRefused(Refusal),
    /// A preflight sent on to the upstream.
    PreflightPassed,
    /// An actual request from an admitted origin.
    Allowed,
    /// An actual request from an origin the policy does not admit.
    Refused,
}

impl CorsOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CorsOutcome::PreflightGranted => "preflight",
            CorsOutcome::PreflightRefused(Refusal::Origin) => "preflight_refused_origin",
            CorsOutcome::PreflightRefused(Refusal::Method) => "preflight_refused_method",
            CorsOutcome::PreflightRefused(Refusal::Headers) => "preflight_refused_headers",
            CorsOutcome::PreflightPassed => "preflight_passed",
            CorsOutcome::Allowed => "allowed",
            CorsOutcome::Refused => "refused",
        }
    }
}

/// What the upstream phase did.
#[derive(Clone, Debug, Default)]
pub struct UpstreamRecord {
    /// The target that gave the final answer (`host:port`).
    pub target: Option<String>,
    pub status: Option<u16>,
    pub attempts: Vec<AttemptLog>,
}

/// An error the gateway answered with, as the log records it.
#[derive(Clone, Debug)]
pub struct Failure {
    pub problem: &'static str,
    pub detail: String,
}

/// One request on its way through the pipeline.
pub struct RequestCtx<S> {
    pub started: UnixMillis,
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    /// The request body until the upstream phase takes it.
    pub body: Body<S>,
    /// Whatever the platform attached to the request (the runtime's own
    /// request object, say); handed on with the upstream request so the
    /// platform can build that from the original. The core never reads it.
    pub extensions: http::Extensions,
    pub client: ClientInfo,
    /// Reads the caller's location the first time it is asked for.
    pub locator: Option<Locator>,
    location: Option<Location>,
    /// The normalised host the client asked for.
    pub host: Option<String>,
    pub request_id: String,
    /// The request id as the upstream and the client receive it, made
    /// once (`None` only if an id could not be a header value).
    pub request_id_value: Option<HeaderValue>,
    pub trace: TraceContext,
    /// `traceparent` as the upstream and the client receive it, made once.
    pub traceparent: HeaderValue,
    /// The config serving this request, or why there is none.
    pub config: Result<Rc<Config>, Unconfigured>,
    pub route: Option<Routed>,
    /// Set when the request is a CORS preflight for a route with a policy.
    pub preflight: Option<Preflight>,
    /// Set when the request is a WebSocket upgrade its route takes.
    pub websocket: bool,
    /// The route's body limit for a body of undeclared length (chunked):
    /// counted as it streams upstream.
    pub streamed_body_limit: Option<u64>,
    pub identity: Option<Identity>,
    pub rate_limit: Option<LimitOutcome>,
    pub cors: Option<CorsOutcome>,
    /// What the response cache knows and did, on a cached route.
    pub cache: Option<CacheCtx<S>>,
    pub upstream: UpstreamRecord,
    pub timings: Timings,
    pub failure: Option<Failure>,
}

impl<S> RequestCtx<S> {
    /// The context of a request that just arrived: its id and trace are
    /// settled here, before any phase runs, so every response and log line
    /// carries them.
    pub fn new(
        request: http::Request<Body<S>>,
        client_ip: Option<IpAddr>,
        config: Result<Rc<Config>, Unconfigured>,
        started: UnixMillis,
        random: &impl Randomness,
    ) -> RequestCtx<S> {
        let (parts, body) = request.into_parts();
        let default_settings;
        let settings: &Settings = match &config {
            Ok(config) => &config.settings,
            Err(_) => {
                default_settings = Settings::default();
                &default_settings
            }
        };
        let request_id = request_id::assign(&parts.headers, &settings.request_id_header, random);
        let trace = TraceContext::from_headers(&parts.headers, random);
        let host = match parts.uri.authority() {
            Some(authority) => normalize_request_host(authority.as_str()),
            None => parts
                .headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .and_then(normalize_request_host),
        };
        // The runtime's own word on the connection wins; else the header a
        // trusted proxy in front sets, when the config names one.
        let client_ip = client_ip.or_else(|| {
            settings
                .client_ip_header
                .as_ref()
                .and_then(|name| parts.headers.get(name))
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<IpAddr>().ok())
        });
        let client = ClientInfo::from_request(&parts.uri, &parts.headers, client_ip);
        RequestCtx {
            started,
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
            extensions: parts.extensions,
            client,
            locator: None,
            location: None,
            host,
            request_id_value: HeaderValue::from_str(&request_id).ok(),
            request_id,
            traceparent: trace.traceparent(),
            trace,
            config,
            route: None,
            preflight: None,
            websocket: false,
            streamed_body_limit: None,
            identity: None,
            rate_limit: None,
            cors: None,
            cache: None,
            upstream: UpstreamRecord::default(),
            timings: Timings::default(),
            failure: None,
        }
    }

    /// The request id header of the config in use (or the default).
    pub fn request_id_header(&self) -> http::HeaderName {
        match &self.config {
            Ok(config) => config.settings.request_id_header.clone(),
            Err(_) => Settings::default().request_id_header,
        }
    }

    /// Record `error` for the log and turn it into the problem response the
    /// client receives.
    pub fn fail(&mut self, error: GatewayError) -> http::Response<Body<S>> {
        self.failure = Some(Failure {
            problem: error.problem_type().slug,
            detail: error.to_string(),
        });
        error.into_response(&self.request_id)
    }

    /// Where the caller is, read once on first use (`None` when the
    /// runtime cannot say).
    pub fn client_location(&mut self) -> Option<&Location> {
        if self.location.is_none()
            && let Some(locator) = self.locator.take()
        {
            self.location = Some(locator.read());
        }
        self.location.as_ref()
    }

    /// Milliseconds since the request arrived.
    pub fn elapsed_ms(&self, now: UnixMillis) -> u64 {
        now.millis_since(self.started)
    }
}
