//! Configuration: the route table and settings, read from Workers KV.
//!
//! People write JSON ([`wire`], described by `docs/config.schema.json`);
//! [`Config::from_json`] checks it once and turns it into domain types the
//! request path can trust without re-checking: every reference (a route's
//! service, its issuers and introspectors, the CORS policy that applies to
//! it) is resolved to a shared handle, and names and keys the request path
//! needs are built here, not per request. [`source::ConfigSource`] keeps
//! the current config per isolate, refreshes it from KV, and never lets a
//! refused document replace the last good one.
//!
//! Nothing here may do I/O except through the platform seam, and nothing
//! after `from_json` may find the config invalid.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderName;

use crate::auth::{AuthSettings, RouteAuth};
use crate::cache::CachePolicy;
use crate::cors::{CorsPolicy, RouteCors};
use crate::ratelimit::{Policy, RouteRateLimit};
use crate::routing::{PathTransform, RouteSpec, RouteTable};
use crate::transform::RouteTransform;
use crate::upstream::Upstream;
use crate::upstream::retry::RetryPolicy;

mod aggregate;
pub mod audit;
mod auth;
mod balancing;
mod cache;
mod carry;
mod cors;
pub mod duration;
pub mod error;
mod rate_limit;
mod routes;
mod services;
pub mod source;
mod transform;
pub mod wire;

use error::Issues;
pub use error::{ConfigError, ConfigIssue};
pub use source::ConfigSource;

/// The document version this gateway reads.
pub const SUPPORTED_VERSION: u32 = 1;
/// The key of the configuration document in the `CONFIG` namespace.
pub const CONFIG_KEY: &str = "config";

const DEFAULT_REFRESH_SECONDS: u64 = 10;
const MAX_REFRESH_SECONDS: u64 = 3600;
const MAX_NAME_LEN: usize = 64;

/// Numbers every loaded config, so caches made under one config can tell
/// when another has replaced it (an address could be reused; this cannot).
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Unique per load in this isolate; never reused.
    pub generation: u64,
    pub settings: Settings,
    pub log: LogSettings,
    pub auth: AuthSettings,
    /// The budget of failed authentication attempts per client address;
    /// `None`: off.
    pub failed_auth: Option<Policy>,
    /// Name of the Worker secret guarding the operators' API; `None`: off.
    pub admin_token_secret: Option<String>,
    /// The config-wide CORS policy: the default of routes that do not set
    /// their own, and the policy of responses no route matched.
    pub cors: Option<Rc<CorsPolicy>>,
    /// By name.
    pub services: Vec<Rc<Service>>,
    /// In document order.
    pub routes: Vec<Rc<Route>>,
    pub table: RouteTable<Rc<Route>>,
    /// Whether any template reads the runtime's geo data (so the runtime
    /// is asked for it).
    pub needs_geo: bool,
}

/// Gateway-wide settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How long an isolate serves a config before checking KV again.
    pub refresh: Duration,
    /// Header carrying the request id, both ways.
    pub request_id_header: HeaderName,
    /// Whether client-sent `X-Forwarded-*` headers are kept and extended
    /// (only right when a trusted proxy sits in front of the gateway).
    pub trust_forwarded_headers: bool,
    /// Client headers that never reach a service.
    pub strip_request_headers: Vec<HeaderName>,
    /// Where the client's address comes from: a header a trusted proxy in
    /// front sets (and clients cannot), or `None` (unknown).
    pub client_ip_header: Option<HeaderName>,
    /// The default request body limit of routes, in bytes; `None`: the
    /// runtime's own limit only.
    pub max_body_bytes: Option<u64>,
    /// The most legs an aggregate route may list.
    pub max_aggregate_legs: usize,
}

/// Client headers stripped unless the config lists its own: each asks a
/// service to undo a decision the gateway made (the method, the path, the
/// client's address).
pub const DEFAULT_STRIP_REQUEST_HEADERS: [&str; 8] = [
    "x-http-method-override",
    "x-method-override",
    "x-http-method",
    "x-original-url",
    "x-rewrite-url",
    "true-client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
];

impl Default for Settings {
    fn default() -> Self {
        Settings {
            refresh: Duration::from_secs(DEFAULT_REFRESH_SECONDS),
            request_id_header: HeaderName::from_static("x-request-id"),
            trust_forwarded_headers: false,
            strip_request_headers: DEFAULT_STRIP_REQUEST_HEADERS
                .iter()
                .map(|name| HeaderName::from_static(name))
                .collect(),
            // Cloudflare sets it on every request and overwrites a client's.
            client_ip_header: Some(HeaderName::from_static("cf-connecting-ip")),
            max_body_bytes: None,
            max_aggregate_legs: crate::upstream::aggregate::MAX_LEGS,
        }
    }
}

