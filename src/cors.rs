//! CORS as browsers need it (the Fetch standard's CORS protocol): which
//! origins may read a route's responses, and the answer to a preflight.
//!
//! Policies are checked and turned into ready-made header values once, at
//! config load ([`crate::config`]); what is left for a request is matching
//! one `Origin` and copying headers. The gateway owns CORS on a route with
//! a policy: it answers preflights itself (unless the policy passes them
//! through), echoes exactly one allowed origin (never a list, never `*`
//! with credentials), always adds `Vary: Origin`, and replaces whatever
//! `Access-Control-*` headers the upstream sent.
//!
//! Nothing here reads the config or the platform; the phase glue is
//! [`crate::phases::cors`].

use http::Method;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers exposed to scripts unless a policy lists its own.
pub const DEFAULT_EXPOSE: [&str; 5] = [
    "x-request-id",
    "ratelimit",
    "ratelimit-policy",
    "retry-after",
    "traceparent",
];

/// Request headers allowed unless a policy lists its own (the route's API
/// key header is added to these).
pub const DEFAULT_ALLOW_HEADERS: [&str; 5] = [
    "authorization",
    "content-type",
    "x-request-id",
    "traceparent",
    "tracestate",
];

/// Methods allowed on a route that accepts any method, unless listed.
pub const DEFAULT_ANY_METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// Which origins a policy admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Any origin (`"*"`); never combined with credentials.
    Any,
    List(Vec<OriginRule>),
}

/// One allowed origin: exact, or a pattern with a leading `*.` label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginRule {
    /// A serialised origin, lower-case: `https://app.example.com:8443`.
    Exact(String),
    /// `scheme://*.suffix[:port]`: one or more labels before `suffix`.
    Subdomains {
        scheme: String,
        /// With its leading dot: `.example.com`.
        suffix: String,
        port: Option<u16>,
    },
}

/// Which request headers a policy admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedHeaders {
    /// Whatever the browser asks for (echoed back).
    Any,
    List(Vec<HeaderName>),
}

/// A CORS policy, checked at load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsPolicy {
    pub origins: AllowedOrigins,
    /// `None`: the methods of the route it applies to.
    pub methods: Option<Vec<Method>>,
    /// `None`: [`DEFAULT_ALLOW_HEADERS`] and the route's API key header.
    pub headers: Option<AllowedHeaders>,
    /// `Access-Control-Expose-Headers`, ready to send (`None`: none).
    pub expose: Option<HeaderValue>,
    /// `Access-Control-Max-Age`, ready to send.
    pub max_age: Option<HeaderValue>,
    pub credentials: bool,
    /// Send preflights to the upstream instead of answering them.
    pub pass_through_preflight: bool,
}

/// A policy as it applies to one route: with that route's methods and
/// request headers, and the header values ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteCors {
    pub policy: std::rc::Rc<CorsPolicy>,
    pub methods: Vec<Method>,
    /// `Access-Control-Allow-Methods`.
    pub methods_value: HeaderValue,
    pub headers: AllowedHeaders,
    /// `Access-Control-Allow-Headers` for a listed set.
    pub headers_value: Option<HeaderValue>,
}

/// What a preflight asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preflight {
    pub origin: HeaderValue,
    pub method: Method,
    /// Lower-cased names from `Access-Control-Request-Headers`.
    pub headers: Vec<String>,
}

/// Why a preflight or a request was not granted (for the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Origin,
    Method,
    Headers,
}

const VARY_PREFLIGHT: HeaderValue = HeaderValue::from_static(
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
);
const VARY_ORIGIN: HeaderValue = HeaderValue::from_static("Origin");
const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");
const TRUE: HeaderValue = HeaderValue::from_static("true");

/// The preflight a request is, if it is one: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
pub fn preflight(method: &Method, headers: &HeaderMap) -> Option<Preflight> {
    if method != Method::OPTIONS {
        return None;
    }
    let origin = headers.get(header::ORIGIN)?.clone();
    let requested = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD)?;
    let method = Method::from_bytes(requested.as_bytes()).ok()?;
    let headers = headers
        .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    Some(Preflight {
        origin,
        method,
        headers,
    })
}

