//! Configuration: the route table and settings, read from Workers KV.
//!
//! People write JSON ([`wire`], described by `docs/config.schema.json`);
//! [`Config::from_json`] checks it once and turns it into domain types the
//! request path can trust without re-checking. [`source::ConfigSource`]
//! keeps the current config per isolate, refreshes it from KV, and never
//! lets a refused document replace the last good one.
//!
//! Nothing here may do I/O except through the platform seam, and nothing
//! after `from_json` may find the config invalid.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

use http::HeaderName;
use http::uri::{Authority, Scheme, Uri};

use crate::auth::{AuthSettings, RouteAuth};
use crate::phases::forward::is_hop_by_hop;
use crate::ratelimit::RouteRateLimit;
use crate::routing::path::normalize_escapes;
use crate::routing::{
    HostPattern, MethodSet, PathPattern, PathTransform, RouteConflict, RouteSpec, RouteTable,
};

mod auth;
pub mod duration;
pub mod error;
mod rate_limit;
pub mod source;
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
const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const MAX_TIMEOUT_MS: u64 = 600_000;
const MAX_NAME_LEN: usize = 64;

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    pub settings: Settings,
    pub auth: AuthSettings,
    /// Name of the Worker secret guarding the operators' API; `None`: off.
    pub admin_token_secret: Option<String>,
    pub services: Vec<Service>,
    /// In document order; `table` indexes the same routes.
    pub routes: Vec<Route>,
    pub table: RouteTable,
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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            refresh: Duration::from_secs(DEFAULT_REFRESH_SECONDS),
            request_id_header: HeaderName::from_static("x-request-id"),
            trust_forwarded_headers: false,
        }
    }
}

/// An upstream service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub origin: Origin,
    pub timeout: Duration,
}

/// Where a service lives: scheme, authority and an optional base path that
/// is put in front of every upstream path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub scheme: Scheme,
    pub authority: Authority,
    /// Empty, or a path without a trailing `/` (`/v1`).
    pub base_path: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}

/// A route, beyond what routing needs (see [`RouteTable::specs`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub id: String,
    /// Index into [`Config::services`].
    pub service: usize,
    pub transform: PathTransform,
    pub timeout: Duration,
    /// `None`: a public route.
    pub auth: Option<RouteAuth>,
    pub rate_limit: Option<RouteRateLimit>,
}

impl Config {
    /// Parse and check a configuration document. Every issue found is
    /// reported, each with its JSON path.
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        let document: wire::ConfigDocument = {
            let mut deserializer = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
                let path = err.path().to_string();
                let path = if path == "." {
                    "(document)".to_owned()
                } else {
                    path
                };
                ConfigError::single(path, err.into_inner().to_string())
            })?
        };
        Config::from_document(document)
    }

    /// Check a parsed document.
    pub fn from_document(document: wire::ConfigDocument) -> Result<Config, ConfigError> {
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
        let (auth, auth_names) = auth::check_auth(&document.auth, &mut issues);
        let admin_token_secret = document.admin.as_ref().and_then(|admin| {
            if auth::is_secret_name(&admin.token_secret) {
                Some(admin.token_secret.clone())
            } else {
                issues.push(
                    "admin.token_secret",
                    format!("'{}' is not a Worker secret name: give the name of the secret, not its value", admin.token_secret),
                );
                None
            }
        });
        let (services, service_index) = check_services(&document.services, &mut issues);

        let mut routes = Vec::with_capacity(document.routes.len());
        let mut specs = Vec::with_capacity(document.routes.len());
        let mut ids = HashSet::new();
        for (index, route) in document.routes.iter().enumerate() {
            let at = format!("routes[{index}]");
            if !is_name(&route.id) {
                issues.push(format!("{at}.id"), NAME_RULE);
            } else if !ids.insert(route.id.as_str()) {
                issues.push(
                    format!("{at}.id"),
                    format!("'{}' is already the id of an earlier route", route.id),
                );
            }
            if let Some((spec, checked)) = check_route(
                route,
                &at,
                &services,
                &service_index,
                &document.services,
                &auth_names,
                &mut issues,
            ) {
                specs.push(spec);
                routes.push(checked);
            }
        }
        if !issues.is_empty() {
            return Err(issues.into_error());
        }

        let table = RouteTable::build(specs).map_err(|conflicts| {
            let mut issues = Issues::default();
            for RouteConflict {
                first,
                second,
                host,
            } in conflicts
            {
                let host = host.map_or_else(|| "no host condition".to_owned(), |h| format!("host '{h}'"));
                issues.push(
                    format!("routes[{second}]"),
                    format!(
                        "ties with route '{}' (routes[{first}]): same {host}, same path pattern and overlapping methods; make one more specific or merge them",
                        routes[first].id
                    ),
                );
            }
            issues.into_error()
        })?;
        Ok(Config {
            settings,
            auth,
            admin_token_secret,
            services,
            routes,
            table,
        })
    }

    /// The routing view of route `index`.
    pub fn spec(&self, index: usize) -> &RouteSpec {
        &self.table.specs()[index]
    }
}

pub(crate) const NAME_RULE: &str = "must be 1 to 64 characters of letters, digits, '-', '_' or '.'";

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
            Ok(header) if is_hop_by_hop(&header) || header == http::header::HOST => issues.push(
                "settings.request_id_header",
                format!("'{name}' is a header the gateway manages itself"),
            ),
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
    settings
}