/// How a route's GET requests may become WebSockets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebSocketPolicy {
    /// A credential may come as the subprotocol `portico.bearer.<...>`
    /// (for browsers, which cannot set headers on WebSocket requests).
    pub subprotocol_credentials: bool,
}

/// Which requests get an access-log line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogSettings {
    /// Share of successful requests logged, 0 to 1. Errors and refusals
    /// (every status from 400 on) are always logged.
    pub sample_rate: f64,
}

/// One success in ten: a log line is the dearest thing a request does in
/// the isolate (and each is billed by Workers Logs), errors are always
/// logged, and the metrics count every request anyway.
const DEFAULT_SAMPLE_RATE: f64 = 0.1;

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            sample_rate: DEFAULT_SAMPLE_RATE,
        }
    }
}

/// An upstream service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub upstream: Upstream,
    pub timeout: Duration,
}

/// A route, with every reference resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub id: String,
    /// Its place in the document (for messages, never for lookups).
    pub position: usize,
    /// What routing matches on.
    pub spec: RouteSpec,
    pub service: Rc<Service>,
    pub transform: PathTransform,
    pub timeout: Duration,
    /// `None`: a public route.
    pub auth: Option<RouteAuth>,
    pub rate_limit: Option<RouteRateLimit>,
    /// The route's own CORS policy, else the config-wide one; `None`: off.
    pub cors: Option<RouteCors>,
    /// How its GET responses are cached; `None`: not at all.
    pub cache: Option<Rc<CachePolicy>>,
    /// Forward `%2F` and `%5C` in paths (else they are refused with 400).
    pub keep_escaped_slashes: bool,
    /// The retry policy of a balanced service's requests on this route:
    /// the route's own, else the service's; `None`: the always-safe retry.
    pub retry: Option<Rc<RetryPolicy>>,
    /// What it changes in requests and responses; `None`: nothing.
    pub transformation: Option<Rc<RouteTransform>>,
    /// Whether (and how) its GET requests may become WebSockets; `None`:
    /// upgrades are refused.
    pub websocket: Option<WebSocketPolicy>,
    /// The largest request body it accepts, in bytes (its own, else the
    /// config-wide default); `None`: no limit of the gateway's own.
    pub max_body_bytes: Option<u64>,
}

impl Route {
    /// Whether anything of the route is cached: its responses, or the
    /// answers of its aggregate's legs (purging the route retires both).
    pub fn caches(&self) -> bool {
        self.cache.is_some()
            || matches!(&self.service.upstream, crate::upstream::Upstream::Aggregate(aggregate) if aggregate.caches_legs())
    }
}

impl Config {
    /// Parse and check a configuration document. Every issue found is
    /// reported, each with its JSON path.
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        let document: wire::ConfigDocument = wire::parse(text, "")?;
        Config::from_document(document)
    }

    /// Check a parsed document.
    fn from_document(document: wire::ConfigDocument) -> Result<Config, ConfigError> {
        if document.version != SUPPORTED_VERSION {
            return Err(ConfigError::single(
                "version",
                format!(
                    "version {} is not supported; this gateway reads version {SUPPORTED_VERSION}",
                    document.version
                ),
            ));
        }
        let mut issues = Issues::default();
        let settings = check_settings(&document.settings, &mut issues);
        let log = check_log(document.log.as_ref(), &mut issues);
        let auth = auth::check_auth(&document.auth, &mut issues);
        let failed_auth =
            rate_limit::check_failed_attempts(document.auth.failed_attempts.as_ref(), &mut issues);
        let admin_token_secret = check_admin(document.admin.as_ref(), &mut issues);
        let cors = document
            .cors
            .as_ref()
            .and_then(|policy| cors::check_policy(policy, "cors", &mut issues))
            .map(Rc::new);
        if let Some(defaults) = &document.cache {
            cache::check_defaults(defaults, &mut issues);
        }
        let retried = document
            .routes
            .iter()
            .filter(|route| route.retry.is_some())
            .filter_map(|route| route.service.as_deref())
            .collect();
        let services = services::check_services(&document.services, &retried, &mut issues);
        let context = routes::Context {
            services: &services,
            declared_services: &document.services,
            auth: &auth,
            cors: cors.as_ref(),
            cache: document.cache.as_ref(),
            settings: &settings,
        };
        let routes = routes::check_routes(&document.routes, &context, &mut issues);
        if !issues.is_empty() {
            return Err(issues.into_error());
        }
        let table = routes::build_table(&routes)?;
        let needs_geo = routes
            .iter()
            .filter_map(|route| route.transformation.as_deref())
            .any(transform::needs_geo);
        Ok(Config {
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
            settings,
            log,
            auth: auth.settings,
            failed_auth,
            admin_token_secret,
            cors,
            services: services.into_values().collect(),
            routes,
            table,
            needs_geo,
        })
    }

    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&Rc<Service>> {
        self.services.iter().find(|service| service.name == name)
    }
}