impl CorsPolicy {
    /// Whether `origin` (an `Origin` header value) may read responses.
    pub fn admits(&self, origin: &HeaderValue) -> bool {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        match &self.origins {
            AllowedOrigins::Any => true,
            AllowedOrigins::List(rules) => rules.iter().any(|rule| rule.matches(origin)),
        }
    }

    /// The `Access-Control-Allow-Origin` value for an admitted origin.
    fn allow_origin(&self, origin: &HeaderValue) -> HeaderValue {
        if self.origins == AllowedOrigins::Any && !self.credentials {
            ANY_ORIGIN
        } else {
            origin.clone()
        }
    }
}

impl RouteCors {
    /// The gateway's answer to a preflight: the headers of a 204, and
    /// whether it was granted. A refused preflight gets no
    /// `Access-Control-Allow-*` headers, so the browser stops there.
    pub fn answer(&self, preflight: &Preflight) -> (HeaderMap, Result<(), Refusal>) {
        let policy = &self.policy;
        let mut headers = HeaderMap::new();
        headers.insert(header::VARY, VARY_PREFLIGHT);
        let verdict = if !policy.admits(&preflight.origin) {
            Err(Refusal::Origin)
        } else if !self.methods.contains(&preflight.method) {
            Err(Refusal::Method)
        } else if let AllowedHeaders::List(allowed) = &self.headers
            && !preflight
                .headers
                .iter()
                .all(|asked| allowed.iter().any(|name| name.as_str() == asked))
        {
            Err(Refusal::Headers)
        } else {
            Ok(())
        };
        if verdict.is_err() {
            return (headers, verdict);
        }
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            policy.allow_origin(&preflight.origin),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            self.methods_value.clone(),
        );
        let allow_headers = match (&self.headers, &self.headers_value) {
            (AllowedHeaders::Any, _) if !preflight.headers.is_empty() => {
                HeaderValue::from_str(&preflight.headers.join(", ")).ok()
            }
            (AllowedHeaders::List(_), Some(value)) => Some(value.clone()),
            _ => None,
        };
        if let Some(value) = allow_headers {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
        }
        if let Some(max_age) = &policy.max_age {
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, max_age.clone());
        }
        if policy.credentials {
            headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
        }
        (headers, verdict)
    }
}

/// Put the policy's headers on a response to an actual (non-preflight)
/// request with `origin` (if the client sent one). The upstream's own
/// CORS headers are removed first. Returns whether the origin was granted.
pub fn decorate(
    policy: &CorsPolicy,
    origin: Option<&HeaderValue>,
    headers: &mut HeaderMap,
) -> Option<Result<(), Refusal>> {
    for name in [
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::ACCESS_CONTROL_MAX_AGE,
    ] {
        headers.remove(name);
    }
    add_vary_origin(headers);
    let origin = origin?;
    if !policy.admits(origin) {
        return Some(Err(Refusal::Origin));
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        policy.allow_origin(origin),
    );
    if policy.credentials {
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
    }
    if let Some(expose) = &policy.expose {
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
    }
    Some(Ok(()))
}

/// Add `Origin` to `Vary` unless it is already there (or `Vary: *`).
fn add_vary_origin(headers: &mut HeaderMap) {
    let present = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|name| {
            let name = name.trim();
            name == "*" || name.eq_ignore_ascii_case("origin")
        });
    if !present {
        headers.append(header::VARY, VARY_ORIGIN);
    }
}