fn check_timeout(
    value: Option<u64>,
    default: Duration,
    at: String,
    issues: &mut Issues,
) -> Duration {
    match value {
        None => default,
        Some(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => Duration::from_millis(ms),
        Some(ms) => {
            issues.push(
                at,
                format!("must be between 1 and {MAX_TIMEOUT_MS} milliseconds, got {ms}"),
            );
            default
        }
    }
}

fn check_services(
    document: &BTreeMap<String, wire::ServiceDocument>,
    issues: &mut Issues,
) -> (Vec<Service>, BTreeMap<String, usize>) {
    let mut services = Vec::new();
    let mut index = BTreeMap::new();
    for (name, service) in document {
        let at = format!("services.{name}");
        if !is_name(name) {
            issues.push(at.clone(), format!("the service name {NAME_RULE}"));
            continue;
        }
        let timeout = check_timeout(
            service.timeout_ms,
            Duration::from_millis(DEFAULT_TIMEOUT_MS),
            format!("{at}.timeout_ms"),
            issues,
        );
        match parse_origin(&service.url) {
            Ok(origin) => {
                index.insert(name.clone(), services.len());
                services.push(Service {
                    name: name.clone(),
                    origin,
                    timeout,
                });
            }
            Err(reason) => issues.push(format!("{at}.url"), reason),
        }
    }
    (services, index)
}

fn parse_origin(url: &str) -> Result<Origin, String> {
    let uri: Uri = url
        .parse()
        .map_err(|_| format!("'{url}' is not an absolute http:// or https:// URL"))?;
    let scheme = match uri.scheme_str() {
        Some("http") => Scheme::HTTP,
        Some("https") => Scheme::HTTPS,
        _ => return Err(format!("'{url}' must start with http:// or https://")),
    };
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("'{url}' has no host"))?;
    if authority.as_str().contains('@') {
        return Err("credentials in the URL are not allowed".to_owned());
    }
    if authority.host().is_empty() {
        return Err(format!("'{url}' has no host"));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(
            "a service URL has no query string or fragment; the client's query is forwarded"
                .to_owned(),
        );
    }
    let base_path = normalize_escapes(uri.path())
        .map_err(|e| format!("the base path is invalid: {e}"))?
        .trim_end_matches('/')
        .to_owned();
    Ok(Origin {
        scheme,
        authority,
        base_path,
    })
}

fn check_route(
    route: &wire::RouteDocument,
    at: &str,
    services: &[Service],
    service_index: &BTreeMap<String, usize>,
    declared_services: &BTreeMap<String, wire::ServiceDocument>,
    auth_names: &auth::AuthNames,
    issues: &mut Issues,
) -> Option<(RouteSpec, Route)> {
    let before = issues.len();
    let path = PathPattern::parse(&route.path)
        .map_err(|e| issues.push(format!("{at}.path"), format!("'{}': {e}", route.path)))
        .ok();
    let methods = match &route.methods {
        None => Some(MethodSet::Any),
        Some(names) => MethodSet::parse(names)
            .map_err(|e| issues.push(format!("{at}.methods"), e))
            .ok(),
    };
    let mut hosts = Vec::new();
    for (index, text) in route.hosts.iter().flatten().enumerate() {
        match HostPattern::parse(text) {
            Ok(host) if hosts.contains(&host) => issues.push(
                format!("{at}.hosts[{index}]"),
                format!("'{text}' is listed twice"),
            ),
            Ok(host) => hosts.push(host),
            Err(e) => issues.push(format!("{at}.hosts[{index}]"), format!("'{text}': {e}")),
        }
    }
    if route.hosts.as_ref().is_some_and(Vec::is_empty) {
        issues.push(
            format!("{at}.hosts"),
            "the list is empty; leave 'hosts' out to match any host",
        );
    }
    let service = service_index.get(&route.service).copied();
    if service.is_none() {
        let reason = if declared_services.contains_key(&route.service) {
            format!(
                "service '{}' is not usable (see services.{})",
                route.service, route.service
            )
        } else {
            format!("no service named '{}' in 'services'", route.service)
        };
        issues.push(format!("{at}.service"), reason);
    }
    let service_timeout = service.map_or(Duration::ZERO, |index| services[index].timeout);
    let timeout = check_timeout(
        route.timeout_ms,
        service_timeout,
        format!("{at}.timeout_ms"),
        issues,
    );
    let transform = match (&route.strip_prefix, &route.rewrite, &path) {
        (Some(_), Some(_), _) => {
            issues.push(
                at.to_owned(),
                "'strip_prefix' and 'rewrite' cannot both be set",
            );
            None
        }
        (Some(prefix), None, Some(pattern)) => PathTransform::strip_prefix(prefix, pattern)
            .map_err(|e| issues.push(format!("{at}.strip_prefix"), e))
            .ok(),
        (None, Some(template), Some(pattern)) => PathTransform::template(template, pattern)
            .map_err(|e| issues.push(format!("{at}.rewrite"), format!("'{template}' {e}")))
            .ok(),
        (None, None, _) => Some(PathTransform::Keep),
        (_, _, None) => None,
    };
    let route_auth = route
        .auth
        .as_ref()
        .map(|document| auth::check_route_auth(document, at, auth_names, issues));
    let route_limits = route
        .rate_limit
        .as_ref()
        .map(|document| rate_limit::check_rate_limit(document, at, route.auth.is_some(), issues));
    if issues.len() != before {
        return None;
    }
    let (path, methods, service, transform) = (path?, methods?, service?, transform?);
    let auth = match route_auth {
        Some(checked) => Some(checked?),
        None => None,
    };
    let rate_limit = match route_limits {
        Some(checked) => Some(checked?),
        None => None,
    };
    Some((
        RouteSpec {
            id: route.id.clone(),
            hosts,
            path,
            methods,
        },
        Route {
            id: route.id.clone(),
            service,
            transform,
            timeout,
            auth,
            rate_limit,
        },
    ))
}