pub(crate) const NAME_RULE: &str = "must be 1 to 64 characters of letters, digits, '-', '_' or '.'";

/// Client headers with `_` in their names never reach a service (many
/// servers read `_` as `-`), so no header the gateway owns may have one.
pub(crate) const UNDERSCORE_RULE: &str = "must not contain '_': the gateway drops client headers with '_' in their names, since many servers read '_' as '-'";

pub(crate) fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_settings(document: &wire::SettingsDocument, issues: &mut Issues) -> Settings {
    let mut settings = Settings::default();
    if let Some(seconds) = document.config_refresh_seconds {
        if (1..=MAX_REFRESH_SECONDS).contains(&seconds) {
            settings.refresh = Duration::from_secs(seconds);
        } else {
            issues.push(
                "settings.config_refresh_seconds",
                format!("must be between 1 and {MAX_REFRESH_SECONDS}, got {seconds}"),
            );
        }
    }
    if let Some(name) = &document.request_id_header {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(header)
                if crate::http::is_hop_by_hop(&header)
                    || header == http::header::HOST
                    || header == crate::observe::trace::TRACEPARENT =>
            {
                issues.push(
                    "settings.request_id_header",
                    format!("'{name}' is a header the gateway manages itself"),
                )
            }
            Ok(header) if header.as_str().contains('_') => {
                issues.push("settings.request_id_header", UNDERSCORE_RULE)
            }
            Ok(header) => settings.request_id_header = header,
            Err(_) => issues.push(
                "settings.request_id_header",
                format!("'{name}' is not a valid header name"),
            ),
        }
    }
    if let Some(trust) = document.trust_forwarded_headers {
        settings.trust_forwarded_headers = trust;
    }
    if let Some(name) = &document.client_ip_header {
        settings.client_ip_header = match name.as_str() {
            "" => None,
            name => match HeaderName::from_bytes(name.as_bytes()) {
                Ok(header) => Some(header),
                Err(_) => {
                    issues.push(
                        "settings.client_ip_header",
                        format!("'{name}' is not a header name (give \"\" for none)"),
                    );
                    None
                }
            },
        };
    }
    if let Some(names) = &document.strip_request_headers {
        settings.strip_request_headers =
            check_stripped_headers(names, &settings.request_id_header, issues);
    }
    settings.max_body_bytes =
        carry::check_body_limit(document.max_body_bytes, "settings.max_body_bytes", issues);
    if let Some(most) = document.max_aggregate_legs {
        let cap = crate::upstream::aggregate::MAX_LEGS;
        match usize::try_from(most) {
            Ok(most) if (1..=cap).contains(&most) => settings.max_aggregate_legs = most,
            _ => issues.push(
                "settings.max_aggregate_legs",
                format!("must be between 1 and {cap}"),
            ),
        }
    }
    settings
}

/// The headers of `settings.strip_request_headers`: valid names, each
/// once, and none the gateway writes itself (stripping those would
/// silently do nothing).
fn check_stripped_headers(
    names: &[String],
    request_id_header: &HeaderName,
    issues: &mut Issues,
) -> Vec<HeaderName> {
    const SET_BY_THE_GATEWAY: [&str; 4] = [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "traceparent",
    ];
    let mut headers: Vec<HeaderName> = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let at = format!("settings.strip_request_headers[{index}]");
        match HeaderName::from_bytes(name.as_bytes()) {
            Err(_) => issues.push(at, format!("'{name}' is not a valid header name")),
            Ok(header) if headers.contains(&header) => {
                issues.push(at, format!("'{name}' is listed twice"))
            }
            Ok(header)
                if crate::http::is_hop_by_hop(&header)
                    || header == http::header::HOST
                    || header == *request_id_header
                    || SET_BY_THE_GATEWAY.contains(&header.as_str()) =>
            {
                issues.push(
                    at,
                    format!("'{name}' is a header the gateway manages itself"),
                )
            }
            Ok(header) => headers.push(header),
        }
    }
    headers
}

fn check_log(document: Option<&wire::LogDocument>, issues: &mut Issues) -> LogSettings {
    let mut log = LogSettings::default();
    if let Some(rate) = document.and_then(|d| d.sample_rate) {
        if (0.0..=1.0).contains(&rate) {
            log.sample_rate = rate;
        } else {
            issues.push(
                "log.sample_rate",
                format!("must be between 0 and 1, got {rate}"),
            );
        }
    }
    log
}

fn check_admin(document: Option<&wire::AdminDocument>, issues: &mut Issues) -> Option<String> {
    let admin = document?;
    if auth::is_secret_name(&admin.token_secret) {
        Some(admin.token_secret.clone())
    } else {
        issues.push(
            "admin.token_secret",
            format!(
                "'{}' is not a Worker secret name: give the name of the secret, not its value",
                admin.token_secret
            ),
        );
        None
    }
}