impl OriginRule {
    /// Parse one configured origin (not `*`, which is [`AllowedOrigins::Any`]).
    pub fn parse(text: &str) -> Result<OriginRule, String> {
        let lower = text.to_ascii_lowercase();
        if lower == "null" {
            return Err(
                "the 'null' origin (sandboxed pages, file: URLs) can be sent by any page and is never allowed"
                    .to_owned(),
            );
        }
        let (scheme, rest) = lower
            .split_once("://")
            .ok_or_else(|| format!("'{text}' is not an origin like https://app.example.com"))?;
        if scheme != "http" && scheme != "https" {
            return Err(format!("'{text}': the scheme must be http or https"));
        }
        if rest.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "'{text}': an origin is scheme, host and port only (no path, query or user)"
            ));
        }
        let (host, port) =
            split_host_port(rest).ok_or_else(|| format!("'{text}': the port is not a number"))?;
        let (wildcard, name) = match host.strip_prefix("*.") {
            Some(name) => (true, name),
            None => (false, host),
        };
        if name.is_empty()
            || name.contains('*')
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'[' | b']' | b':'))
        {
            return Err(format!(
                "'{text}': the host must be a name or address, with '*.' only as its first label"
            ));
        }
        if wildcard {
            if !name.contains('.') {
                return Err(format!(
                    "'{text}': a pattern must keep at least two labels after '*.' (like *.example.com)"
                ));
            }
            return Ok(OriginRule::Subdomains {
                scheme: scheme.to_owned(),
                suffix: format!(".{name}"),
                port,
            });
        }
        Ok(OriginRule::Exact(lower))
    }

    /// Whether a request's `Origin` matches.
    pub fn matches(&self, origin: &str) -> bool {
        match self {
            OriginRule::Exact(exact) => exact.eq_ignore_ascii_case(origin),
            OriginRule::Subdomains {
                scheme,
                suffix,
                port,
            } => {
                let origin = origin.to_ascii_lowercase();
                let Some(rest) = origin
                    .strip_prefix(scheme.as_str())
                    .and_then(|rest| rest.strip_prefix("://"))
                else {
                    return false;
                };
                let Some((host, origin_port)) = split_host_port(rest) else {
                    return false;
                };
                origin_port == *port
                    && host.len() > suffix.len()
                    && host.ends_with(suffix.as_str())
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
                    && !host.starts_with('.')
                    && !host.contains("..")
            }
        }
    }
}

/// `host[:port]` (a bracketed IPv6 host keeps its brackets); `None` when
/// the port is not a number.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let host_end = if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |at| at + 1)
    } else {
        authority.find(':').unwrap_or(authority.len())
    };
    let (host, rest) = authority.split_at_checked(host_end)?;
    match rest.strip_prefix(':') {
        Some(port) => Some((host, Some(port.parse().ok()?))),
        None if rest.is_empty() => Some((host, None)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn rule(text: &str) -> OriginRule {
        OriginRule::parse(text).unwrap()
    }

    fn policy(origins: AllowedOrigins, credentials: bool) -> RouteCors {
        RouteCors {
            policy: Rc::new(CorsPolicy {
                origins,
                methods: None,
                headers: None,
                expose: Some(HeaderValue::from_static("x-request-id")),
                max_age: Some(HeaderValue::from_static("600")),
                credentials,
                pass_through_preflight: false,
            }),
            methods: vec![Method::GET, Method::HEAD],
            methods_value: HeaderValue::from_static("GET, HEAD"),
            headers: AllowedHeaders::List(vec![HeaderName::from_static("x-api-key")]),
            headers_value: Some(HeaderValue::from_static("x-api-key")),
        }
    }

    fn ask(origin: &str, method: &str, headers: &str) -> Preflight {
        let mut map = HeaderMap::new();
        map.insert(header::ORIGIN, origin.parse().unwrap());
        map.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            method.parse().unwrap(),
        );
        if !headers.is_empty() {
            map.insert(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                headers.parse().unwrap(),
            );
        }
        preflight(&Method::OPTIONS, &map).unwrap()
    }

    #[test]
    fn exact_origins_match_whatever_the_case_and_nothing_else() {
        let exact = rule("http://localhost:5173");
        assert!(exact.matches("http://localhost:5173"));
        assert!(exact.matches("HTTP://LOCALHOST:5173"));
        assert!(!exact.matches("http://localhost:5174"));
        assert!(!exact.matches("https://localhost:5173"));
        assert!(!exact.matches("http://localhost:5173.evil.com"));
    }

    #[test]
    fn subdomain_patterns_need_a_label_and_the_same_scheme_and_port() {
        let pattern = rule("https://*.example.com");
        assert!(pattern.matches("https://app.example.com"));
        assert!(pattern.matches("https://a.b.example.com"));
        assert!(!pattern.matches("https://example.com"));
        assert!(!pattern.matches("https://.example.com"));
        assert!(!pattern.matches("http://app.example.com"));
        assert!(!pattern.matches("https://app.example.com:8443"));
        assert!(!pattern.matches("https://evilexample.com"));
        assert!(!pattern.matches("https://app.example.com.evil.org"));
        assert!(rule("https://*.example.com:8443").matches("https://x.example.com:8443"));
    }

    #[test]
    fn bad_origins_are_refused_with_a_reason() {
        for bad in [
            "null",
            "example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://*.com",
            "https://app.*.example.com",
            "https://user@example.com",
            "https://example.com:http",
        ] {
            assert!(OriginRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_granted_preflight_echoes_one_origin_and_lists_what_is_allowed() {
        let cors = policy(
            AllowedOrigins::List(vec![rule("http://localhost:5173")]),
            false,
        );
        let (headers, verdict) = cors.answer(&ask("http://localhost:5173", "GET", "X-API-Key"));
        assert_eq!(verdict, Ok(()));
        assert_eq!(
            headers["access-control-allow-origin"],
            "http://localhost:5173"
        );
        assert_eq!(headers["access-control-allow-methods"], "GET, HEAD");
        assert_eq!(headers["access-control-allow-headers"], "x-api-key");
        assert_eq!(headers["access-control-max-age"], "600");
        assert!(!headers.contains_key("access-control-allow-credentials"));
        assert!(headers["vary"].to_str().unwrap().contains("Origin"));
    }

    #[test]
    fn a_preflight_outside_the_policy_gets_no_allow_headers() {
        let cors = policy(
            AllowedOrigins::List(vec![rule("http://localhost:5173")]),
            false,
        );
        for (preflight, why) in [
            (ask("http://evil.example", "GET", ""), Refusal::Origin),
            (ask("http://localhost:5173", "DELETE", ""), Refusal::Method),
            (
                ask("http://localhost:5173", "GET", "x-other"),
                Refusal::Headers,
            ),
        ] {
            let (headers, verdict) = cors.answer(&preflight);
            assert_eq!(verdict, Err(why));
            assert!(!headers.contains_key("access-control-allow-origin"));
            assert!(headers.contains_key("vary"));
        }
    }

    #[test]
    fn any_origin_is_star_without_credentials_and_echoed_with_them() {
        let origin = HeaderValue::from_static("https://a.example");
        let mut headers = HeaderMap::new();
        decorate(
            &policy(AllowedOrigins::Any, false).policy,
            Some(&origin),
            &mut headers,
        );
        assert_eq!(headers["access-control-allow-origin"], "*");
        let mut headers = HeaderMap::new();
        decorate(
            &policy(AllowedOrigins::Any, true).policy,
            Some(&origin),
            &mut headers,
        );
        assert_eq!(headers["access-control-allow-origin"], "https://a.example");
        assert_eq!(headers["access-control-allow-credentials"], "true");
    }

    #[test]
    fn decorating_replaces_upstream_cors_headers_and_adds_vary_once() {
        let cors = policy(
            AllowedOrigins::List(vec![rule("https://app.example")]),
            false,
        );
        let mut headers = HeaderMap::new();
        headers.insert("access-control-allow-origin", "*".parse().unwrap());
        headers.insert("vary", "Accept-Encoding".parse().unwrap());
        let verdict = decorate(
            &cors.policy,
            Some(&HeaderValue::from_static("https://evil.example")),
            &mut headers,
        );
        assert_eq!(verdict, Some(Err(Refusal::Origin)));
        assert!(!headers.contains_key("access-control-allow-origin"));
        let vary: Vec<_> = headers.get_all("vary").iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);

        decorate(&cors.policy, None, &mut headers);
        assert_eq!(headers.get_all("vary").iter().count(), 2);
    }
}
